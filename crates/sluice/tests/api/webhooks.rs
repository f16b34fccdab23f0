//! Webhooks against a real receiver on 127.0.0.1 that verifies the signature with its own HMAC code:
//! retries on 500 and 429 (with Retry-After), one delivery, attempts recorded; a dead receiver delays
//! nothing; refused callback URLs get 400; a pending delivery resumes after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_core::{FileRecord, FileState, JobId, JobRecord, JobState, MediaType, Problem, Webhook, keys};
use sluice_storage::{Blobs, Journal};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::helpers::{Options, code, files_under, spawn_with};

const SECRET: &str = "whsec_test_secret";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    answered: u16,
    signature_ok: bool,
    event: String,
    delivery_id: String,
    body: Value,
}

/// A receiver that answers the n-th request (from 0) with `script[n]` (the last entry repeats).
#[derive(Clone)]
struct Receiver {
    script: Arc<Vec<u16>>,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

/// Checks `Sluice-Signature: t=..,v1=..` against HMAC-SHA256 of `t.body`, and that `t` is recent.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("sluice-signature").and_then(|value| value.to_str().ok()) else { return false };
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signature = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return false };
    if (OffsetDateTime::now_utc().unix_timestamp() - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut seen = receiver.seen.lock().unwrap();
    let answered = receiver.script.get(seen.len()).or(receiver.script.last()).copied().unwrap_or(200);
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    seen.push(Delivery {
        answered,
        signature_ok: verify(&headers, &body),
        event: text("sluice-event"),
        delivery_id: text("sluice-delivery"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let status = StatusCode::from_u16(answered).unwrap();
    let mut response = (status, "ok").into_response();
    if answered == 429 {
        response.headers_mut().insert("retry-after", "1".parse().unwrap());
    }
    response
}

/// Starts a receiver on 127.0.0.1; returns its callback URL and what it saw.
async fn start_receiver(script: &[u16]) -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver { script: Arc::new(script.to_vec()), seen: Arc::clone(&seen) };
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), seen)
}

