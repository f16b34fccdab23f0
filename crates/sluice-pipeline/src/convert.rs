//! The convert stage: takes job ids, converts every pending file of the job into its variants off the async
//! threads, records each result as it comes, and hands finished jobs with a recipient to the notify stage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use futures::stream::{FuturesUnordered, StreamExt};
use sluice_core::{
    FileRecord, FileState, JobEventKind, JobId, JobState, MediaType, NotificationState, OutputRecord, Problem,
    VariantName, VariantSpec, error_chain, keys,
};
use sluice_report::{ReportError, ReportHeading, TabularKind, render_report_from_reader};
use sluice_storage::StoreError;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::Reports;
use crate::pipeline::{Shared, needs_conversion, now};
use crate::webhook::stage::Due;

/// What became of one file.
enum FileOutcome {
    /// Every variant was written.
    Converted(Vec<OutputRecord>),
    /// The file cannot be converted; the job goes on.
    Rejected(Problem),
    /// Storage failed past its retries: the job cannot go on.
    JobFailed(Problem),
}

/// Where a finished job goes next: the notify stage and the webhook stage, each when the job asks for it.
pub(crate) struct Handoff {
    /// The notify stage's queue.
    pub(crate) notify: mpsc::Sender<JobId>,
    /// The webhook stage's queue.
    pub(crate) webhook: mpsc::Sender<Due>,
}

