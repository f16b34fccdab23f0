//! Uploads that go all the way: conversion, storage, the notice, live events, recovery.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use sluice_core::{FileRecord, FileState, JobId, JobRecord, JobState, MediaType, keys};
use sluice_storage::{Blobs, Journal};
use sluice_testkit::{MailCatcher, S3Server};
use time::OffsetDateTime;

use crate::helpers::{Options, files_under, spawn_app, spawn_with};

fn outputs(file: &Value) -> Vec<(String, u64, u64)> {
    file["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap().to_owned(), o["width"].as_u64().unwrap(), o["height"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn upload_is_converted_and_the_notice_arrives_over_smtp() {
    let mail = MailCatcher::start().await.unwrap();
    let app = spawn_with(Options { mail: Some(&mail), ..Options::default() }).await;

    let response = app
        .upload(
            &[
                "dragonfly-on-branch.jpg",
                "portrait-dogs-at-window-exif-orientation-6.jpg",
                "fig-bowl-vignette-alpha.png",
            ],
            &[("notify", "dev@example.com")],
        )
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/jobs/{id}"));
    assert_eq!(accepted["state"], "queued");
    assert_eq!(accepted["files"][0]["bytes"], 1_297_266);
    assert_eq!(accepted["notification"]["state"], "pending");

    let done = app.wait_settled(&id).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    let files = done["files"].as_array().unwrap();
    // 4000x3000 landscape: contain never enlarges and keeps the ratio; cover fills the box.
    assert_eq!(
        outputs(&files[0]),
        [("large".into(), 2048, 1536), ("medium".into(), 1024, 768), ("thumb".into(), 256, 256)]
    );
    // Stored 3088x2056 with EXIF orientation 6: the outputs are upright, so portrait.
    assert_eq!(outputs(&files[1])[0], ("large".into(), 1364, 2048));
    // 1200x812 PNG: "large" (2048) would enlarge, so it stays at its size.
    assert_eq!(outputs(&files[2])[0], ("large".into(), 1200, 812));

    for file in files {
        assert_eq!(file["state"], "converted");
        for output in file["outputs"].as_array().unwrap() {
            let response = app.client.get(app.url(output["url"].as_str().unwrap())).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], output["content_type"].as_str().unwrap());
            assert_eq!(response.bytes().await.unwrap().len() as u64, output["bytes"].as_u64().unwrap());
        }
    }
    assert_eq!(done["notification"]["state"], "sent");

    let messages = mail.wait_for_messages(1, Duration::from_secs(20)).await.unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(message["subject"].as_str().unwrap().contains(&id), "{message:#}");
    assert_eq!(message["to"][0]["address"], "dev@example.com");
    let html = message["html"].as_str().unwrap();
    let text = message["text"].as_str().unwrap();
    for file in files {
        for output in file["outputs"].as_array().unwrap() {
            let link = app.url(output["url"].as_str().unwrap());
            assert!(text.contains(&link), "text part lacks {link}");
            assert!(html.contains(&link), "html part lacks {link}");
        }
    }
    // The links in the mail work.
    let first = app.url(files[0]["outputs"][2]["url"].as_str().unwrap());
    assert_eq!(app.client.get(first).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn s3_storage_holds_originals_outputs_and_records() {
    let s3 = S3Server::start().await.unwrap();
    let app = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    let response =
        app.upload(&["rowing-boats-evening-glow.webp", "ladybird-pan-animated.gif"], &[("variants", "thumb")]).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let done = app.wait_settled(&id).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(done["variants"], serde_json::json!(["thumb"]));
    assert_eq!(done["files"][1]["outputs"][0]["content_type"], "image/webp");

    let stored = files_under(&s3.data_dir().join(s3.bucket()));
    for expected in [
        format!("jobs/{id}.json"),
        format!("originals/{id}/0.webp"),
        format!("originals/{id}/1.gif"),
        format!("outputs/{id}/0/thumb.webp"),
        format!("outputs/{id}/1/thumb.webp"),
    ] {
        assert!(stored.contains(&expected), "{expected} not in {stored:?}");
    }
    assert!(
        stored.iter().all(|key| !key.contains("rowing") && !key.contains("ladybird")),
        "client names in keys: {stored:?}"
    );
    let url = app.url(done["files"][0]["outputs"][0]["url"].as_str().unwrap());
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
    // Objects carry their Content-Type, so a bucket served directly serves them right (the S3 server keeps
    // each object's attributes in a metadata file beside the bucket's folder).
    let mut content_types: Vec<String> = std::fs::read_dir(s3.data_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".metadata.json"))
        .filter_map(|path| {
            let attributes: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            attributes["content_type"].as_str().map(str::to_owned)
        })
        .collect();
    content_types.sort();
    content_types.dedup();
    // (The octet-stream is the empty marker naming the instance that ran the job, gone once it settled.)
    assert_eq!(content_types, ["application/json", "application/octet-stream", "image/gif", "image/webp"]);
    app.stop().await;
}

