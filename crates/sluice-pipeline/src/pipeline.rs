use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sluice_convert::ConvertSettings;
use sluice_core::{JobEvent, JobEventKind, JobId, JobRecord, JobState, keys};
use sluice_notify::Mailer;
use sluice_storage::{Blobs, Journal, StoreError};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::cpu_pool::CpuPool;
use crate::webhook::stage::{self as webhook_stage, Due};
use crate::{Backoff, Links, Metrics, PipelineSettings, Reports, Webhooks, convert, notify, ownership};

/// Events buffered per listener before a slow listener starts to lag (it then re-reads the record).
const EVENT_BUFFER: usize = 1024;

/// What the pipeline is built from: the stores, the converter's and mailer's settings, and its own.
pub struct PipelineParts {
    /// Originals and outputs.
    pub blobs: Blobs,
    /// Job records.
    pub journal: Journal,
    /// Variants and limits.
    pub convert: ConvertSettings,
    /// Report limits and templates.
    pub reports: Reports,
    /// The completion-notice transport.
    pub mailer: Mailer,
    /// Builds the links in notices.
    pub links: Links,
    /// Queue sizes, parallelism, retries.
    pub settings: PipelineSettings,
    /// The webhook sender.
    pub webhooks: Webhooks,
}

/// The state the stages share.
pub(crate) struct Shared {
    pub(crate) blobs: Blobs,
    pub(crate) journal: Journal,
    pub(crate) convert: ConvertSettings,
    pub(crate) reports: Arc<Reports>,
    pub(crate) mailer: Mailer,
    pub(crate) links: Links,
    pub(crate) settings: PipelineSettings,
    pub(crate) webhooks: Webhooks,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) events: broadcast::Sender<JobEvent>,
    /// One permit per conversion allowed to run at once.
    pub(crate) cpu: Arc<Semaphore>,
    /// The low-priority threads conversions run on, one per permit.
    pub(crate) cpu_pool: CpuPool,
    /// Tracks every task the pipeline spawns, so shutdown can wait for them.
    pub(crate) tasks: TaskTracker,
    /// Cancelled when the pipeline stops taking new work.
    pub(crate) stopping: CancellationToken,
    /// Serialise the read-modify-write of a job's record by the stages that may finish at the same time (the
    /// notice and the webhook), one lock per stripe of job ids.
    pub(crate) record_locks: Box<[tokio::sync::Mutex<()>; RECORD_LOCK_STRIPES]>,
    /// This process's id among the instances sharing a bucket (time-ordered, new at every start).
    pub(crate) instance: Arc<str>,
    /// Set once the first heartbeat is written: no job is marked as this instance's before it.
    pub(crate) first_beat: tokio::sync::OnceCell<()>,
    /// Since when every heartbeat went through (none: the last one failed); see `ownership`.
    pub(crate) beating_since: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Stripes of [`Shared::record_locks`].
pub(crate) const RECORD_LOCK_STRIPES: usize = 64;

impl Shared {
    pub(crate) fn storage_backoff(&self) -> Backoff {
        Backoff {
            attempts: self.settings.storage_attempts,
            base: Duration::from_millis(self.settings.retry_base_ms),
            max: Duration::from_millis(self.settings.retry_max_ms),
        }
    }

    pub(crate) fn mail_backoff(&self) -> Backoff {
        Backoff { attempts: self.settings.mail_attempts, ..self.storage_backoff() }
    }

    /// Runs a storage operation with retries on errors that can pass.
    pub(crate) async fn with_storage_retries<T, F, Fut>(&self, what: &str, op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.storage_backoff()
            .run_observed(what, op, StoreError::is_transient, |_| self.metrics.storage_retried())
            .await
            .map_err(|(error, _attempts)| error)
    }

