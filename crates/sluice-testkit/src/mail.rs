//! [`MailCatcher`]: a real maildev 3 on 127.0.0.1, read back through its `/api` inbox API.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::{KitError, tail};

/// How long maildev may take to answer on both ports (it usually takes about 2 s).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a first-time `npm install maildev@3` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on each HTTP request to the inbox API.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Start attempts when a chosen port turns out to be taken.
const START_ATTEMPTS: usize = 3;

/// A running maildev 3: SMTP on [`MailCatcher::smtp_url`], inbox API on [`MailCatcher::api_base`], both on
/// 127.0.0.1 with ports picked free, mails kept in a temp folder. The process (and its process group) is
/// killed on drop.
///
/// maildev is taken from `$SLUICE_MAILDEV`, else `$HOME/.cache/sluice-tools/maildev/node_modules/.bin/maildev`,
/// which is installed with `npm install maildev@3` (under a file lock) when missing.
pub struct MailCatcher {
    bin: PathBuf,
    extra_args: Vec<String>,
    smtp_port: u16,
    web_port: u16,
    dir: TempDir,
    child: Mutex<Option<Child>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for MailCatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailCatcher").field("smtp_port", &self.smtp_port).field("web_port", &self.web_port).finish()
    }
}

/// Two distinct ports that were free a moment ago.
fn free_ports() -> Result<(u16, u16), KitError> {
    let bind = || std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(KitError::io("binding a free port"));
    let (first, second) = (bind()?, bind()?);
    let port = |listener: &std::net::TcpListener| {
        listener.local_addr().map(|addr| addr.port()).map_err(KitError::io("reading a bound port"))
    };
    Ok((port(&first)?, port(&second)?))
}

/// Where maildev is, installing it first when it is missing (blocking).
fn locate_maildev() -> Result<PathBuf, KitError> {
    if let Some(path) = std::env::var_os("SLUICE_MAILDEV") {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(KitError::MaildevMissing { path }) };
    }
    let home = std::env::var_os("HOME").ok_or(KitError::NoHome)?;
    let dir = PathBuf::from(home).join(".cache/sluice-tools/maildev");
    let bin = dir.join("node_modules/.bin/maildev");
    if !bin.is_file() {
        install_maildev(&dir, &bin)?;
    }
    Ok(bin)
}

