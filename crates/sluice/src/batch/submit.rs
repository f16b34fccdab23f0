//! `sluice submit INPUT_DIR --server URL`: uploads every image of a folder to a running gateway, one job per
//! file with a bounded number in flight, follows each job over server-sent events (polling the job document
//! when the stream fails), and reports like `sluice convert`.
//!
//! Files are streamed from disk into the multipart body (never read whole into memory). Files are sniffed
//! and probed before the runtime starts, on the main thread; the async tasks only do network and small
//! writes (the latter on blocking threads). Uploads that meet a 408, 429, 5xx or a connection error are
//! retried with backoff (honouring `Retry-After`); a server that stays unreachable or keeps answering 5xx
//! ends the run with status 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode, header};
use serde::Deserialize;
use sluice_convert::{ConvertLimits, probe};
use sluice_core::{EmailAddress, MediaType, Problem, VariantName};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::classify::{self, Handler, NotConverted};
use super::events::EventParser;
use super::progress::Progress;
use super::report::RunSummary;
use super::walk::{self, InputFile};
use super::{FileReport, Outcome, OutputFacts, output};

/// Attempts at uploading one file before the server is declared unavailable.
const UPLOAD_ATTEMPTS: u32 = 4;
/// Consecutive failed polls of a job before the server is declared unreachable.
const POLL_FAILURES: u32 = 10;
/// Bytes read from each image before the upload, to learn its dimensions from the header.
const PROBE_LEN: usize = 256 << 10;
/// Longest wait for the next bytes of an event stream (the server sends a keep-alive every 15 s).
const EVENT_IDLE: Duration = Duration::from_secs(45);
/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Error codes that concern the whole run (the request, not the file): they stop the run.
const FATAL_CODES: [&str; 4] = ["unknown_variant", "invalid_notify", "unknown_field", "unauthorized"];

/// What `sluice submit` was asked to do.
#[derive(Debug)]
pub struct SubmitArgs {
    /// The folder to upload.
    pub input: PathBuf,
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Bearer token for a server with `server.api_tokens` set.
    pub token: Option<String>,
    /// An address to notify when each job ends.
    pub notify: Option<String>,
    /// A subset of the server's variants (all when empty).
    pub variants: Vec<String>,
    /// Files in flight at once.
    pub concurrency: usize,
    /// Where to download outputs and write the summaries (nothing is written locally without it).
    pub out: Option<PathBuf>,
    /// Longest wait for one job to finish.
    pub job_timeout: Duration,
}

/// An image to upload, with what was learnt about it before.
struct Upload {
    file: InputFile,
    media: MediaType,
    bytes: u64,
    dimensions: Option<(u32, u32)>,
}

