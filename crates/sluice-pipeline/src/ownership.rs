//! Who runs which job when several instances share one bucket (behind a load balancer).
//!
//! Every unsettled job has a marker `active/{job}/{instance}` naming the instance that runs it, made by the
//! gateway before the job's record and removed once the job is settled. Every instance writes a heartbeat
//! (`instances/{instance}.json`, alive until a time a little ahead) every few seconds and removes it when it
//! stops. Every instance also looks at the markers every few seconds: a job whose instances are all dead (no
//! heartbeat, or a stale one) is taken over by the one instance that manages to create the claim
//! `takeovers/{job}/{dead instances}` (create-if-absent, atomic on S3), which then marks the job as its own and
//! resumes it. So a restart does not re-run the jobs a live instance is running, and the jobs of an instance
//! that died are picked up by the others. An instance judges others by a stale heartbeat only once its own has
//! gone through for a whole heartbeat lifetime (after an outage of the store every heartbeat is stale at once;
//! a heartbeat removed by a clean stop counts at once), and sends a job's notice or webhook only while its
//! marker is still there. A local folder belongs to one process: none of this applies there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// How long a crashed instance's heartbeat stays before a scan removes it.
const STALE_HEARTBEAT: Duration = Duration::from_secs(60 * 60);
/// Scans between two clean-ups of stale heartbeats (about ten minutes).
const SCANS_PER_CLEANUP: u64 = 60;

/// A heartbeat's content.
#[derive(serde::Serialize, serde::Deserialize)]
struct Heartbeat {
    /// Unix milliseconds until which the instance vouches for itself.
    alive_until_ms: i128,
}

fn now_ms() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

/// Writes this instance's heartbeat, vouching for it for [`HEARTBEAT_TTL`], and notes whether it could.
pub(crate) async fn beat(shared: &Shared) -> Result<(), StoreError> {
    let ttl = i128::try_from(HEARTBEAT_TTL.as_millis()).unwrap_or(i128::MAX);
    let heartbeat = Heartbeat { alive_until_ms: now_ms().saturating_add(ttl) };
    let body = serde_json::to_vec(&heartbeat)
        .map_err(|source| StoreError::Corrupt { key: keys::heartbeat(&shared.instance), source })?;
    let written = shared.blobs.put(&keys::heartbeat(&shared.instance), Bytes::from(body)).await;
    if let Ok(mut since) = shared.beating_since.lock() {
        *since = match (&written, *since) {
            (Ok(()), Some(since)) => Some(since),
            (Ok(()), None) => Some(Instant::now()),
            (Err(_), _) => None,
        };
    }
    written
}

/// Whether this instance may judge others with a stale heartbeat dead: only after beating without a miss for a
/// whole [`HEARTBEAT_TTL`]. When the store was unreachable (for others too, most likely), every heartbeat is
/// stale at once, and judging then would have live instances take each other's jobs.
fn may_judge_others(shared: &Shared) -> bool {
    shared.beating_since.lock().ok().and_then(|since| *since).is_some_and(|since| since.elapsed() >= HEARTBEAT_TTL)
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

/// What an instance's heartbeat says of it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// It vouched for itself until a time still ahead.
    Alive,
    /// Its heartbeat ran out: dead, or only cut off from the store for a while.
    Stale,
    /// It has no heartbeat: it stopped and removed it (or crashed long ago).
    Gone,
}

/// What `instance`'s heartbeat says. `Err` when storage cannot say.
async fn liveness(shared: &Shared, instance: &str) -> Result<Liveness, StoreError> {
    match shared.blobs.get(&keys::heartbeat(instance)).await {
        Ok(body) => {
            let alive = serde_json::from_slice::<Heartbeat>(&body).is_ok_and(|beat| beat.alive_until_ms > now_ms());
            Ok(if alive { Liveness::Alive } else { Liveness::Stale })
        }
        Err(StoreError::NotFound { .. }) => Ok(Liveness::Gone),
        Err(error) => Err(error),
    }
}

