//! Who runs which job when several instances share one bucket (behind a load balancer).
//!
//! Every unsettled job has a marker `active/{job}/{instance}` naming the instance that runs it, made by the
//! gateway before the job's record and removed once the job is settled. Every instance writes a heartbeat
//! (`instances/{instance}.json`, alive until a time a little ahead) every few seconds and removes it when it
//! stops. Every instance also looks at the markers every few seconds: a job whose instances are all dead (no
//! heartbeat, or a stale one) is taken over by the one instance that manages to create the claim
//! `takeovers/{job}/{dead instance}` (create-if-absent, atomic on S3), which then marks the job as its own and
//! resumes it. So a restart no longer re-runs the jobs a live instance is running, and the jobs of an instance
//! that died are picked up by the others. A local folder belongs to one process: none of this applies there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_core::{JobId, keys};
use sluice_storage::StoreError;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::pipeline::{Shared, resume};
use crate::webhook::stage::Due;

/// How often an instance renews its heartbeat.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a heartbeat vouches for its instance: an instance silent this long counts as dead.
const HEARTBEAT_TTL: Duration = Duration::from_secs(30);
/// How often an instance looks for jobs whose instances died.
const SCAN_EVERY: Duration = Duration::from_secs(10);

/// A heartbeat's content.
#[derive(serde::Serialize, serde::Deserialize)]
struct Heartbeat {
    /// Unix milliseconds until which the instance vouches for itself.
    alive_until_ms: i128,
}

fn now_ms() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

/// Writes this instance's heartbeat, vouching for it for [`HEARTBEAT_TTL`].
pub(crate) async fn beat(shared: &Shared) -> Result<(), StoreError> {
    let ttl = i128::try_from(HEARTBEAT_TTL.as_millis()).unwrap_or(i128::MAX);
    let heartbeat = Heartbeat { alive_until_ms: now_ms().saturating_add(ttl) };
    let body = serde_json::to_vec(&heartbeat)
        .map_err(|source| StoreError::Corrupt { key: keys::heartbeat(&shared.instance), source })?;
    shared.blobs.put(&keys::heartbeat(&shared.instance), Bytes::from(body)).await
}

/// Renews the heartbeat until `stop` is cancelled, then removes it, so that other instances take over what
/// this one leaves unfinished at once.
pub(crate) async fn keep_beating(shared: Arc<Shared>, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => break,
        }
        if let Err(error) = beat(&shared).await {
            tracing::warn!(error = %error, "cannot renew this instance's heartbeat");
        }
    }
    if let Err(error) = shared.blobs.delete(&keys::heartbeat(&shared.instance)).await {
        tracing::warn!(error = %error, "cannot remove this instance's heartbeat; others take over its jobs later");
    }
}

