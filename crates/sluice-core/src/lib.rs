//! Domain types of sluice, with no I/O.
//!
//! This crate owns the vocabulary every other crate speaks: [`JobId`], the durable [`JobRecord`] with its
//! [`JobState`] and [`FileState`] machines, named image variants ([`VariantName`], [`VariantSpec`]), parsed
//! recipients ([`EmailAddress`]), webhook delivery state ([`Webhook`]), media types ([`MediaType`]), the
//! object-storage layout ([`keys`]) and the [`JobEvent`]s broadcast to live listeners. It must not depend on
//! tokio, object storage, HTTP or mail crates:
//! everything here is plain data and the rules over it, so that the converter, the CLI and the server agree.

mod email;
mod error_text;
mod event;
mod html;
mod id;
mod job;
pub mod keys;
mod media;
mod variant;
mod webhook;

pub use email::{EmailAddress, EmailAddressError, ascii_domain};
pub use error_text::error_chain;
pub use event::{JobEvent, JobEventKind};
pub use html::escape_html;
pub use id::{JobId, JobIdError};
pub use job::{
    FileRecord, FileState, IllegalTransition, JobRecord, JobState, Notification, NotificationState, OutputRecord,
    Problem,
};
pub use media::MediaType;
pub use variant::{Fit, OutputFormat, VariantError, VariantName, VariantSpec};
pub use webhook::{Webhook, WebhookState};
