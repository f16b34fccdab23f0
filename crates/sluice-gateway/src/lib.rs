//! The HTTP gateway of sluice.
//!
//! This crate owns the v1 HTTP contract: `POST /v1/uploads` streams multipart files into object storage,
//! stores the job record and answers `202 Accepted`; `GET /v1/jobs[/{id}[/events]]` serves job documents and
//! their live server-sent events; `GET /v1/files/{key}` streams stored files; `GET /v1/variants` lists the
//! configured variants; plus health, readiness, Prometheus metrics, the OpenAPI document with its interactive
//! docs, and a web page for people at `/` (embedded assets, no build step). [`ApiError`] is the only type that
//! knows HTTP statuses. It holds no conversion or mail logic: it talks to the running
//! [`sluice_pipeline::Pipeline`]. Entry points: [`GatewaySettings`], [`router`] and [`serve`].

mod access;
mod callback;
mod document;
mod error;
mod idempotency;
mod openapi;
mod origin;
mod rate_limit;
mod routes;
mod serve;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use sluice_pipeline::Pipeline;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use document::{
    FileDocument, JobDocument, JobLinks, JobList, NotificationDocument, OutputDocument, WebhookDocument,
};
pub use error::ApiError;
pub use openapi::ApiDoc;
pub use serve::serve;
pub use settings::{GatewaySettings, RateLimitSettings, Secret};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) pipeline: Pipeline,
    pub(crate) settings: Arc<GatewaySettings>,
    /// Upload bodies being received at once.
    pub(crate) uploads: Arc<Semaphore>,
    /// Cancelled at shutdown, so long-lived event streams end and the server can drain.
    pub(crate) closing: CancellationToken,
    /// The API tokens (empty: the API is open).
    pub(crate) tokens: access::Tokens,
    /// The per-client limit on uploads, when configured.
    pub(crate) upload_limiter: Option<Arc<rate_limit::RateLimiter>>,
    /// The origins whose web pages may use the API (`server.cors_origins`).
    pub(crate) origins: Arc<origin::AllowedOrigins>,
}

impl AppState {
    /// The state for a gateway in front of `pipeline`.
    pub fn new(pipeline: Pipeline, settings: GatewaySettings, closing: CancellationToken) -> Self {
        let uploads = Arc::new(Semaphore::new(settings.max_concurrent_uploads));
        let tokens = access::Tokens::new(&settings.api_tokens);
        let upload_limiter = rate_limit::RateLimiter::from_settings(&settings.rate_limit).map(Arc::new);
        let origins = Arc::new(origin::AllowedOrigins::new(&settings.cors_origins));
        Self { pipeline, settings: Arc::new(settings), uploads, closing, tokens, upload_limiter, origins }
    }
}

impl AppState {
    /// Waits (at most `limit`) until no upload body is being received; answers whether none is. Uploads that
    /// start meanwhile are refused (503), so call it once the pipeline stopped taking uploads, at shutdown.
    pub async fn uploads_received(&self, limit: Duration) -> bool {
        let all = u32::try_from(self.settings.max_concurrent_uploads).unwrap_or(u32::MAX);
        tokio::time::timeout(limit, self.uploads.acquire_many(all)).await.is_ok_and(|acquired| acquired.is_ok())
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The complete application: routes, the cross-origin check and CORS, request ids, tracing, panic safety.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.request_timeout_secs);
    routes::routes(state.clone(), timeout)
        .layer(axum::middleware::from_fn_with_state(state, origin::guard))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request.headers().get(&REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
