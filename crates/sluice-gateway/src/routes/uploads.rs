//! `POST /v1/uploads`: stream multipart files into storage, store the job record, answer 202.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use sluice_core::{EmailAddress, FileRecord, FileState, JobId, JobRecord, MediaType, Problem, VariantName, keys};
use sluice_pipeline::{QueueFull, QueueSlot};
use sluice_report::TabularKind;
use sluice_storage::Blobs;
use time::OffsetDateTime;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::idempotency::{self, IdempotencyKey};
use crate::{ApiError, AppState, JobDocument, access};

/// Bytes read before deciding whether a file is an image.
const SNIFF_LEN: usize = 64;
/// Bytes read before deciding whether a file that is not an image is a table to report on.
const TABLE_SNIFF_LEN: usize = 8 * 1024;
/// Files one upload may carry.
pub(crate) const MAX_FILES: usize = 100;
/// Longest text field (`notify`, `variants`, `callback_url`).
pub(crate) const MAX_TEXT_FIELD: usize = 2048;
/// Longest client file name kept, in characters.
const MAX_NAME_CHARS: usize = 255;

/// The multipart form of `POST /v1/uploads`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the form for the OpenAPI document; the handler streams it field by field
pub(crate) struct UploadForm {
    /// One or more files (repeat the field). JPEG, PNG, GIF and WebP images are converted into variants; CSV,
    /// TSV and JSON tables (named `.csv`, `.tsv`, `.json` or sent as `text/csv`, `application/json`) are
    /// rendered into a PDF and an HTML report.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    file: Vec<Vec<u8>>,
    /// One e-mail address to notify when the job ends.
    #[schema(value_type = Option<String>, format = "email", nullable = false)]
    notify: Option<String>,
    /// Comma-separated names of configured variants; all of them when absent.
    #[schema(example = "thumb,medium", nullable = false)]
    variants: Option<String>,
    /// An http(s) URL to POST the signed job document to when the job ends (see the README's Webhooks).
    #[schema(example = "https://hooks.example.com/sluice", nullable = false)]
    callback_url: Option<String>,
}

