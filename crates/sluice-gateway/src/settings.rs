use std::net::SocketAddr;

use serde::Deserialize;

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
        Ok(())
    }
}
