//! The `callback_url` field of an upload: judged by the pipeline's webhook policy, refused with 400.

use sluice_core::{Webhook, error_chain};
use sluice_pipeline::CallbackError;

use crate::{ApiError, AppState};

/// The webhook of a new upload (its `callback_url`, else `webhooks.default_url`, else none), or the 400
/// that says why the callback cannot be used: `invalid_callback_url`, `callback_refused` (a loopback,
/// private, link-local or metadata address) or `webhooks_disabled` (no `webhooks.secret` configured).
pub(crate) fn webhook_for_upload(app: &AppState, callback_url: Option<&str>) -> Result<Option<Webhook>, ApiError> {
    app.pipeline.webhooks().for_upload(callback_url).map_err(|error| {
        let code = error.code();
        let message = match error {
            CallbackError::NotConfigured => {
                "callback_url cannot be used: webhooks are not enabled on this server (webhooks.secret is not set)"
                    .to_owned()
            }
            other => error_chain(&other),
        };
        ApiError::bad_request(code, message)
    })
}