/// Options with webhooks on, loopback allowed (the receiver is on 127.0.0.1) and short retry waits.
fn webhook_options<'a>(storage_dir: Option<std::path::PathBuf>) -> Options<'a> {
    Options {
        storage_dir,
        tweak: Some(Box::new(|settings: &mut sluice::Settings| {
            settings.webhooks.secret = Some(SECRET.into());
            settings.webhooks.allow_private = true;
            settings.webhooks.retry.first_delay_ms = 100;
            settings.webhooks.retry.max_delay_secs = 2;
            settings.webhooks.retry.give_up_after_secs = 600;
        })),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_signed_webhook_is_retried_on_500_and_429_then_delivered_once() {
    let (callback, seen) = start_receiver(&[500, 429, 200]).await;
    let app = spawn_with(webhook_options(None)).await;
    let response = app.upload(&["mountain-trail-picos-de-europa.jpg"], &[("callback_url", &callback)]).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["webhook"]["state"], "pending", "{accepted:#}");
    assert_eq!(accepted["webhook"]["url"], callback.as_str());

    let done = app.wait_for(&id, Duration::from_secs(60), |doc| doc["webhook"]["state"] != "pending").await;
    assert_eq!(done["webhook"]["state"], "delivered", "{done:#}");
    assert_eq!(done["webhook"]["attempts"], 3);
    assert_eq!(done["webhook"]["last_status"], 200);

    let deliveries = seen.lock().unwrap().clone();
    let answers: Vec<u16> = deliveries.iter().map(|delivery| delivery.answered).collect();
    assert_eq!(answers, [500, 429, 200]);
    assert!(deliveries.iter().all(|delivery| delivery.signature_ok), "{deliveries:#?}");
    assert!(deliveries.iter().all(|delivery| delivery.event == "job.completed"));
    assert!(deliveries.iter().all(|delivery| delivery.delivery_id == done["webhook"]["delivery_id"]));
    let body = &deliveries[2].body;
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["state"], "completed");
    assert_eq!(body["files"][0]["state"], "converted");
    assert_eq!(body["webhook"]["attempts"], 2, "the document carries the attempts made before this one");

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sluice_webhooks_total{outcome=\"delivered\"} 1"), "{metrics}");
    assert!(metrics.contains("sluice_retries_total{operation=\"webhook\"} 2"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_notice_and_a_webhook_ending_together_are_both_recorded() {
    // Both stages start when the job ends and record their outcome on the same job record: neither may
    // overwrite the other's (that would leave one `pending`, and send it again after a restart).
    let (callback, seen) = start_receiver(&[200; 6]).await;
    let app = spawn_with(webhook_options(None)).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let response = app
            .upload(&["fig-bowl-vignette-alpha.png"], &[("callback_url", &callback), ("notify", "ops@example.com")])
            .await;
        assert_eq!(response.status(), 202);
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let done = app
            .wait_for(id, Duration::from_secs(60), |doc| {
                doc["notification"]["state"] != "pending" && doc["webhook"]["state"] != "pending"
            })
            .await;
        assert_eq!((&done["notification"]["state"], &done["webhook"]["state"]), (&json!("sent"), &json!("delivered")));
        assert_eq!((&done["notification"]["attempts"], &done["webhook"]["attempts"]), (&json!(1), &json!(1)));
    }
    assert_eq!(seen.lock().unwrap().len(), 6);
    assert_eq!(files_under(&app.outbox()).len(), 6);
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_delays_neither_the_job_nor_its_notice() {
    // Accepts connections and never answers: every attempt waits for the full timeout.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut options = webhook_options(None);
    let tweak = options.tweak.take().unwrap();
    options.tweak = Some(Box::new(move |settings: &mut sluice::Settings| {
        tweak(settings);
        settings.webhooks.timeout_secs = 600;
    }));
    let app = spawn_with(options).await;
    let response = app
        .upload(&["mountain-trail-picos-de-europa.jpg"], &[("callback_url", &callback), ("notify", "ops@example.com")])
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let done = app
        .wait_for(&id, Duration::from_secs(60), |doc| {
            doc["state"] == "completed" && doc["notification"]["state"] == "sent"
        })
        .await;
    assert_eq!(done["files"][0]["state"], "converted");
    assert_eq!(done["webhook"]["state"], "pending", "{done:#}");
    assert_eq!(done["webhook"]["attempts"], 0, "the first attempt is still waiting for an answer");
    assert_eq!(files_under(&app.outbox()).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn refused_callback_urls_get_400_and_store_nothing() {
    let app = spawn_with(Options {
        tweak: Some(Box::new(|settings: &mut sluice::Settings| {
            settings.webhooks.secret = Some(SECRET.into());
        })),
        ..Options::default()
    })
    .await;
    let cases = [
        ("http://127.0.0.1:9/hook", "callback_refused"),
        ("http://2130706433/hook", "callback_refused"),
        ("http://0x7f000001/hook", "callback_refused"),
        ("http://[::ffff:127.0.0.1]/hook", "callback_refused"),
        ("http://169.254.169.254/latest/meta-data/", "callback_refused"),
        ("http://10.0.0.8/hook", "callback_refused"),
        ("http://localhost/hook", "callback_refused"),
        ("ftp://hooks.example.com/in", "invalid_callback_url"),
        ("hooks.example.com/in", "invalid_callback_url"),
    ];
    for (callback, expected) in cases {
        let response = app.upload(&["mountain-trail-picos-de-europa.jpg"], &[("callback_url", callback)]).await;
        assert_eq!(response.status(), 400, "{callback}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), expected, "{callback}: {body}");
    }
    assert!(files_under(&app.storage()).is_empty(), "{:?}", files_under(&app.storage()));

    let (_, spec) = app.get_json("/openapi.json").await;
    let schemas = &spec["components"]["schemas"];
    let callback = &schemas["UploadForm"]["properties"]["callback_url"];
    let pattern = regex::Regex::new(callback["pattern"].as_str().unwrap()).unwrap();
    assert!(["", "https://hooks.example.com/x", "HTTP://10.0.0.1:8080"].iter().all(|url| pattern.is_match(url)));
    assert!(!["https://", "ftp://example.com/", "example.com"].iter().any(|url| pattern.is_match(url)));
    assert!(schemas["WebhookDocument"]["properties"].get("attempts").is_some(), "WebhookDocument missing");
    app.stop().await;

    // Without a secret, receivers could not verify a delivery: the field is refused.
    let unsigned = spawn_with(Options::default()).await;
    let response =
        unsigned.upload(&["mountain-trail-picos-de-europa.jpg"], &[("callback_url", "https://example.com/")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(code(&response.json::<Value>().await.unwrap()), "webhooks_disabled");
    // ... and its OpenAPI document does not offer it.
    let (_, spec) = unsigned.get_json("/openapi.json").await;
    let form = &spec["components"]["schemas"]["UploadForm"];
    assert!(form["properties"].get("callback_url").is_none(), "{form:#}");
    unsigned.stop().await;
}

#[tokio::test]
async fn a_pending_webhook_is_delivered_after_a_restart() {
    let (callback, seen) = start_receiver(&[200]).await;
    let storage = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(storage.path()).unwrap();
    let journal = Journal::new(blobs.clone());
    // What a stop leaves behind: a completed job whose webhook failed once and waits for its retry.
    let id = JobId::new();
    let file = FileRecord {
        index: 0,
        name: "notes.txt".to_owned(),
        media: MediaType::Other,
        bytes: 4,
        sha256: String::new(),
        key: keys::original(id, 0, MediaType::Other),
        state: FileState::Rejected,
        error: Some(Problem::new("unsupported_type", "test")),
        outputs: Vec::new(),
    };
    let variants = vec!["thumb".parse().unwrap()];
    let mut record = JobRecord::new(id, variants, vec![file], None, OffsetDateTime::now_utc());
    record.transition(JobState::Completed, OffsetDateTime::now_utc()).unwrap();
    let mut webhook = Webhook::new(callback.as_str());
    webhook.attempts = 1;
    webhook.last_status = Some(503);
    webhook.next_attempt_at = Some(OffsetDateTime::now_utc());
    record.webhook = Some(webhook);
    journal.create(&record).await.unwrap();

    let app = spawn_with(webhook_options(Some(storage.path().to_path_buf()))).await;
    let done = app.wait_for(&id.to_string(), Duration::from_secs(60), |doc| doc["webhook"]["state"] != "pending").await;
    assert_eq!(done["webhook"]["state"], "delivered", "{done:#}");
    assert_eq!(done["webhook"]["attempts"], 2);
    let deliveries = seen.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].signature_ok);
    assert_eq!(deliveries[0].body["id"], id.to_string());
    app.stop().await;
}
