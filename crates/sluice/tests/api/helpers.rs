use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sluice::{Server, Settings};
use sluice_testkit::{MailCatcher, S3Server};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running sluice on 127.0.0.1 with its own temp folder.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A change to the settings before the app starts.
pub type Tweak<'a> = Box<dyn FnOnce(&mut Settings) + 'a>;

/// How to start a test app.
#[derive(Default)]
pub struct Options<'a> {
    pub mail: Option<&'a MailCatcher>,
    pub s3: Option<&'a S3Server>,
    pub storage_dir: Option<PathBuf>,
    pub tweak: Option<Tweak<'a>>,
}

pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name)
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options<'_>) -> TestApp {
    // Logs show with `RUST_LOG=sluice=debug cargo test -- --nocapture`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::load(None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    settings.server.listen = address;
    settings.server.public_url = format!("http://{address}");
    settings.storage.url = options.storage_dir.unwrap_or_else(|| dir.path().join("storage")).display().to_string();
    settings.mail.url = format!("file://{}", dir.path().join("outbox").display()).parse().unwrap();
    settings.pipeline.retry_base_ms = 50;
    settings.pipeline.retry_max_ms = 200;
    settings.pipeline.shutdown_grace_secs = 5;
    if let Some(mail) = options.mail {
        settings.mail.url = mail.smtp_url().parse().unwrap();
    }
    if let Some(s3) = options.s3 {
        settings.storage.url = format!("s3://{}", s3.bucket());
        settings.storage.s3.endpoint = Some(s3.endpoint());
        settings.storage.s3.region = Some(s3.region().to_owned());
        settings.storage.s3.access_key_id = Some(s3.access_key().to_owned());
        settings.storage.s3.secret_access_key = Some(s3.secret_key().to_owned());
        settings.storage.s3.allow_http = Some(true);
    }
    if let Some(tweak) = options.tweak {
        tweak(&mut settings);
    }
    let server = Server::build_with_listener(settings, listener).await.unwrap();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let handle = tokio::spawn(server.run_until(async move { token.cancelled().await }));
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    TestApp { base: format!("http://{address}"), client, dir, stop, handle: Some(handle) }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Uploads `files` (sample names) with extra text fields.
    pub async fn upload(&self, files: &[&str], fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = Form::new();
        for name in files {
            let bytes = std::fs::read(sample(name)).unwrap();
            form = form.part("file", Part::bytes(bytes).file_name((*name).to_owned()));
        }
        for (key, value) in fields {
            form = form.text((*key).to_owned(), (*value).to_owned());
        }
        self.client.post(self.url("/v1/uploads")).multipart(form).send().await.unwrap()
    }

    /// Uploads raw parts: (file name, bytes, declared content type).
    pub async fn upload_parts(&self, parts: Vec<(&str, Vec<u8>, Option<&str>)>) -> reqwest::Response {
        let mut form = Form::new();
        for (name, bytes, mime) in parts {
            let mut part = Part::bytes(bytes).file_name(name.to_owned());
            if let Some(mime) = mime {
                part = part.mime_str(mime).unwrap();
            }
            form = form.part("file", part);
        }
        self.client.post(self.url("/v1/uploads")).multipart(form).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Polls a job until `done` says so, failing with the last document seen after `timeout`.
    pub async fn wait_for(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        let mut last = Value::Null;
        while started.elapsed() < timeout {
            let (status, document) = self.get_json(&format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{document}");
            if done(&document) {
                return document;
            }
            last = document;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {id} did not get there within {timeout:?}; last document: {last:#}");
    }

    /// Waits until conversion ended and no notice is pending.
    pub async fn wait_settled(&self, id: &str) -> Value {
        self.wait_for(id, Duration::from_secs(90), |doc| {
            matches!(doc["state"].as_str(), Some("completed" | "failed")) && doc["notification"]["state"] != "pending"
        })
        .await
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), handle).await.unwrap().unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}