#[tokio::test]
async fn presigned_links_fetch_outputs_straight_from_the_store() {
    let s3 = S3Server::start().await.unwrap();
    let presign = |settings: &mut sluice::Settings| settings.storage.s3.presigned_links = true;
    let app = spawn_with(Options { s3: Some(&s3), tweak: Some(Box::new(presign)), ..Options::default() }).await;
    let response =
        app.upload(&["dragonfly-on-branch.jpg"], &[("variants", "thumb"), ("notify", "dev@example.com")]).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let done = app.wait_settled(&id).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(done["notification"]["state"], "sent", "{done:#}");

    let output = &done["files"][0]["outputs"][0];
    let url = output["url"].as_str().unwrap();
    let object = format!("{}/{}/outputs/{id}/0/thumb.webp", s3.endpoint(), s3.bucket());
    assert!(url.starts_with(&format!("{object}?")) && url.contains("X-Amz-Signature="), "{url}");
    // Anyone holding the link gets the file from the store, with the type and name the gateway would give.
    let fetched = app.client.get(url).send().await.unwrap();
    assert_eq!(fetched.status(), 200, "{url}");
    assert_eq!(fetched.headers()["content-type"], "image/webp");
    let disposition = format!("inline; filename=\"outputs-{id}-0-thumb.webp\"");
    assert_eq!(fetched.headers()["content-disposition"], disposition.as_str());
    let from_store = fetched.bytes().await.unwrap();
    let through_gateway =
        app.client.get(app.url(&format!("/v1/files/outputs/{id}/0/thumb.webp"))).send().await.unwrap();
    assert_eq!(from_store, through_gateway.bytes().await.unwrap());
    assert_eq!(from_store.len() as u64, output["bytes"].as_u64().unwrap());
    // The signature covers the key and the response headers: changing either is refused.
    let other_key = url.replace("/0/thumb.webp?", "/0/thumb.jpg?");
    assert_eq!(app.client.get(&other_key).send().await.unwrap().status(), 403);
    let other_type = url.replace("image%2Fwebp", "text%2Fhtml");
    assert_ne!(other_type, url);
    assert_eq!(app.client.get(&other_type).send().await.unwrap().status(), 403);

    // The notice carries presigned links too, and they work.
    let outbox = app.outbox();
    let mails = files_under(&outbox);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let raw = std::fs::read(outbox.join(&mails[0])).unwrap();
    let mail = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = mail.body_text(0).unwrap();
    let link = text.split_whitespace().find(|word| word.starts_with(&object)).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(app.client.get(link).send().await.unwrap().status(), 200, "{link}");
    app.stop().await;
}

/// The whole body of an event stream, which must end by itself within a minute.
async fn read_until_it_ends(stream: reqwest::Response) -> String {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut body = String::new();
        let mut chunks = stream.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        body
    })
    .await
    .expect("the event stream did not end by itself")
}

#[tokio::test]
async fn events_stream_the_job_until_it_ends() {
    let app = spawn_app().await;
    let response = app.upload(&["forest-stream.jpg"], &[("variants", "thumb,medium")]).await;
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let stream = app.client.get(app.url(&format!("/v1/jobs/{id}/events"))).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(stream.headers()["x-accel-buffering"], "no", "proxies pass the events on at once");
    let body = read_until_it_ends(stream).await;
    let events: Vec<&str> = body.lines().filter_map(|line| line.strip_prefix("event: ")).collect();
    assert_eq!(events.first(), Some(&"snapshot"), "{body}");
    assert_eq!(events.last(), Some(&"completed"), "{body}");
    let last_data = body.lines().rev().find_map(|line| line.strip_prefix("data: ")).unwrap();
    let document: Value = serde_json::from_str(last_data).unwrap();
    assert_eq!(document["state"], "completed");
    assert_eq!(document["files"][0]["outputs"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn events_on_another_instance_sharing_the_bucket_follow_the_job_to_its_end() {
    let s3 = S3Server::start().await.unwrap();
    let runs = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    let watches = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    let photos = ["forest-stream.jpg", "dragonfly-on-branch.jpg", "dandelions-at-sunset.jpg", "forest-stream.jpg"];
    let response = runs.upload(&photos, &[]).await;
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let stream = watches.client.get(watches.url(&format!("/v1/jobs/{id}/events"))).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let body = read_until_it_ends(stream).await;
    let states: Vec<String> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str::<Value>(data).unwrap()["state"].as_str().unwrap().to_owned())
        .collect();
    // Watched from the start (four photos take a while), the end comes from the record in the bucket.
    assert!(states.len() >= 2 && states[0] != "completed", "{body}");
    assert_eq!(states.last().map(String::as_str), Some("completed"), "{body}");
    runs.stop().await;
    watches.stop().await;
}

#[tokio::test]
async fn prefer_wait_returns_the_finished_job() {
    let app = spawn_app().await;
    let bytes = std::fs::read(crate::helpers::sample("ladybird-pan-animated.gif")).unwrap();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("ladybird.gif"))
        .text("variants", "thumb");
    let response =
        app.client.post(app.url("/v1/uploads")).header("Prefer", "wait=30").multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["preference-applied"], "wait=30");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["state"], "completed");
    app.stop().await;
}

