//! Notices sent through SMTP to a real maildev and read back through its inbox API.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_notify::{MailSettings, Mailer};
use sluice_testkit::MailCatcher;

use crate::*;

const WAIT: Duration = Duration::from_secs(10);

fn header_lines(source: &str) -> Vec<&str> {
    source.split("\r\n\r\n").next().unwrap().lines().collect()
}

#[tokio::test]
async fn completion_notice_arrives_complete_and_escaped() {
    let catcher = MailCatcher::start().await.unwrap();
    let mailer = mailer(&catcher.smtp_url());
    mailer.check().await.unwrap();
    let job = finished_job();
    let notice = notice(&job);

    mailer.send(&notice).await.unwrap();
    let messages = catcher.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];

    let subject = mail["subject"].as_str().unwrap();
    assert_eq!(subject, format!("sluice: job {} completed — 1 file converted, 1 rejected", job.id));
    assert_eq!(mail["to"], serde_json::json!([{"address": RECIPIENT, "name": ""}]));
    assert_eq!(mail["from"][0]["address"], "sluice@localhost");
    assert_eq!(mail["headers"]["message-id"], format!("<{}@sluice>", job.id));
    // Nothing in a file name reaches the envelope or the headers.
    assert_eq!(mail["envelope"]["to"].as_array().unwrap().len(), 1, "{mail}");
    assert_eq!(mail["calculatedBcc"], serde_json::json!([]), "{mail}");
    assert!(mail["headers"].get("bcc").is_none(), "{mail}");

    let text = mail["text"].as_str().unwrap();
    let html = mail["html"].as_str().unwrap();
    for body in [text, html] {
        for url in output_links(&job) {
            assert!(body.contains(&url), "missing {url} in {body}");
        }
        assert!(body.contains(&job_url(&job)), "{body}");
        assert!(body.contains("the file is not an image sluice can read"), "{body}");
        assert!(body.contains("Holiday photo.jpg"), "{body}");
        assert!(body.contains("1024×683, 91.0 kB"), "{body}");
        assert!(!body.contains("\r\nBcc"), "{body}");
    }
    assert!(text.contains("<script>alert(1)</script>\u{FFFD}\u{FFFD}Bcc: x@y.z.jpg"), "{text}");
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");

    let source = catcher.source(mail["id"].as_str().unwrap()).await.unwrap();
    let headers = header_lines(&source);
    assert!(!headers.iter().any(|line| line.to_ascii_lowercase().starts_with("bcc")), "{source}");
    assert!(headers.iter().any(|line| line.starts_with("Date: ")), "{source}");
    assert!(headers.contains(&"Auto-Submitted: auto-generated"), "{source}");
    assert!(source.contains("multipart/alternative"), "{source}");
}

#[tokio::test]
async fn a_duplicate_delivery_carries_the_same_message_id() {
    let catcher = MailCatcher::start().await.unwrap();
    let mailer = mailer(&catcher.smtp_url());
    let job = finished_job();
    let notice = notice(&job);
    mailer.send(&notice).await.unwrap();
    mailer.clone().send(&notice).await.unwrap();
    let messages = catcher.wait_for_messages(2, WAIT).await.unwrap();
    let ids: Vec<&Value> = messages.iter().map(|mail| &mail["headers"]["message-id"]).collect();
    assert_eq!(ids, [&Value::from(notice.message_id()), &Value::from(notice.message_id())]);
    catcher.clear().await.unwrap();
    assert!(catcher.messages().await.unwrap().is_empty());
}

#[tokio::test]
async fn refused_connection_is_transient() {
    let mailer = mailer(&format!("smtp://127.0.0.1:{}", closed_port()));
    let started = Instant::now();
    let error = mailer.send(&notice(&finished_job())).await.unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert_eq!(error.code(), "smtp_unreachable", "{error:?}");
    let error = mailer.check().await.unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn smtp_5xx_is_permanent() {
    let catcher = MailCatcher::start_with(&["--max-message-size", "500"]).await.unwrap();
    let error = mailer(&catcher.smtp_url()).send(&notice(&finished_job())).await.unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(error.code(), "smtp_rejected", "{error:?}");
    assert!(catcher.messages().await.unwrap().is_empty());
}

#[tokio::test]
async fn percent_encoded_credentials_log_in() {
    let catcher =
        MailCatcher::start_with(&["--incoming-user", "ana@example.com", "--incoming-pass", "p@ss:w/rd"]).await.unwrap();
    let port = catcher.smtp_port();
    let good = mailer(&format!("smtp://ana%40example.com:p%40ss%3Aw%2Frd@127.0.0.1:{port}"));
    good.send(&notice(&finished_job())).await.unwrap();
    catcher.wait_for_messages(1, WAIT).await.unwrap();

    let bad = mailer(&format!("smtp://ana%40example.com:wrong@127.0.0.1:{port}"));
    let error = bad.send(&notice(&finished_job())).await.unwrap_err();
    assert!(error.is_permanent(), "535 is permanent: {error:?}");
    assert_eq!(catcher.messages().await.unwrap().len(), 1);
}

#[tokio::test]
async fn required_starttls_never_falls_back_to_plain() {
    let catcher = MailCatcher::start_with(&["--hide-extensions", "STARTTLS"]).await.unwrap();
    let mailer = mailer(&format!("smtp://127.0.0.1:{}?tls=starttls", catcher.smtp_port()));
    let error = mailer.send(&notice(&finished_job())).await.unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert_eq!(error.code(), "smtp_protocol", "{error:?}");
    assert!(catcher.messages().await.unwrap().is_empty(), "the notice went out unencrypted");
}

#[tokio::test]
async fn mailer_recovers_after_the_server_restarts() {
    let catcher = MailCatcher::start().await.unwrap();
    let mailer = mailer(&catcher.smtp_url());
    let job = finished_job();
    mailer.send(&notice(&job)).await.unwrap(); // leaves a pooled connection behind

    catcher.stop();
    let error = mailer.send(&notice(&job)).await.unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert!(mailer.check().await.is_err());

    catcher.restart().await.unwrap();
    mailer.check().await.unwrap();
    mailer.send(&notice(&job)).await.unwrap();
    catcher.wait_for_messages(2, WAIT).await.unwrap();
}

#[test]
fn an_smtp_mailer_needs_a_runtime() {
    let settings = MailSettings { url: "smtp://127.0.0.1:25".parse().unwrap(), ..MailSettings::default() };
    let error = Mailer::from_settings(&settings).unwrap_err();
    assert_eq!(error.code(), "no_runtime");
}
