//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;

/// The answer of the health routes.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok`; `draining` once a shutdown began (uploads are refused); else `unavailable` when a dependency fails.
    status: &'static str,
    /// Object storage: `ok` or what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<String>,
    /// Mail transport: `ok` or what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    mail: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", storage: None, mail: None })
}

/// Readiness: storage and the mail transport answer, and the service is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready to take uploads", body = Health),
    (status = 503, description = "A dependency is down or the service is stopping", body = Health),
))]
pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    let pipeline = &app.pipeline;
    let (storage, mail) = tokio::join!(pipeline.blobs().check(), pipeline.mailer().check());
    let describe = |result: Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error,
    };
    let storage_ok = storage.is_ok();
    let mail_ok = mail.is_ok();
    if let Err(error) = &storage {
        tracing::warn!(error = %error, "readiness: storage");
    }
    if let Err(error) = &mail {
        tracing::warn!(error = %error, "readiness: mail");
    }
    let accepting = pipeline.is_accepting();
    let ready = storage_ok && mail_ok && accepting;
    let body = Health {
        status: match (accepting, ready) {
            (false, _) => "draining",
            (true, true) => "ok",
            (true, false) => "unavailable",
        },
        storage: Some(describe(storage.map_err(|_| "unreachable".to_owned()))),
        mail: Some(describe(mail.map_err(|_| "unreachable".to_owned()))),
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearer" = [])), responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.pipeline.render_metrics())
        .into_response()
}