/// The test S3 server's bucket, opened as an instance opens it.
fn s3_blobs(s3: &S3Server) -> Blobs {
    let settings = sluice_storage::StorageSettings {
        url: format!("s3://{}", s3.bucket()),
        s3: sluice_storage::S3Settings {
            endpoint: Some(s3.endpoint()),
            region: Some(s3.region().to_owned()),
            access_key_id: Some(s3.access_key().to_owned()),
            secret_access_key: Some(s3.secret_key().to_owned()),
            allow_http: Some(true),
            ..sluice_storage::S3Settings::default()
        },
        ..sluice_storage::StorageSettings::default()
    };
    Blobs::from_settings(&settings).unwrap()
}

#[tokio::test]
async fn in_a_shared_bucket_a_live_instances_jobs_are_left_to_it_and_a_stopped_ones_taken_over() {
    let s3 = S3Server::start().await.unwrap();
    let blobs = s3_blobs(&s3);
    let journal = Journal::new(blobs.clone());
    // One job run by an instance that is alive (its heartbeat vouches for it for an hour), one by an instance
    // that died (no heartbeat), and one from before jobs had markers.
    let live = crashed_job(&journal, &blobs, JobState::Running, false).await;
    let orphaned = crashed_job(&journal, &blobs, JobState::Running, false).await;
    let unmarked = crashed_job(&journal, &blobs, JobState::Queued, false).await;
    let alive_until = (OffsetDateTime::now_utc().unix_timestamp() + 3600) * 1000;
    let heartbeat = serde_json::to_vec(&serde_json::json!({ "alive_until_ms": alive_until })).unwrap();
    blobs.put(&keys::heartbeat("0190-live"), heartbeat.into()).await.unwrap();
    blobs.put(&keys::active(live, "0190-live"), bytes::Bytes::new()).await.unwrap();
    blobs.put(&keys::active(orphaned, "0190-dead"), bytes::Bytes::new()).await.unwrap();

    let app = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    for id in [orphaned, unmarked] {
        let done = app.wait_settled(&id.to_string()).await;
        assert_eq!(done["state"], "completed", "{done:#}");
    }
    let stored = files_under(&s3.data_dir().join(s3.bucket()));
    assert!(
        stored.iter().all(|key| !key.contains(&orphaned.to_string()) || !key.starts_with("active/")),
        "a settled job keeps no marker: {stored:?}"
    );
    // The live instance's job is left alone...
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, document) = app.get_json(&format!("/v1/jobs/{live}")).await;
    assert_eq!(document["state"], "running", "{document:#}");
    assert_eq!(document["files"][0]["state"], "pending", "{document:#}");
    // ... until that instance stops (its heartbeat goes): then it is taken over.
    blobs.delete(&keys::heartbeat("0190-live")).await.unwrap();
    let done = app.wait_settled(&live.to_string()).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    app.stop().await;
}

/// A job id made `hours` ago (UUIDv7 keeps its millisecond in the first 48 bits).
fn id_made_hours_ago(hours: u64) -> JobId {
    let now = JobId::new().to_string();
    let millis = JobId::new().created_millis() - hours * 60 * 60 * 1000;
    format!("{:08x}-{:04x}{}", millis >> 16, millis & 0xffff, &now[13..]).parse().unwrap()
}

