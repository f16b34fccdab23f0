//! Integration tests of sluice-notify against real transports: maildev over SMTP, and the outbox folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod outbox;
mod smtp;

use sluice_core::{FileRecord, FileState, JobId, JobRecord, JobState, MediaType, OutputRecord, Problem};
use sluice_notify::{MailSettings, Mailer, Notice};
use time::OffsetDateTime;

pub(crate) const HOSTILE_NAME: &str = "<script>alert(1)</script>\r\nBcc: x@y.z.jpg";
pub(crate) const RECIPIENT: &str = "ana@example.com";
pub(crate) const PUBLIC_URL: &str = "https://sluice.example";

/// A finished job as the pipeline leaves it: one photo converted to two variants, one hostile upload rejected.
pub(crate) fn finished_job() -> JobRecord {
    let id = JobId::new();
    let output = |variant: &str, media: MediaType, width, height, bytes| OutputRecord {
        name: variant.into(),
        key: format!("outputs/{id}/0/{variant}.{}", media.extension()),
        media,
        width,
        height,
        bytes,
    };
    let photo = FileRecord {
        index: 0,
        name: "Holiday photo.jpg".into(),
        media: MediaType::Jpeg,
        bytes: 3_456_789,
        sha256: "a1".repeat(32),
        key: format!("originals/{id}/0.jpg"),
        state: FileState::Converted,
        error: None,
        outputs: vec![
            output("thumb", MediaType::Webp, 256, 171, 9_876),
            output("medium", MediaType::Jpeg, 1024, 683, 91_000),
        ],
    };
    let hostile = FileRecord {
        index: 1,
        name: HOSTILE_NAME.into(),
        media: MediaType::Other,
        bytes: 42,
        sha256: "b2".repeat(32),
        key: format!("originals/{id}/1.bin"),
        state: FileState::Rejected,
        error: Some(Problem::new("unsupported_type", "the file is not an image sluice can read")),
        outputs: Vec::new(),
    };
    let now = OffsetDateTime::now_utc();
    let mut job = JobRecord::new(
        id,
        vec!["thumb".parse().unwrap(), "medium".parse().unwrap()],
        vec![photo, hostile],
        Some(RECIPIENT.parse().unwrap()),
        now,
    );
    job.transition(JobState::Running, now).unwrap();
    job.transition(JobState::Completed, now).unwrap();
    job
}

pub(crate) fn link(key: &str) -> String {
    format!("{PUBLIC_URL}/v1/files/{key}")
}

pub(crate) fn job_url(job: &JobRecord) -> String {
    format!("{PUBLIC_URL}/v1/jobs/{}", job.id)
}

pub(crate) fn notice(job: &JobRecord) -> Notice {
    Notice::for_job(job, &job_url(job), &link).unwrap()
}

/// Every output link of the job.
pub(crate) fn output_links(job: &JobRecord) -> Vec<String> {
    job.files.iter().flat_map(|file| file.outputs.iter().map(|output| link(&output.key))).collect()
}

pub(crate) fn mailer(url: &str) -> Mailer {
    let settings = MailSettings { url: url.parse().unwrap(), timeout_secs: 5, ..MailSettings::default() };
    Mailer::from_settings(&settings).unwrap()
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}
