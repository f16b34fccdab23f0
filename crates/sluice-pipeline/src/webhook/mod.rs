//! Outbound webhooks: when a job ends, its job document is POSTed, signed, to the callback the upload named.
//!
//! [`Webhooks`] owns the HTTP client and the policy: one attempt at a time ([`Webhooks::attempt`]), judged
//! as delivered, to retry, or refused. The address policy ([`check_address`]) is applied to literal hosts
//! and, through a resolver that refuses forbidden answers, to every address a name resolves to; the
//! connection goes to the addresses that were checked, redirects are not followed and proxies are not used.
//! The stage that schedules attempts lives in `stage.rs`.

mod address;
mod callback;
mod settings;
mod signature;
pub(crate) mod stage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use sluice_core::{JobRecord, JobState, Problem, Webhook, error_chain};
use time::OffsetDateTime;

pub use address::{RefusedAddress, check_address};
pub use callback::{CallbackError, CallbackUrl};
pub use settings::{WebhookRetry, WebhookSecret, WebhookSettings};
pub use signature::signature_header;

/// Renders the job document that a delivery carries (the gateway's JSON, so receivers see what the API shows).
pub type RenderDocument = Arc<dyn Fn(&JobRecord) -> Result<Vec<u8>, serde_json::Error> + Send + Sync>;

/// The webhook client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client")]
pub struct WebhookClientError(#[source] reqwest::Error);

/// What one delivery attempt came to.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// A failure that can pass (connection, timeout, 429, 5xx but 501); `retry_after` when the receiver said.
    Retry { status: Option<u16>, problem: Problem, retry_after: Option<Duration> },
    /// A failure that will not pass by retrying (other 4xx, 3xx, 501, a refused address, no secret).
    GiveUp { status: Option<u16>, problem: Problem },
}

/// Sends webhook deliveries: the settings, the guarded HTTP client and the document renderer.
#[derive(Clone)]
pub struct Webhooks {
    settings: Arc<WebhookSettings>,
    client: reqwest::Client,
    render: RenderDocument,
}

impl Webhooks {
    /// A sender with `settings` that renders job documents with `render`.
    pub fn new(settings: WebhookSettings, render: RenderDocument) -> Result<Self, WebhookClientError> {
        let resolver = GuardedResolver { allow_private: settings.allow_private };
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs))
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(WebhookClientError)?;
        Ok(Self { settings: Arc::new(settings), client, render })
    }

    /// The settings in force.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// The webhook of a new upload: to `callback_url` when the upload named one, else to
    /// `webhooks.default_url`, else none. Refuses a URL that can be judged bad now, and any callback when no
    /// secret is configured.
    pub fn for_upload(&self, callback_url: Option<&str>) -> Result<Option<Webhook>, CallbackError> {
        let raw = match callback_url.map(str::trim) {
            Some(raw) if !raw.is_empty() => raw,
            _ => match &self.settings.default_url {
                Some(url) => url.as_str(),
                None => return Ok(None),
            },
        };
        if self.settings.secret.is_none() {
            return Err(CallbackError::NotConfigured);
        }
        let url = CallbackUrl::parse(raw, self.settings.allow_private)?;
        Ok(Some(Webhook::new(url.as_str())))
    }

    /// Makes one delivery attempt of `record`'s webhook.
    pub(crate) async fn attempt(&self, record: &JobRecord, webhook: &Webhook) -> Attempt {
        let give_up =
            |code: &str, message: String| Attempt::GiveUp { status: None, problem: Problem::new(code, message) };
        let Some(secret) = &self.settings.secret else {
            return give_up("webhooks_disabled", CallbackError::NotConfigured.to_string());
        };
        let url = match CallbackUrl::parse(&webhook.url, self.settings.allow_private) {
            Ok(url) => url,
            Err(error) => return give_up(error.code(), error_chain(&error)),
        };
        let body = match (self.render)(record) {
            Ok(body) => body,
            Err(error) => return give_up("internal_error", error_chain(&error)),
        };
        let event = if record.state == JobState::Failed { "job.failed" } else { "job.completed" };
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = signature_header(secret.expose(), timestamp, &body);
        let sent = self
            .client
            .post(url.url().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))))
            .header("sluice-event", event)
            .header("sluice-delivery", webhook.delivery_id.to_string())
            .header("sluice-signature", signature)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return classify_send_error(&error),
        };
        let status = response.status();
        let code = status.as_u16();
        if status.is_success() {
            Attempt::Delivered { status: code }
        } else if code == 429 || (status.is_server_error() && code != 501) {
            let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
            Attempt::Retry {
                status: Some(code),
                problem: Problem::new("callback_unavailable", format!("the receiver answered {status}")),
                retry_after,
            }
        } else {
            let message = if status.is_redirection() {
                format!("the receiver answered {status}; redirects are not followed")
            } else {
                format!("the receiver answered {status}")
            };
            Attempt::GiveUp { status: Some(code), problem: Problem::new("callback_rejected", message) }
        }
    }
}

/// A transport error: a refused address is final, anything else (connect, timeout, reset) can pass.
fn classify_send_error(error: &reqwest::Error) -> Attempt {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<RefusedAddress>() {
            return Attempt::GiveUp {
                status: None,
                problem: Problem::new("callback_refused", format!("callback_url is refused: {refused}")),
            };
        }
        source = current.source();
    }
    let code = if error.is_timeout() { "callback_timeout" } else { "callback_unreachable" };
    Attempt::Retry { status: None, problem: Problem::new(code, error_chain(error)), retry_after: None }
}

/// A `Retry-After` value: delta-seconds or an HTTP date.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = at - OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Resolves names with the system resolver and refuses the name when any of its addresses is forbidden, so
/// the connection can only go to addresses that were checked.
struct GuardedResolver {
    allow_private: bool,
}

/// A name that resolved to no address.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolved to no address")]
struct NoAddress(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_checked(name.as_str().to_owned(), self.allow_private))
    }
}

/// Resolves `host` and admits its addresses only when every one of them passes [`check_address`].
async fn resolve_checked(host: String, allow_private: bool) -> Result<Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    if addresses.is_empty() {
        return Err(NoAddress(host).into());
    }
    for address in &addresses {
        check_address(address.ip(), allow_private)?;
    }
    Ok(Box::new(addresses.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let resolver = GuardedResolver { allow_private: false };
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost was admitted"),
            Err(error) => error,
        };
        let refused = error.downcast_ref::<RefusedAddress>().expect("a refused address");
        assert!(refused.address.is_loopback(), "{refused}");

        let allowed = GuardedResolver { allow_private: true };
        let addresses: Vec<SocketAddr> = allowed.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addresses.iter().all(|address| address.ip().is_loopback()), "{addresses:?}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(&HeaderValue::from_static("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn uploads_get_a_webhook_only_with_a_secret() {
        let render: RenderDocument = Arc::new(|_| Ok(Vec::new()));
        let open = Webhooks::new(WebhookSettings::default(), Arc::clone(&render)).unwrap();
        assert!(open.for_upload(None).unwrap().is_none());
        assert!(matches!(open.for_upload(Some("https://hooks.example.com/")), Err(CallbackError::NotConfigured)));

        let settings = WebhookSettings { secret: Some("k".into()), ..WebhookSettings::default() };
        let signed = Webhooks::new(settings, render).unwrap();
        let webhook = signed.for_upload(Some(" https://hooks.example.com/in ")).unwrap().unwrap();
        assert_eq!(webhook.url, "https://hooks.example.com/in");
        assert!(matches!(signed.for_upload(Some("http://0x7f000001/")), Err(CallbackError::Refused(_))));
    }
}