#[tokio::test]
async fn a_shared_bucket_sweeps_only_old_uploads_without_a_record() {
    let s3 = S3Server::start().await.unwrap();
    // Another instance may still be receiving the recent upload; the old one was cut short by a crash.
    let recent = JobId::new();
    let old = id_made_hours_ago(7);
    assert!(old.created_millis() < recent.created_millis());
    let bucket = s3.data_dir().join(s3.bucket());
    for id in [recent, old] {
        let folder = bucket.join(format!("originals/{id}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("0.jpg"), b"\xff\xd8 first file of an upload").unwrap();
    }
    let app = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    let old_original = bucket.join(format!("originals/{old}/0.jpg"));
    for _ in 0..100 {
        if !old_original.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!old_original.exists(), "the old upload without a record is swept");
    assert!(bucket.join(format!("originals/{recent}/0.jpg")).exists(), "a recent upload is another instance's");
    app.stop().await;
}

/// Writes what a crash leaves behind: a stored original and its record in `state`.
async fn crashed_job(journal: &Journal, blobs: &Blobs, state: JobState, notice_due: bool) -> JobId {
    let id = JobId::new();
    let bytes = std::fs::read(crate::helpers::sample("mountain-trail-picos-de-europa.jpg")).unwrap();
    let key = keys::original(id, 0, MediaType::Jpeg);
    blobs.put(&key, bytes.clone().into()).await.unwrap();
    let file = FileRecord {
        index: 0,
        name: "trail.jpg".to_owned(),
        media: MediaType::Jpeg,
        bytes: bytes.len() as u64,
        sha256: String::new(),
        key,
        state: FileState::Pending,
        error: None,
        outputs: Vec::new(),
    };
    let variants = ["large", "medium", "thumb"].iter().map(|name| name.parse().unwrap()).collect();
    let notify = notice_due.then(|| "ops@example.com".parse().unwrap());
    let mut record = JobRecord::new(id, variants, vec![file], notify, OffsetDateTime::now_utc());
    if state != JobState::Queued {
        record.transition(JobState::Running, OffsetDateTime::now_utc()).unwrap();
    }
    if state == JobState::Completed {
        // Converted, but the process died before the notice went out.
        record.files[0].state = FileState::Rejected;
        record.files[0].error = Some(sluice_core::Problem::new("undecodable", "test"));
        record.transition(JobState::Completed, OffsetDateTime::now_utc()).unwrap();
    }
    journal.create(&record).await.unwrap();
    id
}

#[tokio::test]
async fn unfinished_jobs_resume_on_start() {
    let storage = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(storage.path()).unwrap();
    let journal = Journal::new(blobs.clone());
    let queued = crashed_job(&journal, &blobs, JobState::Queued, true).await;
    let running = crashed_job(&journal, &blobs, JobState::Running, false).await;
    let unmailed = crashed_job(&journal, &blobs, JobState::Completed, true).await;
    // A half-done conversion left one output behind: the re-run overwrites it.
    blobs.put(&format!("outputs/{running}/0/large.jpg"), bytes::Bytes::from_static(b"partial")).await.unwrap();
    // And the crash cut a write short two hours ago: its staged file is still there.
    let staged = storage.path().join(format!("jobs/{running}.json#4"));
    let file = std::fs::File::create(&staged).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(2 * 60 * 60)).unwrap();
    drop(file);

    let app = spawn_with(Options { storage_dir: Some(storage.path().to_path_buf()), ..Options::default() }).await;
    for id in [queued, running] {
        let done = app.wait_settled(&id.to_string()).await;
        assert_eq!(done["state"], "completed", "{done:#}");
        assert_eq!(done["files"][0]["state"], "converted");
        let outputs = files_under(&storage.path().join("outputs").join(id.to_string()));
        assert_eq!(outputs, ["0/large.jpg", "0/medium.jpg", "0/thumb.webp"]);
    }
    let large = std::fs::read(storage.path().join(format!("outputs/{running}/0/large.jpg"))).unwrap();
    assert!(large.len() > 1000, "the partial output was not replaced");
    let done = app.wait_settled(&queued.to_string()).await;
    assert_eq!(done["notification"]["state"], "sent");
    let done = app.wait_settled(&unmailed.to_string()).await;
    assert_eq!(done["notification"]["state"], "sent");
    assert_eq!(done["files"][0]["state"], "rejected", "a finished job is not converted again");
    assert_eq!(files_under(&app.outbox()).len(), 2);
    for _ in 0..50 {
        if !staged.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!staged.exists(), "the abandoned staged file is removed on start");
    app.stop().await;
}
