//! The route families, one file each, and the router that joins them.

mod files;
mod health;
mod jobs;
mod uploads;
mod variants;
mod web;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use utoipa_swagger_ui::SwaggerUi;

use crate::{ApiDoc, ApiError, AppState};

pub(crate) use files::__path_get_file;
pub(crate) use health::{__path_healthz, __path_metrics, __path_readyz};
pub(crate) use jobs::{__path_get_job, __path_job_events, __path_list_jobs, JobEventMessage};
pub(crate) use uploads::{__path_create_upload, MAX_FILES, MAX_TEXT_FIELD, UploadForm};
pub(crate) use variants::{__path_list_variants, VariantList};

/// A route's one path parameter, as text. A parameter that does not decode (invalid UTF-8 after
/// percent-decoding) names nothing that exists: a JSON `404` instead of axum's plain-text rejection.
pub(crate) struct PathText(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::not_found(
                "not_found",
                format!("no such resource: the URL path does not decode ({})", rejection.body_text()),
            )),
        }
    }
}

/// Room for multipart framing and text fields on top of `server.max_upload_bytes`.
const MULTIPART_OVERHEAD: u64 = 1024 * 1024;

pub(crate) fn routes(state: AppState, timeout: Duration) -> Router {
    let body_limit =
        usize::try_from(state.settings.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD)).unwrap_or(usize::MAX);
    // Uploads and event streams last as long as they need; their own idle and job limits apply.
    let upload = post(uploads::create_upload)
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(from_fn_with_state(state.clone(), crate::rate_limit::limit_uploads));
    let long_lived = Router::new().route("/v1/uploads", upload).route("/v1/jobs/{id}/events", get(jobs::job_events));
    let short = Router::new()
        .route("/v1/jobs", get(jobs::list_jobs))
        .route("/v1/jobs/{id}", get(jobs::get_job))
        .route("/v1/files/{*key}", get(files::get_file))
        .route("/metrics", get(health::metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout));
    // With server.api_tokens set, these need a token (or, for reads, a signed link); see crate::access.
    let protected =
        long_lived.merge(short).route_layer(from_fn_with_state(state.clone(), crate::access::require_access));
    let webhooks_enabled = state.pipeline.webhooks().settings().secret.is_some();
    let document = ApiDoc::for_server(state.pipeline.convert_settings().variants.keys(), webhooks_enabled);
    let open = Router::new()
        .route("/v1/variants", get(variants::list_variants))
        .route("/", get(web::index))
        .route("/assets/{name}", get(web::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout));
    // Past the limit, requests are shed with a 503 rather than queued without bound.
    let limit = ServiceBuilder::new()
        .layer(HandleErrorLayer::<_, ()>::new(overloaded))
        .load_shed()
        .concurrency_limit(state.settings.max_concurrent_requests);
    protected
        .merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(limit)
        .with_state(state)
}

async fn overloaded(error: tower::BoxError) -> ApiError {
    if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::unavailable("overloaded", "the server is handling too many requests; try again shortly", 1)
    } else {
        ApiError::internal(&*error)
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route; see /docs for the API")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /docs",
    )
}
