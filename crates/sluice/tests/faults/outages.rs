//! The SMTP catcher and the S3 server go down and come back: work is retried, never lost, and what finally
//! fails says why in the job document.

use std::time::{Duration, Instant};

use sluice_testkit::{MailCatcher, S3Server};

use crate::helpers::{Sluice, VARIANTS, answer, client, code, metric, png, sample_part, settled, upload, wait_all};

/// Waits until `sample` in /metrics reaches `at_least`.
async fn wait_metric(sluice: &Sluice, sample: &str, at_least: f64) -> f64 {
    let http = client();
    let started = Instant::now();
    loop {
        let value = metric(&http, &sluice.base(), sample).await;
        if value >= at_least {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{sample} stayed at {value}; log:\n{}", sluice.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_outage_is_retried_and_never_costs_the_conversion() {
    let mail = MailCatcher::start().await.unwrap();
    // Enough attempts to outlast the outage below (about 40 × 0.4 s).
    let mut sluice = Sluice::new(Some(&mail.smtp_url()), &[("SLUICE__PIPELINE__MAIL_ATTEMPTS", "40")]);
    sluice.start().await;
    let http = client();
    let base = sluice.base();

    mail.stop();
    let files = vec![("a.png".to_owned(), png(200, 100), None)];
    let (status, _, body) = answer(upload(&http, &base, files, &[("notify", "down@example.com")]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    // The conversion is recorded while the notice waits for the catcher.
    let docs =
        wait_all(&http, &base, std::slice::from_ref(&id), Duration::from_secs(60), |doc| doc["state"] == "completed")
            .await;
    assert_eq!(docs[&id]["files"][0]["state"], "converted");
    let retries = wait_metric(&sluice, "sluice_retries_total{operation=\"mail\"}", 2.0).await;
    mail.restart().await.unwrap();
    let docs = wait_all(&http, &base, std::slice::from_ref(&id), Duration::from_secs(60), settled).await;
    let notification = &docs[&id]["notification"];
    assert_eq!(notification["state"], "sent", "{notification}");
    assert!(notification["attempts"].as_u64().unwrap() >= 3, "{notification}");
    let messages = mail.wait_for_messages(1, Duration::from_secs(20)).await.unwrap();
    assert_eq!(messages[0]["headers"]["message-id"], format!("<{id}@sluice>"));
    sluice.kill9();

    // Down for longer than the attempts: the notice fails with its reason, the outputs stay.
    sluice.env.push(("SLUICE__PIPELINE__MAIL_ATTEMPTS".into(), "2".into()));
    sluice.start().await;
    mail.stop();
    let files = vec![("b.png".to_owned(), png(200, 100), None)];
    let (status, _, body) = answer(upload(&http, &base, files, &[("notify", "down@example.com")]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let failed = body["id"].as_str().unwrap().to_owned();
    let docs = wait_all(&http, &base, std::slice::from_ref(&failed), Duration::from_secs(60), settled).await;
    let doc = &docs[&failed];
    assert_eq!(
        (doc["state"].as_str(), doc["notification"]["state"].as_str()),
        (Some("completed"), Some("failed")),
        "{doc}"
    );
    assert_eq!(doc["notification"]["attempts"], 2, "{doc}");
    assert!(doc["notification"]["error"]["message"].as_str().unwrap().len() > 10, "{doc}");
    assert_eq!(doc["files"][0]["outputs"].as_array().unwrap().len(), VARIANTS, "{doc}");
    println!(
        "SMTP outage: notice sent after {} attempt(s) ({retries} retries counted during the outage); \
              a longer outage recorded {:?}",
        notification["attempts"], doc["notification"]["error"]["code"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_5xx_is_permanent_and_not_retried() {
    // The catcher demands authentication that sluice does not offer: 530, a permanent answer.
    let mail = MailCatcher::start_with(&["--incoming-user", "someone", "--incoming-pass", "secret"]).await.unwrap();
    let mut sluice = Sluice::new(Some(&mail.smtp_url()), &[("SLUICE__PIPELINE__MAIL_ATTEMPTS", "5")]);
    sluice.start().await;
    let http = client();
    let base = sluice.base();
    let files = vec![("c.png".to_owned(), png(100, 100), None)];
    let (status, _, body) = answer(upload(&http, &base, files, &[("notify", "auth@example.com")]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let docs = wait_all(&http, &base, std::slice::from_ref(&id), Duration::from_secs(60), settled).await;
    let notification = &docs[&id]["notification"];
    assert_eq!(
        (notification["state"].as_str(), notification["attempts"].as_u64()),
        (Some("failed"), Some(1)),
        "{notification}"
    );
    assert_eq!(metric(&http, &base, "sluice_retries_total{operation=\"mail\"}").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_gets_503_at_upload_and_retries_in_conversion() {
    let s3 = S3Server::start().await.unwrap();
    let endpoint = s3.endpoint();
    let env = [
        ("SLUICE__STORAGE__URL", format!("s3://{}", s3.bucket())),
        ("SLUICE__STORAGE__S3__ENDPOINT", endpoint),
        ("SLUICE__STORAGE__S3__REGION", s3.region().to_owned()),
        ("SLUICE__STORAGE__S3__ACCESS_KEY_ID", s3.access_key().to_owned()),
        ("SLUICE__STORAGE__S3__SECRET_ACCESS_KEY", s3.secret_key().to_owned()),
        ("SLUICE__STORAGE__S3__ALLOW_HTTP", "true".to_owned()),
        ("SLUICE__PIPELINE__STORAGE_ATTEMPTS", "60".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let mut sluice = Sluice::new(None, &env);
    sluice.start().await;
    let http = client();
    let base = sluice.base();

    // Storage down at upload time: 503 with a retry hint, nothing accepted.
    s3.stop().await;
    let (status, retry_after, body) =
        answer(upload(&http, &base, vec![sample_part("forest-stream.jpg")], &[]).await.unwrap()).await;
    assert_eq!((status, code(&body)), (503, "storage_unavailable"), "{body}");
    assert!(retry_after.is_some(), "no Retry-After on the 503");
    s3.restart().await.unwrap();

    // Storage goes down right after the 202: the conversion retries until it comes back.
    let (status, _, body) = answer(
        upload(&http, &base, vec![sample_part("forest-stream.jpg"), sample_part("dragonfly-on-branch.jpg")], &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    s3.stop().await;
    let retries = wait_metric(&sluice, "sluice_retries_total{operation=\"storage\"}", 1.0).await;
    s3.restart().await.unwrap();
    let docs = wait_all(&http, &base, std::slice::from_ref(&id), Duration::from_secs(120), settled).await;
    let doc = &docs[&id];
    assert_eq!(doc["state"], "completed", "{doc:#}");
    assert!(doc["files"].as_array().unwrap().iter().all(|file| file["state"] == "converted"), "{doc:#}");
    // Only the accepted job has originals in the bucket: the refused upload left nothing.
    let originals = crate::helpers::files_under(&s3.data_dir().join(s3.bucket()).join("originals"));
    assert!(originals.iter().all(|path| path.starts_with(&id)), "{originals:?}");
    println!("S3 outage: 503 storage_unavailable at upload; conversion completed after {retries}+ storage retries");
}
