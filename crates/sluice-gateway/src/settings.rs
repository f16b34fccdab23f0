use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;
use sluice_pipeline::LinkSigner;

/// Context of the link-signing key derived from the API tokens (so it never equals any other derived key).
const DERIVED_LINK_KEY_CONTEXT: &str = "sluice link signing key v1";
/// Shortest accepted API token and signing key, in characters: guessable secrets are refused at start.
const MIN_SECRET_CHARS: usize = 16;

/// The `[server]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Base of the links in job documents and e-mails, as clients reach the service.
    pub public_url: String,
    /// Largest upload (all files of a request together); larger ones get 413 and leave nothing stored.
    pub max_upload_bytes: u64,
    /// Upload bodies received at once; more get 503 with `Retry-After`.
    pub max_concurrent_uploads: usize,
    /// Requests handled at once (event streams included); more are shed with 503.
    pub max_concurrent_requests: usize,
    /// Time limit of ordinary requests (uploads and event streams excepted).
    pub request_timeout_secs: u64,
    /// Longest pause between two pieces of an upload body before the upload is dropped (408).
    pub upload_idle_timeout_secs: u64,
    /// Longest `Prefer: wait=N` honoured.
    pub max_wait_secs: u64,
    /// Time a connection gets to send a complete request head; a slower client (slowloris) is disconnected.
    pub header_read_timeout_secs: u64,
    /// Bearer tokens accepted on the API; empty (the default) leaves the API open.
    pub api_tokens: Vec<Secret>,
    /// Key of the signed links in job documents and e-mails; when unset and tokens are set, derived from the
    /// tokens.
    pub signing_key: Option<Secret>,
    /// How long a signed link stays valid, in seconds.
    pub link_ttl_secs: u64,
    /// Take the client address for rate limits from the last `X-Forwarded-For` entry (behind a proxy only).
    pub trust_forwarded_for: bool,
    /// Per-client limit on uploads.
    pub rate_limit: RateLimitSettings,
    /// Origins (`https://app.example.com`, or `*` for all) whose web pages may call the API: they get CORS
    /// headers. Uploads from pages of any other origin are refused (cross-site request forgery).
    pub cors_origins: Vec<String>,
}

/// The `[server.rate_limit]` section: a token bucket per client address for `POST /v1/uploads`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Uploads a client may start per minute on average; 0 turns the limit off.
    pub uploads_per_minute: u32,
    /// Uploads a client may start at once after being idle.
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { uploads_per_minute: 0, burst: 10 }
    }
}

/// A secret from the configuration (API token, signing key): shown as `<redacted>` by `Debug`, so it never
/// reaches a log line or `sluice check`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the code that compares or keys with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            max_upload_bytes: 100 * 1024 * 1024,
            max_concurrent_uploads: 64,
            max_concurrent_requests: 1024,
            request_timeout_secs: 30,
            upload_idle_timeout_secs: 30,
            max_wait_secs: 60,
            header_read_timeout_secs: 10,
            api_tokens: Vec::new(),
            signing_key: None,
            link_ttl_secs: 7 * 24 * 60 * 60,
            trust_forwarded_for: false,
            rate_limit: RateLimitSettings::default(),
            cors_origins: Vec::new(),
        }
    }
}

impl GatewaySettings {
    /// Checks values that would make the gateway misbehave, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.public_url.trim();
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {}
            _ => return Err(format!("server.public_url must be an http:// or https:// URL (got {url:?})")),
        }
        if self.max_upload_bytes == 0 {
            return Err("server.max_upload_bytes must be at least 1".to_owned());
        }
        if self.max_concurrent_uploads == 0 || self.max_concurrent_requests == 0 {
            return Err(
                "server.max_concurrent_uploads and server.max_concurrent_requests must be at least 1".to_owned()
            );
        }
        if self.request_timeout_secs == 0 || self.upload_idle_timeout_secs == 0 || self.header_read_timeout_secs == 0 {
            return Err(
                "server.request_timeout_secs, server.upload_idle_timeout_secs and server.header_read_timeout_secs \
                 must be at least 1"
                    .to_owned(),
            );
        }
        for (index, token) in self.api_tokens.iter().enumerate() {
            let value = token.expose();
            if value.chars().count() < MIN_SECRET_CHARS || !value.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!(
                    "server.api_tokens[{index}] must be at least {MIN_SECRET_CHARS} visible ASCII characters \
                     without spaces (e.g. from openssl rand -hex 32)"
                ));
            }
        }
        if self.signing_key.as_ref().is_some_and(|key| key.expose().chars().count() < MIN_SECRET_CHARS) {
            return Err(format!("server.signing_key must be at least {MIN_SECRET_CHARS} characters"));
        }
        if self.link_ttl_secs == 0 {
            return Err("server.link_ttl_secs must be at least 1".to_owned());
        }
        if let Some((index, bad)) = self
            .cors_origins
            .iter()
            .enumerate()
            .find(|(_, origin)| origin.trim() != "*" && crate::origin::normalise_origin(origin).is_none())
        {
            return Err(format!(
                "server.cors_origins[{index}] must be an origin such as https://app.example.com (scheme, host and \
                 port only) or \"*\" (got {bad:?})"
            ));
        }
        if self.rate_limit.uploads_per_minute > 0 && self.rate_limit.burst == 0 {
            return Err("server.rate_limit.burst must be at least 1 when uploads_per_minute is set".to_owned());
        }
        Ok(())
    }

    /// Whether the API asks for a bearer token.
    pub fn requires_token(&self) -> bool {
        !self.api_tokens.is_empty()
    }

    /// The signer of the links handed out: keyed by `server.signing_key`, or else by a key derived from the
    /// API tokens (the same on every instance and after a restart); `None` (plain links) when neither is set.
    pub fn link_signer(&self) -> Option<LinkSigner> {
        let key = match &self.signing_key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None if self.requires_token() => {
                let tokens: Vec<&str> = self.api_tokens.iter().map(Secret::expose).collect();
                LinkSigner::derive_key(DERIVED_LINK_KEY_CONTEXT, &tokens)
            }
            None => return None,
        };
        Some(LinkSigner::new(key, self.link_ttl_secs))
    }
}