/// Runs the stage until the pipeline stops or its queue closes. At most `2 × workers` jobs are open at once;
/// the conversions themselves are bounded by the CPU semaphore.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<JobId>,
    requeue: mpsc::Sender<JobId>,
    handoff: Handoff,
    jobs: TaskTracker,
) {
    let handoff = Arc::new(handoff);
    let open_jobs = Arc::new(tokio::sync::Semaphore::new(shared.settings.effective_workers() * 2));
    loop {
        let slot = tokio::select! {
            () = shared.stopping.cancelled() => break,
            slot = Arc::clone(&open_jobs).acquire_owned() => match slot { Ok(slot) => slot, Err(_) => break },
        };
        let id = tokio::select! {
            () = shared.stopping.cancelled() => break,
            id = queue.recv() => match id { Some(id) => id, None => break },
        };
        let shared = Arc::clone(&shared);
        let requeue = requeue.clone();
        let handoff = Arc::clone(&handoff);
        let span = tracing::info_span!("job", job_id = %id);
        jobs.spawn(
            async move {
                convert_job(&shared, id, requeue, &handoff).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
    tracing::info!("convert stage stopped taking jobs");
}

/// Converts the pending files of one job and records the outcome.
async fn convert_job(shared: &Arc<Shared>, id: JobId, requeue: mpsc::Sender<JobId>, handoff: &Handoff) {
    let mut record = match shared.with_storage_retries("load job record", || shared.journal.load(id)).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            tracing::warn!("queued job has no record; dropped");
            return;
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot load job record; will try again");
            shared.retry_later(id, requeue);
            return;
        }
    };
    if needs_conversion(record.state) {
        if let Err(error) = record.transition(JobState::Running, now()) {
            tracing::error!(error = %error, "job cannot start");
            return;
        }
        if let Err(error) = shared.save(&record).await {
            tracing::error!(error = %error, "cannot record that the job started; will try again");
            shared.retry_later(id, requeue);
            return;
        }
        shared.publish(JobEventKind::Running, &record);
        tracing::info!(attempt = record.attempts, files = record.files.len(), "converting");

        let variants: Arc<Vec<(VariantName, VariantSpec)>> = Arc::new(
            record
                .variants
                .iter()
                .filter_map(|name| shared.convert.variants.get(name).map(|spec| (name.clone(), *spec)))
                .collect(),
        );
        let mut conversions: FuturesUnordered<_> = record
            .files
            .iter()
            .filter(|file| file.state == FileState::Pending)
            .cloned()
            .map(|file| {
                let variants = Arc::clone(&variants);
                async move {
                    let index = file.index;
                    let span = tracing::info_span!("file", index);
                    (index, convert_file(shared, id, file, variants).instrument(span).await)
                }
            })
            .collect();

        let mut failure = None;
        // The job's wall time is bounded: when the deadline passes, the files still unconverted are rejected
        // (their conversions are dropped; a blocking conversion already running keeps its CPU permit until
        // it returns or reaches `file_timeout_secs`).
        let job_timeout = Duration::from_secs(shared.settings.job_timeout_secs);
        let deadline = tokio::time::Instant::now() + job_timeout;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, conversions.next()).await else {
                drop(conversions);
                reject_unfinished(&mut record, job_timeout);
                shared.publish(JobEventKind::File, &record);
                break;
            };
            let Some((index, outcome)) = next else { break };
            let Some(file) = record.files.iter_mut().find(|file| file.index == index) else { continue };
            match outcome {
                FileOutcome::Converted(outputs) => {
                    file.state = FileState::Converted;
                    file.outputs = outputs;
                    file.error = None;
                }
                FileOutcome::Rejected(problem) => {
                    tracing::info!(code = %problem.code, "file rejected");
                    file.state = FileState::Rejected;
                    file.outputs.clear();
                    file.error = Some(problem);
                }
                FileOutcome::JobFailed(problem) => {
                    failure = Some(problem);
                    continue;
                }
            }
            record.updated_at = now();
            if let Err(error) = shared.save(&record).await {
                failure = Some(storage_problem(&error));
            }
            shared.publish(JobEventKind::File, &record);
        }

        let (next, kind) = match failure {
            // Storage went away past the retries: the job runs again later (what was converted stays done)
            // rather than fail for an outage; only an outage that outlasts every run fails it.
            Some(problem) if problem.code == STORAGE_UNAVAILABLE && record.attempts < RUNS_THROUGH_OUTAGES => {
                tracing::warn!(attempt = record.attempts, "storage unreachable; the job runs again shortly");
                shared.retry_later(id, requeue);
                return;
            }
            Some(problem) => {
                tracing::error!(code = %problem.code, message = %problem.message, "job failed");
                record.error = Some(problem);
                (JobState::Failed, JobEventKind::Failed)
            }
            None => (JobState::Completed, JobEventKind::Completed),
        };
        if let Err(error) = record.transition(next, now()) {
            tracing::error!(error = %error, "job cannot end");
            return;
        }
        if let Err(error) = shared.save(&record).await {
            tracing::error!(error = %error, "cannot record the job's end; the job runs again shortly");
            shared.retry_later(id, requeue);
            return;
        }
        shared.metrics.job_finished(next == JobState::Completed);
        shared.publish(kind, &record);
        tracing::info!(state = next.as_str(), "job finished");
        if record.webhook_due() && handoff.webhook.send(Due::now(id)).await.is_err() {
            tracing::warn!("webhook stage closed; the webhook is delivered on the next start");
        }
    }
    if record.notification.state == NotificationState::Pending && handoff.notify.send(id).await.is_err() {
        tracing::warn!("notify stage closed; the notice is sent on the next start");
    }
}

/// Rejects every file of `record` still pending when the job's wall time ran out.
fn reject_unfinished(record: &mut sluice_core::JobRecord, limit: Duration) {
    let mut rejected = 0;
    for file in record.files.iter_mut().filter(|file| file.state == FileState::Pending) {
        file.state = FileState::Rejected;
        file.outputs.clear();
        file.error = Some(Problem::new(
            "job_timeout",
            format!("the job ran longer than {} s before this file was converted", limit.as_secs()),
        ));
        rejected += 1;
    }
    record.updated_at = now();
    tracing::warn!(rejected, limit_secs = limit.as_secs(), "job wall time ran out; unfinished files rejected");
}

/// One output made from a file, before it is written.
struct Product {
    name: String,
    key: String,
    media: MediaType,
    width: u32,
    height: u32,
    bytes: Vec<u8>,
}

/// What the blocking part of a file's conversion gives back.
type Made = Result<Vec<Product>, FileOutcome>;

