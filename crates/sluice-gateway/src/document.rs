use serde::Serialize;
use sluice_core::{FileRecord, FileState, JobRecord, JobState, NotificationState, Problem, Webhook, WebhookState};
use sluice_pipeline::CallbackUrl;
use sluice_pipeline::Links;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A job as clients see it: the record, with links instead of storage keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDocument {
    /// The job id (a UUIDv7).
    #[schema(example = "01938c4e-7f1a-7cc0-a5b2-3d4e5f607182")]
    pub id: String,
    /// `queued`, `running`, `completed` (every file has a final result) or `failed` (the job could not run).
    pub state: JobState,
    /// When the upload was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the job last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When conversion ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The variants every image is converted to.
    pub variants: Vec<String>,
    /// The uploaded files, in upload order.
    pub files: Vec<FileDocument>,
    /// The completion notice.
    pub notification: NotificationDocument,
    /// The webhook, when the upload named a callback (or `webhooks.default_url` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookDocument>,
    /// Why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// Related addresses.
    pub links: JobLinks,
}

/// One uploaded file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileDocument {
    /// Position in the upload, from 0.
    pub index: u32,
    /// The client's file name (display only).
    pub name: String,
    /// The type detected from the content.
    pub content_type: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// `pending`, `converted` or `rejected`.
    pub state: FileState,
    /// Why the file was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// The outputs written for it.
    pub outputs: Vec<OutputDocument>,
}

/// One output of a file.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputDocument {
    /// Variant name.
    pub name: String,
    /// Where to download it: a path on this server (signed when tokens are set), or, with
    /// `storage.s3.presigned_links`, an absolute presigned URL straight to the S3 store.
    pub url: String,
    /// Its media type.
    pub content_type: String,
    /// Pixel width (images only; absent for reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Pixel height (images only; absent for reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Size in bytes.
    pub bytes: u64,
}

/// The completion notice of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDocument {
    /// The recipient.
    pub to: Option<String>,
    /// `none`, `pending`, `sent` or `failed`.
    pub state: NotificationState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// The webhook of a job: where it goes and what became of its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDocument {
    /// The callback URL, without credentials, query or fragment (they may carry tokens).
    pub url: String,
    /// `pending` (due, or waiting to retry), `delivered` or `failed`.
    pub state: WebhookState,
    /// The `Sluice-Delivery` header, the same on every attempt.
    pub delivery_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Problem>,
    /// When the next attempt is due.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl WebhookDocument {
    fn new(webhook: &Webhook) -> Self {
        // Stored URLs were checked on upload; one that no longer parses is not shown.
        let url =
            CallbackUrl::parse(&webhook.url, true).map_or_else(|_| "(invalid URL)".to_owned(), |url| url.redacted());
        Self {
            url,
            state: webhook.state,
            delivery_id: webhook.delivery_id.to_string(),
            attempts: webhook.attempts,
            last_status: webhook.last_status,
            last_error: webhook.last_error.clone(),
            next_attempt_at: webhook.next_attempt_at,
        }
    }
}

/// Addresses related to a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobLinks {
    /// The job document.
    #[serde(rename = "self")]
    pub self_: String,
    /// Its server-sent events.
    pub events: String,
}

/// A page of recent jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// The jobs of this page.
    pub jobs: Vec<JobDocument>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl JobDocument {
    /// The document of `record`, with links built by `links`.
    pub fn new(record: &JobRecord, links: &Links) -> Self {
        let job_path = links.job_path(record.id);
        Self {
            id: record.id.to_string(),
            state: record.state,
            created_at: record.created_at,
            updated_at: record.updated_at,
            finished_at: record.finished_at,
            variants: record.variants.iter().map(ToString::to_string).collect(),
            files: record.files.iter().map(|file| FileDocument::new(file, links)).collect(),
            notification: NotificationDocument {
                to: record.notification.to.as_ref().map(ToString::to_string),
                state: record.notification.state,
                attempts: record.notification.attempts,
                error: record.notification.error.clone(),
            },
            webhook: record.webhook.as_ref().map(WebhookDocument::new),
            error: record.error.clone(),
            links: JobLinks { events: links.job_events_path(record.id), self_: job_path },
        }
    }
}

impl FileDocument {
    fn new(file: &FileRecord, links: &Links) -> Self {
        Self {
            index: file.index,
            name: file.name.clone(),
            content_type: file.media.mime().to_owned(),
            bytes: file.bytes,
            sha256: file.sha256.clone(),
            state: file.state,
            error: file.error.clone(),
            outputs: file
                .outputs
                .iter()
                .map(|output| OutputDocument {
                    name: output.name.clone(),
                    url: links.file_path(&output.key),
                    content_type: output.media.mime().to_owned(),
                    width: (output.width > 0).then_some(output.width),
                    height: (output.height > 0).then_some(output.height),
                    bytes: output.bytes,
                })
                .collect(),
        }
    }
}
