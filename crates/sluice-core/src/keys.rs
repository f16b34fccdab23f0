//! The object-storage layout. Every key sluice writes is built here from typed parts, never from client
//! input, so a key can never escape its prefix: `originals/{job}/{n}.{ext}`, `outputs/{job}/{n}/{variant}.{ext}`,
//! `reports/{job}/{n}.{ext}` and `jobs/{job}.json`; in a bucket shared by several instances also
//! `active/{job}/{instance}`, `takeovers/{job}/{instance}` and `instances/{instance}.json` (who runs what).

use crate::{JobId, MediaType, VariantName};

/// Prefix of job records.
pub const JOBS_PREFIX: &str = "jobs/";

/// The key of an uploaded original.
pub fn original(job: JobId, index: u32, media: MediaType) -> String {
    format!("originals/{job}/{index}.{}", media.extension())
}

/// The key of one image variant of a file.
pub fn output(job: JobId, index: u32, variant: &VariantName, media: MediaType) -> String {
    format!("outputs/{job}/{index}/{variant}.{}", media.extension())
}

/// The key of a report rendered from a file.
pub fn report(job: JobId, index: u32, media: MediaType) -> String {
    format!("reports/{job}/{index}.{}", media.extension())
}

/// The key of a job's record.
pub fn record(job: JobId) -> String {
    format!("{JOBS_PREFIX}{job}.json")
}

/// The job id a record key names, if it is one.
pub fn job_of_record(key: &str) -> Option<JobId> {
    key.strip_prefix(JOBS_PREFIX)?.strip_suffix(".json")?.parse().ok()
}

/// Prefix of uploaded originals.
pub const ORIGINALS_PREFIX: &str = "originals/";

/// The job id an original's key names, if it is one (`originals/{job}/…`).
pub fn job_of_original(key: &str) -> Option<JobId> {
    key.strip_prefix(ORIGINALS_PREFIX)?.split('/').next()?.parse().ok()
}

/// The prefixes under which a job's data lives, for clean-up.
pub fn job_prefixes(job: JobId) -> [String; 5] {
    [
        format!("originals/{job}/"),
        format!("outputs/{job}/"),
        format!("reports/{job}/"),
        active_prefix(job),
        takeovers_prefix(job),
    ]
}

/// Prefix of the markers of unsettled jobs in a shared bucket.
pub const ACTIVE_PREFIX: &str = "active/";

/// The marker saying that `instance` runs the unsettled job `job` (an empty object).
pub fn active(job: JobId, instance: &str) -> String {
    format!("{ACTIVE_PREFIX}{job}/{instance}")
}

/// The prefix of a job's markers.
pub fn active_prefix(job: JobId) -> String {
    format!("{ACTIVE_PREFIX}{job}/")
}

/// The job and instance an `active/{job}/{instance}` key names, if it is one.
pub fn parse_active(key: &str) -> Option<(JobId, &str)> {
    let (job, instance) = key.strip_prefix(ACTIVE_PREFIX)?.split_once('/')?;
    let valid = !instance.is_empty() && !instance.contains('/');
    Some((job.parse().ok()?, instance)).filter(|_| valid)
}

/// The claim, made once with create-if-absent, that takes `job` over from the dead instance `from`: of several
/// instances trying at once, the one that creates it runs the job.
pub fn takeover(job: JobId, from: &str) -> String {
    format!("takeovers/{job}/{from}")
}

/// The prefix of a job's takeover claims.
pub fn takeovers_prefix(job: JobId) -> String {
    format!("takeovers/{job}/")
}

/// Prefix of the instances' heartbeats.
pub const INSTANCES_PREFIX: &str = "instances/";

/// The heartbeat of a running instance: when it was last known alive.
pub fn heartbeat(instance: &str) -> String {
    format!("{INSTANCES_PREFIX}{instance}.json")
}

/// The type of a stored file, from its key's extension (every key ends in its type's extension).
pub fn media_of(key: &str) -> MediaType {
    MediaType::from_extension(key.rsplit_once('.').map_or("", |(_, extension)| extension))
}

/// The `Content-Disposition` a stored file is served with, through the gateway or a presigned link: shown
/// inline, saved under a name made from its key. Servable keys are plain ASCII without quotes (see
/// [`is_servable`]), so the name needs no escaping.
pub fn content_disposition(key: &str) -> String {
    format!("inline; filename=\"{}\"", key.replace('/', "-"))
}

/// Whether a client-supplied key names something sluice serves: an original, an output or a report, with no
/// path tricks. Records are never served raw.
pub fn is_servable(key: &str) -> bool {
    let mut parts = key.split('/');
    let top = parts.next();
    if !matches!(top, Some("originals" | "outputs" | "reports")) {
        return false;
    }
    let Some(job) = parts.next() else {
        return false;
    };
    if job.parse::<JobId>().is_err() {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.len() <= 2
        && rest.iter().all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let job = JobId::new();
        let thumb: VariantName = "thumb".parse().unwrap();
        assert_eq!(original(job, 0, MediaType::Jpeg), format!("originals/{job}/0.jpg"));
        assert_eq!(output(job, 2, &thumb, MediaType::Webp), format!("outputs/{job}/2/thumb.webp"));
        assert_eq!(report(job, 1, MediaType::Pdf), format!("reports/{job}/1.pdf"));
        assert_eq!(job_of_record(&record(job)), Some(job));
        assert_eq!(job_of_record("jobs/nope.json"), None);
    }

    #[test]
    fn only_data_keys_are_servable() {
        let job = JobId::new();
        assert!(is_servable(&original(job, 0, MediaType::Png)));
        assert!(is_servable(&output(job, 0, &"thumb".parse().unwrap(), MediaType::Webp)));
        assert!(!is_servable(&record(job)));
        assert!(!is_servable(&format!("outputs/{job}/../../jobs/{job}.json")));
        assert!(!is_servable(&format!("outputs/{job}/0/.hidden")));
        assert!(!is_servable("outputs/not-a-job/0/thumb.webp"));
        assert!(!is_servable(&format!("outputs/{job}")));
    }
}