/// Converts one file on a blocking thread (images into their variants, tabular data into its reports), within
/// the file timeout, and writes the outputs.
async fn convert_file(
    shared: &Shared,
    job: JobId,
    file: FileRecord,
    variants: Arc<Vec<(VariantName, VariantSpec)>>,
) -> FileOutcome {
    if !file.media.is_image() && !is_report_input(file.media) {
        return FileOutcome::Rejected(Problem::new(
            "unsupported_type",
            format!("{} files are not converted; sluice converts {CONVERTED_KINDS}", file.media.mime()),
        ));
    }
    // An image is read whole into memory for decoding: a larger one is rejected unread, so that
    // `workers × max_original_bytes` bounds what conversions hold. Tables are streamed, bounded by the
    // report limits instead.
    let max_bytes = shared.settings.max_original_bytes;
    if file.media.is_image() && file.bytes > max_bytes {
        return FileOutcome::Rejected(Problem::new(
            "file_too_large",
            format!("the file has {} bytes; files over {max_bytes} bytes are not converted", file.bytes),
        ));
    }
    let started = Instant::now();
    // The permit bounds both CPU and memory: the original is read only once a worker is free.
    let Ok(permit) = Arc::clone(&shared.cpu).acquire_owned().await else {
        return FileOutcome::JobFailed(Problem::new(
            "shutting_down",
            "the service stopped before the file was converted",
        ));
    };
    let span = tracing::Span::current();
    let work = if file.media.is_image() {
        let original = match shared.with_storage_retries("read original", || shared.blobs.get(&file.key)).await {
            Ok(bytes) => bytes,
            Err(error) => return original_unreadable(&error),
        };
        let limits = shared.convert.limits();
        let index = file.index;
        shared.cpu_pool.run(move || {
            let _permit = permit; // held until the conversion really ends, even after a timeout
            span.in_scope(|| make_variants(job, index, &original, &variants, &limits))
        })
    } else {
        let stream = match shared.with_storage_retries("read original", || shared.blobs.stream(&file.key)).await {
            Ok(stream) => stream,
            Err(error) => return original_unreadable(&error),
        };
        // Read as it renders: a million-row CSV never sits in memory.
        let reader = SyncIoBridge::new(StreamReader::new(stream.map_err(std::io::Error::other)));
        let reports = Arc::clone(&shared.reports);
        let (index, name, media) = (file.index, file.name.clone(), file.media);
        shared.cpu_pool.run(move || {
            let _permit = permit;
            span.in_scope(|| make_reports(job, index, &name, media, reader, &reports))
        })
    };
    let timeout = Duration::from_secs(shared.settings.file_timeout_secs);
    let made = match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(FileOutcome::Rejected(Problem::new(
            "conversion_timeout",
            format!("converting this file took longer than {} s", timeout.as_secs()),
        ))),
        Ok(Err(pool_error)) => {
            tracing::error!(error = %pool_error, "conversion panicked");
            Err(FileOutcome::Rejected(Problem::new("conversion_failed", "the converter failed on this file")))
        }
        Ok(Ok(made)) => made,
    };
    let outcome = match made {
        Ok(products) => write_outputs(shared, products).await,
        Err(outcome) => outcome,
    };
    shared.metrics.file_finished(matches!(outcome, FileOutcome::Converted(_)), started.elapsed());
    outcome
}

/// The kinds of file sluice converts, for messages.
const CONVERTED_KINDS: &str = "JPEG, PNG, GIF and WebP images, and CSV, TSV and JSON data";

/// Whether files of this type are rendered into reports.
fn is_report_input(media: MediaType) -> bool {
    matches!(media, MediaType::Csv | MediaType::Json)
}

/// The outcome for an original that cannot be read past the storage retries.
fn original_unreadable(error: &StoreError) -> FileOutcome {
    match error {
        StoreError::NotFound { .. } => {
            FileOutcome::Rejected(Problem::new("original_missing", "the uploaded file is no longer in storage"))
        }
        error => FileOutcome::JobFailed(storage_problem(error)),
    }
}

