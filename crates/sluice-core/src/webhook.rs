//! The delivery state of a job's webhook: the callback sluice POSTs the job document to when the job ends.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Problem;

/// Where the delivery of a job's webhook is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookState {
    /// Due once the job ends, or waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: a 4xx answer, a refused address, or retries ran out.
    Failed,
}

/// A job's webhook: where it goes and what became of its attempts. Stored in the job record, so delivery
/// resumes after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The callback URL (checked when the upload was accepted; its addresses are checked again at delivery).
    pub url: String,
    /// Delivery state.
    pub state: WebhookState,
    /// The `Sluice-Delivery` id, the same on every attempt so that receivers can drop duplicates.
    pub delivery_id: Uuid,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// The HTTP status of the last answer, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Problem>,
    /// When the next attempt is due (set while a retry waits).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl Webhook {
    /// A pending webhook to `url` with a fresh delivery id.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            state: WebhookState::Pending,
            delivery_id: Uuid::now_v7(),
            attempts: 0,
            last_status: None,
            last_error: None,
            next_attempt_at: None,
        }
    }

    /// Whether a delivery is still due.
    pub fn is_pending(&self) -> bool {
        self.state == WebhookState::Pending
    }
}
