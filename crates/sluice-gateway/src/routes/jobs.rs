//! `GET /v1/jobs`, `GET /v1/jobs/{id}` and `GET /v1/jobs/{id}/events`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::PathText;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use sluice_core::{JobEventKind, JobId, JobRecord, JobState};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, JobDocument, JobList};

/// Records read at most to fill one filtered page.
const MAX_SCAN: usize = 1000;

fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| unknown_job(raw))
}

fn unknown_job(raw: &str) -> ApiError {
    let shown: String = raw.chars().filter(|c| !c.is_control()).take(64).collect();
    ApiError::not_found("job_not_found", format!("no job with id {shown:?}"))
}

async fn load(app: &AppState, id: JobId) -> Result<JobRecord, ApiError> {
    match app.pipeline.journal().load(id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(unknown_job(&id.to_string())),
        Err(error) => Err(ApiError::storage(&error)),
    }
}

/// A job's document.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job; `Retry-After` is set while it runs", body = JobDocument),
        (status = 404, description = "No such job", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn get_job(State(app): State<AppState>, PathText(id): PathText) -> Result<Response, ApiError> {
    let record = load(&app, parse_id(&id)?).await?;
    let mut response = Json(JobDocument::new(&record, app.pipeline.links())).into_response();
    if !record.state.is_terminal() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    Ok(response)
}

/// Query of `GET /v1/jobs`. Other parameters (a cache-buster, say) are ignored, as on every other route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Jobs per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only jobs in this state.
    state: Option<JobState>,
}

/// Recent jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery), security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 400, description = "Bad query", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn list_jobs(
    State(app): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        let text = rejection.body_text();
        let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
        ApiError::bad_request(
            "invalid_query",
            format!(
                "the query is not valid ({detail}): limit is a whole number from 1 to 100, cursor the next_cursor \
                 of a page, state one of queued, running, completed and failed, each given once"
            ),
        )
    })?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 100"));
    }
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            Some(raw.parse::<JobId>().map_err(|_| ApiError::bad_request("invalid_query", "cursor is not a job id"))?)
        }
    };
    let ids = app.pipeline.journal().ids_newest_first().await.map_err(|error| ApiError::storage(&error))?;
    let mut jobs = Vec::with_capacity(limit);
    let mut next_cursor = None;
    let candidates = ids.into_iter().filter(|id| cursor.is_none_or(|cursor| *id < cursor));
    for (scanned, id) in candidates.enumerate() {
        if jobs.len() == limit || scanned == MAX_SCAN {
            next_cursor = jobs.last().map(|job: &JobDocument| job.id.clone()).or_else(|| Some(id.to_string()));
            break;
        }
        let Some(record) = app.pipeline.journal().load(id).await.map_err(|error| ApiError::storage(&error))? else {
            continue;
        };
        if query.state.is_none_or(|state| state == record.state) {
            jobs.push(JobDocument::new(&record, app.pipeline.links()));
        }
    }
    Ok(Json(JobList { jobs, next_cursor }))
}

/// A job's progress as server-sent events: its current state first (`snapshot`), then every change
/// (`running`, `file`, `completed`, `failed`, `notification`), each carrying the whole job document; the
/// stream ends when nothing more will happen to the job.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = JobEventMessage),
        (status = 404, description = "No such job", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn job_events(
    State(app): State<AppState>,
    PathText(id): PathText,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    // Subscribe before reading the record, so no change between the two is missed.
    let receiver = app.pipeline.subscribe();
    let record = load(&app, id).await?;
    let closing = app.closing.clone();
    // In a bucket shared by several instances, the job may be run by another one, whose events never reach
    // this process: the stored record is then read again every few seconds, and a change is sent as a snapshot.
    let mut recheck = app.pipeline.blobs().may_be_shared().then(|| {
        let mut every = tokio::time::interval(SHARED_STORE_RECHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every
    });
    if let Some(every) = recheck.as_mut() {
        every.reset(); // the first tick comes one period from now, not at once
    }

    struct Listener {
        app: AppState,
        id: JobId,
        receiver: tokio::sync::broadcast::Receiver<sluice_core::JobEvent>,
        first: Option<JobRecord>,
        done: bool,
        recheck: Option<tokio::time::Interval>,
        /// When the last record sent was updated, to tell a re-read record that changed.
        seen: time::OffsetDateTime,
    }
    let seen = record.updated_at;
    let listener = Listener { app, id, receiver, first: Some(record), done: false, recheck, seen };
    let events = stream::unfold(listener, |mut listener| async move {
        if listener.done {
            return None;
        }
        if let Some(record) = listener.first.take() {
            listener.done = record.is_settled();
            let event = sse_event(&listener.app, JobEventKind::Snapshot, &record);
            return Some((Ok::<Event, Infallible>(event), listener));
        }
        loop {
            let received = match listener.recheck.as_mut() {
                Some(every) => tokio::select! {
                    received = listener.receiver.recv() => Some(received),
                    _ = every.tick() => None,
                },
                None => Some(listener.receiver.recv().await),
            };
            match received {
                Some(Ok(event)) if event.job.id == listener.id => {
                    let job: Arc<JobRecord> = event.job;
                    listener.done = job.is_settled();
                    listener.seen = job.updated_at;
                    return Some((Ok(sse_event(&listener.app, event.kind, &job)), listener));
                }
                Some(Ok(_)) => {}
                // Missed events, or a look at what another instance may have done: the stored record is the truth.
                Some(Err(RecvError::Lagged(_))) | None => {
                    // Unreadable for now (storage down): looked at again on the next tick or event.
                    let Ok(record) = load(&listener.app, listener.id).await else { continue };
                    if record.updated_at == listener.seen && !record.is_settled() {
                        continue;
                    }
                    listener.done = record.is_settled();
                    listener.seen = record.updated_at;
                    return Some((Ok(sse_event(&listener.app, JobEventKind::Snapshot, &record)), listener));
                }
                Some(Err(RecvError::Closed)) => return None,
            }
        }
    });
    let events = events.take_until(async move { closing.cancelled().await });
    // A reverse proxy (nginx) would hold the events back in its buffer without this header.
    let unbuffered = [(header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"))];
    Ok((unbuffered, Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))))
}

/// How often an event stream re-reads the job's record when the store may be shared by other instances.
const SHARED_STORE_RECHECK: Duration = Duration::from_secs(2);

/// One event of `GET /v1/jobs/{id}/events`, as the OpenAPI document describes each event of the stream.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the stream for the OpenAPI document; `sse_event` writes the events
pub(crate) struct JobEventMessage {
    /// What happened; `snapshot` comes first.
    event: JobEventKind,
    /// The whole job document after the change, as JSON (the body of `GET /v1/jobs/{id}`).
    #[schema(content_media_type = "application/json")]
    data: String,
}

fn sse_event(app: &AppState, kind: JobEventKind, record: &JobRecord) -> Event {
    let document = JobDocument::new(record, app.pipeline.links());
    let data = serde_json::to_string(&document).unwrap_or_else(|_| "{}".to_owned());
    Event::default().event(kind.as_str()).data(data)
}
