use bytes::Bytes;
use sluice_core::{JobId, JobRecord, keys};

use crate::{Blobs, StoreError};

/// The durable job records, one JSON object per job at `jobs/{id}.json`: the truth that survives a crash.
#[derive(Clone, Debug)]
pub struct Journal {
    blobs: Blobs,
}

impl Journal {
    /// Records kept in `blobs`.
    pub fn new(blobs: Blobs) -> Self {
        Self { blobs }
    }

    /// Stores the record of a new job; fails with [`StoreError::AlreadyExists`] if the id is taken.
    pub async fn create(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.blobs.create(&keys::record(record.id), encode(record)?).await
    }

    /// Stores the record's current state, replacing the previous one.
    pub async fn save(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.blobs.put(&keys::record(record.id), encode(record)?).await
    }

    /// The record of `id`, or `None` when there is no such job.
    pub async fn load(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let key = keys::record(id);
        match self.blobs.get(&key).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::Corrupt { key, source }),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every job id with a record, newest first (ids are time-ordered).
    pub async fn ids_newest_first(&self) -> Result<Vec<JobId>, StoreError> {
        let mut ids: Vec<JobId> =
            self.blobs.list_keys(keys::JOBS_PREFIX).await?.iter().filter_map(|key| keys::job_of_record(key)).collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }
}

fn encode(record: &JobRecord) -> Result<Bytes, StoreError> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|source| StoreError::Corrupt { key: keys::record(record.id), source })
}
