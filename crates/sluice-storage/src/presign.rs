use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use sluice_core::keys;

/// The longest a presigned URL can stay valid: SigV4 refuses more than seven days.
pub const MAX_PRESIGNED_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Makes presigned GET URLs for the objects of an S3 store (`storage.s3.presigned_links`), so that the links
/// sluice hands out fetch straight from the store instead of through the gateway. Only made with static keys,
/// which sign without any request of their own.
#[derive(Clone, Debug)]
pub struct Presigner {
    store: Arc<AmazonS3>,
    /// The key prefix of `storage.url` (`s3://bucket/prefix`), empty for none.
    prefix: String,
}

impl Presigner {
    pub(crate) fn new(store: Arc<AmazonS3>, prefix: &str) -> Self {
        Self { store, prefix: prefix.to_owned() }
    }

    /// A URL that lets anyone who holds it GET the object at `key` for `ttl` (at most [`MAX_PRESIGNED_TTL`]).
    /// The store answers with the content type and disposition the gateway would send, which are part of the
    /// signature. `None` if it cannot be made at once (the caller then links through the gateway).
    pub fn get_url(&self, key: &str, ttl: Duration) -> Option<String> {
        let path = if self.prefix.is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", self.prefix)) };
        let options = SignedUrlOptions::new().with_query([
            ("response-content-type", keys::media_of(key).mime().to_owned()),
            ("response-content-disposition", keys::content_disposition(key)),
        ]);
        let signing = self.store.signed_url_opts(http::Method::GET, &path, ttl.min(MAX_PRESIGNED_TTL), &options);
        // Static keys sign without awaiting anything; a signer that would wait is not used (see above).
        match signing.now_or_never()? {
            Ok(url) => Some(url.into()),
            Err(error) => {
                tracing::warn!(%error, key, "cannot presign a link; linking through the gateway");
                None
            }
        }
    }
}
