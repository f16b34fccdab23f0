//! Completion notices by e-mail.
//!
//! This crate owns the mail side of sluice: the `[mail]` config section ([`MailSettings`] with its parsed
//! [`MailUrl`]), the [`Mailer`] that delivers over SMTP (plain for local catchers, STARTTLS or implicit TLS,
//! via lettre) or into an outbox folder of `.eml` files, and the [`Notice`] built from a finished
//! [`sluice_core::JobRecord`]: a multipart text + HTML mail listing every file, its outputs' links and the
//! reasons for rejections, with a stable `Message-ID` derived from the job id so duplicate deliveries are
//! recognisable. Errors are [`NotifyError`]s that know whether a retry can help
//! ([`NotifyError::is_permanent`]).
//!
//! It depends on `sluice-core` only among sluice crates: it must not know about storage, HTTP, the pipeline
//! or configuration loading. Callers hand it URLs (`link`, `job_url`) instead of it building them, and decide
//! on retries and record updates themselves.

mod error;
mod mailer;
mod notice;
mod settings;

pub use error::NotifyError;
pub use mailer::Mailer;
pub use notice::{Notice, display_text, message_id};
pub use settings::{DEFAULT_OUTBOX, MailSettings, MailUrl, MailUrlError, SmtpCredentials, SmtpSecurity, SmtpUrl};
