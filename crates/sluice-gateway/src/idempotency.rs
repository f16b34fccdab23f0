//! `Idempotency-Key` on `POST /v1/uploads`: a retried upload (same key, same content) gets the job of the
//! first one instead of a second job; the same key with other content gets 422.
//!
//! The key is claimed in storage by a create-if-absent write of `idempotency/{sha256(key)}.json`, naming the
//! job, right before the job record is written. Storage decides the race (`If-None-Match: *` on S3, an
//! exclusive create on a folder), so it holds across restarts and across instances sharing a bucket. A request
//! that loses the race waits (at most [`PENDING_WAIT`]) for the winner's job record, then compares the
//! content: the client file names, the SHA-256 of every file, `notify` and the variants (multipart boundaries
//! differ between two sends of the same form, so raw bytes cannot be compared). Its own stored files are
//! removed. A claim whose job record never appears is taken over after [`STALE_AFTER`]; keys expire after
//! [`KEY_TTL`].

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::{JobId, JobRecord};
use sluice_storage::StoreError;
use time::OffsetDateTime;

use crate::{ApiError, AppState, JobDocument};

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";
/// Longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 255;
/// How long a key keeps naming its job.
pub(crate) const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a request waits for the job record of a concurrent request with the same key.
pub(crate) const PENDING_WAIT: Duration = Duration::from_secs(5);
/// A claim older than this whose job record does not exist belongs to a request that died.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(60);
/// Claim attempts (a claim can vanish or go stale between two looks).
const ATTEMPTS: usize = 3;

/// A valid `Idempotency-Key`, kept as the SHA-256 of the key (the storage name; the key itself is not
/// stored).
pub(crate) struct IdempotencyKey {
    object: String,
}

impl IdempotencyKey {
    /// The key of the request, if it sent one; 400 when it is empty, too long or not visible ASCII.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "send one Idempotency-Key header: this request has several, and only one can name the upload",
            ));
        }
        let key = value.to_str().unwrap_or("").trim();
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters, e.g. a UUID"),
            ));
        }
        Ok(Some(Self { object: format!("idempotency/{}.json", hex::encode(Sha256::digest(key.as_bytes()))) }))
    }
}

/// What a key's object says.
#[derive(Serialize, Deserialize)]
struct Claim {
    job: JobId,
    #[serde(with = "time::serde::rfc3339")]
    claimed_at: OffsetDateTime,
}

/// Stores the job record of a new upload, first claiming `key` when there is one. Answers `None` when the
/// record was stored (a new job), or the earlier job when the same key came with the same content.
pub(crate) async fn persist(
    app: &AppState,
    key: Option<&IdempotencyKey>,
    record: &JobRecord,
) -> Result<Option<JobRecord>, ApiError> {
    let Some(key) = key else {
        app.pipeline.journal().create(record).await.map_err(|error| ApiError::storage(&error))?;
        return Ok(None);
    };
    let blobs = app.pipeline.blobs();
    for _ in 0..ATTEMPTS {
        let claim = Claim { job: record.id, claimed_at: OffsetDateTime::now_utc() };
        let body = serde_json::to_vec(&claim).map_err(|error| ApiError::internal(&error))?;
        match blobs.create(&key.object, Bytes::from(body)).await {
            Ok(()) => {
                if let Err(error) = app.pipeline.journal().create(record).await {
                    release(app, key).await;
                    return Err(ApiError::storage(&error));
                }
                return Ok(None);
            }
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(error) => return Err(ApiError::storage(&error)),
        }
        let Some(existing) = read_claim(app, key).await? else { continue };
        let age = OffsetDateTime::now_utc() - existing.claimed_at;
        if age > KEY_TTL {
            release(app, key).await;
            continue;
        }
        match wait_for_record(app, key, existing.job).await? {
            Some(earlier) if fingerprint(&earlier) == fingerprint(record) => return Ok(Some(earlier)),
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for an upload with other content; use a new key",
                ));
            }
            None if age > STALE_AFTER => release(app, key).await,
            None => {}
        }
    }
    Err(ApiError::retry_later(
        StatusCode::CONFLICT,
        "idempotency_key_in_progress",
        "an upload with this Idempotency-Key is still being stored; try again shortly",
        1,
    ))
}

/// The answer to a replayed upload: 200 with the earlier job's current document, `Location` and
/// `Idempotent-Replayed: true`.
pub(crate) fn replayed(app: &AppState, earlier: &JobRecord) -> Result<Response, ApiError> {
    let links = app.pipeline.links();
    let mut response = (StatusCode::OK, Json(JobDocument::new(earlier, links))).into_response();
    let location = HeaderValue::from_str(&links.job_path(earlier.id)).map_err(|error| ApiError::internal(&error))?;
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

async fn read_claim(app: &AppState, key: &IdempotencyKey) -> Result<Option<Claim>, ApiError> {
    match app.pipeline.blobs().get(&key.object).await {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(claim) => Ok(Some(claim)),
            Err(error) => {
                // Unreadable: drop it, so the key can be claimed again.
                tracing::warn!(error = %error, "dropping an unreadable idempotency claim");
                release(app, key).await;
                Ok(None)
            }
        },
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(ApiError::storage(&error)),
    }
}

/// The record of `job` once it exists, polling for at most [`PENDING_WAIT`]; `None` if it does not appear
/// (or the claim is released meanwhile).
async fn wait_for_record(app: &AppState, key: &IdempotencyKey, job: JobId) -> Result<Option<JobRecord>, ApiError> {
    let deadline = tokio::time::Instant::now() + PENDING_WAIT;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(record) = app.pipeline.journal().load(job).await.map_err(|error| ApiError::storage(&error))? {
            return Ok(Some(record));
        }
        let claimed = match app.pipeline.blobs().head(&key.object).await {
            Ok(_) => true,
            Err(StoreError::NotFound { .. }) => false,
            Err(error) => return Err(ApiError::storage(&error)),
        };
        if !claimed || tokio::time::Instant::now() + pause > deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

async fn release(app: &AppState, key: &IdempotencyKey) {
    if let Err(error) = app.pipeline.blobs().delete(&key.object).await {
        tracing::warn!(error = %error, "could not release an idempotency claim");
    }
}

/// What makes two uploads the same: every file's client name, size and SHA-256 in order, the recipient and
/// the variants.
fn fingerprint(record: &JobRecord) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for variant in &record.variants {
        field(variant.as_str().as_bytes());
    }
    field(record.notification.to.as_ref().map_or("", |to| to.as_str()).as_bytes());
    for file in &record.files {
        field(file.name.as_bytes());
        field(&file.bytes.to_be_bytes());
        field(file.sha256.as_bytes());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_checked() {
        let mut headers = HeaderMap::new();
        assert!(IdempotencyKey::from_headers(&headers).unwrap().is_none());
        headers.insert(HEADER, HeaderValue::from_static("order-42"));
        let key = IdempotencyKey::from_headers(&headers).unwrap().unwrap();
        assert!(key.object.starts_with("idempotency/") && !key.object.contains("order-42"));
        for bad in ["", "   ", "with space"] {
            headers.insert(HEADER, HeaderValue::from_static(bad));
            assert!(IdempotencyKey::from_headers(&headers).is_err(), "{bad:?}");
        }
        headers.insert(HEADER, HeaderValue::from_str(&"k".repeat(256)).unwrap());
        assert!(IdempotencyKey::from_headers(&headers).is_err());
    }
}