/// Runs the command; `Err` is a fatal error (exit status 1).
pub fn run(args: &SubmitArgs) -> anyhow::Result<ExitCode> {
    let notify = match args.notify.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => Some(text.parse::<EmailAddress>().with_context(|| format!("--notify {text:?}"))?),
        None => None,
    };
    let mut variants = Vec::new();
    for name in args.variants.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        variants.push(name.parse::<VariantName>().with_context(|| format!("--variants {name:?}"))?);
    }
    let base = args.server.trim_end_matches('/').to_owned();
    if base.starts_with("https://") {
        bail!("--server {base}: this build speaks plain http:// only (put a local proxy in front for TLS)");
    }
    if !base.starts_with("http://") {
        bail!("--server {base}: expected a URL such as http://127.0.0.1:8080");
    }
    let input = walk::canonical_input(&args.input)?;
    let out = args.out.as_deref().map(|out| walk::prepare_output(out, &input)).transpose()?;
    let started = Instant::now();
    let exclude = out.as_ref().filter(|out| out.starts_with(&input)).cloned();
    let walked = walk::walk(&input, exclude.as_deref())?;

    let progress = Arc::new(Progress::new(walked.files.len()));
    let mut reports = walked.not_walked;
    let mut uploads = Vec::new();
    for file in walked.files {
        match inspect(file) {
            Inspected::Upload(upload) => uploads.push(upload),
            Inspected::Done(report) => {
                progress.finished(&report);
                reports.push(report);
            }
        }
    }

    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = args.token.as_deref() {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token must be visible ASCII characters")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("sluice-submit/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let context = Arc::new(Shared {
        client,
        base,
        notify: notify.map(|address| address.to_string()),
        variants: (!variants.is_empty())
            .then(|| variants.iter().map(VariantName::as_str).collect::<Vec<_>>().join(",")),
        out: out.clone(),
        job_timeout: args.job_timeout,
        progress: Arc::clone(&progress),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-submit")
        .build()
        .context("cannot start the async runtime")?;
    let submitted = runtime.block_on(submit_all(context, uploads, args.concurrency.max(1)));
    progress.finish();
    reports.extend(submitted?);
    reports.sort_by(|a, b| a.path.cmp(&b.path));

    let summary = RunSummary {
        command: "submit",
        input: &args.input,
        files: &reports,
        elapsed: started.elapsed(),
        variants: &[],
    };
    if let Some(out) = &out {
        summary.write_files(out)?;
    }
    print!("{}", summary.table());
    if let Some(out) = &out {
        println!("  summary     {}", out.join("summary.html").display());
    }
    Ok(super::exit_code(&reports))
}

/// What the look at a file before uploading found.
enum Inspected {
    /// An image or a table to upload.
    Upload(Upload),
    /// Nothing to upload: the file's final report.
    Done(FileReport),
}

/// Sniffs a file and reads an image's dimensions from its header; what the server does not convert becomes its
/// final report.
fn inspect(file: InputFile) -> Inspected {
    let unreadable = |relative: PathBuf, error: std::io::Error| {
        FileReport::with_problem(
            relative,
            Outcome::Rejected,
            0,
            Problem::new("unreadable", format!("cannot read: {error}")),
        )
    };
    let mut handle = match classify::open_regular(&file.absolute) {
        Ok(handle) => handle,
        Err(error) => return Inspected::Done(unreadable(file.relative, error)),
    };
    let bytes = handle.metadata().map(|meta| meta.len()).unwrap_or(0);
    let head = match classify::read_head(&mut handle, PROBE_LEN) {
        Ok(head) => head,
        Err(error) => return Inspected::Done(unreadable(file.relative, error)),
    };
    let name = file.relative.file_name().unwrap_or_default();
    match classify::classify(&head, name) {
        Ok(Handler::Image(media)) => {
            // Best effort: a header beyond the first PROBE_LEN bytes leaves the dimensions unknown.
            let limits = ConvertLimits { max_pixels: u64::MAX };
            let dimensions = probe(&head, &limits).ok().map(|info| (info.width, info.height));
            Inspected::Upload(Upload { file, media, bytes, dimensions })
        }
        Ok(Handler::Report(media)) => Inspected::Upload(Upload { file, media, bytes, dimensions: None }),
        Err(NotConverted::Skip(problem)) => {
            Inspected::Done(FileReport::with_problem(file.relative, Outcome::Skipped, bytes, problem))
        }
        Err(NotConverted::Reject(problem)) => {
            Inspected::Done(FileReport::with_problem(file.relative, Outcome::Rejected, bytes, problem))
        }
    }
}

/// What every upload task shares.
struct Shared {
    client: Client,
    base: String,
    notify: Option<String>,
    variants: Option<String>,
    out: Option<PathBuf>,
    job_timeout: Duration,
    progress: Arc<Progress>,
}

impl Shared {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }
}

/// Uploads and follows every file, at most `concurrency` at a time. The first fatal error stops the rest.
async fn submit_all(context: Arc<Shared>, uploads: Vec<Upload>, concurrency: usize) -> anyhow::Result<Vec<FileReport>> {
    if uploads.is_empty() {
        return Ok(Vec::new());
    }
    check_server(&context).await?;
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks: JoinSet<anyhow::Result<FileReport>> = JoinSet::new();
    let mut reports = Vec::with_capacity(uploads.len());
    let collect = |joined: Result<anyhow::Result<FileReport>, tokio::task::JoinError>,
                   reports: &mut Vec<FileReport>|
     -> anyhow::Result<()> {
        let report = joined.context("an upload task failed")??;
        context.progress.finished(&report);
        reports.push(report);
        Ok(())
    };
    for upload in uploads {
        let permit = Arc::clone(&slots).acquire_owned().await.context("upload slots closed")?;
        let task_context = Arc::clone(&context);
        tasks.spawn(async move {
            let _permit = permit;
            submit_one(&task_context, upload).await
        });
        while let Some(joined) = tasks.try_join_next() {
            collect(joined, &mut reports)?;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined, &mut reports)?;
    }
    Ok(reports)
}

/// Fails fast, with a clear message, when nothing answers at the server's address.
async fn check_server(context: &Shared) -> anyhow::Result<()> {
    let url = context.url("/healthz");
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        match context.client.get(&url).timeout(Duration::from_secs(10)).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("GET /healthz answered {}", response.status()),
            Err(error) => last = sluice_core::error_chain(&error),
        }
    }
    bail!("cannot reach the sluice server at {}: {last}", context.base)
}