/// Decodes an image once and encodes every variant of it (blocking).
fn make_variants(
    job: JobId,
    index: u32,
    original: &[u8],
    variants: &[(VariantName, VariantSpec)],
    limits: &sluice_convert::ConvertLimits,
) -> Made {
    let encoded = sluice_convert::convert_image(original, variants, limits)
        .map_err(|error| FileOutcome::Rejected(Problem::new(error.code(), error.to_string())))?;
    Ok(encoded
        .into_iter()
        .map(|variant| Product {
            key: keys::output(job, index, &variant.name, variant.media),
            name: variant.name.to_string(),
            media: variant.media,
            width: variant.width,
            height: variant.height,
            bytes: variant.bytes,
        })
        .collect())
}

/// Renders the PDF and HTML reports of tabular data read from `reader` (blocking), read as the type the upload
/// was recorded as (`media`: CSV or JSON, from its content type or extension).
fn make_reports(
    job: JobId,
    index: u32,
    name: &str,
    media: MediaType,
    reader: impl std::io::Read,
    reports: &Reports,
) -> Made {
    let title = std::path::Path::new(name).file_stem().and_then(|stem| stem.to_str()).unwrap_or(name);
    let heading = ReportHeading { title, source_name: name, kind: TabularKind::from_media(media), generated_at: now() };
    let report = render_report_from_reader(&heading, reader, &reports.settings, &reports.templates).map_err(
        |error| match error {
            ReportError::Read(source) => {
                tracing::error!(error = %source, "reading the original failed");
                FileOutcome::JobFailed(Problem::new(
                    "storage_unavailable",
                    "object storage could not be reached; the job was stopped",
                ))
            }
            error => FileOutcome::Rejected(Problem::new(error.code(), error_chain(&error))),
        },
    )?;
    tracing::info!(rows = report.summary.rows, columns = report.summary.columns.len(), "report rendered");
    let product = |media: MediaType, bytes: Vec<u8>| Product {
        name: REPORT_OUTPUT_NAME.to_owned(),
        key: keys::report(job, index, media),
        media,
        width: 0,
        height: 0,
        bytes,
    };
    Ok(vec![product(MediaType::Pdf, report.pdf), product(MediaType::Html, report.html.into_bytes())])
}

/// The output name of both renderings of a report (the media type tells them apart).
const REPORT_OUTPUT_NAME: &str = "report";

/// Writes the products of one file and describes them for its record.
async fn write_outputs(shared: &Shared, products: Vec<Product>) -> FileOutcome {
    let mut outputs = Vec::with_capacity(products.len());
    for product in products {
        let bytes = Bytes::from(product.bytes);
        let size = bytes.len() as u64;
        let written =
            shared.with_storage_retries("write output", || shared.blobs.put(&product.key, bytes.clone())).await;
        if let Err(error) = written {
            return FileOutcome::JobFailed(storage_problem(&error));
        }
        outputs.push(OutputRecord {
            name: product.name,
            key: product.key,
            media: product.media,
            width: product.width,
            height: product.height,
            bytes: size,
        });
    }
    FileOutcome::Converted(outputs)
}

/// The problem recorded when storage fails past its retries; the details go to the log, not the document.
/// The code of a job stopped because storage could not be reached.
const STORAGE_UNAVAILABLE: &str = "storage_unavailable";

/// Runs of a job (its `attempts`) that a storage outage may take before the job fails: with the pause of
/// `pipeline.retry_max_ms` between them (30 s by default), outages of several minutes pass.
const RUNS_THROUGH_OUTAGES: u32 = 10;

fn storage_problem(error: &StoreError) -> Problem {
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "storage failed");
    Problem::new(STORAGE_UNAVAILABLE, "object storage could not be reached; the job was stopped")
}

#[cfg(test)]
mod tests {
    use sluice_report::ReportSettings;

    use super::*;

    #[test]
    fn a_table_recorded_as_csv_is_read_as_csv_even_when_it_starts_with_a_bracket() {
        let reports = Reports::load(ReportSettings::default()).unwrap();
        let data: &[u8] = b"[id],[name]\n1,x\n2,y\n";
        let made = make_reports(JobId::new(), 0, "bracket_header", MediaType::Csv, data, &reports);
        assert!(matches!(&made, Ok(products) if products.len() == 2), "the PDF and the HTML report");
    }
}
