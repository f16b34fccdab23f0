//! Backpressure and bounded time: a full queue answers 503 with `Retry-After` and drops nothing it
//! accepted; a job's wall time is bounded and the worker goes on with the next job.

use std::time::Duration;

use crate::helpers::{Sluice, answer, client, code, png, settled, slow_files, upload, wait_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_503_and_drops_nothing() {
    // One worker takes two jobs off a queue of one: the fourth upload finds no place.
    let mut sluice =
        Sluice::new(None, &[("SLUICE__PIPELINE__WORKERS", "1"), ("SLUICE__PIPELINE__QUEUE_CAPACITY", "1")]);
    sluice.start().await;
    let http = client();
    let base = sluice.base();
    let mut accepted = Vec::new();
    let mut refused = 0;
    let (status, _, body) = answer(upload(&http, &base, slow_files(20, 5000), &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    accepted.push(body["id"].as_str().unwrap().to_owned());
    for n in 0..4 {
        let files = vec![(format!("small-{n}.png"), png(64, 64), None)];
        let (status, retry_after, body) = answer(upload(&http, &base, files, &[]).await.unwrap()).await;
        match status {
            202 => accepted.push(body["id"].as_str().unwrap().to_owned()),
            503 => {
                assert_eq!(code(&body), "queue_full", "{body}");
                assert!(retry_after.is_some(), "no Retry-After on queue_full");
                refused += 1;
            }
            _ => panic!("upload {n} answered {status}: {body}"),
        }
    }
    assert!(refused >= 1, "a queue of one never filled: {} accepted", accepted.len());
    let docs = wait_all(&http, &base, &accepted, Duration::from_secs(120), settled).await;
    for (id, doc) in &docs {
        assert_eq!(doc["state"], "completed", "job {id}: {doc:#}");
    }
    println!("backpressure: {} accepted and completed, {refused} refused with 503 queue_full", accepted.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_wall_time_is_bounded_and_the_worker_goes_on() {
    let mut sluice =
        Sluice::new(None, &[("SLUICE__PIPELINE__WORKERS", "1"), ("SLUICE__PIPELINE__JOB_TIMEOUT_SECS", "1")]);
    sluice.start().await;
    let http = client();
    let base = sluice.base();
    let (status, _, body) = answer(upload(&http, &base, slow_files(100, 3000), &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let slow = body["id"].as_str().unwrap().to_owned();
    let docs = wait_all(&http, &base, std::slice::from_ref(&slow), Duration::from_secs(60), settled).await;
    let files = docs[&slow]["files"].as_array().unwrap().clone();
    let timed_out = files.iter().filter(|file| file["error"]["code"] == "job_timeout").count();
    assert_eq!(docs[&slow]["state"], "completed", "{:#}", docs[&slow]);
    assert!(timed_out > 0, "no file hit the 1 s job limit: {files:?}");
    assert!(files.iter().all(|file| file["state"] != "pending"));

    // The worker is free again: the next job converts.
    let (status, _, body) =
        answer(upload(&http, &base, vec![("next.png".into(), png(64, 64), None)], &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let next = body["id"].as_str().unwrap().to_owned();
    let docs = wait_all(&http, &base, std::slice::from_ref(&next), Duration::from_secs(60), settled).await;
    assert_eq!(docs[&next]["files"][0]["state"], "converted", "{:#}", docs[&next]);
    println!("job wall time: {timed_out} of {} files rejected job_timeout after 1 s; next job converted", files.len());
}