/// Accepts files for conversion.
#[utoipa::path(
    post,
    path = "/v1/uploads",
    tag = "uploads",
    security((), ("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(
        ("Prefer" = Option<String>, Header, description = "`wait=N`: hold the answer up to N seconds for the job to finish (RFC 7240)"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Up to 255 visible ASCII characters (e.g. a UUID). A retry with the same key and the same content gets the first upload's job (200, `Idempotent-Replayed: true`) for 24 hours"),
    ),
    responses(
        (status = 202, description = "Accepted; the job runs in the background", body = JobDocument,
         headers(("Location" = String, description = "The job document"))),
        (status = 200, description = "With `Prefer: wait=N`: the job finished within N seconds; or a replay of the upload with the same Idempotency-Key", body = JobDocument),
        (status = 400, description = "Malformed form, bad address, recipient outside mail.allowed_domains, unknown variant, no file, bad Idempotency-Key, refused callback_url", body = crate::error::ErrorBody),
        (status = 401, description = "server.api_tokens is set and no valid bearer token was sent", body = crate::error::ErrorBody),
        (status = 403, description = "Sent by a web page of another site, whose origin server.cors_origins does not list (cross_origin_refused)", body = crate::error::ErrorBody),
        (status = 408, description = "The upload stalled", body = crate::error::ErrorBody),
        (status = 413, description = "Larger than server.max_upload_bytes; nothing was stored", body = crate::error::ErrorBody),
        (status = 409, description = "An upload with the same Idempotency-Key is still being stored; see Retry-After", body = crate::error::ErrorBody),
        (status = 415, description = "No file is of a type sluice converts", body = crate::error::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for an upload with other content", body = crate::error::ErrorBody),
        (status = 429, description = "Over server.rate_limit for this client; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "Queue full, storage down or shutting down; see Retry-After", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create_upload(
    State(app): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let result = accept(&app, &headers, multipart).await;
    if result.is_err() {
        app.pipeline.metrics().upload_refused();
    }
    result
}

async fn accept(
    app: &AppState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|rejection| {
        // Name what was sent: for another type, axum's text speaks of a missing boundary.
        let sent = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
        let problem = if sent.trim().to_ascii_lowercase().starts_with("multipart/form-data") {
            rejection.body_text()
        } else if sent.is_empty() {
            "the request has no Content-Type".to_owned()
        } else {
            let shown: String = sent.chars().filter(|c| !c.is_control()).take(100).collect();
            format!("the request's Content-Type is {shown:?}")
        };
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected_multipart",
            format!("send the files as multipart/form-data, e.g. curl -F file=@photo.jpg ({problem})"),
        )
    })?;
    let max = app.settings.max_upload_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > max.saturating_add(super::MULTIPART_OVERHEAD)) {
        return Err(too_large(max));
    }
    let idempotency_key = IdempotencyKey::from_headers(headers)?;
    let shutting_down = || ApiError::unavailable("shutting_down", "the service is restarting; try again shortly", 10);
    // Checked first: while the server drains, the shutdown holds the upload permits it waits for.
    if !app.pipeline.is_accepting() {
        return Err(shutting_down());
    }
    let Ok(_receiving) = app.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::unavailable("too_many_uploads", "too many uploads in progress; try again shortly", 2));
    };
    let slot = app.pipeline.reserve().map_err(|full| match full {
        QueueFull::Full => ApiError::unavailable("queue_full", "the conversion queue is full; try again shortly", 10),
        QueueFull::ShuttingDown => shutting_down(),
    })?;

    let id = JobId::new();
    let mut cleanup = Cleanup::new(app.pipeline.blobs().clone(), id);
    let (record, received) = match store(app, id, &mut multipart, &cleanup.writes).await {
        Ok(form) => form,
        Err(error) => {
            // Remove what was stored before answering, so a client that retries at once finds nothing left.
            cleanup.remove_now().await;
            return Err(error);
        }
    };
    let wait = requested_wait(headers).map(|seconds| seconds.min(app.settings.max_wait_secs));
    let events = wait.map(|_| app.pipeline.subscribe());
    // The whole form is in: the job is made by a task of its own, which ends even if the client goes away now,
    // so an upload either becomes a job or leaves nothing behind.
    let making = cleanup.writes.spawn(make_job(
        app.clone(),
        idempotency_key,
        record.clone(),
        slot,
        received,
        Arc::clone(&cleanup.accepted),
    ));
    match making.await.map_err(|join| ApiError::internal(&join)).and_then(|made| made) {
        Ok(None) => {}
        Ok(Some(earlier)) => {
            // A retry of an upload already accepted: answer with that job, keep nothing of this one.
            cleanup.remove_now().await;
            return idempotency::replayed(app, &earlier);
        }
        Err(error) => {
            cleanup.remove_now().await;
            return Err(error);
        }
    }
    // From here the job exists: it is durable, and whatever happens to this request it will be converted.
    cleanup.armed = false;
    tracing::info!(job_id = %id, files = record.files.len(), bytes = received, "upload accepted");

    let links = app.pipeline.links();
    if let (Some(seconds), Some(mut events)) = (wait, events) {
        let finished = tokio::time::timeout(Duration::from_secs(seconds), async {
            loop {
                match events.recv().await {
                    Ok(event) if event.job.id == id && event.job.state.is_terminal() => return Some(event.job),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await;
        if let Ok(Some(job)) = finished {
            let mut response = (StatusCode::OK, Json(JobDocument::new(&job, links))).into_response();
            let headers = response.headers_mut();
            headers.insert(
                "preference-applied",
                HeaderValue::from_str(&format!("wait={seconds}")).map_err(|e| ApiError::internal(&e))?,
            );
            headers.insert(header::LOCATION, location(&links.job_path(id))?);
            return Ok(response);
        }
    }
    // After a wait that ran out, the job has moved on: answer with it as it stands now.
    let current = if wait.is_some() { app.pipeline.journal().load(id).await.ok().flatten() } else { None };
    let record = current.unwrap_or(record);
    let mut response = (StatusCode::ACCEPTED, Json(JobDocument::new(&record, links))).into_response();
    response.headers_mut().insert(header::LOCATION, location(&links.job_path(id))?);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
    Ok(response)
}

/// Receives the form, streaming each file into storage (the writes' last steps run on `writes`), and answers
/// the job record to store with the bytes received. Whatever it stored is removed by the caller when it fails.
async fn store(
    app: &AppState,
    id: JobId,
    multipart: &mut Multipart,
    writes: &TaskTracker,
) -> Result<(JobRecord, u64), ApiError> {
    let max = app.settings.max_upload_bytes;
    let blobs = app.pipeline.blobs().clone();
    let idle = Duration::from_secs(app.settings.upload_idle_timeout_secs);
    let mut form = Form::default();
    let mut received: u64 = 0;

    while let Some(field) = next_field(multipart, idle).await? {
        match field.name() {
            Some("file") => {
                if form.files.len() >= MAX_FILES {
                    return Err(ApiError::bad_request(
                        "too_many_files",
                        format!("at most {MAX_FILES} files per upload"),
                    ));
                }
                let index = u32::try_from(form.files.len()).unwrap_or(u32::MAX);
                let file = receive_file(&blobs, writes, id, index, field, idle, max, &mut received).await?;
                form.files.push(file);
            }
            Some("notify") => form.notify = Some(read_text(field, "notify", idle, &mut form.seen).await?),
            Some("variants") => form.variants = Some(read_text(field, "variants", idle, &mut form.seen).await?),
            Some("callback_url") => {
                form.callback_url = Some(read_text(field, "callback_url", idle, &mut form.seen).await?)
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    "unknown_field",
                    format!(
                        "unknown form field {:?}; the fields are file, notify, variants and callback_url",
                        display_name(other)
                    ),
                ));
            }
            None => return Err(ApiError::bad_request("malformed_multipart", "a form part has no name")),
        }
    }

    if form.files.is_empty() {
        return Err(ApiError::bad_request("missing_file", "the form has no file; send one with -F file=@photo.jpg"));
    }
    let notify = match form.notify.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<EmailAddress>().map_err(|error| {
            ApiError::bad_request("invalid_notify", format!("notify must be one e-mail address: {error}"))
        })?),
    };
    if let Some(to) = &notify {
        access::check_recipient(app, to)?;
    }
    let variants = resolve_variants(app, form.variants.as_deref())?;
    let webhook = crate::callback::webhook_for_upload(app, form.callback_url.as_deref())?;
    if form.files.iter().all(|file| file.state == FileState::Rejected) {
        return Err(nothing_convertible(&form.files));
    }

    let mut record = JobRecord::new(id, variants, form.files, notify, OffsetDateTime::now_utc());
    record.webhook = webhook;
    Ok((record, received))
}

