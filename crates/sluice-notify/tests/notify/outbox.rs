//! Notices written as `.eml` files into an outbox folder.

use mail_parser::MessageParser;
use sluice_notify::{MailSettings, Mailer};

use crate::*;

#[tokio::test]
async fn outbox_gets_one_parseable_eml_per_notice() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data/outbox");
    let mailer = mailer(&format!("file://{}", dir.display()));
    assert!(dir.is_dir(), "the outbox is created up front");
    mailer.check().await.unwrap();
    let job = finished_job();
    let notice = notice(&job);
    mailer.send(&notice).await.unwrap();

    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|ext| ext.to_str()), Some("eml"));
    let raw = std::fs::read(&files[0]).unwrap();
    let message = MessageParser::default().parse(&raw).expect("a parseable message");

    assert_eq!(message.subject(), Some(notice.subject()));
    assert_eq!(message.message_id(), Some(format!("{}@sluice", job.id).as_str()));
    let to = message.to().and_then(|to| to.first()).and_then(|addr| addr.address());
    assert_eq!(to, Some(RECIPIENT));
    assert!(message.date().is_some());
    assert!(message.header("Bcc").is_none());
    let text = message.body_text(0).unwrap();
    let html = message.body_html(0).unwrap();
    for url in output_links(&job) {
        assert!(text.contains(&url) && html.contains(&url), "{url}");
    }
    assert!(!html.contains("<script"), "{html}");
}

#[tokio::test]
async fn failed_job_notice_says_so() {
    let temp = tempfile::tempdir().unwrap();
    let mailer = mailer(&format!("file://{}", temp.path().display()));
    let mut job = finished_job();
    job.state = sluice_core::JobState::Failed;
    job.error = Some(sluice_core::Problem::new("storage_unavailable", "object storage could not be reached"));
    let notice = notice(&job);
    assert_eq!(notice.subject(), format!("sluice: job {} failed", job.id));
    mailer.send(&notice).await.unwrap();
    let file = std::fs::read_dir(temp.path()).unwrap().next().unwrap().unwrap().path();
    let raw = std::fs::read(file).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap();
    assert!(text.contains("failed: object storage could not be reached (storage_unavailable)"), "{text}");
}

#[test]
fn bad_sender_and_timeout_are_refused() {
    let bad_from = MailSettings { from: "not a mailbox".into(), ..MailSettings::default() };
    let error = Mailer::from_settings(&bad_from).unwrap_err();
    assert_eq!(error.code(), "invalid_sender");
    assert!(error.to_string().contains("not a mailbox"), "{error}");
    let zero = MailSettings { timeout_secs: 0, ..MailSettings::default() };
    assert_eq!(Mailer::from_settings(&zero).unwrap_err().code(), "invalid_mail_settings");
}