/// `npm install maildev@3` into `dir`, under a lock so that parallel test binaries install it once.
fn install_maildev(dir: &Path, bin: &Path) -> Result<(), KitError> {
    std::fs::create_dir_all(dir).map_err(KitError::io(format!("creating {}", dir.display())))?;
    let lock = File::create(dir.join(".install.lock")).map_err(KitError::io("creating the install lock"))?;
    lock.lock().map_err(KitError::io("taking the install lock"))?;
    if bin.is_file() {
        return Ok(()); // Another process installed it while we waited.
    }
    let log_path = dir.join("npm-install.log");
    let log = File::create(&log_path).map_err(KitError::io("creating the npm log"))?;
    let log_err = log.try_clone().map_err(KitError::io("duplicating the npm log"))?;
    let mut child = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .arg("maildev@3")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(KitError::io("running npm (is Node.js installed?)"))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(KitError::io("waiting for npm"))? {
            Some(status) => break status.to_string(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break format!("timed out after {} s", INSTALL_TIMEOUT.as_secs());
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    if bin.is_file() {
        Ok(())
    } else {
        Err(KitError::Install { dir: dir.to_owned(), status, output: tail(&log_path, 2000) })
    }
}

/// Kills the process group led by `child` (maildev and anything it started), then reaps the child.
fn kill_group(mut child: Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl MailCatcher {
    /// Starts maildev and waits (at most 20 s) until its inbox API answers `GET /api/healthz` and its SMTP
    /// port accepts connections.
    pub async fn start() -> Result<MailCatcher, KitError> {
        Self::start_with(&[]).await
    }

    /// Like [`MailCatcher::start`], with extra maildev flags such as `--incoming-user U --incoming-pass P`,
    /// `--max-message-size BYTES` or `--hide-extensions STARTTLS` (kept for [`MailCatcher::restart`]).
    pub async fn start_with(extra_args: &[&str]) -> Result<MailCatcher, KitError> {
        let extra_args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        let bin = tokio::task::spawn_blocking(locate_maildev).await.map_err(|error| KitError::Io {
            what: "locating maildev".into(),
            source: std::io::Error::other(error),
        })??;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|source| KitError::Http { method: "build", url: "(client)".into(), source })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::Builder::new()
                .prefix("sluice-maildev-")
                .tempdir()
                .map_err(KitError::io("creating a temp folder for maildev"))?;
            std::fs::create_dir_all(dir.path().join("mail")).map_err(KitError::io("creating the mail folder"))?;
            let (smtp_port, web_port) = free_ports()?;
            let catcher = MailCatcher {
                bin: bin.clone(),
                extra_args: extra_args.clone(),
                smtp_port,
                web_port,
                dir,
                child: Mutex::new(None),
                http: http.clone(),
            };
            match catcher.launch().await {
                Ok(()) => return Ok(catcher),
                // A port taken between picking and binding makes maildev exit: try other ports.
                Err(KitError::Exited { .. }) if attempt < START_ATTEMPTS => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// The SMTP server as a mail URL: `smtp://127.0.0.1:PORT`.
    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp_port)
    }

    /// The SMTP port.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The inbox API base, `http://127.0.0.1:PORT/api`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.web_port)
    }

    /// The folder maildev keeps its `.eml` files in.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message received, oldest first (`GET /api/email`): objects with `id`, `subject`, `from`/`to`
    /// (`[{address, name}]`), `headers`, `text`, `html`, `attachments`, `envelope`.
    pub async fn messages(&self) -> Result<Vec<Value>, KitError> {
        let url = format!("{}/email", self.api_base());
        let response = self.request(reqwest::Method::GET, "GET", &url).await?;
        response.json().await.map_err(|source| KitError::Http { method: "GET", url, source })
    }

    /// The raw RFC 5322 source of one message (`GET /api/email/{id}/source`).
    pub async fn source(&self, id: &str) -> Result<String, KitError> {
        let url = format!("{}/email/{id}/source", self.api_base());
        let response = self.request(reqwest::Method::GET, "GET", &url).await?;
        response.text().await.map_err(|source| KitError::Http { method: "GET", url, source })
    }

    /// Waits until at least `n` messages arrived, polling every 100 ms for at most `timeout`; fails with the
    /// last state seen (count and subjects, or the last error).
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<Value>, KitError> {
        let started = Instant::now();
        loop {
            let last = match self.messages().await {
                Ok(messages) if messages.len() >= n => return Ok(messages),
                Ok(messages) => {
                    let subjects: Vec<&str> =
                        messages.iter().map(|message| message["subject"].as_str().unwrap_or("?")).collect();
                    format!("{} message(s): {subjects:?}", messages.len())
                }
                Err(error) => format!("error: {error}"),
            };
            if started.elapsed() >= timeout {
                return Err(KitError::WaitTimeout { want: n, secs: started.elapsed().as_secs_f64(), last });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes every message (`DELETE /api/email/all`).
    pub async fn clear(&self) -> Result<(), KitError> {
        let url = format!("{}/email/all", self.api_base());
        self.request(reqwest::Method::DELETE, "DELETE", &url).await.map(drop)
    }

    /// Kills maildev (SIGKILL to its process group), as an outage would; the ports stay reserved for
    /// [`MailCatcher::restart`]. Does nothing when it is already stopped.
    pub fn stop(&self) {
        if let Some(child) = self.lock_child().take() {
            kill_group(child);
        }
    }

    /// Stops maildev if it runs and starts it again on the same ports and mail folder, waiting until ready.
    pub async fn restart(&self) -> Result<(), KitError> {
        self.stop();
        self.launch().await
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock cannot leave the Option inconsistent.
        self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn request(
        &self,
        method: reqwest::Method,
        name: &'static str,
        url: &str,
    ) -> Result<reqwest::Response, KitError> {
        let response = self.http.request(method, url).send().await.map_err(|source| KitError::Http {
            method: name,
            url: url.to_owned(),
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: String = response.text().await.unwrap_or_default().chars().take(300).collect();
        Err(KitError::Status { method: name, url: url.to_owned(), status: status.as_u16(), body })
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("maildev.log")
    }

    /// Spawns maildev and waits until both ports answer.
    async fn launch(&self) -> Result<(), KitError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(KitError::io("opening the maildev log"))?;
        let log_err = log.try_clone().map_err(KitError::io("duplicating the maildev log"))?;
        let child = Command::new(&self.bin)
            .args(["--ip", "127.0.0.1", "--web-ip", "127.0.0.1", "--smtp"])
            .arg(self.smtp_port.to_string())
            .arg("--web")
            .arg(self.web_port.to_string())
            .arg("--mail-directory")
            .arg(self.mail_dir())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(KitError::io(format!("starting {}", self.bin.display())))?;
        *self.lock_child() = Some(child);
        match self.wait_ready().await {
            Ok(()) => Ok(()),
            Err(error) => {
                self.stop();
                Err(error)
            }
        }
    }

    async fn wait_ready(&self) -> Result<(), KitError> {
        let started = Instant::now();
        let healthz = format!("{}/healthz", self.api_base());
        loop {
            let exited = self.lock_child().as_mut().and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                let log = tail(&self.log_path(), 2000);
                return Err(KitError::Exited { service: "maildev", status: status.to_string(), log });
            }
            let web = match self.http.get(&healthz).send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("healthz answered {}", response.status())),
                Err(error) => Err(format!("healthz: {error}")),
            };
            let smtp = match tokio::net::TcpStream::connect(("127.0.0.1", self.smtp_port)).await {
                Ok(_) => Ok(()),
                Err(error) => Err(format!("smtp port {}: {error}", self.smtp_port)),
            };
            let last = match (web, smtp) {
                (Ok(()), Ok(())) => return Ok(()),
                (web, smtp) => format!("{:?} / {:?}", web.err(), smtp.err()),
            };
            if started.elapsed() >= READY_TIMEOUT {
                let log = tail(&self.log_path(), 1000);
                return Err(KitError::NotReady {
                    service: "maildev",
                    secs: READY_TIMEOUT.as_secs(),
                    last: format!("{last}; log: {log}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MailCatcher {
    fn drop(&mut self) {
        self.stop();
    }
}
