//! The real binary as a service: start it on a fixed port, kill it (SIGKILL or SIGTERM), start it again on
//! the same storage; plus a small HTTP client for the API.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::Value;

pub use crate::api_helpers::{code, files_under, sample};
use crate::batch_helpers::CONFIG;

/// Longest wait for the server to answer `/healthz` after a start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a process to exit after a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

/// Names of the variants in [`CONFIG`].
pub const VARIANTS: usize = 2;

/// One `sluice serve` process at a time, on a port and storage that survive restarts.
pub struct Sluice {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    pub starts: u32,
}

impl Sluice {
    /// A service storing in its temp folder (unless `env` names another `storage.url`), mailing to
    /// `mail_url` (`None`: `.eml` files in its temp folder), with fast retries; `env` adds or overrides
    /// `SLUICE__…` variables.
    pub fn new(mail_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let outbox = format!("file://{}", dir.path().join("outbox").display());
        let mail_url = mail_url.unwrap_or(&outbox);
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut vars: Vec<(String, String)> = vec![
            ("SLUICE__SERVER__LISTEN".into(), format!("127.0.0.1:{port}")),
            ("SLUICE__SERVER__PUBLIC_URL".into(), format!("http://127.0.0.1:{port}")),
            ("SLUICE__STORAGE__URL".into(), dir.path().join("storage").display().to_string()),
            ("SLUICE__MAIL__URL".into(), mail_url.to_owned()),
            ("SLUICE__MAIL__TIMEOUT_SECS".into(), "5".into()),
            ("SLUICE__PIPELINE__RETRY_BASE_MS".into(), "50".into()),
            ("SLUICE__PIPELINE__RETRY_MAX_MS".into(), "400".into()),
            ("SLUICE__LOG__FORMAT".into(), "json".into()),
            ("SLUICE__LOG__LEVEL".into(), "info".into()),
        ];
        for (key, value) in env {
            vars.retain(|(existing, _)| existing != key);
            vars.push(((*key).to_owned(), (*value).to_owned()));
        }
        Self { dir, port, env: vars, child: None, starts: 0 }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sluice.log")
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = log.len().saturating_sub(3000);
        log[log.floor_char_boundary(start)..].to_owned()
    }

    /// Starts the binary (the previous process must be gone) and waits until `/healthz` answers.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the previous process still runs");
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--config"])
            .arg(self.dir.path().join("config.toml"))
            .env_remove("SLUICE_CONFIG")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .env("NO_PROXY", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        let http = client();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice exited during start-up ({status}); log:\n{}", self.log_tail());
            }
            if let Ok(response) = http.get(self.url("/healthz")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "sluice not ready after {READY_TIMEOUT:?}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("sluice is not running").id()).unwrap()
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("sluice is not running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM (the process keeps running until it has drained). Through the `kill` command: the
    /// workspace forbids `unsafe`, which `libc::kill` needs.
    pub fn sigterm(&self) {
        let sent = Command::new("kill").args(["-s", "TERM", &self.pid().to_string()]).status().unwrap();
        assert!(sent.success(), "could not signal sluice");
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().expect("sluice is not running").try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if started.elapsed() > EXIT_TIMEOUT {
                self.kill9();
                panic!("sluice did not exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client for 127.0.0.1 with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap()
}

/// A file part: (name, bytes, declared content type).
pub type Upload = (String, Vec<u8>, Option<&'static str>);

/// `POST /v1/uploads` with `files` and text `fields`.
pub async fn upload(
    http: &reqwest::Client,
    base: &str,
    files: Vec<Upload>,
    fields: &[(&str, &str)],
) -> reqwest::Result<reqwest::Response> {
    let mut form = Form::new();
    for (name, bytes, mime) in files {
        let mut part = Part::bytes(bytes).file_name(name);
        if let Some(mime) = mime {
            part = part.mime_str(mime).unwrap();
        }
        form = form.part("file", part);
    }
    for (key, value) in fields {
        form = form.text((*key).to_owned(), (*value).to_owned());
    }
    http.post(format!("{base}/v1/uploads")).multipart(form).send().await
}

/// A sample as an upload part.
pub fn sample_part(name: &str) -> Upload {
    (name.to_owned(), std::fs::read(sample(name)).unwrap(), None)
}

/// The status, `Retry-After` and JSON body of a response.
pub async fn answer(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

/// `GET path` as (status, JSON).
pub async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether a job has ended and no notice is pending.
pub fn settled(doc: &Value) -> bool {
    matches!(doc["state"].as_str(), Some("completed" | "failed")) && doc["notification"]["state"] != "pending"
}

/// Polls every job in `ids` until `done` holds for all of them; a job that answers anything but 200 (a
/// 404 above all) fails at once. Returns the documents; fails after `timeout` with the last ones seen.
pub async fn wait_all(
    http: &reqwest::Client,
    base: &str,
    ids: &[String],
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> HashMap<String, Value> {
    let started = Instant::now();
    let mut docs = HashMap::new();
    loop {
        let mut pending = Vec::new();
        for id in ids {
            if docs.get(id).is_some_and(&done) {
                continue;
            }
            let (status, doc) = get_json(http, &format!("{base}/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "job {id} answered {status}: {doc}");
            if !done(&doc) {
                pending.push(id.clone());
            }
            docs.insert(id.clone(), doc);
        }
        if pending.is_empty() {
            return docs;
        }
        assert!(
            started.elapsed() < timeout,
            "{} job(s) not done after {timeout:?}; first: {:#}",
            pending.len(),
            docs[&pending[0]]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one sample of a Prometheus text exposition (`name{labels}`), 0 when absent.
pub async fn metric(http: &reqwest::Client, base: &str, sample: &str) -> f64 {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// A random number from the process's hash seed (the suite needs no RNG crate; each run differs).
pub fn random(salt: u64) -> u64 {
    RandomState::new().hash_one(salt)
}

/// A PNG of `width`×`height` with a gradient (quick to make and to convert).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The output keys a job document lists (`outputs/{job}/{n}/{variant}.{ext}`).
pub fn listed_outputs(doc: &Value) -> Vec<String> {
    let mut keys: Vec<String> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|file| file["outputs"].as_array().unwrap().iter())
        .map(|output| output["url"].as_str().unwrap().trim_start_matches("/v1/files/").to_owned())
        .collect();
    keys.sort();
    keys
}

/// Every stored file under `storage/prefix`, as storage keys.
pub fn stored(storage: &Path, prefix: &str) -> Vec<String> {
    files_under(&storage.join(prefix)).into_iter().map(|path| format!("{prefix}/{path}")).collect()
}

/// `count` files slow enough together to keep one worker busy for seconds: flat PNGs of `side`×`side`
/// (small to send, many pixels to decode and resize).
pub fn slow_files(count: usize, side: u32) -> Vec<Upload> {
    let image = image::RgbImage::from_pixel(side, side, image::Rgb([90, 140, 200]));
    let mut big = std::io::Cursor::new(Vec::new());
    image.write_to(&mut big, image::ImageFormat::Png).unwrap();
    let big = big.into_inner();
    (0..count).map(|n| (format!("big-{n}.png"), big.clone(), None)).collect()
}