/// Whether `instance` vouched for itself recently. `Err` when storage cannot say.
async fn is_alive(shared: &Shared, instance: &str) -> Result<bool, StoreError> {
    match shared.blobs.get(&keys::heartbeat(instance)).await {
        Ok(body) => Ok(serde_json::from_slice::<Heartbeat>(&body).is_ok_and(|beat| beat.alive_until_ms > now_ms())),
        Err(StoreError::NotFound { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The queues a resumed job goes to.
pub(crate) struct Queues {
    pub(crate) convert: mpsc::Sender<JobId>,
    pub(crate) notify: mpsc::Sender<JobId>,
    pub(crate) webhook: mpsc::Sender<Due>,
}

/// The marked jobs: each job with the instances its markers name.
async fn markers(shared: &Shared) -> Result<BTreeMap<JobId, Vec<String>>, StoreError> {
    let mut jobs: BTreeMap<JobId, Vec<String>> = BTreeMap::new();
    for key in shared.blobs.list_keys(keys::ACTIVE_PREFIX).await? {
        if let Some((job, instance)) = keys::parse_active(&key) {
            jobs.entry(job).or_default().push(instance.to_owned());
        }
    }
    Ok(jobs)
}

/// Takes `job` over from `from` (an instance, or `unowned` for a job from before markers existed), unless
/// another instance did first: answers whether this instance now runs it.
async fn take_over(shared: &Shared, job: JobId, from: &str, previous: &[String]) -> Result<bool, StoreError> {
    match shared.blobs.create(&keys::takeover(job, from), Bytes::new()).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists { .. }) => return Ok(false),
        Err(error) => return Err(error),
    }
    shared.blobs.put(&keys::active(job, &shared.instance), Bytes::new()).await?;
    for instance in previous {
        // Left behind, it is ignored while this instance lives.
        let _ = shared.blobs.delete(&keys::active(job, instance)).await;
    }
    Ok(true)
}

/// Resumes `job` (now this instance's) from its record; a job without a record or already settled only has its
/// markers removed.
async fn resume_taken(shared: &Arc<Shared>, job: JobId, queues: &Queues) -> Result<bool, StoreError> {
    match shared.journal.load(job).await? {
        Some(record) if !record.is_settled() => Ok(resume(shared, &record, queues).await),
        _ => {
            forget(shared, job).await;
            Ok(true)
        }
    }
}

/// Removes a settled job's markers and claims.
pub(crate) async fn forget(shared: &Shared, job: JobId) {
    for prefix in [keys::active_prefix(job), keys::takeovers_prefix(job)] {
        if let Err(error) = shared.blobs.delete_prefix(&prefix).await {
            tracing::warn!(job_id = %job, error = %error, "cannot remove a settled job's markers");
        }
    }
}

/// One look at the markers: takes over every job whose instances are all dead. Answers how many it took.
async fn scan(shared: &Arc<Shared>, queues: &Queues) -> Result<u64, StoreError> {
    let jobs = markers(shared).await?;
    let mut alive: HashMap<String, bool> = HashMap::new();
    let mut taken = 0;
    for (job, instances) in jobs {
        if shared.stopping.is_cancelled() {
            break;
        }
        if instances.iter().any(|instance| *instance == *shared.instance) {
            continue;
        }
        let mut anyone_alive = false;
        for instance in &instances {
            let known = alive.get(instance).copied();
            let live = match known {
                Some(live) => live,
                None => {
                    let live = is_alive(shared, instance).await?;
                    alive.insert(instance.clone(), live);
                    live
                }
            };
            anyone_alive |= live;
        }
        if anyone_alive {
            continue;
        }
        // Instance ids are time-ordered: the newest one ran the job last, and every instance names the same.
        let Some(last) = instances.iter().max() else { continue };
        if take_over(shared, job, last, &instances).await? {
            tracing::info!(job_id = %job, from = %last, "took over a job whose instance stopped");
            if !resume_taken(shared, job, queues).await? {
                break;
            }
            taken += 1;
        }
    }
    Ok(taken)
}

/// Looks for jobs of dead instances every [`SCAN_EVERY`] until the pipeline stops.
pub(crate) async fn watch(shared: Arc<Shared>, queues: Queues) {
    let mut every = tokio::time::interval(SCAN_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shared.stopping.cancelled() => return,
        }
        match scan(&shared, &queues).await {
            Ok(0) => {}
            Ok(taken) => tracing::info!(taken, "took over jobs of stopped instances"),
            Err(error) => tracing::warn!(error = %error, "cannot look for jobs of stopped instances; trying again"),
        }
    }
}

/// Whether the start-up recovery may resume `job`, an unsettled job it found: in a bucket of its own, always;
/// in a shared one, only a job without markers (from before markers existed), once this instance has claimed
/// it. A marked job is the watcher's to judge. `marked` is the set of marked jobs, listed after the records.
pub(crate) async fn may_resume_at_start(
    shared: &Shared,
    job: JobId,
    marked: Option<&BTreeMap<JobId, Vec<String>>>,
) -> Result<bool, StoreError> {
    let Some(marked) = marked else { return Ok(true) };
    if marked.contains_key(&job) {
        return Ok(false);
    }
    take_over(shared, job, "unowned", &[]).await
}

/// The marked jobs, for [`may_resume_at_start`]: `None` in a bucket of one's own.
pub(crate) async fn marked_jobs(shared: &Shared) -> Result<Option<BTreeMap<JobId, Vec<String>>>, StoreError> {
    if shared.blobs.may_be_shared() { markers(shared).await.map(Some) } else { Ok(None) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_keys_name_their_job_and_instance() {
        let job = JobId::new();
        let key = keys::active(job, "0190-instance");
        assert_eq!(keys::parse_active(&key), Some((job, "0190-instance")));
        assert_eq!(keys::parse_active(&format!("active/{job}/a/b")), None);
        assert_eq!(keys::parse_active(&format!("active/{job}/")), None);
        assert_eq!(keys::parse_active("active/not-a-job/x"), None);
    }
}
