//! Signed, expiring links: an HMAC-SHA256 over a URL path and an expiry time, so that the links in job
//! documents and e-mails work without the API token while nobody can forge or extend one.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The query parameter carrying a link's expiry (Unix seconds).
pub const EXPIRES_PARAM: &str = "expires";
/// The query parameter carrying a link's signature (lower-case hex).
pub const SIGNATURE_PARAM: &str = "sig";

/// Signs and checks links with one secret key. The key never leaves this type (its `Debug` hides it).
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
    ttl_secs: u64,
}

/// Why a signed link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The signature does not match the path and expiry (tampered, or signed with another key).
    #[error("the link's signature is not valid")]
    BadSignature,
    /// The signature is right but the expiry has passed.
    #[error("the link has expired")]
    Expired,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkSigner").field("key", &"<redacted>").field("ttl_secs", &self.ttl_secs).finish()
    }
}

impl LinkSigner {
    /// A signer with `key` whose links stay valid for `ttl_secs` after they are made.
    pub fn new(key: impl Into<Vec<u8>>, ttl_secs: u64) -> Self {
        Self { key: key.into(), ttl_secs }
    }

    /// A key derived from `secrets` (e.g. the API tokens), the same on every instance and after restarts
    /// given the same secrets in any order. `context` separates keys derived for different purposes.
    pub fn derive_key(context: &str, secrets: &[&str]) -> Vec<u8> {
        let mut sorted: Vec<&str> = secrets.to_vec();
        sorted.sort_unstable();
        let mut mac = keyed_mac(context.as_bytes());
        for secret in sorted {
            mac.update(&(secret.len() as u64).to_be_bytes());
            mac.update(secret.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// How long links stay valid, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// The signature (lower-case hex) of `path` valid until `expires` (Unix seconds).
    pub fn signature(&self, path: &str, expires: u64) -> String {
        hex::encode(self.tag(path, expires).finalize().into_bytes())
    }

    /// `path` with `?expires=..&sig=..` appended, valid for the signer's time to live from `now_unix`.
    pub fn sign(&self, path: &str, now_unix: u64) -> String {
        let expires = now_unix.saturating_add(self.ttl_secs);
        format!("{path}?{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={}", self.signature(path, expires))
    }

    /// Checks a signature of `path` and `expires` in constant time, then the expiry against `now_unix`.
    pub fn verify(&self, path: &str, expires: u64, signature_hex: &str, now_unix: u64) -> Result<(), LinkError> {
        let signature = hex::decode(signature_hex).map_err(|_| LinkError::BadSignature)?;
        self.tag(path, expires).verify_slice(&signature).map_err(|_| LinkError::BadSignature)?;
        if expires < now_unix { Err(LinkError::Expired) } else { Ok(()) }
    }

    fn tag(&self, path: &str, expires: u64) -> HmacSha256 {
        let mut mac = keyed_mac(&self.key);
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

/// HMAC-SHA256 keyed with `key`: the one MAC of signed links and webhook signatures.
pub(crate) fn keyed_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed), so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// `expires` and `sig` from a URL query, when both are present.
pub fn signature_params(query: &str) -> Option<(Option<u64>, &str)> {
    let mut expires = None;
    let mut signature = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((EXPIRES_PARAM, value)) => expires = Some(value),
            Some((SIGNATURE_PARAM, value)) => signature = Some(value),
            _ => {}
        }
    }
    signature.map(|signature| (expires.and_then(|value| value.parse().ok()), signature))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_links_verify_until_they_expire() {
        let signer = LinkSigner::new(b"k".repeat(32), 60);
        let link = signer.sign("/v1/files/outputs/a/0/thumb.webp", 1000);
        let query = link.split_once('?').unwrap().1;
        let (expires, sig) = signature_params(query).unwrap();
        assert_eq!(expires, Some(1060));
        assert_eq!(signer.verify("/v1/files/outputs/a/0/thumb.webp", 1060, sig, 1000), Ok(()));
        assert_eq!(signer.verify("/v1/files/outputs/a/0/thumb.webp", 1060, sig, 1061), Err(LinkError::Expired));
        assert_eq!(signer.verify("/v1/files/outputs/b/0/thumb.webp", 1060, sig, 1000), Err(LinkError::BadSignature));
        assert_eq!(signer.verify("/v1/files/outputs/a/0/thumb.webp", 9999, sig, 1000), Err(LinkError::BadSignature));
        assert_eq!(signer.verify("/v1/files/outputs/a/0/thumb.webp", 1060, "zz", 1000), Err(LinkError::BadSignature));
        let other = LinkSigner::new(b"x".repeat(32), 60);
        assert_eq!(other.verify("/v1/files/outputs/a/0/thumb.webp", 1060, sig, 1000), Err(LinkError::BadSignature));
    }

    #[test]
    fn derived_keys_ignore_order_and_differ_by_secret() {
        let a = LinkSigner::derive_key("links", &["one", "two"]);
        assert_eq!(a, LinkSigner::derive_key("links", &["two", "one"]));
        assert_ne!(a, LinkSigner::derive_key("links", &["one", "three"]));
        assert_ne!(a, LinkSigner::derive_key("other", &["one", "two"]));
        assert_eq!(signature_params("a=b"), None);
        assert_eq!(signature_params("sig=ab&expires=x"), Some((None, "ab")));
    }
}
