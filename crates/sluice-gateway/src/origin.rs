//! Requests from web pages: cross-site request forgery refused, CORS for the origins `server.cors_origins`
//! names.
//!
//! A browser lets any page post a multipart form to any address without asking first (a CORS "simple
//! request"), so without a check every page a user opens could upload files, and send notices, through a
//! gateway on their machine or network. Browsers name the page's origin in `Origin` on such requests: a
//! request that changes something (any method but GET, HEAD and OPTIONS) from an origin that is neither the
//! gateway's own (`server.public_url`, or a loopback address it was reached at) nor listed is refused with
//! `403 cross_origin_refused`. Clients that are not browsers send no `Origin` and are not concerned. Listed
//! origins also get the CORS headers that let their pages read the answers, and their preflight requests are
//! answered.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Request headers a listed origin's pages may send.
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key, prefer, last-event-id, if-match, \
                               if-none-match, if-range, range, x-request-id";
/// Response headers a listed origin's pages may read besides the always-readable ones.
const EXPOSED_HEADERS: &str = "location, retry-after, etag, content-disposition, content-range, accept-ranges, \
                               idempotent-replayed, preference-applied, www-authenticate, x-request-id";
/// Methods of the API.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, OPTIONS";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The origins allowed to use the API from web pages of their own: `server.cors_origins`, normalised.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowedOrigins {
    /// `*` was listed: every origin.
    any: bool,
    /// Lower-cased `scheme://host[:port]`.
    listed: Vec<String>,
}

impl AllowedOrigins {
    /// The origins of `server.cors_origins`; [`normalise_origin`] has checked them at start.
    pub(crate) fn new(configured: &[String]) -> Self {
        let any = configured.iter().any(|origin| origin.trim() == "*");
        let listed = configured.iter().filter_map(|origin| normalise_origin(origin)).collect();
        Self { any, listed }
    }

    fn allows(&self, origin: &str) -> bool {
        self.any || self.listed.iter().any(|listed| listed.eq_ignore_ascii_case(origin))
    }
}

/// `origin` as `scheme://host[:port]` in lower case, or `None` when it is not an http(s) origin (no path,
/// query or credentials).
pub(crate) fn normalise_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))?;
    let valid = !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ', '*']);
    valid.then_some(origin)
}

/// The check and the CORS headers, around every route.
pub(crate) async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).map(|value| value.to_str().unwrap_or("").to_owned())
    else {
        return next.run(request).await;
    };
    let listed = app.origins.allows(&origin);
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return if listed {
            let mut response = StatusCode::NO_CONTENT.into_response();
            add_cors_headers(response.headers_mut(), &app, &origin);
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
            response
        } else {
            refusal(&origin).into_response()
        };
    }
    let changes_something = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_something && !listed && !is_same_origin(&app, request.headers(), request.uri(), &origin) {
        return refusal(&origin).into_response();
    }
    let mut response = next.run(request).await;
    if listed {
        add_cors_headers(response.headers_mut(), &app, &origin);
    }
    response
}

/// Whether `origin` is the gateway itself: `server.public_url`, or a page this gateway served on a loopback
/// address (`http://localhost:8080`, `http://127.0.0.1:8080`) when that is the host the request was sent to.
/// Other hosts do not count even when the request names them: a page can rebind its own name to this machine's
/// address (DNS rebinding) and so send the gateway its own host and origin.
fn is_same_origin(app: &AppState, headers: &HeaderMap, uri: &axum::http::Uri, origin: &str) -> bool {
    let Some(origin) = normalise_origin(origin) else {
        return false; // `null` (a sandboxed page, a file) or garbage
    };
    if normalise_origin(&app.settings.public_url).is_some_and(|public| public == origin) {
        return true;
    }
    let Some(origin_host) = origin.strip_prefix("http://") else { return false };
    // HTTP/1.1 names the host in `Host`, HTTP/2 in the `:authority` that becomes the URI's authority.
    let requested =
        headers.get(header::HOST).and_then(|host| host.to_str().ok()).or(uri.authority().map(|a| a.as_str()));
    requested.is_some_and(|host| host.eq_ignore_ascii_case(origin_host)) && is_loopback(origin_host)
}

/// Whether `host` (with or without a port) names this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn add_cors_headers(headers: &mut HeaderMap, app: &AppState, origin: &str) {
    let allow = if app.origins.any { Some(HeaderValue::from_static("*")) } else { HeaderValue::from_str(origin).ok() };
    if let Some(allow) = allow {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

fn refusal(origin: &str) -> ApiError {
    let shown: String = origin.chars().take(200).collect();
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_origin_refused",
        format!(
            "requests from web pages on {shown:?} are refused; list that origin in server.cors_origins to let \
             its pages use the API"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(normalise_origin("https://App.Example.com/").as_deref(), Some("https://app.example.com"));
        assert_eq!(normalise_origin("http://127.0.0.1:3000").as_deref(), Some("http://127.0.0.1:3000"));
        for bad in ["null", "", "example.com", "ftp://example.com", "https://example.com/app", "https://*.example.com"]
        {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
        let allowed = AllowedOrigins::new(&["https://app.example.com".to_owned()]);
        assert!(allowed.allows("https://APP.example.com"));
        assert!(!allowed.allows("https://evil.example"));
        assert!(AllowedOrigins::new(&["*".to_owned()]).allows("null"));
    }

    #[test]
    fn loopback_hosts_are_told_apart_from_other_names() {
        for local in ["localhost:8080", "127.0.0.1:8080", "127.0.0.2", "[::1]:8080", "LOCALHOST"] {
            assert!(is_loopback(local), "{local}");
        }
        for other in ["evil.example:8080", "192.168.1.5:8080", "localhost.evil.example", "[2001:db8::1]:80"] {
            assert!(!is_loopback(other), "{other}");
        }
    }
}
