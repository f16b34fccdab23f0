//! Object storage for sluice.
//!
//! This crate owns every byte sluice keeps: uploaded originals, converted outputs and the durable job records.
//! [`Blobs`] wraps an `object_store` backend chosen from [`StorageSettings`] (a local folder by default, or any
//! S3-compatible service such as MinIO) and offers the few operations the gateway and the stages need:
//! streaming writes that leave nothing behind when aborted ([`BlobWriter`]), ranged reads, listings and
//! prefix clean-up. [`Journal`] stores [`sluice_core::JobRecord`]s on top of it. Errors are [`StoreError`],
//! which says whether a retry can help. It knows nothing of HTTP, conversion or mail.

mod blobs;
mod error;
mod group_commit;
mod journal;
mod presign;
mod settings;

pub use blobs::{BlobMeta, BlobRead, BlobWriter, Blobs, ByteRange};
pub use error::StoreError;
pub use journal::Journal;
pub use presign::{MAX_PRESIGNED_TTL, Presigner};
pub use settings::{S3Settings, StorageSettings};
