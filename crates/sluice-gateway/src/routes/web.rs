//! The web page for people at `/`: plain HTML, CSS and JavaScript embedded in the binary (no CDN, works
//! offline), served with a strict Content-Security-Policy and ETags. Not part of the v1 API, so not in the
//! OpenAPI document; the page itself only talks to the documented API.

use std::sync::LazyLock;

use super::PathText;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::ApiError;

/// The page's policy: its own script, style, images and API only; no inline code, no frames, no plugins.
const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
                           form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its bytes, media type and a strong ETag from its content.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(body);
        let etag = HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Self { body, content_type, etag }
    }

    /// The asset, or `304 Not Modified` when the client's `If-None-Match` already names it.
    fn respond(&self, request: &HeaderMap) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(header::ETAG, self.etag.clone());
        // Revalidate every time: the ETag makes that a cheap 304, and a new binary's page is never stale.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
        headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
        let etag = self.etag.as_bytes();
        let fresh = request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
            value.as_bytes().split(|byte| *byte == b',').any(|candidate| {
                let candidate = candidate.trim_ascii();
                candidate == etag || candidate == b"*" || candidate.strip_prefix(b"W/") == Some(etag)
            })
        });
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.body).into_response()
    }
}

static INDEX: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_bytes!("../../assets/index.html"), "text/html; charset=utf-8"));
static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_bytes!("../../assets/app.js"), "text/javascript; charset=utf-8"));
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_bytes!("../../assets/app.css"), "text/css; charset=utf-8"));
static ICON: LazyLock<Asset> = LazyLock::new(|| Asset::new(include_bytes!("../../assets/icon.svg"), "image/svg+xml"));

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    INDEX.respond(&headers)
}

/// `GET /assets/{name}`: the page's script, style sheet and icon.
pub(crate) async fn asset(PathText(name): PathText, headers: HeaderMap) -> Result<Response, ApiError> {
    let asset = match name.as_str() {
        "app.js" => &*SCRIPT,
        "app.css" => &*STYLE,
        "icon.svg" => &*ICON,
        _ => return Err(ApiError::not_found("not_found", "no such asset")),
    };
    Ok(asset.respond(&headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(if_none_match: &str) -> StatusCode {
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_str(if_none_match).unwrap());
        SCRIPT.respond(&request).status()
    }

    #[test]
    fn if_none_match_is_compared_with_the_content_etag() {
        let etag = SCRIPT.etag.to_str().unwrap().to_owned();
        assert_eq!(SCRIPT.respond(&HeaderMap::new()).status(), StatusCode::OK);
        assert_eq!(status_with(&etag), StatusCode::NOT_MODIFIED);
        assert_eq!(status_with(&format!("\"other\", {etag}")), StatusCode::NOT_MODIFIED);
        assert_eq!(status_with(&format!("W/{etag}")), StatusCode::NOT_MODIFIED);
        assert_eq!(status_with("*"), StatusCode::NOT_MODIFIED);
        assert_eq!(status_with("\"other\""), StatusCode::OK);
        assert_ne!(SCRIPT.etag, STYLE.etag, "each asset has its own validator");
    }
}