/// Uploads one file, follows its job to the end and (with `--out`) downloads its outputs.
async fn submit_one(context: &Shared, upload: Upload) -> anyhow::Result<FileReport> {
    let relative = upload.file.relative.clone();
    let mut report = FileReport::new(relative.clone(), Outcome::Failed, upload.bytes);
    report.media = Some(upload.media);
    report.dimensions = upload.dimensions;
    let accepted = match send_upload(context, &upload).await? {
        Ok(document) => document,
        Err(problem) => {
            report.outcome = Outcome::Rejected;
            report.problem = Some(problem);
            return Ok(report);
        }
    };
    report.job = Some(accepted.id.clone());
    let Some(document) = follow(context, &accepted, &relative).await? else {
        report.problem = Some(Problem::new(
            "timeout",
            format!("job {} did not finish within {} s", accepted.id, context.job_timeout.as_secs()),
        ));
        return Ok(report);
    };
    let Some(file) = document.files.into_iter().next() else {
        report.problem = Some(Problem::new("bad_response", "the job document lists no file"));
        return Ok(report);
    };
    report.sha256 = Some(file.sha256);
    match file.state.as_str() {
        "converted" => {
            report.outcome = Outcome::Converted;
            report.processed_now = true;
        }
        "rejected" => {
            report.outcome = Outcome::Rejected;
            report.problem = file.error.or_else(|| Some(Problem::new("rejected", "the server rejected the file")));
        }
        _ => {
            report.problem = Some(document.error.unwrap_or_else(|| {
                Problem::new("job_failed", format!("the job ended {} with the file {}", document.state, file.state))
            }));
        }
    }
    for output in file.outputs {
        let Some(media) = media_from_mime(&output.content_type) else { continue };
        let facts =
            OutputFacts { name: output.name, media, width: output.width, height: output.height, bytes: output.bytes };
        let url = context.url(&output.url);
        if let Some(out) = &context.out {
            let path = output::output_path(&relative, &facts.name, media);
            download(context, &url, out, &path).await?;
            report.output_paths.push(path);
        }
        report.output_urls.push(url);
        report.outputs.push(facts);
    }
    Ok(report)
}

