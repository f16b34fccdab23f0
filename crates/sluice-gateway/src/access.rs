//! Who may call the API: bearer tokens (compared in constant time), signed links that stand in for a token
//! on reads, and the recipient allow-list that keeps an open gateway from being a spam relay.
//!
//! With `server.api_tokens` empty (the default) everything is open and nothing here refuses a request.
//! Otherwise the protected routes (uploads, jobs, job events, files, metrics) need `Authorization: Bearer
//! TOKEN`, or, for `GET`/`HEAD`, a valid `?expires=..&sig=..` from a link sluice handed out. Health,
//! readiness, the OpenAPI document and the docs stay open.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sluice_core::EmailAddress;
use sluice_pipeline::{LinkError, LinkSigner, signature_params};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::settings::Secret;
use crate::{ApiError, AppState};

/// The accepted API tokens, kept as SHA-256 digests so every comparison has the same length and takes the
/// same time whatever the presented token is.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl Tokens {
    pub(crate) fn new(tokens: &[Secret]) -> Self {
        Self { digests: tokens.iter().map(|token| digest(token.expose())).collect() }
    }

    fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens. Every token is compared (no early exit), each in constant
    /// time, so timing tells nothing about which bytes matched.
    fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, expected| found | expected[..].ct_eq(&presented[..]))
            .into()
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Middleware of the protected routes: lets a request through with a valid token, or a valid signed link
/// on a read; answers 401 (no or wrong token) or 403 (tampered or expired link) otherwise.
pub(crate) async fn require_access(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match check(&app, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check(app: &AppState, request: &Request) -> Result<(), ApiError> {
    if app.tokens.is_empty() {
        return Ok(());
    }
    let presented = bearer(request.headers());
    if presented.is_some_and(|token| app.tokens.accepts(token)) {
        return Ok(());
    }
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    let signed = request.uri().query().and_then(signature_params);
    if let (true, Some((expires, signature)), Some(signer)) = (is_read, signed, app.pipeline.links().signer()) {
        return verify_link(signer, request.uri().path(), expires, signature);
    }
    Err(match presented {
        Some(_) => ApiError::unauthorized(
            "Bearer error=\"invalid_token\"",
            "the bearer token is not valid; send one of server.api_tokens",
        ),
        None => ApiError::unauthorized(
            "Bearer",
            "this API needs a token: send the header Authorization: Bearer TOKEN (or use a signed link)",
        ),
    })
}

fn verify_link(signer: &LinkSigner, path: &str, expires: Option<u64>, signature: &str) -> Result<(), ApiError> {
    let now = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let result = match expires {
        Some(expires) => signer.verify(path, expires, signature, now),
        None => Err(LinkError::BadSignature),
    };
    result.map_err(|error| match error {
        LinkError::Expired => ApiError::new(
            StatusCode::FORBIDDEN,
            "link_expired",
            "this link has expired; fetch the job document again for fresh links",
        ),
        LinkError::BadSignature => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this link's signature is not valid for this address")
        }
    })
}

/// The token of `Authorization: Bearer TOKEN` (scheme case-insensitive, RFC 6750), if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// Refuses a `notify` address outside `mail.allowed_domains` (when that list is set), with 400.
pub(crate) fn check_recipient(app: &AppState, to: &EmailAddress) -> Result<(), ApiError> {
    if app.pipeline.mailer().accepts_recipient(to) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "recipient_not_allowed",
            format!("notices are not sent to {}: its domain is not in mail.allowed_domains", to.domain()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn tokens_are_matched_exactly() {
        let tokens = Tokens::new(&[Secret::new("first-token-0123456789"), Secret::new("second-token-0123456789")]);
        assert!(tokens.accepts("first-token-0123456789"));
        assert!(tokens.accepts("second-token-0123456789"));
        assert!(!tokens.accepts("first-token-012345678"));
        assert!(!tokens.accepts(""));
        assert!(Tokens::new(&[]).is_empty());
    }

    #[test]
    fn bearer_tokens_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
