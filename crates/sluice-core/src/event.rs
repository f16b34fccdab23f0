use std::sync::Arc;

use crate::JobRecord;

/// What happened to a job; the name of the server-sent event that carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JobEventKind {
    /// The job's current state, sent first to a new listener.
    Snapshot,
    /// A converter started (or resumed) the job.
    Running,
    /// One file got its final result.
    File,
    /// Every file has a final result.
    Completed,
    /// The job could not run.
    Failed,
    /// The completion notice was sent or failed.
    Notification,
    /// A webhook attempt was made (delivered, failed, or waiting to retry).
    Webhook,
}

impl JobEventKind {
    /// The SSE `event:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Running => "running",
            Self::File => "file",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Notification => "notification",
            Self::Webhook => "webhook",
        }
    }
}

/// A change to a job, broadcast to live listeners with the record as it is after the change. The stored
/// record stays the truth: a listener that lags re-reads it.
#[derive(Clone, Debug)]
pub struct JobEvent {
    /// What happened.
    pub kind: JobEventKind,
    /// The record after the change.
    pub job: Arc<JobRecord>,
}
