use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{EmailAddress, JobId, MediaType, VariantName, Webhook};

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted and stored, waiting for a converter.
    Queued,
    /// A converter is working on it.
    Running,
    /// Every file has a final result (converted, or rejected with a reason).
    Completed,
    /// The job itself could not run (storage unreachable after retries, say).
    Failed,
}

impl JobState {
    /// Whether no further conversion work will happen.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// Whether `self -> next` is a legal step. Running may be re-entered: a job resumed after a crash starts
    /// running again from where its record says it was.
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Queued, Running) | (Running, Running) | (Queued | Running, Completed) | (Queued | Running, Failed)
        )
    }

    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// Where one uploaded file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// Not converted yet.
    Pending,
    /// Every requested output was written.
    Converted,
    /// Could not be converted; `error` says why.
    Rejected,
}

/// A machine-readable code and a sentence for a person, used for rejected files and failed jobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable snake_case code, e.g. `too_many_pixels`.
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl Problem {
    /// A problem with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// One output written for a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The variant (or report kind) name.
    pub name: String,
    /// The storage key.
    pub key: String,
    /// What was written.
    pub media: MediaType,
    /// Pixel width (0 for documents).
    pub width: u32,
    /// Pixel height (0 for documents).
    pub height: u32,
    /// Size in bytes.
    pub bytes: u64,
}

/// One uploaded file of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Position in the upload, from 0.
    pub index: u32,
    /// The client's file name, for display only (sanitised; never part of a key).
    pub name: String,
    /// The type detected from the content.
    pub media: MediaType,
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// The storage key of the original.
    pub key: String,
    /// Conversion state.
    pub state: FileState,
    /// Why the file was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// What was written for it.
    #[serde(default)]
    pub outputs: Vec<OutputRecord>,
}

/// Delivery state of the completion notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    /// No notice was asked for.
    None,
    /// A notice is due once conversion ends.
    Pending,
    /// The mail transport accepted the notice.
    Sent,
    /// The notice could not be delivered; `error` says why.
    Failed,
}

/// The completion notice of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The recipient, when one was named.
    pub to: Option<EmailAddress>,
    /// Delivery state.
    pub state: NotificationState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

impl Notification {
    /// The notice state for an upload that named `to` (or nobody).
    pub fn for_recipient(to: Option<EmailAddress>) -> Self {
        let state = if to.is_some() { NotificationState::Pending } else { NotificationState::None };
        Self { to, state, attempts: 0, error: None }
    }
}

/// The durable record of a job: stored as `jobs/{id}.json`, it is the truth the stages and the API read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// Where the job is.
    pub state: JobState,
    /// When the upload was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the record last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When conversion ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The variants every image of the job is converted to.
    pub variants: Vec<VariantName>,
    /// The uploaded files, in upload order.
    pub files: Vec<FileRecord>,
    /// The completion notice.
    pub notification: Notification,
    /// Why the job failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// How many times conversion has been started (more than one after a crash or a retry).
    #[serde(default)]
    pub attempts: u32,
    /// The callback to POST the job document to when the job ends, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// A state change the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a job cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The current state.
    pub from: &'static str,
    /// The state asked for.
    pub to: &'static str,
}

impl JobRecord {
    /// A new queued job.
    pub fn new(
        id: JobId,
        variants: Vec<VariantName>,
        files: Vec<FileRecord>,
        notify: Option<EmailAddress>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            state: JobState::Queued,
            created_at: now,
            updated_at: now,
            finished_at: None,
            variants,
            files,
            notification: Notification::for_recipient(notify),
            error: None,
            attempts: 0,
            webhook: None,
        }
    }

    /// Moves the job to `next`, stamping the times; refuses illegal steps.
    pub fn transition(&mut self, next: JobState, now: OffsetDateTime) -> Result<(), IllegalTransition> {
        if !self.state.can_become(next) {
            return Err(IllegalTransition { from: self.state.as_str(), to: next.as_str() });
        }
        self.state = next;
        self.updated_at = now;
        if next.is_terminal() {
            self.finished_at = Some(now);
        }
        if next == JobState::Running {
            self.attempts = self.attempts.saturating_add(1);
        }
        Ok(())
    }

    /// Whether nothing more will happen to the job: conversion ended and no notice or webhook is still due.
    pub fn is_settled(&self) -> bool {
        self.state.is_terminal() && self.notification.state != NotificationState::Pending && !self.webhook_due()
    }

    /// Whether a webhook delivery is still due.
    pub fn webhook_due(&self) -> bool {
        self.webhook.as_ref().is_some_and(Webhook::is_pending)
    }

    /// Whether every file has a final result.
    pub fn all_files_final(&self) -> bool {
        self.files.iter().all(|file| file.state != FileState::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        let variants = vec!["thumb".parse().unwrap()];
        JobRecord::new(JobId::new(), variants, Vec::new(), None, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn legal_life_cycle() {
        let mut job = record();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(job.transition(JobState::Running, now).is_ok());
        assert_eq!(job.attempts, 1);
        assert!(job.transition(JobState::Running, now).is_ok(), "a resumed job runs again");
        assert!(job.transition(JobState::Completed, now).is_ok());
        assert!(job.finished_at.is_some());
        assert!(job.is_settled());
    }

    #[test]
    fn terminal_states_are_final() {
        let mut job = record();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(job.transition(JobState::Failed, now).is_ok());
        for next in [JobState::Queued, JobState::Running, JobState::Completed] {
            assert!(job.transition(next, now).is_err());
        }
        assert!(record().transition(JobState::Queued, now).is_err());
    }

    #[test]
    fn pending_notice_keeps_the_job_open() {
        let mut job = record();
        job.notification = Notification::for_recipient(Some("a@example.com".parse().unwrap()));
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(job.transition(JobState::Completed, now).is_ok());
        assert!(!job.is_settled());
        job.notification.state = NotificationState::Sent;
        assert!(job.is_settled());
    }

    #[test]
    fn pending_webhook_keeps_the_job_open() {
        let mut job = record();
        job.webhook = Some(Webhook::new("https://example.com/hook"));
        assert!(job.transition(JobState::Completed, OffsetDateTime::UNIX_EPOCH).is_ok());
        assert!(!job.is_settled());
        if let Some(webhook) = job.webhook.as_mut() {
            webhook.state = crate::WebhookState::Delivered;
        }
        assert!(job.is_settled());
        let back: JobRecord = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn record_round_trips_through_json() {
        let job = record();
        let json = serde_json::to_string(&job).unwrap();
        let back: JobRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job);
    }
}
