/// What went wrong with storage, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The settings do not describe a usable store.
    #[error("storage settings: {0}")]
    Config(String),
    /// The backend could not be built from the settings.
    #[error("could not open storage {url}")]
    Open {
        /// The configured URL.
        url: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// Nothing is stored under the key.
    #[error("no object at {key}")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A create-only write found the key taken.
    #[error("an object already exists at {key}")]
    AlreadyExists {
        /// The key written.
        key: String,
    },
    /// The requested byte range lies outside the object.
    #[error("range not satisfiable for {key}")]
    BadRange {
        /// The key read.
        key: String,
    },
    /// A stored job record could not be parsed.
    #[error("the record at {key} is not valid")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Housekeeping in a local storage folder failed (reading it, or removing a file).
    #[error("the storage folder {path} could not be cleaned up")]
    Folder {
        /// The storage folder.
        path: String,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// The backend failed (network, disk, permissions, the service's own error).
    #[error("storage failed on {key}")]
    Backend {
        /// The key involved.
        key: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
}

impl StoreError {
    /// Maps a backend error on `key` to the variant callers can act on.
    pub(crate) fn backend(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound { key: key.to_owned() },
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
                Self::AlreadyExists { key: key.to_owned() }
            }
            source => Self::Backend { key: key.to_owned(), source },
        }
    }

    /// Whether the same call may succeed later (the service was unreachable, timed out, or answered with a
    /// server error). Missing objects, conflicts and bad data are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Backend { source, .. } => !matches!(
                source,
                object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            _ => false,
        }
    }
}
