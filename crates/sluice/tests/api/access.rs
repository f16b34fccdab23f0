//! Access control and idempotency: bearer tokens, signed links (in documents and e-mails), the recipient
//! allow-list, the per-client upload limit and `Idempotency-Key`.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice::Settings;
use sluice_core::JobId;
use sluice_gateway::{RateLimitSettings, Secret};
use sluice_pipeline::LinkSigner;
use sluice_testkit::{MailCatcher, S3Server};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Options, TestApp, code, files_under, sample, spawn_with};

const TOKEN: &str = "test-token-0123456789abcdef";
const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef";

fn with_tokens(settings: &mut Settings) {
    settings.server.api_tokens = vec![Secret::new("other-token-0123456789abcdef"), Secret::new(TOKEN)];
    settings.server.signing_key = Some(Secret::new(SIGNING_KEY));
}

fn client(token: Option<&str>) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    }
    reqwest::Client::builder().no_proxy().default_headers(headers).timeout(Duration::from_secs(60)).build().unwrap()
}

async fn spawn_tweaked(tweak: impl FnOnce(&mut Settings) + 'static) -> TestApp {
    spawn_with(Options { tweak: Some(Box::new(tweak)), ..Options::default() }).await
}

/// An app whose API needs [`TOKEN`]; its `client` sends it.
async fn spawn_guarded(mail: Option<&MailCatcher>) -> TestApp {
    let mut app = spawn_with(Options { mail, tweak: Some(Box::new(with_tokens)), ..Options::default() }).await;
    app.client = client(Some(TOKEN));
    app
}

fn form(sample_name: &str, notify: Option<&str>) -> Form {
    let bytes = std::fs::read(sample(sample_name)).unwrap();
    let form = Form::new().part("file", Part::bytes(bytes).file_name(sample_name.to_owned()));
    match notify {
        Some(to) => form.text("notify", to.to_owned()),
        None => form,
    }
}