/// Sends the upload, retrying what can pass. `Ok(Err(problem))` is the server refusing this file;
/// `Err` is fatal (the server is unavailable, or the request itself is wrong for every file).
async fn send_upload(context: &Shared, upload: &Upload) -> anyhow::Result<Result<JobDocument, Problem>> {
    let url = context.url("/v1/uploads");
    let shown = super::report::display_path(&upload.file.relative);
    let mut last = String::new();
    for attempt in 1..=UPLOAD_ATTEMPTS {
        let mut delay = Duration::from_millis(500 << (attempt - 1));
        let file = match open_for_upload(&upload.file.absolute).await {
            Ok(file) => file,
            Err(error) => return Ok(Err(Problem::new("unreadable", format!("cannot read: {error}")))),
        };
        let length = file.metadata().await.map(|meta| meta.len()).context("cannot stat an opened file")?;
        // Control characters (a tab, an escape) would break the part's header: the server would refuse the form.
        let name = part_file_name(&upload.file.relative.file_name().unwrap_or_default().to_string_lossy());
        let part = Part::stream_with_length(file, length).file_name(name).mime_str(upload.media.mime())?;
        let mut form = Form::new().part("file", part);
        if let Some(variants) = &context.variants {
            form = form.text("variants", variants.clone());
        }
        if let Some(notify) = &context.notify {
            form = form.text("notify", notify.clone());
        }
        match context.client.post(&url).multipart(form).send().await {
            Err(error) => last = sluice_core::error_chain(&error),
            Ok(response) => {
                let status = response.status();
                if status == StatusCode::OK || status == StatusCode::ACCEPTED {
                    let document: JobDocument = response
                        .json()
                        .await
                        .with_context(|| format!("{shown}: the server's answer is not a job document"))?;
                    return Ok(Ok(document));
                }
                if let Some(after) = retry_after(&response) {
                    delay = after;
                }
                let problem = error_body(response).await;
                let retryable = status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS;
                if retryable {
                    last = format!("{status}: {}: {}", problem.code, problem.message);
                } else if status == StatusCode::UNAUTHORIZED
                    || status == StatusCode::FORBIDDEN
                    || FATAL_CODES.contains(&problem.code.as_str())
                {
                    bail!("the server refused the upload of {shown} ({status}): {}: {}", problem.code, problem.message);
                } else {
                    return Ok(Err(problem));
                }
            }
        }
        if attempt < UPLOAD_ATTEMPTS {
            tokio::time::sleep(delay).await;
        }
    }
    bail!("the server at {} did not take {shown} after {UPLOAD_ATTEMPTS} attempts: {last}", context.base)
}