/// Stores the record of a received upload and queues it; or, for a retry under the same `Idempotency-Key`,
/// answers the earlier job. `accepted` is set once the job exists.
async fn make_job(
    app: AppState,
    idempotency_key: Option<IdempotencyKey>,
    record: JobRecord,
    slot: QueueSlot,
    received: u64,
    accepted: Arc<AtomicBool>,
) -> Result<Option<JobRecord>, ApiError> {
    // The originals were written unflushed (`Blobs::deferred_writer`): they reach the disk, in one flush shared
    // with every upload finishing meanwhile, before the record that names them exists.
    app.pipeline.blobs().commit().await.map_err(|error| ApiError::storage(&error))?;
    // In a bucket shared with other instances, the job is this instance's before its record exists.
    app.pipeline.mark_as_mine(record.id).await.map_err(|error| ApiError::storage(&error))?;
    if let Some(earlier) = idempotency::persist(&app, idempotency_key.as_ref(), &record).await? {
        return Ok(Some(earlier));
    }
    accepted.store(true, Ordering::Release);
    slot.submit(record.id);
    app.pipeline.announce(&record);
    app.pipeline.metrics().upload_accepted(received);
    Ok(None)
}

fn location(path: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(path).map_err(|error| ApiError::internal(&error))
}

/// The text fields and files of the form, as received.
#[derive(Default)]
struct Form {
    files: Vec<FileRecord>,
    notify: Option<String>,
    variants: Option<String>,
    callback_url: Option<String>,
    seen: BTreeSet<&'static str>,
}

/// Deletes what an upload stored unless the upload was accepted; runs even when the client goes away and
/// the request is dropped mid-body. The writes it must outwait (a file's last step, making the job) run on
/// `writes`, so a request dropped meanwhile cannot have a file land after the files were removed.
struct Cleanup {
    blobs: Blobs,
    job: JobId,
    armed: bool,
    writes: TaskTracker,
    /// Set once the job record exists: the files are then the job's.
    accepted: Arc<AtomicBool>,
}

impl Cleanup {
    fn new(blobs: Blobs, job: JobId) -> Self {
        Self { blobs, job, armed: true, writes: TaskTracker::new(), accepted: Arc::new(AtomicBool::new(false)) }
    }