/// Uploads `form` with the app's client and expects 202.
async fn accept(app: &TestApp, form: Form) -> Value {
    let response = app.client.post(app.url("/v1/uploads")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test]
async fn tokens_guard_the_api_and_health_stays_open() {
    let app = spawn_guarded(None).await;
    let anonymous = client(None);
    let wrong = client(Some("not-the-token-0123456789abcdef"));

    for (who, expected_challenge) in [(&anonymous, "Bearer"), (&wrong, "Bearer error=\"invalid_token\"")] {
        let refused =
            who.post(app.url("/v1/uploads")).multipart(form("ladybird-pan-animated.gif", None)).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], expected_challenge);
        assert_eq!(code(&refused.json().await.unwrap()), "unauthorized");
        for path in ["/v1/jobs", "/metrics", "/v1/files/outputs/0193a000-0000-7000-8000-000000000000/0/thumb.webp"] {
            let response = who.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 401, "{path}");
        }
    }
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(anonymous.get(app.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    let openapi: Value = anonymous.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(openapi["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // Any of the configured tokens works.
    let accepted = app
        .client
        .post(app.url("/v1/uploads"))
        .multipart(form("ladybird-pan-animated.gif", None))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let document: Value = accepted.json().await.unwrap();
    let (status, _) = app.get_json(&format!("/v1/jobs/{}", document["id"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    let other = client(Some("other-token-0123456789abcdef"));
    assert_eq!(other.get(app.url("/v1/jobs")).send().await.unwrap().status(), 200);
    assert_eq!(other.get(app.url("/metrics")).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn signed_links_work_without_a_token_until_tampered_or_expired() {
    let app = spawn_guarded(None).await;
    let accepted = accept(&app, form("ladybird-pan-animated.gif", None)).await;
    let id = accepted["id"].as_str().unwrap();
    let done = app.wait_settled(id).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    let anonymous = client(None);

    let url = done["files"][0]["outputs"][0]["url"].as_str().unwrap();
    assert!(url.contains("?expires=") && url.contains("&sig="), "{url}");
    let file = anonymous.get(app.url(url)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    assert!(file.headers()["content-disposition"].to_str().unwrap().starts_with("inline; filename=\""));
    assert!(!file.bytes().await.unwrap().is_empty());
    // The job document's own links are signed too, and its file links keep working from there.
    let self_link = done["links"]["self"].as_str().unwrap();
    let via_link: Value = anonymous.get(app.url(self_link)).send().await.unwrap().json().await.unwrap();
    assert_eq!(via_link["id"], id);
    let events = anonymous.get(app.url(done["links"]["events"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(events.status(), 200);
    drop(events);

    // Tampered: another signature, or this signature on another file.
    let (path, query) = url.split_once('?').unwrap();
    let last = query.chars().last().unwrap();
    let tampered = format!("{}{}", &url[..url.len() - 1], if last == '0' { '1' } else { '0' });
    let other_path = done["files"][0]["outputs"][1]["url"].as_str().unwrap().split_once('?').unwrap().0;
    for bad in [tampered, format!("{other_path}?{query}"), path.to_owned() + "?sig=00"] {
        let refused = anonymous.get(app.url(&bad)).send().await.unwrap();
        let status = refused.status().as_u16();
        let body: Value = refused.json().await.unwrap();
        assert_eq!((status, code(&body)), (403, "forbidden"), "{bad}");
    }
    // Expired: correctly signed with the key, but the expiry has passed.
    let signer = LinkSigner::new(SIGNING_KEY.as_bytes().to_vec(), 60);
    let past = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap() - 10;
    let expired = format!("{path}?expires={past}&sig={}", signer.signature(path, past));
    let refused = anonymous.get(app.url(&expired)).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(code(&refused.json().await.unwrap()), "link_expired");
    // A signature does not open writes.
    let post = anonymous
        .post(app.url(&format!("/v1/uploads?{query}")))
        .multipart(form("ladybird-pan-animated.gif", None))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn links_in_notices_work_without_a_token() {
    let mail = MailCatcher::start().await.unwrap();
    let app = spawn_guarded(Some(&mail)).await;
    let accepted = accept(&app, form("ladybird-pan-animated.gif", Some("dev@example.com"))).await;
    app.wait_settled(accepted["id"].as_str().unwrap()).await;
    let messages = mail.wait_for_messages(1, Duration::from_secs(30)).await.unwrap();
    let text = messages[0]["text"].as_str().unwrap();
    let links: Vec<&str> = text
        .split_whitespace()
        .filter(|word| word.starts_with(&app.base))
        .map(|word| word.trim_end_matches(['.', ',', ')']))
        .collect();
    assert!(links.len() >= 2, "a job link and output links: {text}");
    let anonymous = client(None);
    for link in links {
        assert!(link.contains("sig="), "{link}");
        let response = anonymous.get(link).send().await.unwrap();
        assert_eq!(response.status(), 200, "{link}");
    }
    app.stop().await;
}

#[tokio::test]
async fn recipients_outside_the_allowed_domains_are_refused() {
    let app =
        spawn_tweaked(|settings| settings.mail.allowed_domains = vec!["example.com".into(), "bücher.de".into()]).await;
    let refused = app.upload(&["ladybird-pan-animated.gif"], &[("notify", "someone@elsewhere.test")]).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(code(&refused.json().await.unwrap()), "recipient_not_allowed");
    let subdomain = app.upload(&["ladybird-pan-animated.gif"], &[("notify", "someone@mail.example.com")]).await;
    assert_eq!(subdomain.status(), 400, "only the listed domain itself");
    assert!(files_under(&app.storage()).iter().all(|key| !key.starts_with("originals")), "nothing stays behind");
    let accepted = app.upload(&["ladybird-pan-animated.gif"], &[("notify", "Dev@EXAMPLE.com")]).await;
    assert_eq!(accepted.status(), 202);
    // An internationalised domain matches in either form, and the job names it as mail carries it.
    for to in ["ana@BÜCHER.de", "ana@xn--bcher-kva.de"] {
        let accepted = app.upload(&["ladybird-pan-animated.gif"], &[("notify", to)]).await;
        assert_eq!(accepted.status(), 202, "{to}");
        let job = accepted.json::<Value>().await.unwrap();
        assert_eq!(job["notification"]["to"], "ana@xn--bcher-kva.de", "{to}");
    }
    app.stop().await;
}

#[tokio::test]
async fn uploads_past_the_rate_limit_get_429_until_the_bucket_refills() {
    let app = spawn_tweaked(|settings| {
        settings.server.rate_limit = RateLimitSettings { uploads_per_minute: 60, burst: 2 };
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.upload(&["ladybird-pan-animated.gif"], &[]).await.status(), 202);
    }
    let refused = app.upload(&["ladybird-pan-animated.gif"], &[]).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(code(&refused.json().await.unwrap()), "rate_limited");
    // Other routes are not limited.
    assert_eq!(app.client.get(app.url("/v1/jobs")).send().await.unwrap().status(), 200);
    // After the time the server named, the client may upload again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(app.upload(&["ladybird-pan-animated.gif"], &[]).await.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_for() {
    let app = spawn_tweaked(|settings| {
        settings.server.rate_limit = RateLimitSettings { uploads_per_minute: 1, burst: 1 };
        settings.server.trust_forwarded_for = true;
    })
    .await;
    let send = |client_address: &'static str| {
        app.client
            .post(app.url("/v1/uploads"))
            .header("x-forwarded-for", format!("203.0.113.250, {client_address}"))
            .multipart(form("ladybird-pan-animated.gif", None))
            .send()
    };
    assert_eq!(send("198.51.100.1").await.unwrap().status(), 202);
    assert_eq!(send("198.51.100.1").await.unwrap().status(), 429);
    assert_eq!(send("198.51.100.2").await.unwrap().status(), 202, "another client has its own bucket");
    app.stop().await;
}

async fn upload_with_key(app: &TestApp, key: &str, sample_name: &str) -> (u16, Value, Option<String>) {
    let response = app
        .client
        .post(app.url("/v1/uploads"))
        .header("idempotency-key", key)
        .multipart(form(sample_name, None))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").map(|value| value.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), replayed)
}

/// The finished job records; a record the convert stage is rewriting at that moment also has a staged copy
/// (`{id}.json#n`) beside it for as long as the write is being flushed.
fn job_records(app: &TestApp) -> Vec<String> {
    files_under(&app.storage()).into_iter().filter(|key| key.starts_with("jobs/") && key.ends_with(".json")).collect()
}

#[tokio::test]
async fn the_same_idempotency_key_and_content_give_the_same_job() {
    let app = spawn_with(Options::default()).await;
    let (status, first, replayed) = upload_with_key(&app, "order-42", "ladybird-pan-animated.gif").await;
    assert_eq!((status, replayed), (202, None));
    let (status, again, replayed) = upload_with_key(&app, "order-42", "ladybird-pan-animated.gif").await;
    assert_eq!((status, replayed.as_deref()), (200, Some("true")));
    assert_eq!(again["id"], first["id"]);
    let (status, other, _) = upload_with_key(&app, "order-42", "fig-bowl-vignette-alpha.png").await;
    assert_eq!((status, code(&other)), (422, "idempotency_key_reused"));
    let (status, fresh, _) = upload_with_key(&app, "order-43", "ladybird-pan-animated.gif").await;
    assert_eq!(status, 202);
    assert_ne!(fresh["id"], first["id"]);
    assert_eq!(job_records(&app).len(), 2, "one job per key");
    let originals: Vec<String> =
        files_under(&app.storage()).into_iter().filter(|key| key.starts_with("originals/")).collect();
    assert_eq!(originals.len(), 2, "the replay and the refused upload left no files: {originals:?}");
    let (status, bad, _) = upload_with_key(&app, "with space", "ladybird-pan-animated.gif").await;
    assert_eq!((status, code(&bad)), (400, "invalid_idempotency_key"));
    // Two keys on one request cannot both name it: refused, as a comma-joined pair is.
    let response = app
        .client
        .post(app.url("/v1/uploads"))
        .header("idempotency-key", "order-44")
        .header("idempotency-key", "order-45")
        .multipart(form("ladybird-pan-animated.gif", None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let bad: Value = response.json().await.unwrap();
    assert_eq!(code(&bad), "invalid_idempotency_key");
    assert_eq!(job_records(&app).len(), 2, "the refused upload made no job");
    app.stop().await;
}

/// A process killed after claiming a key but before storing its job record leaves a claim that names no job.
/// A retry with that key takes the claim over once it is stale (a minute) or expired (a day), instead of
/// being refused for as long as the claim exists.
#[tokio::test]
async fn a_claim_left_by_a_crash_is_taken_over() {
    let app = spawn_with(Options::default()).await;
    let day = Duration::from_secs(24 * 60 * 60);
    for (key, age) in [("crash-stale", Duration::from_secs(120)), ("crash-expired", 2 * day)] {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        let claim = app.storage().join("idempotency").join(format!("{digest}.json"));
        std::fs::create_dir_all(claim.parent().unwrap()).unwrap();
        let lost_job = JobId::new();
        let claimed_at = (OffsetDateTime::now_utc() - age).format(&Rfc3339).unwrap();
        std::fs::write(&claim, serde_json::json!({ "job": lost_job, "claimed_at": claimed_at }).to_string()).unwrap();

        let (status, job, replayed) = upload_with_key(&app, key, "ladybird-pan-animated.gif").await;
        assert_eq!((status, replayed), (202, None), "{key}: {job}");
        assert_ne!(job["id"], serde_json::json!(lost_job), "{key}");
        // The key now belongs to the new job: a retry replays it.
        let (status, again, replayed) = upload_with_key(&app, key, "ladybird-pan-animated.gif").await;
        assert_eq!((status, replayed.as_deref()), (200, Some("true")), "{key}");
        assert_eq!(again["id"], job["id"], "{key}");
    }
    app.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_with_one_key_make_one_job() {
    let app = spawn_with(Options::default()).await;
    let sends = (0..4).map(|_| upload_with_key(&app, "burst-1", "dragonfly-on-branch.jpg"));
    let answers = futures::future::join_all(sends).await;
    let ids: Vec<&Value> = answers.iter().map(|(_, document, _)| &document["id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0] && id.is_string()), "{answers:?}");
    let fresh = answers.iter().filter(|(status, _, _)| *status == 202).count();
    assert_eq!(fresh, 1, "{answers:?}");
    assert_eq!(job_records(&app).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn instances_sharing_s3_agree_on_a_key() {
    // One after the other: the test S3 server checks If-None-Match before it writes, so two creates in the same
    // instant can both pass there (S3 and MinIO decide atomically). Same-instant races are covered on a folder
    // by `concurrent_uploads_with_one_key_make_one_job`.
    let s3 = S3Server::start().await.unwrap();
    let first = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    let second = spawn_with(Options { s3: Some(&s3), ..Options::default() }).await;
    let (status, accepted, _) = upload_with_key(&first, "shared-7", "dragonfly-on-branch.jpg").await;
    assert_eq!(status, 202);
    let (status, replay, replayed) = upload_with_key(&second, "shared-7", "dragonfly-on-branch.jpg").await;
    assert_eq!((status, replayed.as_deref()), (200, Some("true")));
    assert_eq!(replay["id"], accepted["id"]);
    let (status, other, _) = upload_with_key(&second, "shared-7", "fig-bowl-vignette-alpha.png").await;
    assert_eq!((status, code(&other)), (422, "idempotency_key_reused"));
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let shared = tempfile::tempdir().unwrap();
    let storage = shared.path().join("storage");
    let first = spawn_with(Options { storage_dir: Some(storage.clone()), ..Options::default() }).await;
    let (status, accepted, _) = upload_with_key(&first, "nightly-2026-11-26", "ladybird-pan-animated.gif").await;
    assert_eq!(status, 202);
    first.wait_settled(accepted["id"].as_str().unwrap()).await;
    first.stop().await;

    let second = spawn_with(Options { storage_dir: Some(storage), ..Options::default() }).await;
    let (status, replay, replayed) = upload_with_key(&second, "nightly-2026-11-26", "ladybird-pan-animated.gif").await;
    assert_eq!((status, replayed.as_deref()), (200, Some("true")));
    assert_eq!(replay["id"], accepted["id"]);
    assert_eq!(replay["state"], "completed");
    second.stop().await;
}

/// A form a web page on `origin` would post.
async fn post_from(app: &TestApp, origin: &str) -> reqwest::Response {
    let bytes = std::fs::read(sample("ladybird-pan-animated.gif")).unwrap();
    let form = Form::new().part("file", Part::bytes(bytes).file_name("ladybird.gif")).text("variants", "thumb");
    app.client.post(app.url("/v1/uploads")).header("Origin", origin).multipart(form).send().await.unwrap()
}

#[tokio::test]
async fn uploads_from_other_sites_web_pages_are_refused() {
    let app = spawn_with(Options::default()).await;
    let refused = post_from(&app, "http://evil.example").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    assert_eq!(code(&refused.json().await.unwrap()), "cross_origin_refused");
    assert_eq!(post_from(&app, "null").await.status(), 403, "a sandboxed page or a file");
    // A page on another name that resolves to this machine (DNS rebinding) names itself in Host and Origin alike.
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let bytes = std::fs::read(sample("ladybird-pan-animated.gif")).unwrap();
    let rebound = app
        .client
        .post(app.url("/v1/uploads"))
        .header("Host", format!("rebound.example:{port}"))
        .header("Origin", format!("http://rebound.example:{port}"))
        .multipart(Form::new().part("file", Part::bytes(bytes).file_name("ladybird.gif")))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403, "DNS rebinding");
    // An origin that is neither server.public_url nor the host the request went to is another site.
    assert_eq!(post_from(&app, &format!("http://localhost:{port}")).await.status(), 403, "Host says 127.0.0.1");
    assert!(files_under(&app.storage()).iter().all(|key| !key.starts_with("originals")), "nothing stored");
    // The gateway's own pages (its address, as the browser reached it) and clients that are not browsers.
    assert_eq!(post_from(&app, &app.base).await.status(), 202);
    assert_eq!(app.upload(&["ladybird-pan-animated.gif"], &[("variants", "thumb")]).await.status(), 202);
    // Reading is not refused, but other sites get no CORS headers, so their pages cannot read the answer.
    let read = app.client.get(app.url("/v1/variants")).header("Origin", "http://evil.example").send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert!(read.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn listed_origins_get_cors_headers_and_preflight_answers() {
    let app = spawn_tweaked(|settings| settings.server.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/uploads"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, idempotency-key")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://app.example.com");
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("idempotency-key"), "{allowed}");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));

    let accepted = post_from(&app, "https://app.example.com").await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(accepted.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(accepted.headers()["access-control-expose-headers"].to_str().unwrap().contains("location"));
    assert!(accepted.headers()["vary"].to_str().unwrap().contains("origin"));

    let other = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/uploads"))
        .header("Origin", "https://other.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    assert_eq!(post_from(&app, "https://other.example.com").await.status(), 403);
    app.stop().await;
}
