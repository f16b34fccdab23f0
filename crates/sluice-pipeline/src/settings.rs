use serde::Deserialize;

/// The `[pipeline]` config section: queue sizes, parallelism, retries and time limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// Capacity of the bounded queues between the gateway and the stages; a full queue answers uploads with
    /// 503 instead of accepting work it cannot hold.
    pub queue_capacity: usize,
    /// Conversions running at once; 0 means one per CPU core.
    pub workers: usize,
    /// How much lower than the server's the conversion threads' scheduling priority is (a nice increment,
    /// 0 to 19): with every core converting, the threads answering uploads still get the CPU at once.
    pub conversion_nice: i32,
    /// Longest time one file's conversion may take before the file is rejected.
    pub file_timeout_secs: u64,
    /// Longest time one run of a job may convert; files still unconverted then are rejected (`job_timeout`).
    pub job_timeout_secs: u64,
    /// Largest original converted; a larger one is rejected (`file_too_large`) without being read, so that
    /// conversions hold at most `workers` originals of this size in memory.
    pub max_original_bytes: u64,
    /// Attempts for a storage operation that fails in a way that can pass.
    pub storage_attempts: u32,
    /// Attempts to deliver a completion notice.
    pub mail_attempts: u32,
    /// First retry delay in milliseconds; it doubles on every attempt, with jitter.
    pub retry_base_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// How long a shutdown waits for in-flight work before leaving it to be resumed on the next start.
    pub shutdown_grace_secs: u64,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            workers: 0,
            conversion_nice: 10,
            file_timeout_secs: 120,
            job_timeout_secs: 600,
            max_original_bytes: 256 * 1024 * 1024,
            storage_attempts: 5,
            mail_attempts: 5,
            retry_base_ms: 500,
            retry_max_ms: 30_000,
            shutdown_grace_secs: 20,
        }
    }
}

impl PipelineSettings {
    /// Conversions running at once, with 0 resolved to the number of cores.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 { self.workers } else { std::thread::available_parallelism().map(usize::from).unwrap_or(1) }
    }

    /// Checks values that would make the pipeline unable to run.
    pub fn validate(&self) -> Result<(), String> {
        if self.queue_capacity == 0 {
            return Err("pipeline.queue_capacity must be at least 1".to_owned());
        }
        if self.storage_attempts == 0 || self.mail_attempts == 0 {
            return Err("pipeline.storage_attempts and pipeline.mail_attempts must be at least 1".to_owned());
        }
        if !(0..=19).contains(&self.conversion_nice) {
            return Err("pipeline.conversion_nice must be between 0 and 19".to_owned());
        }
        if self.file_timeout_secs == 0 || self.job_timeout_secs == 0 {
            return Err("pipeline.file_timeout_secs and pipeline.job_timeout_secs must be at least 1".to_owned());
        }
        Ok(())
    }
}