    /// Applies `change` to the job's record as it is stored now and saves it, so that a stage finishing at the
    /// same moment as another does not overwrite what that one recorded. Answers the saved record and what
    /// `change` returned; `None` when the record is gone.
    pub(crate) async fn update_record<T>(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobRecord) -> T,
    ) -> Result<Option<(JobRecord, T)>, StoreError> {
        let stripe = {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one(id) as usize % RECORD_LOCK_STRIPES
        };
        let _locked = self.record_locks[stripe].lock().await;
        let Some(mut record) = self.with_storage_retries("load job record", || self.journal.load(id)).await? else {
            return Ok(None);
        };
        let changed = change(&mut record);
        record.updated_at = now();
        self.save(&record).await?;
        Ok(Some((record, changed)))
    }

    /// Saves a record, retrying while storage recovers. In a shared bucket, a settled job's markers go with it.
    pub(crate) async fn save(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.with_storage_retries("save job record", || self.journal.save(record)).await?;
        if record.is_settled() && self.blobs.may_be_shared() {
            ownership::forget(self, record.id).await;
        }
        Ok(())
    }

    /// Tells live listeners about a change.
    pub(crate) fn publish(&self, kind: JobEventKind, record: &JobRecord) {
        // No listener is not an error.
        let _ = self.events.send(JobEvent { kind, job: Arc::new(record.clone()) });
    }

    /// Spawns a named, tracked task whose end is logged.
    pub(crate) fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        spawn_tracked(&self.tasks, name, task);
    }

    /// Sends `id` to `queue` again after a pause, for a job that could not be read because storage is down.
    /// The record stays the truth: if the process stops first, start-up recovery picks the job up.
    pub(crate) fn retry_later(self: &Arc<Self>, id: JobId, queue: mpsc::Sender<JobId>) {
        let shared = Arc::clone(self);
        self.spawn("requeue", async move {
            let pause = Duration::from_millis(shared.settings.retry_max_ms);
            tokio::select! {
                () = shared.stopping.cancelled() => {}
                () = tokio::time::sleep(pause) => {
                    let _ = queue.send(id).await;
                }
            }
        });
    }
}

/// Spawns a named task on `tracker` and logs how it ended.
pub(crate) fn spawn_tracked<F>(tracker: &TaskTracker, name: &'static str, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    tracker.spawn(async move {
        task.await;
        tracing::debug!(task = name, "task ended");
    });
}

