//! A per-client token bucket on `POST /v1/uploads` (`server.rate_limit`): a client may start `burst` uploads
//! at once and `uploads_per_minute` on average; past that it gets 429 with `Retry-After`. The client is the
//! peer address of the connection, or the last `X-Forwarded-For` entry when `server.trust_forwarded_for` says
//! a proxy in front sets it. Memory is bounded: at most [`MAX_CLIENTS`] buckets are kept.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::settings::RateLimitSettings;
use crate::{ApiError, AppState};

/// Clients remembered at once; past it, buckets that have refilled are dropped first, then the stalest one.
pub(crate) const MAX_CLIENTS: usize = 10_000;

/// The buckets of every recent client.
pub(crate) struct RateLimiter {
    /// Tokens added per second.
    rate: f64,
    /// Most tokens a bucket holds.
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// The limiter the settings describe; `None` when the limit is off.
    pub(crate) fn from_settings(settings: &RateLimitSettings) -> Option<Self> {
        (settings.uploads_per_minute > 0 && settings.burst > 0).then(|| Self {
            rate: f64::from(settings.uploads_per_minute) / 60.0,
            burst: f64::from(settings.burst),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token from `client`'s bucket, or says how long until one is there.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(&client) && buckets.len() >= MAX_CLIENTS {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: self.burst, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Frees room: drops every bucket that has refilled (it is as good as new), or else the stalest one.
    fn evict(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let full_after = self.burst / self.rate;
        buckets.retain(|_, bucket| now.saturating_duration_since(bucket.updated).as_secs_f64() < full_after);
        if buckets.len() >= MAX_CLIENTS {
            let stalest = buckets.iter().min_by_key(|(_, bucket)| bucket.updated).map(|(client, _)| *client);
            if let Some(client) = stalest {
                buckets.remove(&client);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().map(|buckets| buckets.len()).unwrap_or(0)
    }
}

/// Middleware of `POST /v1/uploads`: 429 with `Retry-After` for a client past its limit.
pub(crate) async fn limit_uploads(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(limiter) = app.upload_limiter.as_deref() else {
        return next.run(request).await;
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
    let forwarded = if app.settings.trust_forwarded_for { forwarded_for(request.headers()) } else { None };
    let Some(client) = forwarded.or(peer) else {
        return next.run(request).await;
    };
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many uploads from this client; try again in {seconds} s"),
                seconds.max(1),
            )
            .into_response()
        }
    }
}

/// The last address of `X-Forwarded-For`: the one the proxy in front of sluice saw (earlier entries come
/// from the client and can be forged).
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    // Only the last header line counts: an unreadable one must not let an earlier, client-written line win.
    let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    last.rsplit(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::HeaderValue;

    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::from_settings(&RateLimitSettings { uploads_per_minute: per_minute, burst }).unwrap()
    }

    #[test]
    fn buckets_refill_at_the_rate() {
        let limiter = limiter(60, 2);
        let client = IpAddr::from([10, 0, 0, 1]);
        let start = Instant::now();
        assert_eq!(limiter.take(client, start), Ok(()));
        assert_eq!(limiter.take(client, start), Ok(()));
        assert_eq!(limiter.take(client, start), Err(Duration::from_secs(1)));
        assert_eq!(limiter.take(IpAddr::from([10, 0, 0, 2]), start), Ok(()), "clients have their own buckets");
        assert_eq!(limiter.take(client, start + Duration::from_secs(1)), Ok(()));
        assert!(RateLimiter::from_settings(&RateLimitSettings { uploads_per_minute: 0, burst: 5 }).is_none());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = limiter(1, 1);
        let start = Instant::now();
        for n in 0..(MAX_CLIENTS as u32 + 50) {
            let _ = limiter.take(IpAddr::from(n.to_be_bytes()), start + Duration::from_millis(u64::from(n)));
        }
        assert!(limiter.len() <= MAX_CLIENTS);
    }

    #[test]
    fn forwarded_for_takes_the_last_hop() {
        let mut headers = HeaderMap::new();
        assert_eq!(forwarded_for(&headers), None);
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, 10.0.0.9"));
        assert_eq!(forwarded_for(&headers), Some(IpAddr::from([10, 0, 0, 9])));
        headers.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(forwarded_for(&headers), None);
    }
}
