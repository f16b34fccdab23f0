use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The identity of one upload job: a UUIDv7, so ids sort by creation time (to the millisecond) and still
/// carry 74 random bits that make them unguessable (no counter: knowing one id tells nothing of the next).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(Uuid);

/// A string that is not a job id.
#[derive(Debug, thiserror::Error)]
#[error("not a job id (expected a UUIDv7 such as 01938c4e-7f1a-7cc0-a5b2-3d4e5f607182)")]
pub struct JobIdError;

impl JobId {
    /// A fresh id for a job created now.
    pub fn new() -> Self {
        // `Uuid::now_v7` would spend 42 of the 74 bits on a counter (the next id is the last one plus one);
        // without a context every bit after the millisecond timestamp is random.
        Self(Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext)))
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The millisecond (since the Unix epoch) the id was made in. Ids of one millisecond are in random order,
    /// so "made before X" must compare these, not the ids.
    pub fn created_millis(&self) -> u64 {
        let bytes = self.0.as_bytes();
        bytes[..6].iter().fold(0, |millis, byte| (millis << 8) | u64::from(*byte))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for JobId {
    type Err = JobIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical hyphenated form: it is the only one we hand out, and it keeps keys unambiguous.
        if s.len() != 36 {
            return Err(JobIdError);
        }
        let uuid = Uuid::try_parse(s).map_err(|_| JobIdError)?;
        if uuid.get_version_num() != 7 {
            return Err(JobIdError);
        }
        Ok(Self(uuid))
    }
}

impl TryFrom<String> for JobId {
    type Error = JobIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.to_string()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_creation() {
        let first = JobId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = JobId::new();
        assert!(first < second);
        assert!(first.created_millis() < second.created_millis());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        assert!(u128::from(second.created_millis()).abs_diff(now) < 60_000, "{second} is not from now");
        assert!(first.to_string() < second.to_string());
        assert_eq!(first.to_string().parse::<JobId>().ok(), Some(first));
    }

    #[test]
    fn ids_made_together_are_not_a_sequence() {
        for _ in 0..100 {
            let (a, b) = (JobId::new().as_uuid().as_u128(), JobId::new().as_uuid().as_u128());
            let random_bits = (1u128 << 62) - 1;
            let step = (b & random_bits).abs_diff(a & random_bits);
            assert!(step > 1 << 20, "{a:x} then {b:x}");
        }
    }

    #[test]
    fn rejects_other_forms() {
        assert!("not-an-id".parse::<JobId>().is_err());
        // A v4 UUID is well formed but never one of ours.
        assert!("67e55044-10b1-426f-9247-bb680e5fe0c8".parse::<JobId>().is_err());
        let simple = JobId::new().as_uuid().simple().to_string();
        assert!(simple.parse::<JobId>().is_err());
        assert!("../../etc/passwd".parse::<JobId>().is_err());
    }
}
