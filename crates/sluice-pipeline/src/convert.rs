//! The convert stage: takes job ids, converts every pending file of the job into its variants off the async
//! threads, records each result as it comes, and hands finished jobs with a recipient to the notify stage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use sluice_core::{
    FileRecord, FileState, JobEventKind, JobId, JobState, NotificationState, OutputRecord, Problem, VariantName,
    VariantSpec, keys,
};
use sluice_storage::StoreError;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::pipeline::{Shared, needs_conversion, now};

/// What became of one file.
enum FileOutcome {
    /// Every variant was written.
    Converted(Vec<OutputRecord>),
    /// The file cannot be converted; the job goes on.
    Rejected(Problem),
    /// Storage failed past its retries: the job cannot go on.
    JobFailed(Problem),
}

/// Runs the stage until the pipeline stops or its queue closes. At most `2 × workers` jobs are open at once;
/// the conversions themselves are bounded by the CPU semaphore.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<JobId>,
    requeue: mpsc::Sender<JobId>,
    notify: mpsc::Sender<JobId>,
    jobs: TaskTracker,
) {
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
        let notify = notify.clone();
        let span = tracing::info_span!("job", job_id = %id);
        jobs.spawn(
            async move {
                convert_job(&shared, id, requeue, &notify).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
    tracing::info!("convert stage stopped taking jobs");
}

/// Converts the pending files of one job and records the outcome.
async fn convert_job(shared: &Arc<Shared>, id: JobId, requeue: mpsc::Sender<JobId>, notify: &mpsc::Sender<JobId>) {
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
        while let Some((index, outcome)) = conversions.next().await {
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
            tracing::error!(error = %error, "cannot record the job's end; it resumes on the next start");
            return;
        }
        shared.metrics.job_finished(next == JobState::Completed);
        shared.publish(kind, &record);
        tracing::info!(state = next.as_str(), "job finished");
    }
    if record.notification.state == NotificationState::Pending && notify.send(id).await.is_err() {
        tracing::warn!("notify stage closed; the notice is sent on the next start");
    }
}

/// Converts one file: reads the original, makes every variant on a blocking thread, writes the outputs.
async fn convert_file(
    shared: &Shared,
    job: JobId,
    file: FileRecord,
    variants: Arc<Vec<(VariantName, VariantSpec)>>,
) -> FileOutcome {
    if !file.media.is_image() {
        return FileOutcome::Rejected(Problem::new(
            "unsupported_type",
            format!("{} files are not converted; sluice converts JPEG, PNG, GIF and WebP images", file.media.mime()),
        ));
    }
    let max_bytes = shared.convert.limits().max_input_bytes();
    if file.bytes > max_bytes {
        return FileOutcome::Rejected(Problem::new(
            "file_too_large",
            format!("the file has {} bytes; images over {max_bytes} bytes are not converted", file.bytes),
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
    let original = match shared.with_storage_retries("read original", || shared.blobs.get(&file.key)).await {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) => {
            return FileOutcome::Rejected(Problem::new(
                "original_missing",
                "the uploaded file is no longer in storage",
            ));
        }
        Err(error) => return FileOutcome::JobFailed(storage_problem(&error)),
    };

    let limits = shared.convert.limits();
    let span = tracing::Span::current();
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit; // held until the conversion really ends, even after a timeout
        span.in_scope(|| sluice_convert::convert_image(&original, &variants, &limits))
    });
    let timeout = Duration::from_secs(shared.settings.file_timeout_secs);
    let outcome = match tokio::time::timeout(timeout, work).await {
        Err(_) => FileOutcome::Rejected(Problem::new(
            "conversion_timeout",
            format!("converting this file took longer than {} s", timeout.as_secs()),
        )),
        Ok(Err(join_error)) => {
            tracing::error!(error = %join_error, "conversion panicked");
            FileOutcome::Rejected(Problem::new("conversion_failed", "the converter failed on this file"))
        }
        Ok(Ok(Err(error))) => FileOutcome::Rejected(Problem::new(error.code(), error.to_string())),
        Ok(Ok(Ok(encoded))) => {
            let mut outputs = Vec::with_capacity(encoded.len());
            for variant in encoded {
                let key = keys::output(job, file.index, &variant.name, variant.media);
                let bytes = Bytes::from(variant.bytes);
                let size = bytes.len() as u64;
                let written =
                    shared.with_storage_retries("write output", || shared.blobs.put(&key, bytes.clone())).await;
                if let Err(error) = written {
                    return FileOutcome::JobFailed(storage_problem(&error));
                }
                outputs.push(OutputRecord {
                    name: variant.name.to_string(),
                    key,
                    media: variant.media,
                    width: variant.width,
                    height: variant.height,
                    bytes: size,
                });
            }
            FileOutcome::Converted(outputs)
        }
    };
    shared.metrics.file_finished(matches!(outcome, FileOutcome::Converted(_)), started.elapsed());
    outcome
}

/// The problem recorded when storage fails past its retries; the details go to the log, not the document.
fn storage_problem(error: &StoreError) -> Problem {
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "storage failed");
    Problem::new("storage_unavailable", "object storage could not be reached; the job was stopped")
}
