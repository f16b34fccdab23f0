//! The running stages of sluice.
//!
//! This crate owns what happens after an upload is accepted: the convert stage (which turns every image into
//! its variants and every CSV or JSON table into its PDF and HTML reports, off the async threads, parallel up
//! to `pipeline.workers`), the notify stage (which mails the completion notice), the webhook stage (signed
//! callbacks when a job ends, see [`Webhooks`]), the bounded channels that join them, recovery of unfinished
//! jobs on start, retries with backoff, the broadcast of [`sluice_core::JobEvent`]s, metrics and graceful
//! shutdown. The stored
//! [`sluice_core::JobRecord`] is the truth; channels carry job ids only to wake the stages. Its entry point is
//! [`Pipeline`]. It knows nothing of HTTP.

mod convert;
mod cpu_pool;
mod links;
mod metrics;
mod notify;
mod ownership;
mod pipeline;
mod reports;
mod retry;
mod settings;
mod signing;
mod webhook;

pub use links::Links;
pub use metrics::Metrics;
pub use pipeline::{Pipeline, PipelineParts, QueueFull, QueueSlot};
pub use reports::Reports;
pub use retry::Backoff;
pub use settings::PipelineSettings;
pub use signing::{EXPIRES_PARAM, LinkError, LinkSigner, SIGNATURE_PARAM, signature_params};
pub use webhook::{
    CallbackError, CallbackUrl, RefusedAddress, RenderDocument, WebhookClientError, WebhookRetry, WebhookSecret,
    WebhookSettings, Webhooks, check_address, signature_header,
};
