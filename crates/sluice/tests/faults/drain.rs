//! SIGTERM: uploads are refused with 503 and `Retry-After` while in-flight work (a conversion and a notice
//! waiting for the SMTP server) finishes; the process exits 0; anything left resumes on the next start.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_testkit::MailCatcher;

use crate::helpers::{Sluice, answer, client, code, get_json, metric, png, slow_files, upload, wait_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_work_and_refuses_new_uploads() {
    let mail = MailCatcher::start().await.unwrap();
    let mut sluice = Sluice::new(
        Some(&mail.smtp_url()),
        &[("SLUICE__PIPELINE__WORKERS", "1"), ("SLUICE__PIPELINE__MAIL_ATTEMPTS", "200")],
    );
    sluice.start().await;
    let http = client();
    let base = sluice.base();
    let job = |body: &Value| body["id"].as_str().unwrap().to_owned();

    // A: converted, its notice retrying while the SMTP server is down.
    mail.stop();
    let files = vec![("a.png".into(), png(300, 200), None)];
    let (status, _, body) =
        answer(upload(&http, &base, files, &[("notify", "drain@example.com")]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let a = job(&body);
    wait_all(&http, &base, std::slice::from_ref(&a), Duration::from_secs(60), |doc| doc["state"] == "completed").await;
    let started = Instant::now();
    while metric(&http, &base, "sluice_retries_total{operation=\"mail\"}").await < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the notice was never retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B: a conversion that takes seconds; C: queued behind it.
    let (status, _, body) = answer(upload(&http, &base, slow_files(4, 5000), &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let b = job(&body);
    let (status, _, body) =
        answer(upload(&http, &base, vec![("c.png".into(), png(64, 64), None)], &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let c = job(&body);
    wait_all(&http, &base, std::slice::from_ref(&b), Duration::from_secs(60), |doc| doc["state"] != "queued").await;

    sluice.sigterm();
    // Draining: not ready, uploads refused with a retry hint, job documents still served.
    let started = Instant::now();
    loop {
        // Not just 503: the SMTP server is down, so /readyz was 503 before the signal too.
        let (status, health) = get_json(&http, &sluice.url("/readyz")).await;
        if status == 503 && health["status"] == "draining" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "/readyz still {status} {health} after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, retry_after, body) =
        answer(upload(&http, &base, vec![("d.png".into(), png(64, 64), None)], &[]).await.unwrap()).await;
    assert_eq!((status, code(&body)), (503, "shutting_down"), "{body}");
    assert!(retry_after.is_some_and(|secs| secs.parse::<u64>().unwrap() > 0), "no Retry-After on the 503");
    let (status, doc) = get_json(&http, &format!("{base}/v1/jobs/{b}")).await;
    assert_eq!(status, 200, "{doc}");

    // The SMTP server comes back during the drain: the waiting notice goes out before the exit.
    mail.restart().await.unwrap();
    let exit = sluice.wait_exit().await;
    assert!(exit.success(), "sluice exited with {exit} after SIGTERM; log:\n{}", sluice.log_tail());
    let record = |id: &str| -> Value {
        serde_json::from_slice(&std::fs::read(sluice.storage().join(format!("jobs/{id}.json"))).unwrap()).unwrap()
    };
    assert_eq!(record(&a)["notification"]["state"], "sent", "{:#}", record(&a));
    assert_eq!(record(&b)["state"], "completed", "the in-flight conversion did not finish: {:#}", record(&b));
    let left = [&a, &b, &c].iter().filter(|id| record(id)["state"] != "completed").count();

    // Whatever was left resumes and completes on the next start.
    sluice.start().await;
    let ids = [a, b, c];
    let docs = wait_all(&http, &base, &ids, Duration::from_secs(120), |doc| doc["state"] == "completed").await;
    assert_eq!(docs.len(), 3);
    let messages = mail.wait_for_messages(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(messages[0]["headers"]["message-id"], format!("<{}@sluice>", ids[0]));
    println!("SIGTERM drain: exit 0; in-flight conversion and notice finished; {left} job(s) resumed after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_upload_still_arriving_finish() {
    // Nothing converting: the drain would otherwise end at once and cut the upload off.
    let mut sluice = Sluice::new(None, &[("SLUICE__PIPELINE__SHUTDOWN_GRACE_SECS", "20")]);
    sluice.start().await;
    let image = png(64, 64);
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"late.png\"\r\n\r\n".to_vec();
    body.extend_from_slice(&image);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let head = format!(
        "POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", sluice.port)).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sluice.sigterm();
    // Meanwhile a new upload is told the service is restarting (not that too many uploads are running).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, body) =
        answer(upload(&client(), &sluice.base(), vec![("new.png".into(), png(8, 8), None)], &[]).await.unwrap()).await;
    assert_eq!((status, code(&body)), (503, "shutting_down"), "{body}");
    // Longer than the 5 s the server gives open connections once the drain is over.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    tokio::io::AsyncWriteExt::write_all(&mut stream, rest).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer))
        .await
        .expect("no answer within 20 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let id = answer.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
    assert!(sluice.wait_exit().await.success());

    // The accepted upload is converted after the restart.
    sluice.start().await;
    let docs = wait_all(&client(), &sluice.base(), std::slice::from_ref(&id), Duration::from_secs(60), |doc| {
        doc["state"] == "completed"
    })
    .await;
    assert_eq!(docs[&id]["files"][0]["state"], "converted");
}