    /// Removes the upload's files now and disarms the guard.
    async fn remove_now(&mut self) {
        self.armed = false;
        remove_after_writes(self.blobs.clone(), self.job, self.writes.clone(), Arc::clone(&self.accepted)).await;
    }
}

/// Waits for the upload's writes to end, then removes its files unless it became a job.
async fn remove_after_writes(blobs: Blobs, job: JobId, writes: TaskTracker, accepted: Arc<AtomicBool>) {
    writes.close();
    writes.wait().await;
    if !accepted.load(Ordering::Acquire) {
        remove_job_files(&blobs, job).await;
    }
}

async fn remove_job_files(blobs: &Blobs, job: JobId) {
    for prefix in keys::job_prefixes(job) {
        if let Err(error) = blobs.delete_prefix(&prefix).await {
            tracing::warn!(job_id = %job, error = %error, "could not remove a refused upload's files");
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let cleanup =
            remove_after_writes(self.blobs.clone(), self.job, self.writes.clone(), Arc::clone(&self.accepted));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(cleanup);
        }
    }
}

async fn next_field<'a>(multipart: &'a mut Multipart, idle: Duration) -> Result<Option<Field<'a>>, ApiError> {
    match tokio::time::timeout(idle, multipart.next_field()).await {
        Err(_) => Err(stalled(idle)),
        Ok(result) => result.map_err(multipart_error),
    }
}

async fn next_chunk(field: &mut Field<'_>, idle: Duration) -> Result<Option<Bytes>, ApiError> {
    match tokio::time::timeout(idle, field.chunk()).await {
        Err(_) => Err(stalled(idle)),
        Ok(result) => result.map_err(multipart_error),
    }
}

fn stalled(idle: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "upload_timeout",
        format!("the upload stalled for more than {} s; nothing was stored", idle.as_secs()),
    )
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the upload is too large; nothing was stored")
    } else {
        ApiError::bad_request("malformed_multipart", format!("the multipart body is malformed: {}", error.body_text()))
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the upload is larger than the limit of {max} bytes; nothing was stored"),
    )
}

async fn read_text(
    mut field: Field<'_>,
    name: &'static str,
    idle: Duration,
    seen: &mut BTreeSet<&'static str>,
) -> Result<String, ApiError> {
    if !seen.insert(name) {
        return Err(ApiError::bad_request("duplicate_field", format!("the field {name} was sent more than once")));
    }
    let mut text = BytesMut::new();
    while let Some(chunk) = next_chunk(&mut field, idle).await? {
        text.extend_from_slice(&chunk);
        if text.len() > MAX_TEXT_FIELD {
            return Err(ApiError::bad_request(
                "field_too_long",
                format!("the field {name} is longer than {MAX_TEXT_FIELD} bytes"),
            ));
        }
    }
    String::from_utf8(text.to_vec())
        .map_err(|_| ApiError::bad_request("invalid_field", format!("the field {name} is not valid UTF-8")))
}

