use std::any::Any;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client: a status, a stable snake_case code and a sentence for a person, as
/// `{"error":{"code":...,"message":...}}`. Internal details are logged, never sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable snake_case code, e.g. `payload_too_large`.
    code: String,
    /// What is wrong, for a person.
    message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, challenge: None }
    }

    /// 401 with `WWW-Authenticate: Bearer`: no valid token; `challenge` is the header's value.
    pub fn unauthorized(challenge: &'static str, message: impl Into<String>) -> Self {
        Self { challenge: Some(challenge), ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message) }
    }

    /// Any status with `Retry-After`: try again in `retry_after_secs` seconds (429, 409, 503).
    pub fn retry_later(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self { retry_after: Some(retry_after_secs), ..Self::new(status, code, message) }
    }

    /// 400: the request is malformed or names something invalid.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: nothing at this address.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 503 with `Retry-After`: try again later.
    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::retry_later(StatusCode::SERVICE_UNAVAILABLE, code, message, retry_after_secs)
    }

    /// 500: something failed inside; the cause is logged here and not shown to the client.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, source = ?cause.source(), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it was logged",
        )
    }

    /// 503 for storage that cannot be reached; the cause is logged.
    pub fn storage(cause: &sluice_storage::StoreError) -> Self {
        if cause.is_transient() {
            tracing::error!(error = %cause, source = ?std::error::Error::source(cause), "storage unavailable");
            Self::unavailable("storage_unavailable", "object storage cannot be reached right now; try again shortly", 5)
        } else {
            Self::internal(cause)
        }
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// The answer to a request whose handler panicked: a plain 500, the panic logged.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "something went wrong on our side; it was logged",
    )
    .into_response()
}