/// Opens a file to stream it, without following a symbolic link.
async fn open_for_upload(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = options.open(path).await?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// Follows a job until it is settled: over its event stream, then by polling if the stream breaks.
/// `Ok(None)` when it did not settle within the job timeout.
async fn follow(context: &Shared, accepted: &JobDocument, relative: &Path) -> anyhow::Result<Option<JobDocument>> {
    if accepted.is_settled() {
        return Ok(Some(accepted.clone()));
    }
    let deadline = tokio::time::Instant::now() + context.job_timeout;
    let shown = super::report::display_path(relative);
    let streamed = tokio::time::timeout_at(deadline, follow_events(context, &accepted.links.events, &shown)).await;
    let mut last_seen = match streamed {
        Err(_) => return Ok(None),
        Ok(Ok(Some(document))) if document.is_settled() => return Ok(Some(document)),
        Ok(Ok(Some(document))) => document,
        Ok(Ok(None) | Err(_)) => accepted.clone(),
    };
    // The stream broke or ended early: the job document is the truth; poll it.
    let url = context.url(&accepted.links.self_);
    let mut failures = 0;
    loop {
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        match context.client.get(&url).timeout(Duration::from_secs(30)).send().await {
            Ok(response) if response.status().is_success() => match response.json::<JobDocument>().await {
                Ok(document) => {
                    failures = 0;
                    if document.is_settled() {
                        return Ok(Some(document));
                    }
                    context.progress.note(&format!("{shown}: {}", document.state));
                    last_seen = document;
                }
                Err(_) => failures += 1,
            },
            Ok(response) if response.status().is_client_error() => {
                let problem = error_body(response).await;
                bail!("job {} of {shown}: {}: {}", last_seen.id, problem.code, problem.message);
            }
            Ok(_) | Err(_) => failures += 1,
        }
        if failures >= POLL_FAILURES {
            bail!("lost the sluice server at {} while following job {} of {shown}", context.base, last_seen.id);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads a job's event stream until it ends; returns the last document seen. `Err` when the stream cannot be
/// opened or breaks (the caller then polls).
async fn follow_events(context: &Shared, events_path: &str, shown: &str) -> anyhow::Result<Option<JobDocument>> {
    let response = context
        .client
        .get(context.url(events_path))
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await?
        .error_for_status()?;
    let mut body = response.bytes_stream();
    let mut parser = EventParser::default();
    let mut last = None;
    loop {
        let chunk = match tokio::time::timeout(EVENT_IDLE, body.next()).await {
            Err(_) => bail!("the event stream went quiet"),
            Ok(None) => return Ok(last),
            Ok(Some(chunk)) => chunk?,
        };
        for event in parser.feed(&chunk) {
            let Ok(document) = serde_json::from_str::<JobDocument>(&event.data) else { continue };
            context.progress.note(&format!("{shown}: {} ({})", document.state, event.name));
            let settled = document.is_settled();
            last = Some(document);
            if settled {
                return Ok(last);
            }
        }
    }
}

/// Downloads one output into the output folder (atomically, on a blocking thread).
async fn download(context: &Shared, url: &str, out: &Path, relative: &Path) -> anyhow::Result<()> {
    let response = context
        .client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("cannot download {url}"))?;
    let bytes = response.bytes().await.with_context(|| format!("cannot download {url}"))?;
    let (out, relative) = (out.to_path_buf(), relative.to_path_buf());
    tokio::task::spawn_blocking(move || output::write_atomically(&out, &relative, &bytes))
        .await
        .context("the writing task failed")?
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The `{"error":{"code","message"}}` of an error answer, or a stand-in naming the status.
async fn error_body(response: reqwest::Response) -> Problem {
    #[derive(Deserialize)]
    struct Body {
        error: Problem,
    }
    let status = response.status();
    match response.json::<Body>().await {
        Ok(body) => body.error,
        Err(_) => Problem::new(format!("http_{}", status.as_u16()), format!("the server answered {status}")),
    }
}

fn media_from_mime(mime: &str) -> Option<MediaType> {
    let essence = |mime: &str| mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let wanted = essence(mime);
    [MediaType::Jpeg, MediaType::Png, MediaType::Gif, MediaType::Webp, MediaType::Pdf, MediaType::Html]
        .into_iter()
        .find(|media| essence(media.mime()) == wanted)
}

/// The parts of the server's job document this command reads.
#[derive(Clone, Debug, Deserialize)]
struct JobDocument {
    id: String,
    state: String,
    #[serde(default)]
    files: Vec<FileDocument>,
    notification: Option<NotificationDocument>,
    error: Option<Problem>,
    links: JobLinks,
}

impl JobDocument {
    /// Conversion ended and no notice is still due: nothing more will happen to the job.
    fn is_settled(&self) -> bool {
        matches!(self.state.as_str(), "completed" | "failed")
            && self.notification.as_ref().is_none_or(|notification| notification.state != "pending")
    }
}

#[derive(Clone, Debug, Deserialize)]
struct FileDocument {
    state: String,
    #[serde(default)]
    sha256: String,
    error: Option<Problem>,
    #[serde(default)]
    outputs: Vec<OutputDocument>,
}

#[derive(Clone, Debug, Deserialize)]
struct OutputDocument {
    name: String,
    url: String,
    content_type: String,
    /// Absent for reports, which have no pixel size.
    #[serde(default)]
    width: u32,
    #[serde(default)]
    height: u32,
    bytes: u64,
}

#[derive(Clone, Debug, Deserialize)]
struct NotificationDocument {
    state: String,
}

#[derive(Clone, Debug, Deserialize)]
struct JobLinks {
    #[serde(rename = "self")]
    self_: String,
    events: String,
}

/// A file name as a multipart part may carry it: control characters become `_` (the server drops them from
/// names anyway, and a raw one breaks the part's header).
fn part_file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { '_' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_file_names_carry_no_control_characters() {
        assert_eq!(part_file_name("a\u{1b}b\tc \"q\".png"), "a_b_c \"q\".png");
        assert_eq!(part_file_name("Zoë.jpg"), "Zoë.jpg");
    }
}