/// The running pipeline: the convert and notify stages, their queues, the event broadcast and metrics.
/// Cheap to clone; every clone drives the same stages.
#[derive(Clone)]
pub struct Pipeline {
    shared: Arc<Shared>,
    convert_tx: mpsc::Sender<JobId>,
    notify_tx: mpsc::Sender<JobId>,
    webhook_tx: mpsc::Sender<Due>,
    accepting: Arc<AtomicBool>,
    /// Cancelled to stop the notify stage, after the convert stage has drained.
    notify_stop: CancellationToken,
    convert_jobs: TaskTracker,
    /// Cancelled once shutdown is over, to stop the heartbeat (in a shared bucket) and remove it.
    heartbeat_stop: CancellationToken,
    heartbeat: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// A place reserved in the convert queue for a job about to be accepted: reserve it before taking an upload,
/// submit once the job's record is stored. Dropping it frees the place.
pub struct QueueSlot {
    permit: mpsc::OwnedPermit<JobId>,
}

impl QueueSlot {
    /// Hands the (already stored) job to the convert stage.
    pub fn submit(self, id: JobId) {
        self.permit.send(id);
    }
}

/// The convert queue is full, or the pipeline is shutting down: the upload must be refused (503).
#[derive(Debug, thiserror::Error)]
pub enum QueueFull {
    /// Every place in the queue is taken.
    #[error("the conversion queue is full")]
    Full,
    /// The service is shutting down.
    #[error("the service is shutting down")]
    ShuttingDown,
}

impl Pipeline {
    /// Starts the stages and the recovery of unfinished jobs, on the current tokio runtime.
    pub fn start(parts: PipelineParts) -> Self {
        let workers = parts.settings.effective_workers();
        let cpu_pool = CpuPool::start(workers, parts.settings.conversion_nice);
        let capacity = parts.settings.queue_capacity;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let shared = Arc::new(Shared {
            blobs: parts.blobs,
            journal: parts.journal,
            convert: parts.convert,
            reports: Arc::new(parts.reports),
            mailer: parts.mailer,
            links: parts.links,
            settings: parts.settings,
            webhooks: parts.webhooks,
            metrics: Arc::new(Metrics::default()),
            events,
            cpu: Arc::new(Semaphore::new(workers)),
            cpu_pool,
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            record_locks: Box::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
            instance: Arc::from(uuid::Uuid::now_v7().to_string()),
            first_beat: tokio::sync::OnceCell::new(),
            beating_since: std::sync::Mutex::new(None),
        });
        let (convert_tx, convert_rx) = mpsc::channel(capacity);
        let (notify_tx, notify_rx) = mpsc::channel(capacity);
        let (webhook_tx, webhook_rx) = mpsc::channel(capacity);
        let notify_stop = CancellationToken::new();
        let convert_jobs = TaskTracker::new();

        tracing::info!(workers, queue_capacity = capacity, "pipeline starting");
        let (recovery, recovery_convert, recovery_notify, recovery_webhook) =
            (Arc::clone(&shared), convert_tx.clone(), notify_tx.clone(), webhook_tx.clone());
        shared.spawn(
            "convert-stage",
            convert::run(
                Arc::clone(&shared),
                convert_rx,
                convert_tx.clone(),
                convert::Handoff { notify: notify_tx.clone(), webhook: webhook_tx.clone() },
                convert_jobs.clone(),
            )
            .instrument(tracing::info_span!("convert_stage")),
        );
        shared.spawn(
            "notify-stage",
            notify::run(Arc::clone(&shared), notify_rx, notify_tx.clone(), notify_stop.clone())
                .instrument(tracing::info_span!("notify_stage")),
        );
        shared.spawn(
            "webhook-stage",
            webhook_stage::run(Arc::clone(&shared), webhook_rx, webhook_tx.clone(), notify_stop.clone())
                .instrument(tracing::info_span!("webhook_stage")),
        );
        // Any job id created from now on has this one's millisecond or a later one (UUIDv7): in a store of its
        // own, originals of an id from an earlier millisecond with no record belong to an upload a crash cut
        // short, before its 202. In a shared bucket another instance may still be receiving such an upload, so
        // only ids older than `SHARED_ORPHAN_AGE` count there (swept hourly as well).
        let started = JobId::new().created_millis();
        let queues =
            ownership::Queues { convert: recovery_convert, notify: recovery_notify, webhook: recovery_webhook };
        shared.spawn("recovery", async move {
            recover(&recovery, &queues).await;
            sweep_orphans(&recovery, orphans_before(&recovery, started)).await;
            if recovery.blobs.may_be_shared() {
                // From now on, the jobs of instances that stop are taken over by the live ones.
                ownership::watch(recovery, queues).await;
            }
        });
        shared.spawn("abandoned-writes", remove_abandoned_writes(Arc::clone(&shared)));
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = shared.blobs.may_be_shared().then(|| {
            tracing::info!(instance = %shared.instance, "sharing the bucket with other instances");
            tokio::spawn(ownership::keep_beating(Arc::clone(&shared), heartbeat_stop.clone()))
        });

        Self {
            shared,
            convert_tx,
            notify_tx,
            webhook_tx,
            accepting: Arc::new(AtomicBool::new(true)),
            notify_stop,
            convert_jobs,
            heartbeat_stop,
            heartbeat: Arc::new(std::sync::Mutex::new(heartbeat)),
        }
    }

    /// Marks a job about to be accepted as this instance's, before its record is stored, so that in a shared
    /// bucket no other instance runs it while this one lives (see the `ownership` module). Nothing to do in a
    /// bucket of one's own.
    pub async fn mark_as_mine(&self, id: JobId) -> Result<(), StoreError> {
        let shared = &self.shared;
        if !shared.blobs.may_be_shared() {
            return Ok(());
        }
        shared.first_beat.get_or_try_init(|| ownership::beat(shared)).await?;
        shared.blobs.put(&keys::active(id, &shared.instance), bytes::Bytes::new()).await
    }

    /// Reserves a place in the convert queue for an upload, or says why there is none.
    pub fn reserve(&self) -> Result<QueueSlot, QueueFull> {
        if !self.is_accepting() {
            return Err(QueueFull::ShuttingDown);
        }
        match self.convert_tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(QueueSlot { permit }),
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(QueueFull::ShuttingDown),
        }
    }

    /// Announces a new job to live listeners.
    pub fn announce(&self, record: &JobRecord) {
        self.shared.publish(JobEventKind::Snapshot, record);
    }

