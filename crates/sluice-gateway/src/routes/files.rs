//! `GET /v1/files/{key}`: stored originals, outputs and reports, streamed.

use super::PathText;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_core::keys;
use sluice_storage::{ByteRange, StoreError};

use crate::{ApiError, AppState};

/// A stored file.
#[utoipa::path(get, path = "/v1/files/{key}", tag = "files", security((), ("bearer" = [])),
    params(
        ("key" = String, Path, description = "Storage key, as in the job document's output urls"),
        ("expires" = Option<u64>, Query, description = "Signed links: expiry (Unix seconds)"),
        ("sig" = Option<String>, Query, description = "Signed links: HMAC-SHA256 of the path and expiry, hex"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "server.api_tokens is set; no valid token and no signature", body = crate::error::ErrorBody),
        (status = 403, description = "The link's signature is wrong (forbidden) or it has expired (link_expired)", body = crate::error::ErrorBody),
        (status = 404, description = "No such file", body = crate::error::ErrorBody),
        (status = 416, description = "Range not satisfiable", body = crate::error::ErrorBody),
        (status = 412, description = "If-Match names another version of the file", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn get_file(
    State(app): State<AppState>,
    PathText(key): PathText,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !keys::is_servable(&key) {
        return Err(no_file());
    }
    let blobs = app.pipeline.blobs();
    let meta = blobs.head(&key).await.map_err(|error| match error {
        StoreError::NotFound { .. } => no_file(),
        other => ApiError::storage(&other),
    })?;
    let etag = meta.etag.as_ref().map(|tag| if tag.starts_with('"') { tag.clone() } else { format!("\"{tag}\"") });
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    // If-Match: the client holds another version (or none exists to match): nothing is sent (RFC 9110 13.1.1).
    if let Some(wanted) = header_text(header::IF_MATCH)
        && !wanted.split(',').any(|candidate| candidate.trim() == "*" || strong_match(candidate, etag.as_deref()))
    {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "the file is not the version If-Match names",
        ));
    }
    // If-Range: a range of the version the client holds, else the whole file (13.1.5). Only a strong entity
    // tag can match; a date cannot, as no Last-Modified is sent.
    let range = match header_text(header::RANGE).and_then(parse_range) {
        Some(range) if header_text(header::IF_RANGE).is_none_or(|held| strong_match(held, etag.as_deref())) => {
            Some(range)
        }
        _ => None,
    };
    let mut common = HeaderMap::new();
    common.insert(header::CONTENT_TYPE, HeaderValue::from_static(keys::media_of(&key).mime()));
    common.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    common.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"),
    );
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    if let Ok(value) = HeaderValue::from_str(&keys::content_disposition(&key)) {
        common.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(etag) = &etag {
        if let Ok(value) = HeaderValue::from_str(etag) {
            common.insert(header::ETAG, value);
        }
        let matches = header_text(header::IF_NONE_MATCH).is_some_and(|value| {
            value.split(',').any(|candidate| candidate.trim() == "*" || weak_match(candidate, etag))
        });
        if matches {
            return Ok((StatusCode::NOT_MODIFIED, common).into_response());
        }
    }

    let read = match blobs.open(&key, meta.clone(), range).await {
        Ok(read) => read,
        Err(StoreError::NotFound { .. }) => return Err(no_file()),
        Err(StoreError::BadRange { .. }) => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "the requested range lies outside the file",
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
        Err(other) => return Err(ApiError::storage(&other)),
    };
    let length = read.range.end - read.range.start;
    common.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let status = if range.is_some() {
        let content_range =
            format!("bytes {}-{}/{}", read.range.start, read.range.end.saturating_sub(1), read.meta.size);
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            common.insert(header::CONTENT_RANGE, value);
        }
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok((status, common, Body::from_stream(read.body)).into_response())
}

/// Whether `candidate` is the strong entity tag `etag` (a weak `W/` tag never is).
fn strong_match(candidate: &str, etag: Option<&str>) -> bool {
    etag.is_some_and(|etag| candidate.trim() == etag)
}

/// Weak comparison (RFC 9110 8.8.3.2), as If-None-Match asks: `W/"x"` and `"x"` name the same version.
fn weak_match(candidate: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    opaque(candidate) == opaque(etag)
}

fn no_file() -> ApiError {
    ApiError::not_found("file_not_found", "no such file")
}

/// One byte range from a `Range` header; several ranges, other units and invalid ranges (`bytes=5-1`) are
/// ignored (the whole file is sent), as RFC 9110 allows and asks.
fn parse_range(raw: &str) -> Option<ByteRange> {
    let spec = raw.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    match (start.is_empty(), end.is_empty()) {
        (true, false) => end.parse().ok().map(ByteRange::Last),
        (false, true) => start.parse().ok().map(ByteRange::From),
        (false, false) => {
            let (start, end) = (start.parse().ok()?, end.parse().ok()?);
            (start <= end).then_some(ByteRange::FromTo(start, end))
        }
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed() {
        assert_eq!(parse_range("bytes=0-99"), Some(ByteRange::FromTo(0, 99)));
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Last(5)));
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=x-1"), None);
        assert_eq!(parse_range("bytes=5-1"), None);
        assert_eq!(parse_range("bytes=5-5"), Some(ByteRange::FromTo(5, 5)));
    }
}
