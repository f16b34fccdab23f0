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
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self { url: "./data/storage".to_owned(), s3: S3Settings::default() }
    }
}