    /// A receiver of every job event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.shared.events.subscribe()
    }

    /// The job records.
    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    /// Originals and outputs.
    pub fn blobs(&self) -> &Blobs {
        &self.shared.blobs
    }

    /// The link builder.
    pub fn links(&self) -> &Links {
        &self.shared.links
    }

    /// Variants and limits in force.
    pub fn convert_settings(&self) -> &ConvertSettings {
        &self.shared.convert
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The webhook sender, which judges callback URLs of uploads.
    pub fn webhooks(&self) -> &Webhooks {
        &self.shared.webhooks
    }

    /// The mail transport, for readiness checks.
    pub fn mailer(&self) -> &Mailer {
        &self.shared.mailer
    }

    /// The metrics in Prometheus text format, queue depths included.
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.render(
            queue_depth(&self.convert_tx),
            queue_depth(&self.notify_tx),
            queue_depth(&self.webhook_tx),
        )
    }

    /// How long in-flight work gets to finish once shutdown begins (`pipeline.shutdown_grace_secs`).
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shared.settings.shutdown_grace_secs)
    }

    /// Whether new uploads are taken (false once shutdown began).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Stops taking work, lets in-flight conversions and their notices finish within the configured grace
    /// period, and returns. Whatever did not finish stays recorded and resumes on the next start.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        let grace = Duration::from_secs(self.shared.settings.shutdown_grace_secs);
        let deadline = tokio::time::Instant::now() + grace;
        self.shared.stopping.cancel();
        self.convert_jobs.close();
        if tokio::time::timeout_at(deadline, self.convert_jobs.wait()).await.is_err() {
            tracing::warn!("conversions still running at the shutdown deadline; they resume on the next start");
        }
        self.notify_stop.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout_at(deadline, self.shared.tasks.wait()).await.is_err() {
            tracing::warn!("notices still being sent at the shutdown deadline; they resume on the next start");
        }
        // Without a heartbeat, other instances sharing the bucket take over what is left at once.
        self.heartbeat_stop.cancel();
        let heartbeat = self.heartbeat.lock().ok().and_then(|mut handle| handle.take());
        if let Some(heartbeat) = heartbeat {
            let _ = tokio::time::timeout(ownership::HEARTBEAT_EVERY, heartbeat).await;
        }
        tracing::info!("pipeline stopped");
    }
}

/// How many items wait in a stage's queue.
fn queue_depth<T>(queue: &mpsc::Sender<T>) -> usize {
    queue.max_capacity().saturating_sub(queue.capacity())
}

/// Re-queues every job that was accepted but not finished (or whose notice or webhook was not delivered)
/// before the last stop, oldest first; a webhook waiting to retry is scheduled for its recorded time. In a
/// shared bucket only jobs without markers (from before markers existed), once claimed: marked ones are
/// judged by [`ownership::watch`].
async fn recover(shared: &Arc<Shared>, queues: &ownership::Queues) {
    // Storage may be down at start: the listing is tried again until it works, or the pipeline stops.
    let pause = Duration::from_millis(shared.settings.retry_max_ms);
    let ids = loop {
        match shared.with_storage_retries("list job records", || shared.journal.ids_newest_first()).await {
            Ok(ids) => break ids,
            Err(error) => tracing::error!(error = %error, "cannot list job records; trying again"),
        }
        tokio::select! {
            () = shared.stopping.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    };
    // Listed after the records: a job accepted meanwhile by another instance has its marker in this list.
    let marked = match shared.with_storage_retries("list job markers", || ownership::marked_jobs(shared)).await {
        Ok(marked) => marked,
        Err(error) => {
            tracing::error!(error = %error, "cannot list job markers; the watch for stopped instances resumes jobs");
            return;
        }
    };
    let mut resumed = 0u64;
    for id in ids.into_iter().rev() {
        if shared.stopping.is_cancelled() {
            break;
        }
        let record = match shared.with_storage_retries("load job record", || shared.journal.load(id)).await {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(job_id = %id, error = %error, "cannot read job record; skipped until the next start");
                continue;
            }
        };
        if record.is_settled() {
            continue;
        }
        match ownership::may_resume_at_start(shared, id, marked.as_ref()).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::error!(job_id = %id, error = %error, "cannot claim an unfinished job; skipped for now");
                continue;
            }
        }
        if !resume(shared, &record, queues).await {
            break;
        }
        resumed += 1;
    }
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished jobs");
    }
}

