//! The notify stage: mails the completion notice of finished jobs and records the delivery.

use std::sync::Arc;
use std::time::Instant;

use sluice_core::{JobEventKind, JobId, NotificationState, Problem, error_chain};
use sluice_notify::Notice;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::Shared;

/// Notices being delivered at once.
const CONCURRENT_DELIVERIES: usize = 4;

/// Runs the stage until `stop` is cancelled (after the convert stage drained) or its queue closes.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<JobId>,
    requeue: mpsc::Sender<JobId>,
    stop: CancellationToken,
) {
    let deliveries = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES));
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = Arc::clone(&deliveries).acquire_owned() => match slot { Ok(slot) => slot, Err(_) => break },
        };
        let id = tokio::select! {
            () = stop.cancelled() => break,
            id = queue.recv() => match id { Some(id) => id, None => break },
        };
        let task_shared = Arc::clone(&shared);
        let requeue = requeue.clone();
        shared.spawn(
            "deliver-notice",
            async move {
                deliver(&task_shared, id, requeue).await;
                drop(slot);
            }
            .instrument(tracing::info_span!("notice", job_id = %id)),
        );
    }
    tracing::info!("notify stage stopped");
}

/// Sends one job's notice, with retries on failures that can pass, and records the result.
async fn deliver(shared: &Arc<Shared>, id: JobId, requeue: mpsc::Sender<JobId>) {
    let record = match shared.with_storage_retries("load job record", || shared.journal.load(id)).await {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(error = %error, "cannot load job record; will try again");
            shared.retry_later(id, requeue);
            return;
        }
    };
    if record.notification.state != NotificationState::Pending {
        return;
    }
    if !crate::ownership::still_mine(shared, id).await {
        tracing::info!("the job was taken over by another instance, which sends its notice");
        return;
    }
    let started = Instant::now();
    let links = &shared.links;
    let mut retries = 0;
    let result = match Notice::for_job(&record, &links.job_url(id), &|key| links.file_url(key)) {
        Ok(notice) => shared
            .mail_backoff()
            .run_observed(
                "send notice",
                || shared.mailer.send(&notice),
                |error| !error.is_permanent(),
                |_| {
                    retries += 1;
                    shared.metrics.mail_retried();
                },
            )
            .await
            .map(|()| retries + 1)
            .map_err(|(error, attempts)| (Problem::new(error.code(), error_chain(&error)), attempts)),
        Err(error) => Err((Problem::new(error.code(), error_chain(&error)), 1)),
    };
    let sent = result.is_ok();
    match &result {
        Ok(attempts) => tracing::info!(attempts, "notice sent"),
        Err((problem, attempts)) => {
            tracing::error!(code = %problem.code, message = %problem.message, attempts, "notice failed");
        }
    }
    shared.metrics.mail_finished(sent, started.elapsed());
    // Recorded on the record as stored now: the webhook stage may have recorded an attempt meanwhile. While
    // storage is down, recording is tried again (not the mail) until it works or the process stops; a notice
    // left `pending` by a stop may be sent again on the next start, and its Message-ID lets the receiver see
    // the duplicate.
    let pause = std::time::Duration::from_millis(shared.settings.retry_max_ms);
    loop {
        let recorded = shared
            .update_record(id, |record| {
                let notification = &mut record.notification;
                match &result {
                    Ok(attempts) => {
                        notification.attempts += attempts;
                        notification.state = NotificationState::Sent;
                        notification.error = None;
                    }
                    Err((problem, attempts)) => {
                        notification.attempts += attempts;
                        notification.state = NotificationState::Failed;
                        notification.error = Some(problem.clone());
                    }
                }
            })
            .await;
        match recorded {
            Ok(Some((record, ()))) => return shared.publish(JobEventKind::Notification, &record),
            Ok(None) => return,
            Err(error) => tracing::error!(error = %error, "cannot record the notice's delivery; trying again"),
        }
        tokio::select! {
            () = shared.stopping.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