/// Streams one file part into storage (when it is a type sluice converts: an image from its magic bytes, or a
/// table judged from its first 8 KiB, its name and its declared type), hashing and counting it.
#[allow(clippy::too_many_arguments)] // one upload's context, passed down from `store`
async fn receive_file(
    blobs: &Blobs,
    writes: &TaskTracker,
    job: JobId,
    index: u32,
    mut field: Field<'_>,
    idle: Duration,
    max: u64,
    received: &mut u64,
) -> Result<FileRecord, ApiError> {
    let name =
        field.file_name().map(display_name).filter(|name| !name.is_empty()).unwrap_or_else(|| format!("file-{index}"));
    let declared = field.content_type().unwrap_or("").to_ascii_lowercase();

    let mut head = BytesMut::new();
    let mut ended = false;
    while head.len() < SNIFF_LEN && !ended {
        match next_chunk(&mut field, idle).await? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => ended = true,
        }
    }
    let mut media = MediaType::sniff_image(&head);
    if media.is_none() {
        // Not an image: read a little more to judge whether it is a table (CSV, TSV, JSON) to report on.
        while head.len() < TABLE_SNIFF_LEN && !ended {
            match next_chunk(&mut field, idle).await? {
                Some(chunk) => head.extend_from_slice(&chunk),
                None => ended = true,
            }
        }
        media = sluice_report::looks_like_tabular(&head, &name, &declared)
            .map(TabularKind::media)
            // Named as a table but not reading as one (Latin-1 bytes, say): the report names the bad line.
            .or_else(|| (!head.is_empty()).then(|| table_named(&name)).flatten());
    }
    let head = head.freeze();
    let problem = match media {
        Some(_) => None,
        None if head.is_empty() => Some(Problem::new("empty_file", "the file is empty")),
        None if claims_image(&name, &declared) => Some(Problem::new(
            "type_mismatch",
            format!("the file is named or declared as an image, but it is {}", describe_content(&head)),
        )),
        None => Some(Problem::new(
            "unsupported_type",
            format!(
                "the file is {}, which is not converted; sluice converts JPEG, PNG, GIF and WebP images, and CSV, \
                 TSV and JSON tables (named .csv, .tsv or .json, or sent as text/csv or application/json)",
                describe_content(&head)
            ),
        )),
    };
    let media = media.unwrap_or(MediaType::Other);
    let key = keys::original(job, index, media);
    let mut writer = problem.is_none().then(|| blobs.deferred_writer(&key));
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut chunk = Some(head);
    while let Some(bytes) = chunk {
        size += bytes.len() as u64;
        *received += bytes.len() as u64;
        if *received > max {
            return Err(too_large(max));
        }
        hasher.update(&bytes);
        if let Some(writer) = writer.as_mut() {
            writer.write(bytes).await.map_err(|error| ApiError::storage(&error))?;
        }
        chunk = next_chunk(&mut field, idle).await?;
    }
    let stored = writer.is_some();
    if let Some(writer) = writer {
        // On `writes`: a client leaving now cannot cut the write short after the cleanup has looked.
        writes
            .spawn(writer.finish())
            .await
            .map_err(|join| ApiError::internal(&join))?
            .map_err(|error| ApiError::storage(&error))?;
    }
    Ok(FileRecord {
        index,
        name,
        media,
        bytes: size,
        sha256: hex::encode(hasher.finalize()),
        key: if stored { key } else { String::new() },
        state: if problem.is_some() { FileState::Rejected } else { FileState::Pending },
        error: problem,
        outputs: Vec::new(),
    })
}

/// The variants a job asks for: the named ones (checked against the configuration), or all configured.
fn resolve_variants(app: &AppState, requested: Option<&str>) -> Result<Vec<VariantName>, ApiError> {
    let configured = &app.pipeline.convert_settings().variants;
    let names: Vec<&str> = requested.unwrap_or("").split(',').map(str::trim).filter(|name| !name.is_empty()).collect();
    if names.is_empty() {
        return Ok(configured.keys().cloned().collect());
    }
    let mut chosen = BTreeSet::new();
    for name in names {
        let known = name.parse::<VariantName>().ok().filter(|variant| configured.contains_key(variant));
        let Some(variant) = known else {
            let available: Vec<&str> = configured.keys().map(VariantName::as_str).collect();
            return Err(ApiError::bad_request(
                "unknown_variant",
                format!("unknown variant {:?}; configured variants: {}", display_name(name), available.join(", ")),
            ));
        };
        chosen.insert(variant);
    }
    Ok(chosen.into_iter().collect())
}

/// The refusal of an upload none of whose files can be converted: 415, or 400 when they are all empty.
fn nothing_convertible(files: &[FileRecord]) -> ApiError {
    /// Refused files named in the message; past them, only how many more.
    const NAMED: usize = 5;
    let (status, code) = if files.iter().all(|file| file.bytes == 0) {
        (StatusCode::BAD_REQUEST, "empty_file")
    } else {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    };
    let refused: Vec<String> = files
        .iter()
        .filter_map(|file| file.error.as_ref().map(|problem| format!("{}: {}", file.name, problem.message)))
        .collect();
    let mut detail = refused.iter().take(NAMED).cloned().collect::<Vec<_>>().join("; ");
    if refused.len() > NAMED {
        detail.push_str(&format!("; and {} more", refused.len() - NAMED));
    }
    ApiError::new(status, code, format!("no file of this upload can be converted ({detail}); nothing was stored"))
}

/// The table type a file name's extension claims (`.csv`, `.tsv`, `.json`), if any.
fn table_named(name: &str) -> Option<MediaType> {
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "csv" | "tsv" => Some(MediaType::Csv),
        "json" => Some(MediaType::Json),
        _ => None,
    }
}

/// Whether the client called the file an image, by its name's extension or its declared type.
fn claims_image(name: &str, declared: &str) -> bool {
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    declared.starts_with("image/")
        || matches!(extension.as_str(), "jpg" | "jpeg" | "jpe" | "jfif" | "png" | "gif" | "webp" | "apng")
}

