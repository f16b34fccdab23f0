use std::time::Duration;

use sluice_core::JobId;
use sluice_storage::Presigner;
use time::OffsetDateTime;

use crate::LinkSigner;

/// Builds the links sluice hands out (in job documents and e-mails) from `server.public_url`. With a
/// [`LinkSigner`], every link carries an expiry and a signature, so it works without the API token. With a
/// [`Presigner`], links to stored files go straight to the S3 store instead.
#[derive(Clone, Debug)]
pub struct Links {
    public_url: String,
    signer: Option<LinkSigner>,
    /// Presigns file links for this long, when set.
    presigner: Option<(Presigner, Duration)>,
}

impl Links {
    /// Links under `public_url` (e.g. `https://media.example.com`).
    pub fn new(public_url: &str) -> Self {
        Self { public_url: public_url.trim_end_matches('/').to_owned(), signer: None, presigner: None }
    }

    /// The same links, but file links presigned by `presigner` (when there is one), valid for `ttl`.
    pub fn with_presigner(self, presigner: Option<Presigner>, ttl: Duration) -> Self {
        Self { presigner: presigner.map(|presigner| (presigner, ttl)), ..self }
    }

    /// The same links, signed by `signer` when there is one.
    pub fn with_signer(self, signer: Option<LinkSigner>) -> Self {
        Self { signer, ..self }
    }

    /// The signer of the links, if they are signed.
    pub fn signer(&self) -> Option<&LinkSigner> {
        self.signer.as_ref()
    }

    /// The link to a stored file in a job document: the server-relative path of the gateway's copy, or a
    /// presigned URL straight to the store.
    pub fn file_path(&self, key: &str) -> String {
        self.presigned(key).unwrap_or_else(|| self.gateway_file_path(key))
    }

    /// The absolute URL of a stored file: through the gateway, or presigned straight to the store.
    pub fn file_url(&self, key: &str) -> String {
        self.presigned(key).unwrap_or_else(|| format!("{}{}", self.public_url, self.gateway_file_path(key)))
    }

    fn gateway_file_path(&self, key: &str) -> String {
        self.signed(format!("/v1/files/{key}"))
    }

    fn presigned(&self, key: &str) -> Option<String> {
        let (presigner, ttl) = self.presigner.as_ref()?;
        presigner.get_url(key, *ttl)
    }

    /// The server-relative path of a job document.
    pub fn job_path(&self, id: JobId) -> String {
        self.signed(format!("/v1/jobs/{id}"))
    }

    /// The server-relative path of a job's server-sent events.
    pub fn job_events_path(&self, id: JobId) -> String {
        self.signed(format!("/v1/jobs/{id}/events"))
    }

    /// The absolute URL of a job document.
    pub fn job_url(&self, id: JobId) -> String {
        format!("{}{}", self.public_url, self.job_path(id))
    }

    fn signed(&self, path: String) -> String {
        match &self.signer {
            Some(signer) => {
                let now = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
                signer.sign(&path, now)
            }
            None => path,
        }
    }
}