/// Sends an unsettled job to the stage that continues it: convert (which hands it on to notify and webhook
/// when it ends), or the notice and webhook still due. `false` when the pipeline is stopping.
pub(crate) async fn resume(shared: &Shared, record: &JobRecord, queues: &ownership::Queues) -> bool {
    let id = record.id;
    if !record.state.is_terminal() {
        tokio::select! {
            () = shared.stopping.cancelled() => return false,
            sent = queues.convert.send(id) => if sent.is_err() { return false },
        }
    } else {
        if record.notification.state == sluice_core::NotificationState::Pending {
            tokio::select! {
                () = shared.stopping.cancelled() => return false,
                sent = queues.notify.send(id) => if sent.is_err() { return false },
            }
        }
        if record.webhook_due() {
            tokio::select! {
                () = shared.stopping.cancelled() => return false,
                sent = queues.webhook.send(Due::for_record(record)) => if sent.is_err() { return false },
            }
        }
    }
    shared.metrics.job_resumed();
    true
}

/// How old an upload without a record must be before a shared bucket's sweep removes it: far longer than any
/// upload body takes to arrive, so an upload another instance is still receiving is never touched.
const SHARED_ORPHAN_AGE: Duration = Duration::from_secs(6 * 60 * 60);

/// The sweep's cut-off for a sweep at `now_millis`: ids made before it are uploads cut short by a crash.
fn orphans_before(shared: &Shared, now_millis: u64) -> u64 {
    if shared.blobs.may_be_shared() {
        let age = u64::try_from(SHARED_ORPHAN_AGE.as_millis()).unwrap_or(u64::MAX);
        now_millis.saturating_sub(age)
    } else {
        now_millis
    }
}

/// Removes the stored files of uploads that a crash (kill -9, power loss) cut short before their job record
/// was written: they were never acknowledged, and nothing else would ever delete them. Only ids made before
/// `before_millis` are considered, so uploads still being received are left alone.
async fn sweep_orphans(shared: &Shared, before_millis: u64) {
    let listed = shared.with_storage_retries("list originals", || shared.blobs.list_keys(keys::ORIGINALS_PREFIX)).await;
    let keys = match listed {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(error = %error, "cannot list originals; the sweep of cut-short uploads waits for the next start");
            return;
        }
    };
    let candidates: std::collections::BTreeSet<JobId> = keys
        .iter()
        .filter_map(|key| keys::job_of_original(key))
        .filter(|id| id.created_millis() < before_millis)
        .collect();
    let mut removed = 0u64;
    for id in candidates {
        if shared.stopping.is_cancelled() {
            break;
        }
        match shared.journal.load(id).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(error) => {
                tracing::warn!(job_id = %id, error = %error, "cannot check a job record; its files are kept");
                continue;
            }
        }
        for prefix in keys::job_prefixes(id) {
            if let Err(error) = shared.blobs.delete_prefix(&prefix).await {
                tracing::warn!(job_id = %id, error = %error, "cannot remove a cut-short upload's files");
            }
        }
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(removed, "removed the files of uploads cut short by a crash");
    }
}

/// How long a staged local write must sit untouched before it counts as abandoned: far longer than any
/// upload that still sends a byte now and then takes to fill one 8 MiB part.
const ABANDONED_AFTER: Duration = Duration::from_secs(60 * 60);

/// Removes, at start and then hourly, the staged files that writes cut short by a crash left in a local
/// storage folder (see [`Blobs::remove_abandoned_writes`]), and in a shared bucket the old uploads a crash cut
/// short; ends when the pipeline stops.
async fn remove_abandoned_writes(shared: Arc<Shared>) {
    let mut hourly = tokio::time::interval(ABANDONED_AFTER);
    loop {
        tokio::select! {
            _ = hourly.tick() => {}
            () = shared.stopping.cancelled() => return,
        }
        match shared.blobs.remove_abandoned_writes(ABANDONED_AFTER).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed the staged files of writes a crash cut short"),
            Err(error) => tracing::warn!(error = %error, "cannot remove abandoned writes; trying again in an hour"),
        }
        if shared.blobs.may_be_shared() {
            // No start of this instance sweeps what another instance's crash left in a shared bucket.
            sweep_orphans(&shared, orphans_before(&shared, JobId::new().created_millis())).await;
        }
    }
}

/// The current time, for records.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whether a job in `state` still needs the convert stage.
pub(crate) fn needs_conversion(state: JobState) -> bool {
    !state.is_terminal()
}
