use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::callback::CallbackUrl;
use crate::Backoff;

/// The `[webhooks]` config section: the secret that signs deliveries, a default callback, the address policy,
/// time limits and the retry policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Callback for uploads that name none; unset means only uploads with `callback_url` get a webhook.
    pub default_url: Option<String>,
    /// The HMAC-SHA256 key of `Sluice-Signature`; required for any webhook. Never printed.
    pub secret: Option<WebhookSecret>,
    /// Admit loopback, private and unique-local addresses (link-local and the metadata service stay refused).
    pub allow_private: bool,
    /// Time limit of one delivery attempt (connect, send, answer).
    pub timeout_secs: u64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// When to try again.
    pub retry: WebhookRetry,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            default_url: None,
            secret: None,
            allow_private: false,
            timeout_secs: 10,
            concurrency: 8,
            retry: WebhookRetry::default(),
        }
    }
}

/// The `[webhooks.retry]` section: exponential backoff with jitter, bounded in time rather than attempts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookRetry {
    /// Wait before the first retry, in milliseconds; it doubles on every attempt, with jitter.
    pub first_delay_ms: u64,
    /// Longest wait between two attempts (a `Retry-After` is capped to it too), in seconds.
    pub max_delay_secs: u64,
    /// Give up once this long has passed since the job ended, in seconds.
    pub give_up_after_secs: u64,
}

impl Default for WebhookRetry {
    fn default() -> Self {
        Self { first_delay_ms: 1000, max_delay_secs: 600, give_up_after_secs: 86_400 }
    }
}

impl WebhookRetry {
    /// The backoff whose `delay(n)` is the wait after the n-th failed attempt.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            attempts: u32::MAX,
            base: Duration::from_millis(self.first_delay_ms),
            max: Duration::from_secs(self.max_delay_secs),
        }
    }
}

/// The webhook signing key. `Debug` and `Display` hide it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The key's bytes, for signing.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<&str> for WebhookSecret {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSettings {
    /// Checks values that would make webhooks unusable, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.secret.as_ref().is_some_and(|secret| secret.0.trim().is_empty()) {
            return Err("webhooks.secret must not be empty".to_owned());
        }
        if let Some(url) = &self.default_url {
            if self.secret.is_none() {
                return Err("webhooks.default_url needs webhooks.secret, which signs every delivery".to_owned());
            }
            CallbackUrl::parse(url, self.allow_private)
                .map_err(|error| format!("webhooks.default_url: {}", sluice_core::error_chain(&error)))?;
        }
        if self.timeout_secs == 0 || self.concurrency == 0 {
            return Err("webhooks.timeout_secs and webhooks.concurrency must be at least 1".to_owned());
        }
        if self.retry.first_delay_ms == 0 || self.retry.max_delay_secs == 0 {
            return Err("webhooks.retry.first_delay_ms and webhooks.retry.max_delay_secs must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_never_shows() {
        let settings = WebhookSettings { secret: Some("hunter2".into()), ..WebhookSettings::default() };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn a_default_url_needs_a_secret_and_a_public_address() {
        let mut settings =
            WebhookSettings { default_url: Some("https://hooks.example.com/in".to_owned()), ..Default::default() };
        assert!(settings.validate().unwrap_err().contains("webhooks.secret"));
        settings.secret = Some("s".into());
        assert!(settings.validate().is_ok());
        settings.default_url = Some("http://10.0.0.1/in".to_owned());
        assert!(settings.validate().unwrap_err().contains("webhooks.default_url"));
    }
}
