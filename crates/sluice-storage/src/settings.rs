use serde::Deserialize;

/// The `[storage]` config section: where originals, outputs and job records live.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// A local folder (a path, or `file:///abs/path`), or `s3://bucket[/prefix]`.
    pub url: String,
    /// S3 connection details; unset keys fall back to the standard `AWS_*` environment variables.
    #[serde(default)]
    pub s3: S3Settings,
    /// Local folders only: flush every write to the disk (file and directory entry) before it counts as
    /// done, so an accepted upload survives a power cut, as it does on S3. Off trades that for throughput.
    #[serde(default = "durable_by_default")]
    pub fsync: bool,
}

fn durable_by_default() -> bool {
    true
}

impl StorageSettings {
    /// The store in a few words for the configuration summary: where it is and, for a local folder, whether
    /// writes wait for the disk; for S3, whether file links are presigned.
    pub fn describe(&self) -> String {
        let url = self.url.trim();
        match (self.s3_location().is_some(), self.fsync) {
            (true, _) if self.s3.presigned_links => {
                let host = self.s3.public_endpoint.as_deref().or(self.s3.endpoint.as_deref()).unwrap_or("AWS S3");
                format!("{url} (file links presigned, on {host})")
            }
            (true, _) => url.to_owned(),
            (false, true) => format!("{url} (every write flushed to the disk)"),
            (false, false) => format!("{url} (writes not flushed: storage.fsync = false)"),
        }
    }

    /// Checks what can be checked without the environment: presigned links need S3, and `public_endpoint` is
    /// only for presigned links. (Whether the keys are static is known once the `AWS_*` variables are read,
    /// when the store opens.)
    pub fn validate(&self) -> Result<(), String> {
        if self.s3.presigned_links && self.s3_location().is_none() {
            return Err(format!("storage.s3.presigned_links needs an s3:// storage.url (it is {:?})", self.url.trim()));
        }
        if self.s3.public_endpoint.is_some() && !self.s3.presigned_links {
            return Err("storage.s3.public_endpoint only names the host of presigned links: set \
                        storage.s3.presigned_links = true too, or remove it"
                .to_owned());
        }
        Ok(())
    }

    /// `bucket[/prefix]` when the store is S3 (`s3://bucket[/prefix]`), `None` for a local folder.
    pub(crate) fn s3_location(&self) -> Option<&str> {
        self.url.trim().strip_prefix("s3://")
    }
}

/// Connection details for MinIO or any S3-compatible service.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for MinIO; unset for AWS itself.
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-1`.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow plain `http://` endpoints (MinIO on a local network).
    pub allow_http: Option<bool>,
    /// Links to stored files (in job documents, e-mails and webhooks) are presigned URLs straight to the store,
    /// valid for `server.link_ttl_secs` (at most seven days), so downloads skip the gateway. Needs static keys.
    #[serde(default)]
    pub presigned_links: bool,
    /// The endpoint presigned links name, when callers outside reach the store at another address than
    /// `endpoint` (in docker compose: `http://localhost:9000` for `http://minio:9000`). Unset: `endpoint`.
    pub public_endpoint: Option<String>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self { url: "./data/storage".to_owned(), s3: S3Settings::default(), fsync: durable_by_default() }
    }
}
