//! Real services for sluice's tests, started on 127.0.0.1 with free ports and torn down on drop.
//!
//! This crate owns the test doubles that are not doubles: [`MailCatcher`] runs a real maildev 3 (an SMTP
//! server with an HTTP inbox API; installed with npm into `~/.cache/sluice-tools` on first use) and reads
//! the inbox back; [`S3Server`] serves a real S3 API in-process with s3s-fs (SigV4 checked, plain files in a
//! temp folder). The `sluice-testkit` binary runs the same S3 server in the foreground for the end-to-end
//! script. It is a dev-dependency only (`publish = false`) and must not depend on any sluice crate, so every
//! crate's tests can use it; errors are [`KitError`]s that carry the last state seen.

mod mail;
mod s3;

use std::path::PathBuf;

pub use mail::MailCatcher;
pub use s3::{REGION, S3Server, s3_service, serve};

/// Why a test service could not be started or queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// A file-system or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// Neither `$SLUICE_MAILDEV` nor `$HOME` is set, so maildev cannot be found.
    #[error("cannot locate maildev: set SLUICE_MAILDEV or HOME")]
    NoHome,
    /// `$SLUICE_MAILDEV` names a file that does not exist.
    #[error("SLUICE_MAILDEV names {}, which does not exist", path.display())]
    MaildevMissing {
        /// The path given.
        path: PathBuf,
    },
    /// `npm install maildev@3` failed or took too long.
    #[error("`npm install maildev@3` in {} failed ({status}); its output ends with:\n{output}", dir.display())]
    Install {
        /// The install folder.
        dir: PathBuf,
        /// Exit status or "timed out".
        status: String,
        /// The end of npm's output.
        output: String,
    },
    /// The service exited while starting.
    #[error("{service} exited during start-up ({status}); its log ends with:\n{log}")]
    Exited {
        /// Which service.
        service: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The service did not become ready in time.
    #[error("{service} was not ready after {secs} s; last state: {last}")]
    NotReady {
        /// Which service.
        service: &'static str,
        /// How long we waited.
        secs: u64,
        /// The last state seen (and the end of its log).
        last: String,
    },
    /// An HTTP request to the service failed.
    #[error("request {method} {url} failed")]
    Http {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error status.
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A bounded wait for messages ended before enough arrived.
    #[error("waited {secs:.1} s for {want} message(s); last state: {last}")]
    WaitTimeout {
        /// How many were wanted.
        want: usize,
        /// How long we waited.
        secs: f64,
        /// The last state seen: count and subjects, or the last error.
        last: String,
    },
    /// The bucket name is not one S3 accepts.
    #[error("{0:?} is not a valid bucket name (3 to 63 characters of a-z, 0-9, '.' and '-')")]
    BadBucket(String),
    /// s3s-fs refused the data folder.
    #[error("s3s-fs cannot serve {}: {detail}", dir.display())]
    S3Fs {
        /// The data folder.
        dir: PathBuf,
        /// s3s-fs's error (it implements only `Debug`).
        detail: String,
    },
}

impl KitError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KitError {
        let what = what.into();
        move |source| KitError::Io { what, source }
    }
}

/// The last `max` bytes of a log file (lossy UTF-8), for error messages.
fn tail(path: &std::path::Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
        }
        Err(error) => format!("(no log at {}: {error})", path.display()),
    }
}
