//! `kill -9` at random moments after 202s: every accepted job comes back, completes and is mailed; outputs
//! are never duplicated; a re-sent notice carries the same `Message-ID`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use sluice_testkit::MailCatcher;

use crate::helpers::{
    Sluice, VARIANTS, answer, client, files_under, get_json, listed_outputs, png, random, sample_part, stored, upload,
    wait_all,
};

/// Kill-and-restart rounds.
const ROUNDS: u64 = 5;
/// Uploads fired at once in each round.
const UPLOADS_PER_ROUND: u64 = 6;
/// Pause between the starts of a round's uploads.
const STAGGER_MS: u64 = 150;
/// The kill comes at a random moment within this many milliseconds of the first upload.
const KILL_WINDOW_MS: u64 = 1200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_at_random_moments_loses_no_job() {
    let mail = MailCatcher::start().await.unwrap();
    let mut sluice = Sluice::new(Some(&mail.smtp_url()), &[("SLUICE__PIPELINE__WORKERS", "2")]);
    let http = client();
    let base = sluice.base();
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0;
    let mut cut_off = 0;

    for round in 0..ROUNDS {
        sluice.start().await;
        // Every job accepted before a crash answers after the restart: never a 404.
        for id in &accepted {
            let (status, doc) = get_json(&http, &format!("{base}/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "round {round}: job {id} answered {status} after the restart: {doc}");
        }
        let mut uploads = Vec::new();
        for n in 0..UPLOADS_PER_ROUND {
            let http = http.clone();
            let base = base.clone();
            // A photo (slow enough to be killed mid-conversion) and a small PNG (done at once).
            let files = vec![sample_part("forest-stream.jpg"), (format!("r{round}-{n}.png"), png(320, 200), None)];
            // Staggered, so that a kill finds uploads before, during and after their 202.
            let delay = Duration::from_millis(n * STAGGER_MS);
            uploads.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                upload(&http, &base, files, &[("notify", "crash@example.com")]).await
            }));
        }
        let kill_after = Duration::from_millis(random(round) % KILL_WINDOW_MS);
        tokio::time::sleep(kill_after).await;
        sluice.kill9();
        for task in uploads {
            match task.await.unwrap() {
                Ok(response) => {
                    let (status, _, body) = answer(response).await;
                    match status {
                        202 => accepted.push(body["id"].as_str().unwrap().to_owned()),
                        503 => refused += 1,
                        _ => panic!("round {round}: upload answered {status}: {body}"),
                    }
                }
                // Killed before it answered: not accepted, so nothing was promised.
                Err(_) => cut_off += 1,
            }
        }
        println!("round {round}: killed after {kill_after:?}; {} accepted so far", accepted.len());
    }

    sluice.start().await;
    assert!(!accepted.is_empty(), "no upload was accepted in {ROUNDS} rounds; log:\n{}", sluice.log_tail());
    let docs = wait_all(&http, &base, &accepted, Duration::from_secs(180), |doc| {
        doc["state"] == "completed" && doc["notification"]["state"] == "sent"
    })
    .await;

    // Outputs: exactly the listed ones, one per file and variant, under their deterministic keys.
    let storage = sluice.storage();
    let mut staging_files = 0;
    for (id, doc) in &docs {
        for file in doc["files"].as_array().unwrap() {
            assert_eq!(file["state"], "converted", "job {id}: {file}");
            assert_eq!(file["outputs"].as_array().unwrap().len(), VARIANTS, "job {id}: {file}");
        }
        // A kill mid-write can leave object_store's staging file (`name#n`, never listed nor served) beside
        // the object; it is counted, not compared.
        let (staging, on_disk): (Vec<String>, Vec<String>) =
            stored(&storage, &format!("outputs/{id}")).into_iter().partition(|key| key.contains('#'));
        staging_files += staging.len();
        assert_eq!(on_disk, listed_outputs(doc), "job {id}: stored outputs differ from the document");
    }

    // Uploads cut short by a kill before their record was written are swept at start: every original
    // belongs to a job with a record (object_store's own staging files, `name#n`, are not objects).
    let records: BTreeSet<String> =
        files_under(&storage.join("jobs")).into_iter().map(|path| path.trim_end_matches(".json").to_owned()).collect();
    let started = std::time::Instant::now();
    let orphans = loop {
        let orphans: Vec<String> = files_under(&storage.join("originals"))
            .into_iter()
            .filter(|path| !path.contains('#') && !records.contains(path.split('/').next().unwrap()))
            .collect();
        if orphans.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break orphans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(orphans.is_empty(), "originals without a job record after the restart: {orphans:?}");

    // Mail: each job at least once; every copy of a job's notice has the same Message-ID.
    let messages = mail.wait_for_messages(accepted.len(), Duration::from_secs(30)).await.unwrap();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for message in &messages {
        let message_id = message["headers"]["message-id"].as_str().unwrap_or_default().to_owned();
        *copies.entry(message_id).or_default() += 1;
    }
    for id in &accepted {
        let message_id = format!("<{id}@sluice>");
        assert!(copies.contains_key(&message_id), "job {id} was never mailed; Message-IDs seen: {copies:?}");
    }
    let known: BTreeSet<String> = accepted.iter().map(|id| format!("<{id}@sluice>")).collect();
    // A job stored just before the kill whose 202 never reached the client is resumed and mailed too.
    let unseen = copies.keys().filter(|message_id| !known.contains(*message_id)).count();
    let duplicates: usize = copies.values().map(|n| n - 1).sum();

    // Logs are JSON lines, and the job's lines carry its id.
    let log = std::fs::read_to_string(sluice.log_path()).unwrap();
    let lines: Vec<Value> = log.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(
        lines.iter().any(|line| line["span"]["job_id"].is_string() || line["spans"].to_string().contains("job_id"))
    );
    assert!(log.contains("request_id"), "no request id in the logs");

    let resumed = crate::helpers::metric(&http, &base, "sluice_jobs_resumed_total").await;
    let swept: u64 = lines
        .iter()
        .filter(|line| line["fields"]["message"].as_str().is_some_and(|m| m.contains("cut short by a crash")))
        .filter_map(|line| line["fields"]["removed"].as_u64())
        .sum();
    println!(
        "kill -9 loop: {ROUNDS} rounds, {} uploads, {} accepted and all completed and mailed, {refused} refused \
         (503), {cut_off} not answered (refused or cut by the kill), {duplicates} duplicate notice(s), {unseen} \
         job(s) stored before a kill that cut off their 202, {resumed} job(s) resumed by the \
         last start, {swept} cut-short upload(s) swept, {staging_files} staging file(s) left by kills mid-write, {} start(s)",
        ROUNDS * UPLOADS_PER_ROUND,
        accepted.len(),
        sluice.starts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_cut_short_by_a_kill_is_swept_on_restart() {
    let mut sluice = Sluice::new(None, &[("SLUICE__SERVER__UPLOAD_IDLE_TIMEOUT_SECS", "60")]);
    sluice.start().await;
    // A first file sent whole (so it is stored), a second one that stalls: no record, no 202 yet.
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n".to_vec();
    body.extend_from_slice(&png(64, 64));
    body.extend_from_slice(
        b"\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.png\"\r\n\r\n\x89PNG",
    );
    let head = format!(
        "POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n\
         Content-Length: {}\r\n\r\n",
        body.len() + 100_000
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    std::io::Write::write_all(&mut stream, &body).unwrap();
    let originals = sluice.storage().join("originals");
    let started = std::time::Instant::now();
    while files_under(&originals).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "the first file was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = files_under(&originals);
    sluice.kill9();
    drop(stream);
    assert!(files_under(&sluice.storage().join("jobs")).is_empty());

    sluice.start().await;
    let started = std::time::Instant::now();
    while !files_under(&originals).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "cut-short upload not swept: {:?}",
            files_under(&originals)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("cut-short upload: {stored:?} stored before the kill, swept on restart");
}
