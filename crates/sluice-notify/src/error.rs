//! What can go wrong while building or delivering a notice, and whether retrying can help.

use std::path::PathBuf;

use lettre::address::AddressError;
use lettre::transport::{file, smtp};
use sluice_core::JobId;

/// Why a notice could not be built or delivered.
///
/// [`NotifyError::is_permanent`] tells the caller whether another attempt can succeed; [`NotifyError::code`]
/// is the stable snake_case code stored in the job record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The configured `from` is not a mailbox such as `sluice <sluice@localhost>`.
    #[error("the mail sender {from:?} is not a mailbox such as \"sluice <sluice@localhost>\"")]
    InvalidSender {
        /// The configured value.
        from: String,
        /// What the parser objected to.
        #[source]
        source: AddressError,
    },
    /// `timeout_secs` is zero.
    #[error("mail timeout_secs must be at least 1")]
    InvalidTimeout,
    /// An entry of `allowed_domains` is not a domain.
    #[error("mail.allowed_domains: {domain:?} is not a domain (write example.com, without @)")]
    InvalidAllowedDomain {
        /// The entry as configured.
        domain: String,
    },
    /// An SMTP mailer was built outside a Tokio runtime (its connection pool needs one).
    #[error("the SMTP mailer must be created inside a Tokio runtime")]
    NoRuntime,
    /// The TLS settings for the SMTP host could not be prepared (e.g. no usable root certificates).
    #[error("could not prepare TLS for the SMTP host {host}")]
    TlsSetup {
        /// The SMTP host.
        host: String,
        /// The underlying failure.
        #[source]
        source: smtp::Error,
    },
    /// The outbox folder could not be created or written.
    #[error("the mail outbox {} is not writable", dir.display())]
    OutboxUnavailable {
        /// The outbox folder.
        dir: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The job names nobody to notify.
    #[error("job {job} names no recipient")]
    NoRecipient {
        /// The job.
        job: JobId,
    },
    /// The job is still queued or running.
    #[error("job {job} is {state}, so there is nothing to report yet")]
    NotFinished {
        /// The job.
        job: JobId,
        /// Its current state.
        state: &'static str,
    },
    /// The recipient is not an address the mail library accepts.
    #[error("the recipient {to:?} is not a deliverable address")]
    InvalidRecipient {
        /// The recipient as recorded.
        to: String,
        /// What the parser objected to.
        #[source]
        source: AddressError,
    },
    /// The message could not be assembled.
    #[error("could not assemble the notice of job {job}")]
    InvalidMessage {
        /// The job.
        job: JobId,
        /// What the builder objected to.
        #[source]
        source: lettre::error::Error,
    },
    /// The SMTP exchange failed: refused connection, timeout, TLS failure, a missing extension (STARTTLS
    /// required but not offered) or a 4xx/5xx reply.
    #[error("the SMTP server did not take the notice")]
    Smtp {
        /// The SMTP client's error (its reply code, if any, is in here).
        #[source]
        source: smtp::Error,
    },
    /// The SMTP server answered the readiness probe but not with success.
    #[error("the SMTP server at {server} did not answer NOOP")]
    SmtpNotReady {
        /// The server, password hidden.
        server: String,
    },
    /// The `.eml` file could not be written.
    #[error("could not write the notice into the outbox {}", dir.display())]
    Outbox {
        /// The outbox folder.
        dir: PathBuf,
        /// The underlying failure.
        #[source]
        source: file::Error,
    },
}

impl NotifyError {
    /// Whether another attempt is pointless: SMTP 5xx replies, bad addresses, a message that cannot be built,
    /// a job with nobody to tell, bad settings. Refused connections, timeouts, TLS handshakes, SMTP 4xx
    /// replies and outbox I/O are transient: the server or disk may recover.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Smtp { source } => source.is_permanent(),
            Self::InvalidSender { .. }
            | Self::InvalidTimeout
            | Self::InvalidAllowedDomain { .. }
            | Self::NoRuntime
            | Self::TlsSetup { .. }
            | Self::NoRecipient { .. }
            | Self::NotFinished { .. }
            | Self::InvalidRecipient { .. }
            | Self::InvalidMessage { .. } => true,
            Self::OutboxUnavailable { .. } | Self::SmtpNotReady { .. } | Self::Outbox { .. } => false,
        }
    }

    /// A stable snake_case code for job records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSender { .. } => "invalid_sender",
            Self::InvalidTimeout | Self::InvalidAllowedDomain { .. } => "invalid_mail_settings",
            Self::NoRuntime => "no_runtime",
            Self::TlsSetup { .. } => "smtp_tls_setup",
            Self::OutboxUnavailable { .. } => "outbox_unavailable",
            Self::NoRecipient { .. } => "no_recipient",
            Self::NotFinished { .. } => "job_not_finished",
            Self::InvalidRecipient { .. } => "invalid_recipient",
            Self::InvalidMessage { .. } => "invalid_message",
            Self::Smtp { source } if source.is_permanent() => "smtp_rejected",
            Self::Smtp { source } if source.is_transient() => "smtp_deferred",
            Self::Smtp { source } if source.is_timeout() => "smtp_timeout",
            Self::Smtp { source } if source.is_tls() => "smtp_tls",
            Self::Smtp { source } if source.is_client() || source.is_response() => "smtp_protocol",
            Self::Smtp { .. } => "smtp_unreachable",
            Self::SmtpNotReady { .. } => "smtp_not_ready",
            Self::Outbox { .. } => "outbox_write_failed",
        }
    }
}
