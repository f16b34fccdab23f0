use sluice_core::JobId;

/// Builds the links sluice hands out (in job documents and e-mails) from `server.public_url`.
#[derive(Clone, Debug)]
pub struct Links {
    public_url: String,
}

impl Links {
    /// Links under `public_url` (e.g. `https://media.example.com`).
    pub fn new(public_url: &str) -> Self {
        Self { public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// The server-relative path of a stored file.
    pub fn file_path(&self, key: &str) -> String {
        format!("/v1/files/{key}")
    }

    /// The absolute URL of a stored file.
    pub fn file_url(&self, key: &str) -> String {
        format!("{}{}", self.public_url, self.file_path(key))
    }

    /// The server-relative path of a job document.
    pub fn job_path(&self, id: JobId) -> String {
        format!("/v1/jobs/{id}")
    }

    /// The absolute URL of a job document.
    pub fn job_url(&self, id: JobId) -> String {
        format!("{}{}", self.public_url, self.job_path(id))
    }
}