/// A short description of content that is not a converted image, for error messages.
fn describe_content(head: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with(b"%PDF") {
        "a PDF document"
    } else if trimmed.starts_with("<svg") || (trimmed.starts_with("<?xml") && text.contains("<svg")) {
        "an SVG image"
    } else if head.len() >= 12
        && &head[4..8] == b"ftyp"
        && matches!(&head[8..12], b"heic" | b"heix" | b"mif1" | b"avif")
    {
        "a HEIF/AVIF image"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "a TIFF image"
    } else if head.starts_with(b"BM") {
        "a BMP image"
    } else if head.starts_with(b"PK\x03\x04") {
        "a ZIP archive (an .xlsx workbook is one: export the sheet as CSV)"
    } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        "an Office document (an .xls workbook is one: export the sheet as CSV)"
    } else if trimmed.starts_with('<') {
        "markup (HTML or XML)"
    } else if std::str::from_utf8(head).is_ok() {
        "text"
    } else {
        "data of an unknown type"
    }
}

/// A client-supplied name made safe to show: the last path segment, no control characters, bounded length. A
/// name cut to length keeps its extension, which says what a table is.
fn display_name(raw: &str) -> String {
    /// Longest extension kept when a name is cut.
    const MAX_EXTENSION_CHARS: usize = 16;
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        return String::new();
    }
    if trimmed.chars().count() <= MAX_NAME_CHARS {
        return trimmed.to_owned();
    }
    let extension = trimmed
        .rsplit_once('.')
        .map(|(_, extension)| extension)
        .filter(|extension| !extension.is_empty() && extension.chars().count() <= MAX_EXTENSION_CHARS);
    match extension {
        Some(extension) => {
            let stem: String = trimmed.chars().take(MAX_NAME_CHARS - 1 - extension.chars().count()).collect();
            format!("{}.{extension}", stem.trim_end())
        }
        None => trimmed.chars().take(MAX_NAME_CHARS).collect::<String>().trim_end().to_owned(),
    }
}

/// Seconds asked for by `Prefer: wait=N` (RFC 7240), if any.
fn requested_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ';']))
        .find_map(|preference| {
            let (name, value) = preference.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("wait") { value.trim().trim_matches('"').parse().ok() } else { None }
        })
        .filter(|seconds| *seconds > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_to_show() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\Users\\ana\\photo.jpg"), "photo.jpg");
        assert_eq!(display_name("a\r\nBcc: x@y.z.jpg"), "aBcc: x@y.z.jpg");
        assert_eq!(display_name("nul\0byte.png"), "nulbyte.png");
        assert_eq!(display_name(".."), "");
        assert_eq!(display_name(&"x".repeat(1000)).chars().count(), MAX_NAME_CHARS);
        let long_table = display_name(&format!("{}.csv", "x".repeat(300)));
        assert_eq!((long_table.chars().count(), long_table.ends_with("x.csv")), (MAX_NAME_CHARS, true));
        assert_eq!(display_name(&format!("{}.{}", "x".repeat(300), "e".repeat(40))).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn prefer_wait_is_parsed() {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", HeaderValue::from_static("respond-async, wait=10"));
        assert_eq!(requested_wait(&headers), Some(10));
        headers.insert("prefer", HeaderValue::from_static("return=minimal"));
        assert_eq!(requested_wait(&headers), None);
        headers.insert("prefer", HeaderValue::from_static("wait=abc"));
        assert_eq!(requested_wait(&headers), None);
    }

    #[test]
    fn content_is_described() {
        assert_eq!(describe_content(b"%PDF-1.7"), "a PDF document");
        assert!(describe_content(b"<?xml version=\"1.0\"?><svg").starts_with("an SVG"));
        assert_eq!(describe_content(b"hello, world"), "text");
        assert_eq!(describe_content(&[0x00, 0xff, 0xfe, 0x80]), "data of an unknown type");
        assert!(describe_content(b"PK\x03\x04\x14\x00").contains("export the sheet as CSV"));
        assert!(describe_content(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1]).contains(".xls workbook"));
        assert_eq!(describe_content(b"II*\0\x08\0\0\0"), "a TIFF image");
        assert!(claims_image("photo.JPG", ""));
        assert!(claims_image("blob", "image/png"));
        assert!(!claims_image("notes.txt", "text/plain"));
    }
}
