//! The webhook stage: a scheduler that holds every waiting delivery by its due time (a retry waiting ten
//! minutes holds no worker and no connection), and attempt tasks, at most `webhooks.concurrency` at once,
//! that make one attempt each, record it in the job record and hand the job back to the scheduler when
//! another attempt is due. It runs beside the notify stage: a slow or dead receiver delays neither
//! conversions nor mail.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{JobEventKind, JobId, JobRecord, Problem, WebhookState};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Attempt;
use crate::pipeline::Shared;

/// A job whose webhook attempt is due at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    /// When the attempt may start.
    pub(crate) at: Instant,
    /// The job.
    pub(crate) id: JobId,
}

impl Due {
    /// An attempt due at once.
    pub(crate) fn now(id: JobId) -> Self {
        Self { at: Instant::now(), id }
    }

    /// The attempt a stored record asks for: at its `next_attempt_at`, or at once.
    pub(crate) fn for_record(record: &JobRecord) -> Self {
        let wait = record
            .webhook
            .as_ref()
            .and_then(|webhook| webhook.next_attempt_at)
            .and_then(|at| Duration::try_from(at - OffsetDateTime::now_utc()).ok())
            .unwrap_or(Duration::ZERO);
        Self { at: Instant::now() + wait, id: record.id }
    }
}

/// Runs the scheduler until `stop` is cancelled or its queue closes. Waiting deliveries stay recorded and
/// resume on the next start.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Due>,
    requeue: mpsc::Sender<Due>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(shared.webhooks.settings().concurrency));
    let mut waiting: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
    loop {
        let next = waiting.peek().map(|Reverse(due)| due.at);
        let due_now = next.is_some_and(|at| at <= Instant::now());
        tokio::select! {
            () = stop.cancelled() => break,
            received = queue.recv() => match received {
                Some(due) => waiting.push(Reverse(due)),
                None => break,
            },
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() && !due_now => {}
            slot = Arc::clone(&slots).acquire_owned(), if due_now => {
                let (Ok(slot), Some(Reverse(due))) = (slot, waiting.pop()) else { break };
                let task_shared = Arc::clone(&shared);
                let requeue = requeue.clone();
                shared.spawn(
                    "deliver-webhook",
                    deliver(task_shared, due.id, slot, requeue)
                        .instrument(tracing::info_span!("webhook", job_id = %due.id)),
                );
            }
        }
    }
    if !waiting.is_empty() {
        tracing::info!(waiting = waiting.len(), "webhook deliveries left waiting; they resume on the next start");
    }
    tracing::info!("webhook stage stopped");
}

/// Makes one attempt of a job's webhook, records it, and schedules the next one when it is due.
async fn deliver(shared: Arc<Shared>, id: JobId, slot: OwnedSemaphorePermit, requeue: mpsc::Sender<Due>) {
    let next = attempt_and_record(&shared, id).await;
    // Free the slot before waiting for room in the queue: the scheduler may be waiting for this slot.
    drop(slot);
    if let Some(due) = next
        && requeue.send(due).await.is_err()
    {
        tracing::debug!("webhook stage stopped; the delivery resumes on the next start");
    }
}

/// The attempt itself; returns when the next one is due, if any.
async fn attempt_and_record(shared: &Shared, id: JobId) -> Option<Due> {
    let pause = Duration::from_millis(shared.settings.retry_max_ms);
    let record = match shared.with_storage_retries("load job record", || shared.journal.load(id)).await {
        Ok(Some(record)) => record,
        Ok(None) => return None,
        Err(error) => {
            tracing::error!(error = %error, "cannot load job record; will try again");
            return Some(Due { at: Instant::now() + pause, id });
        }
    };
    let webhook = record.webhook.clone().filter(|webhook| webhook.is_pending() && record.state.is_terminal())?;
    if !crate::ownership::still_mine(shared, id).await {
        tracing::info!("the job was taken over by another instance, which delivers its webhook");
        return None;
    }
    if webhook.next_attempt_at.is_some_and(|at| at > OffsetDateTime::now_utc() + time::Duration::SECOND) {
        // Scheduled twice (recovery and a live hand-over): the later entry makes the attempt.
        return Some(Due::for_record(&record));
    }
    let outcome = shared.webhooks.attempt(&record, &webhook).await;
    let retry = &shared.webhooks.settings().retry;
    // Recorded on the record as stored now: the notify stage may have recorded the notice meanwhile.
    let recorded = shared
        .update_record(id, |record| {
            let state = record.webhook.as_mut()?;
            state.attempts = state.attempts.saturating_add(1);
            state.next_attempt_at = None;
            let mut next = None;
            match outcome {
                Attempt::Delivered { status } => {
                    tracing::info!(status, attempts = state.attempts, "webhook delivered");
                    state.state = WebhookState::Delivered;
                    state.last_status = Some(status);
                    state.last_error = None;
                    shared.metrics.webhook_finished(true);
                }
                Attempt::GiveUp { status, problem } => {
                    tracing::warn!(code = %problem.code, message = %problem.message, ?status, "webhook refused; giving up");
                    state.state = WebhookState::Failed;
                    state.last_status = status;
                    state.last_error = Some(problem);
                    shared.metrics.webhook_finished(false);
                }
                Attempt::Retry { status, problem, retry_after } => {
                    state.last_status = status;
                    let cap = Duration::from_secs(retry.max_delay_secs);
                    let wait = retry_after.map_or_else(|| retry.backoff().delay(state.attempts), |wait| wait.min(cap));
                    let ended = record.finished_at.unwrap_or(record.updated_at);
                    let retry_at = OffsetDateTime::now_utc() + wait;
                    let give_up_at = ended + Duration::from_secs(retry.give_up_after_secs);
                    if retry_at > give_up_at {
                        tracing::warn!(code = %problem.code, attempts = state.attempts, "webhook failed; retries exhausted");
                        state.state = WebhookState::Failed;
                        state.last_error = Some(Problem::new(
                            "retries_exhausted",
                            format!("gave up after {} attempts; the last: {}", state.attempts, problem.message),
                        ));
                        shared.metrics.webhook_finished(false);
                    } else {
                        tracing::info!(code = %problem.code, ?status, wait_ms = wait.as_millis() as u64, "webhook failed; retrying");
                        state.last_error = Some(problem);
                        state.next_attempt_at = Some(retry_at);
                        shared.metrics.webhook_retried();
                        next = Some(Due { at: Instant::now() + wait, id });
                    }
                }
            }
            next
        })
        .await;
    match recorded {
        Ok(Some((record, next))) => {
            shared.publish(JobEventKind::Webhook, &record);
            next
        }
        Ok(None) => None,
        Err(error) => {
            // The attempt is made again; the Sluice-Delivery id lets the receiver see the duplicate.
            tracing::error!(error = %error, "cannot record the webhook attempt");
            Some(Due { at: Instant::now() + pause, id })
        }
    }
}
