use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the duration histograms' buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus histogram of durations with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Counters, gauges and histograms of the whole process, rendered in the Prometheus text format.
#[derive(Debug, Default)]
pub struct Metrics {
    uploads_accepted: AtomicU64,
    uploads_refused: AtomicU64,
    upload_bytes: AtomicU64,
    jobs_completed: AtomicU64,
    jobs_failed: AtomicU64,
    jobs_resumed: AtomicU64,
    files_converted: AtomicU64,
    files_rejected: AtomicU64,
    mail_sent: AtomicU64,
    mail_failed: AtomicU64,
    storage_retries: AtomicU64,
    mail_retries: AtomicU64,
    webhook_retries: AtomicU64,
    webhooks_delivered: AtomicU64,
    webhooks_failed: AtomicU64,
    conversion: Histogram,
    mail: Histogram,
}

impl Metrics {
    /// An upload was accepted with `bytes` of files.
    pub fn upload_accepted(&self, bytes: u64) {
        self.uploads_accepted.fetch_add(1, Ordering::Relaxed);
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// An upload was refused (bad input, full queue, storage down).
    pub fn upload_refused(&self) {
        self.uploads_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn job_finished(&self, completed: bool) {
        let counter = if completed { &self.jobs_completed } else { &self.jobs_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn job_resumed(&self) {
        self.jobs_resumed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn file_finished(&self, converted: bool, elapsed: Duration) {
        let counter = if converted { &self.files_converted } else { &self.files_rejected };
        counter.fetch_add(1, Ordering::Relaxed);
        self.conversion.observe(elapsed);
    }

    pub(crate) fn mail_finished(&self, sent: bool, elapsed: Duration) {
        let counter = if sent { &self.mail_sent } else { &self.mail_failed };
        counter.fetch_add(1, Ordering::Relaxed);
        self.mail.observe(elapsed);
    }

    pub(crate) fn storage_retried(&self) {
        self.storage_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn mail_retried(&self) {
        self.mail_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn webhook_retried(&self) {
        self.webhook_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn webhook_finished(&self, delivered: bool) {
        let counter = if delivered { &self.webhooks_delivered } else { &self.webhooks_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the queue depths passed in by the caller.
    pub fn render(&self, convert_queue_depth: usize, notify_queue_depth: usize, webhook_queue_depth: usize) -> String {
        let mut out = String::with_capacity(4096);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "sluice_uploads_total",
            "counter",
            "Upload requests by outcome.",
            &[
                ("{outcome=\"accepted\"}", load(&self.uploads_accepted)),
                ("{outcome=\"refused\"}", load(&self.uploads_refused)),
            ],
        );
        family("sluice_upload_bytes_total", "counter", "Bytes of accepted uploads.", &[("", load(&self.upload_bytes))]);
        family(
            "sluice_jobs_total",
            "counter",
            "Jobs that reached a final state, by state.",
            &[("{state=\"completed\"}", load(&self.jobs_completed)), ("{state=\"failed\"}", load(&self.jobs_failed))],
        );
        family(
            "sluice_jobs_resumed_total",
            "counter",
            "Unfinished jobs resumed at start-up.",
            &[("", load(&self.jobs_resumed))],
        );
        family(
            "sluice_files_total",
            "counter",
            "Files by conversion outcome.",
            &[
                ("{outcome=\"converted\"}", load(&self.files_converted)),
                ("{outcome=\"rejected\"}", load(&self.files_rejected)),
            ],
        );
        family(
            "sluice_notifications_total",
            "counter",
            "Completion notices by outcome.",
            &[("{outcome=\"sent\"}", load(&self.mail_sent)), ("{outcome=\"failed\"}", load(&self.mail_failed))],
        );
        family(
            "sluice_retries_total",
            "counter",
            "Retries of storage, mail and webhook operations after errors that can pass, counted as they happen.",
            &[
                ("{operation=\"storage\"}", load(&self.storage_retries)),
                ("{operation=\"mail\"}", load(&self.mail_retries)),
                ("{operation=\"webhook\"}", load(&self.webhook_retries)),
            ],
        );
        family(
            "sluice_webhooks_total",
            "counter",
            "Webhook deliveries by final outcome.",
            &[
                ("{outcome=\"delivered\"}", load(&self.webhooks_delivered)),
                ("{outcome=\"failed\"}", load(&self.webhooks_failed)),
            ],
        );
        family(
            "sluice_queue_depth",
            "gauge",
            "Jobs waiting in each stage's queue.",
            &[
                ("{stage=\"convert\"}", convert_queue_depth as u64),
                ("{stage=\"notify\"}", notify_queue_depth as u64),
                ("{stage=\"webhook\"}", webhook_queue_depth as u64),
            ],
        );
        self.conversion.render(
            &mut out,
            "sluice_conversion_seconds",
            "Time to convert one file into all its variants.",
        );
        self.mail.render(&mut out, "sluice_notification_seconds", "Time to deliver one completion notice.");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.upload_accepted(10);
        metrics.file_finished(true, Duration::from_millis(30));
        let text = metrics.render(3, 0, 0);
        assert!(text.contains("sluice_uploads_total{outcome=\"accepted\"} 1"));
        assert!(text.contains("sluice_queue_depth{stage=\"convert\"} 3"));
        assert!(text.contains("sluice_conversion_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("sluice_conversion_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("sluice_conversion_seconds_count 1"));
    }
}