/// Whether this instance still runs `job`: its marker is there. Checked before a notice or webhook goes out, so
/// an instance whose job was taken over (it was thought dead) does not send it as well. When storage cannot
/// say, the job counts as this instance's: a duplicate is better than a notice never sent.
pub(crate) async fn still_mine(shared: &Shared, job: JobId) -> bool {
    if !shared.blobs.may_be_shared() {
        return true;
    }
    !matches!(shared.blobs.head(&keys::active(job, &shared.instance)).await, Err(StoreError::NotFound { .. }))
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

/// Claims `job` from `from` (the dead instances its markers name, sorted and joined with `+`, or `unowned` for a
/// job from before markers existed), unless another instance did first: answers whether this one now runs it.
/// Every instance seeing the same markers names the same claim; a claimant that dies halfway leaves its own
/// marker beside the old ones, so the next claim names other markers and the job is not stuck.
async fn claim(shared: &Shared, job: JobId, from: &str) -> Result<bool, StoreError> {
    match shared.blobs.create(&keys::takeover(job, from), Bytes::new()).await {
        Ok(()) => Ok(true),
        Err(StoreError::AlreadyExists { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Marks a claimed job as this instance's and drops the markers of the instances it came from.
async fn mark_taken(shared: &Shared, job: JobId, previous: &[String]) -> Result<(), StoreError> {
    let mine = keys::active(job, &shared.instance);
    shared.with_storage_retries("mark a job taken over", || shared.blobs.put(&mine, Bytes::new())).await?;
    for instance in previous {
        // Left behind, it is ignored while this instance lives.
        let _ = shared.blobs.delete(&keys::active(job, instance)).await;
    }
    Ok(())
}

/// Marks `job`, claimed from `previous`, as this instance's and resumes it from its record; a job without a
/// record or already settled only has its markers removed. `Ok(false)` when the pipeline is stopping.
async fn resume_taken(
    shared: &Arc<Shared>,
    job: JobId,
    previous: &[String],
    queues: &Queues,
) -> Result<bool, StoreError> {
    mark_taken(shared, job, previous).await?;
    match shared.with_storage_retries("load job record", || shared.journal.load(job)).await? {
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

/// Jobs this instance claimed but could not resume yet (storage failed halfway), with the instances they came
/// from: their claim is made, so no other instance takes them, and every scan tries them again first.
type Claimed = BTreeMap<JobId, Vec<String>>;

/// Resumes a claimed job, or keeps it in `claimed` for the next scan. `false` when the pipeline is stopping.
async fn resume_or_keep(
    shared: &Arc<Shared>,
    job: JobId,
    previous: Vec<String>,
    queues: &Queues,
    claimed: &mut Claimed,
) -> bool {
    match resume_taken(shared, job, &previous, queues).await {
        Ok(resumed) => resumed,
        Err(error) => {
            tracing::warn!(job_id = %job, error = %error, "cannot resume a job taken over; trying again");
            claimed.insert(job, previous);
            true
        }
    }
}

/// One look at the markers: takes over every job whose instances are all dead. Answers how many it took.
async fn scan(shared: &Arc<Shared>, queues: &Queues, claimed: &mut Claimed) -> Result<u64, StoreError> {
    let mut taken = 0;
    for (job, previous) in std::mem::take(claimed) {
        if !resume_or_keep(shared, job, previous, queues, claimed).await {
            return Ok(taken);
        }
        taken += u64::from(!claimed.contains_key(&job));
    }
    // A stale heartbeat counts only once this instance's own have gone through for a while; a removed one
    // (an instance that stopped cleanly) counts at once.
    let judge_stale = may_judge_others(shared);
    let mut known: HashMap<String, Liveness> = HashMap::new();
    for (job, mut instances) in markers(shared).await? {
        if shared.stopping.is_cancelled() {
            break;
        }
        if claimed.contains_key(&job) || instances.iter().any(|instance| *instance == *shared.instance) {
            continue;
        }
        let mut all_dead = true;
        for instance in &instances {
            let liveness = match known.get(instance).copied() {
                Some(liveness) => liveness,
                None => {
                    let liveness = liveness(shared, instance).await?;
                    known.insert(instance.clone(), liveness);
                    liveness
                }
            };
            all_dead &= liveness == Liveness::Gone || (liveness == Liveness::Stale && judge_stale);
        }
        if !all_dead {
            continue;
        }
        instances.sort();
        let from = instances.join("+");
        if !claim(shared, job, &from).await? {
            continue;
        }
        tracing::info!(job_id = %job, from = %from, "took over a job whose instance stopped");
        if !resume_or_keep(shared, job, instances, queues, claimed).await {
            break;
        }
        taken += u64::from(!claimed.contains_key(&job));
    }
    Ok(taken)
}

/// Removes the heartbeats that instances killed without a chance to remove their own left long ago.
async fn remove_stale_heartbeats(shared: &Shared) -> Result<(), StoreError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let stale = i64::try_from(STALE_HEARTBEAT.as_secs()).unwrap_or(i64::MAX);
    for key in shared.blobs.list_keys(keys::INSTANCES_PREFIX).await? {
        let meta = shared.blobs.head(&key).await?;
        if now.saturating_sub(meta.modified_unix) > stale {
            shared.blobs.delete(&key).await?;
        }
    }
    Ok(())
}

/// Looks for jobs of dead instances every [`SCAN_EVERY`] until the pipeline stops, and now and then removes the
/// heartbeats crashed instances left.
pub(crate) async fn watch(shared: Arc<Shared>, queues: Queues) {
    let mut every = tokio::time::interval(SCAN_EVERY);
    let mut claimed = Claimed::new();
    for round in 0u64.. {
        tokio::select! {
            _ = every.tick() => {}
            () = shared.stopping.cancelled() => return,
        }
        match scan(&shared, &queues, &mut claimed).await {
            Ok(0) => {}
            Ok(taken) => tracing::info!(taken, "took over jobs of stopped instances"),
            Err(error) => tracing::warn!(error = %error, "cannot look for jobs of stopped instances; trying again"),
        }
        if round % SCANS_PER_CLEANUP == 0
            && let Err(error) = remove_stale_heartbeats(&shared).await
        {
            tracing::warn!(error = %error, "cannot remove the heartbeats of crashed instances");
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
    if marked.contains_key(&job) || !claim(shared, job, "unowned").await? {
        return Ok(false);
    }
    mark_taken(shared, job, &[]).await?;
    Ok(true)
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
