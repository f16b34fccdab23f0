use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use crate::group_commit::GroupCommit;
use crate::{Presigner, StorageSettings, StoreError};

/// Size of the parts of a streaming upload; a file smaller than this is written with one plain put.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once: bounds an upload's memory to about `PART_SIZE * (this + 1)`.
const PARTS_IN_FLIGHT: usize = 2;

/// The object store holding originals, outputs and records, addressed by the keys of [`sluice_core::keys`].
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The folder of a local store, where cut-short writes can leave staged files behind.
    local_root: Option<Arc<std::path::PathBuf>>,
    /// Signs links straight to an S3 store, when `storage.s3.presigned_links` asks for them.
    presigner: Option<Presigner>,
    /// A durable local folder's unflushed writes and their shared flush, for the writes of an upload.
    deferred: Option<Deferred>,
}

/// The local folder's store without a flush per write, and the shared flush that makes its writes durable.
#[derive(Clone, Debug)]
struct Deferred {
    store: Arc<dyn ObjectStore>,
    commit: Arc<GroupCommit>,
}

/// What is known of a stored object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    /// Size in bytes.
    pub size: u64,
    /// Entity tag, when the backend has one.
    pub etag: Option<String>,
    /// Last modification time, as seconds since the epoch.
    pub modified_unix: i64,
}

/// A requested byte range, as in an HTTP `Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=start-end` (end inclusive, as in HTTP).
    FromTo(u64, u64),
    /// `bytes=start-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Last(u64),
}

/// An object being read: its metadata, the byte range served and the body as a stream.
pub struct BlobRead {
    /// The object's metadata.
    pub meta: BlobMeta,
    /// The bytes of the object this read yields (`0..size` for a whole read).
    pub range: Range<u64>,
    /// The bytes, in order.
    pub body: BoxStream<'static, Result<Bytes, StoreError>>,
}

impl Blobs {
    /// Opens the store the settings name: a local folder (created when missing) or an S3 bucket.
    pub fn from_settings(settings: &StorageSettings) -> Result<Self, StoreError> {
        settings.validate().map_err(StoreError::Config)?;
        let url = settings.url.trim();
        if let Some(rest) = settings.s3_location() {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Config(format!("storage.url {url:?} names no bucket")));
            }
            let s3 = &settings.s3;
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
            }
            if let Some(region) = &s3.region {
                builder = builder.with_region(region);
            }
            if let Some(key) = &s3.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &s3.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            let has_static_keys = || {
                [AmazonS3ConfigKey::AccessKeyId, AmazonS3ConfigKey::SecretAccessKey]
                    .iter()
                    .all(|key| builder.get_config_value(key).is_some_and(|value| !value.is_empty()))
            };
            if s3.presigned_links && !has_static_keys() {
                return Err(StoreError::Config(
                    "storage.s3.presigned_links needs static keys: storage.s3.access_key_id and \
                     storage.s3.secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                        .to_owned(),
                ));
            }
            // Fail fast: the pipeline retries with its own backoff, and an upload should get a prompt 503
            // rather than hang while the service is down.
            let retry = RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
            };
            let client =
                // allow_http lives in the client options: set on the builder it would be overwritten here.
                ClientOptions::new()
                    .with_allow_http(s3.allow_http.unwrap_or(false))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60));
            let builder = builder.with_retry(retry).with_client_options(client);
            let open = |builder: AmazonS3Builder| {
                builder.build().map(Arc::new).map_err(|source| StoreError::Open { url: url.to_owned(), source })
            };
            let store = open(builder.clone())?;
            let prefix = prefix.trim_matches('/');
            let presigner = match (s3.presigned_links, &s3.public_endpoint) {
                (false, _) => None,
                (true, None) => Some(Presigner::new(Arc::clone(&store), prefix)),
                // The host is part of the signature: links for outside callers are signed for the outside address.
                (true, Some(public)) => Some(Presigner::new(open(builder.with_endpoint(public))?, prefix)),
            };
            let store: Arc<dyn ObjectStore> =
                if prefix.is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) };
            Ok(Self { store, local_root: None, presigner, deferred: None })
        } else {
            let path = url.strip_prefix("file://").unwrap_or(url);
            if path.is_empty() {
                return Err(StoreError::Config("storage.url is empty".to_owned()));
            }
            Self::local_folder(std::path::Path::new(path), settings.fsync)
        }
    }

    /// A store in a local folder, created when missing, that flushes every write to the disk.
    pub fn local(path: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::local_folder(path.as_ref(), true)
    }

    fn local_folder(path: &std::path::Path, fsync: bool) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|e| StoreError::Config(format!("cannot create storage folder {}: {e}", path.display())))?;
        let store = LocalFileSystem::new_with_prefix(path)
            .map_err(|source| StoreError::Open { url: path.display().to_string(), source })?
            .with_automatic_cleanup(true)
            .with_fsync(fsync);
        // With flushing on, an upload's originals are written unflushed and made durable by one shared flush
        // (see `Blobs::deferred_writer`); where the system has no such flush they are flushed file by file.
        let deferred = match fsync.then(|| GroupCommit::open(path)).flatten() {
            Some(commit) => {
                let unflushed = LocalFileSystem::new_with_prefix(path)
                    .map_err(|source| StoreError::Open { url: path.display().to_string(), source })?
                    .with_automatic_cleanup(true);
                let commit =
                    commit.map_err(|source| StoreError::Folder { path: path.display().to_string(), source })?;
                Some(Deferred { store: Arc::new(unflushed), commit: Arc::new(commit) })
            }
            None => None,
        };
        Ok(Self { store: Arc::new(store), local_root: Some(Arc::new(path.to_path_buf())), presigner: None, deferred })
    }

    /// What an object at `key` is stored with: in a bucket its `Content-Type` (from the key's extension, which
    /// sluice chose), so the bucket serves it right when it is read directly; a local folder keeps none.
    fn attributes(&self, key: &str) -> Attributes {
        if self.local_root.is_some() {
            return Attributes::default();
        }
        Attributes::from_iter([(Attribute::ContentType, sluice_core::keys::media_of(key).mime())])
    }

    /// Whether other sluice instances may write to this store at the same time: an S3 bucket may be shared by
    /// instances behind a load balancer, a local folder belongs to one process.
    pub fn may_be_shared(&self) -> bool {
        self.local_root.is_none()
    }

    /// The signer of links straight to the store: set for S3 with `storage.s3.presigned_links`.
    pub fn presigner(&self) -> Option<&Presigner> {
        self.presigner.as_ref()
    }

    /// Removes the staged files of local writes that a crash (kill -9, power cut) cut short, and answers how
    /// many. A local write goes to `{key}#{n}` beside its key and is renamed into place when complete; listings
    /// never show staged files, so without this nothing would ever delete them. Only files untouched for
    /// `quiet` go, so writes still in progress (in this process or another one) are left alone. S3 has no
    /// staged files (an unfinished object is never visible there): nothing to do.
    pub async fn remove_abandoned_writes(&self, quiet: Duration) -> Result<u64, StoreError> {
        let Some(root) = &self.local_root else { return Ok(0) };
        on_folder(root.to_path_buf(), move |root| remove_staged_files(root, quiet)).await
    }

    /// Writes `bytes` at `key`, replacing what was there (outputs have deterministic keys, so a re-run
    /// overwrites instead of duplicating).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let options = PutOptions { attributes: self.attributes(key), ..PutOptions::default() };
        self.store
            .put_opts(&Path::from(key), PutPayload::from(bytes), options)
            .await
            .map_err(|e| StoreError::backend(key, e))?;
        Ok(())
    }

    /// Writes `bytes` at `key` only if nothing is there yet.
    pub async fn create(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let options = PutOptions { mode: PutMode::Create, attributes: self.attributes(key), ..PutOptions::default() };
        self.store
            .put_opts(&Path::from(key), PutPayload::from(bytes), options)
            .await
            .map_err(|e| StoreError::backend(key, e))?;
        Ok(())
    }

    /// Reads a whole object into memory.
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let result = self.store.get(&Path::from(key)).await.map_err(|e| StoreError::backend(key, e))?;
        result.bytes().await.map_err(|e| StoreError::backend(key, e))
    }

    /// Streams a whole object, for readers that must not hold it in memory (a large CSV on its way into a
    /// report).
    pub async fn stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let result = self.store.get(&Path::from(key)).await.map_err(|e| StoreError::backend(key, e))?;
        let owned_key = key.to_owned();
        Ok(result.into_stream().map_err(move |e| StoreError::backend(&owned_key, e)).boxed())
    }

    /// The metadata of an object.
    pub async fn head(&self, key: &str) -> Result<BlobMeta, StoreError> {
        let meta = self.store.head(&Path::from(key)).await.map_err(|e| StoreError::backend(key, e))?;
        Ok(BlobMeta { size: meta.size, etag: meta.e_tag, modified_unix: meta.last_modified.timestamp() })
    }

    /// Opens an object for streaming, whole or a byte range of it. The caller passes the metadata it read with
    /// [`Blobs::head`] (to answer validators first), so the object is not asked for twice.
    pub async fn open(&self, key: &str, meta: BlobMeta, range: Option<ByteRange>) -> Result<BlobRead, StoreError> {
        let wanted = match range {
            None => None,
            Some(range) => {
                Some(resolve_range(range, meta.size).ok_or_else(|| StoreError::BadRange { key: key.to_owned() })?)
            }
        };
        if meta.size == 0 {
            return Ok(BlobRead { meta, range: 0..0, body: futures::stream::empty().boxed() });
        }
        let options = GetOptions { range: wanted.clone().map(GetRange::Bounded), ..GetOptions::default() };
        let result = self.store.get_opts(&Path::from(key), options).await.map_err(|e| StoreError::backend(key, e))?;
        let served = result.range.clone();
        let owned_key = key.to_owned();
        let body = result.into_stream().map_err(move |e| StoreError::backend(&owned_key, e)).boxed();
        Ok(BlobRead { meta, range: served, body })
    }

    /// Starts a streaming write at `key`. Nothing is visible at `key` until [`BlobWriter::finish`]; an
    /// aborted or dropped writer leaves nothing behind.
    pub fn writer(&self, key: &str) -> BlobWriter {
        BlobWriter {
            store: Arc::clone(&self.store),
            attributes: self.attributes(key),
            key: key.to_owned(),
            buffer: BytesMut::new(),
            multipart: None,
            written: 0,
        }
    }

    /// A [`Blobs::writer`] whose object is durable only once [`Blobs::commit`] returns. On a local folder
    /// that flushes its writes, many uploads then share one flush of the file system instead of waiting for a
    /// file flush and a directory flush each; elsewhere it is the same as [`Blobs::writer`].
    pub fn deferred_writer(&self, key: &str) -> BlobWriter {
        let mut writer = self.writer(key);
        if let Some(deferred) = &self.deferred {
            writer.store = Arc::clone(&deferred.store);
        }
        writer
    }

    /// Returns once every [`Blobs::deferred_writer`] the caller finished before calling is durable.
    pub async fn commit(&self) -> Result<(), StoreError> {
        let (Some(deferred), Some(root)) = (&self.deferred, &self.local_root) else { return Ok(()) };
        deferred.commit.commit().await.map_err(|source| StoreError::Folder { path: root.display().to_string(), source })
    }

    /// Deletes one object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::backend(key, e)),
        }
    }

    /// Deletes every object under `prefix`, and in a local folder the folders that held them (a write cut short
    /// can leave its folder behind with no object in it).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        for key in self.list_keys(prefix).await? {
            self.delete(&key).await?;
        }
        if let Some(root) = &self.local_root {
            on_folder(root.join(prefix.trim_matches('/')), remove_empty_folders).await?;
        }
        Ok(())
    }

    /// The keys under `prefix` (which ends with `/`), in no particular order.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let path = Path::from(prefix.trim_end_matches('/'));
        self.store
            .list(Some(&path))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| StoreError::backend(prefix, e))
    }

    /// Checks that the store answers, for readiness probes.
    pub async fn check(&self) -> Result<(), StoreError> {
        if let Some(root) = &self.local_root {
            // A local listing of a folder that is gone, or is a file, answers an empty list: look at the folder.
            on_folder(root.to_path_buf(), usable_folder).await?;
        }
        self.store.list_with_delimiter(None).await.map_err(|e| StoreError::backend("/", e))?;
        Ok(())
    }
}

/// Runs blocking file-system `work` on `folder` off the async threads; a failure names the folder.
async fn on_folder<T: Send + 'static>(
    folder: std::path::PathBuf,
    work: impl FnOnce(&std::path::Path) -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let path = folder.display().to_string();
    match tokio::task::spawn_blocking(move || work(&folder)).await {
        Ok(result) => result.map_err(|source| StoreError::Folder { path, source }),
        Err(join) => Err(StoreError::Folder { path, source: std::io::Error::other(join) }),
    }
}

/// Fails unless `root` is a folder this process can create files in (not gone, not a file, not read-only).
fn usable_folder(root: &std::path::Path) -> std::io::Result<()> {
    if !std::fs::metadata(root)?.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "the storage folder is not a folder"));
    }
    rustix::fs::access(root, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK).map_err(std::io::Error::from)
}

/// Whether `name` is that of a staged write: `{name}#{digits}` (the rule `object_store` lists by).
fn is_staged_file(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the staged files under `root` not modified for `quiet`; see [`Blobs::remove_abandoned_writes`].
/// Files and folders that vanish meanwhile (a write completing, an empty folder cleaned up) are skipped.
fn remove_staged_files(root: &std::path::Path, quiet: Duration) -> std::io::Result<u64> {
    let mut removed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Some(entries) = unless_gone(std::fs::read_dir(&folder))? else { continue };
        for entry in entries {
            let Some(entry) = unless_gone(entry)? else { continue };
            let Some(kind) = unless_gone(entry.file_type())? else { continue };
            if kind.is_dir() {
                folders.push(entry.path());
                continue;
            }
            if !kind.is_file() || !entry.file_name().to_str().is_some_and(is_staged_file) {
                continue;
            }
            let Some(modified) = unless_gone(entry.metadata().and_then(|meta| meta.modified()))? else { continue };
            if modified.elapsed().unwrap_or_default() >= quiet
                && unless_gone(std::fs::remove_file(entry.path()))?.is_some()
            {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes `folder` and the folders under it that hold no file. A folder that is gone or that holds a file
/// (an object written meanwhile) is left as it is.
fn remove_empty_folders(folder: &std::path::Path) -> std::io::Result<()> {
    let Some(entries) = unless_gone(std::fs::read_dir(folder))? else { return Ok(()) };
    for entry in entries {
        let Some(entry) = unless_gone(entry)? else { continue };
        if unless_gone(entry.file_type())?.is_some_and(|kind| kind.is_dir()) {
            remove_empty_folders(&entry.path())?;
        }
    }
    match std::fs::remove_dir(folder) {
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
        other => unless_gone(other).map(|_| ()),
    }
}

/// `None` for a file or folder that is no longer there, the error for any other failure.
fn unless_gone<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The half-open byte range an HTTP range asks for, or `None` when it cannot be satisfied.
fn resolve_range(range: ByteRange, size: u64) -> Option<Range<u64>> {
    let resolved = match range {
        ByteRange::FromTo(start, end) => start..end.saturating_add(1).min(size),
        ByteRange::From(start) => start..size,
        ByteRange::Last(n) => size.saturating_sub(n)..size,
    };
    (resolved.start < resolved.end && resolved.start < size).then_some(resolved)
}

/// A streaming write of one object: small objects become one plain put, large ones a multipart upload
/// with a bounded number of parts in flight, so memory stays flat however large the object.
pub struct BlobWriter {
    store: Arc<dyn ObjectStore>,
    /// What the object is stored with (see [`Blobs::attributes`]).
    attributes: Attributes,
    key: String,
    buffer: BytesMut,
    multipart: Option<WriteMultipart>,
    written: u64,
}

impl BlobWriter {
    /// Appends bytes, waiting when too many parts are still being sent.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.written += chunk.len() as u64;
        if let Some(multipart) = self.multipart.as_mut() {
            multipart.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| StoreError::backend(&self.key, e))?;
            multipart.put(chunk);
            return Ok(());
        }
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() >= PART_SIZE {
            let options = PutMultipartOptions { attributes: self.attributes.clone(), ..PutMultipartOptions::default() };
            let upload = self
                .store
                .put_multipart_opts(&Path::from(self.key.as_str()), options)
                .await
                .map_err(|e| StoreError::backend(&self.key, e))?;
            let mut multipart = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            multipart.put(std::mem::take(&mut self.buffer).freeze());
            self.multipart = Some(multipart);
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the write: the object becomes visible at its key.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        match self.multipart.take() {
            Some(multipart) => {
                multipart.finish().await.map_err(|e| StoreError::backend(&self.key, e))?;
            }
            None => {
                let payload = PutPayload::from(std::mem::take(&mut self.buffer).freeze());
                let path = Path::from(self.key.as_str());
                let options = PutOptions { attributes: std::mem::take(&mut self.attributes), ..PutOptions::default() };
                self.store.put_opts(&path, payload, options).await.map_err(|e| StoreError::backend(&self.key, e))?;
            }
        }
        Ok(())
    }

    /// Gives up the write, removing any parts already sent.
    pub async fn abort(mut self) -> Result<(), StoreError> {
        if let Some(multipart) = self.multipart.take() {
            multipart.abort().await.map_err(|e| StoreError::backend(&self.key, e))?;
        }
        Ok(())
    }
}

impl Drop for BlobWriter {
    /// A writer dropped mid-way (the client went away, the request was cancelled) aborts its multipart
    /// upload in the background, so no orphaned parts stay in the bucket.
    fn drop(&mut self) {
        if let Some(multipart) = self.multipart.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let key = std::mem::take(&mut self.key);
            runtime.spawn(async move {
                if let Err(error) = multipart.abort().await {
                    tracing::warn!(key, error = %error, "could not abort an unfinished upload");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_links_need_s3_and_static_keys_and_name_the_object() {
        let folder = tempfile::tempdir().unwrap();
        let mut settings = StorageSettings { url: folder.path().display().to_string(), ..StorageSettings::default() };
        settings.s3.presigned_links = true;
        let refused = |settings: &StorageSettings| match Blobs::from_settings(settings) {
            Err(StoreError::Config(message)) => message,
            other => panic!("accepted: {other:?}"),
        };
        assert!(refused(&settings).contains("s3://"));
        settings.url = "s3://media/site-a/".to_owned();
        settings.s3.endpoint = Some("http://127.0.0.1:9".to_owned());
        settings.s3.region = Some("us-east-1".to_owned());
        settings.s3.access_key_id = Some("sluice-key".to_owned());
        if std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none() {
            assert!(refused(&settings).contains("static keys"));
        }
        settings.s3.secret_access_key = Some("sluice-secret".to_owned());
        let blobs = Blobs::from_settings(&settings).unwrap();
        let presigner = blobs.presigner().unwrap();
        let url = presigner.get_url("outputs/x/0/thumb.webp", Duration::from_secs(600)).unwrap();
        assert!(url.starts_with("http://127.0.0.1:9/media/site-a/outputs/x/0/thumb.webp?"), "{url}");
        assert!(url.contains("X-Amz-Expires=600&") && url.contains("response-content-type=image%2Fwebp"), "{url}");
        // SigV4 allows seven days at most.
        let long = presigner.get_url("outputs/x/0/thumb.webp", Duration::from_secs(30 * 24 * 3600)).unwrap();
        assert!(long.contains("X-Amz-Expires=604800&"), "{long}");
        // Signed for the address outside callers use, when the store has another one inside.
        settings.s3.public_endpoint = Some("https://media.example.com".to_owned());
        let blobs = Blobs::from_settings(&settings).unwrap();
        let url = blobs.presigner().unwrap().get_url("outputs/x/0/thumb.webp", Duration::from_secs(600)).unwrap();
        assert!(url.starts_with("https://media.example.com/media/site-a/outputs/x/0/thumb.webp?"), "{url}");
        settings.s3.presigned_links = false;
        assert!(refused(&settings).contains("public_endpoint"));
        settings.s3.public_endpoint = None;
        assert!(Blobs::from_settings(&settings).unwrap().presigner().is_none());
    }

    #[test]
    fn ranges_follow_http_semantics() {
        assert_eq!(resolve_range(ByteRange::FromTo(0, 9), 100), Some(0..10));
        assert_eq!(resolve_range(ByteRange::FromTo(90, 200), 100), Some(90..100));
        assert_eq!(resolve_range(ByteRange::From(50), 100), Some(50..100));
        assert_eq!(resolve_range(ByteRange::Last(10), 100), Some(90..100));
        assert_eq!(resolve_range(ByteRange::Last(500), 100), Some(0..100));
        assert_eq!(resolve_range(ByteRange::From(100), 100), None);
        assert_eq!(resolve_range(ByteRange::FromTo(5, 2), 100), None);
        assert_eq!(resolve_range(ByteRange::Last(0), 100), None);
    }

    /// Every file under `root`, relative to it.
    fn files_in(root: &std::path::Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut folders = vec![root.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    found.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    #[tokio::test]
    async fn the_check_fails_when_the_local_folder_is_gone_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let blobs = Blobs::local(&root).unwrap();
        blobs.check().await.unwrap();
        std::fs::remove_dir(&root).unwrap();
        assert!(blobs.check().await.is_err(), "a missing folder passed");
        std::fs::write(&root, b"not a folder").unwrap();
        assert!(blobs.check().await.is_err(), "a file passed");
        std::fs::remove_file(&root).unwrap();
        std::fs::create_dir(&root).unwrap();
        blobs.check().await.unwrap();
    }

    #[tokio::test]
    async fn local_writes_land_whole_with_and_without_fsync() {
        for fsync in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let settings =
                StorageSettings { url: dir.path().display().to_string(), fsync, ..StorageSettings::default() };
            let blobs = Blobs::from_settings(&settings).unwrap();

            blobs.put("outputs/j/0/thumb.jpg", Bytes::from_static(b"thumb")).await.unwrap();
            blobs.put("outputs/j/0/thumb.jpg", Bytes::from_static(b"thumb, again")).await.unwrap();
            blobs.create("jobs/j.json", Bytes::from_static(b"{}")).await.unwrap();
            let taken = blobs.create("jobs/j.json", Bytes::from_static(b"{\"other\":1}")).await;
            assert!(matches!(taken, Err(StoreError::AlreadyExists { .. })), "fsync {fsync}: {taken:?}");

            // Larger than a part: a multipart upload, completed by `finish`.
            let original: Bytes = (0..PART_SIZE * 2 + 5).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
            let mut writer = blobs.writer("originals/j/0.bin");
            for chunk in original.chunks(1 << 20) {
                writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            writer.finish().await.unwrap();
            // The same through a deferred writer, made durable by a commit.
            let mut deferred = blobs.deferred_writer("originals/j/1.bin");
            for chunk in original.chunks(3 << 20) {
                deferred.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            deferred.finish().await.unwrap();
            blobs.commit().await.unwrap();
            assert_eq!(blobs.deferred.is_some(), fsync && cfg!(target_os = "linux"), "a shared flush when flushing");

            assert_eq!(blobs.get("originals/j/0.bin").await.unwrap(), original, "fsync {fsync}");
            assert_eq!(blobs.get("originals/j/1.bin").await.unwrap(), original, "fsync {fsync}");
            assert_eq!(&blobs.get("outputs/j/0/thumb.jpg").await.unwrap()[..], b"thumb, again");
            assert_eq!(&blobs.get("jobs/j.json").await.unwrap()[..], b"{}");
            // No staged copy is left beside the objects.
            assert_eq!(
                files_in(dir.path()),
                ["jobs/j.json", "originals/j/0.bin", "originals/j/1.bin", "outputs/j/0/thumb.jpg"]
            );
        }
    }

    #[tokio::test]
    async fn deleting_a_prefix_also_removes_its_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        blobs.put("originals/a/0.jpg", Bytes::from_static(b"a")).await.unwrap();
        blobs.put("originals/b/0.jpg", Bytes::from_static(b"b")).await.unwrap();
        // What an aborted write leaves: its folder, with nothing in it.
        std::fs::create_dir_all(dir.path().join("originals/c/nested")).unwrap();
        blobs.delete_prefix("originals/a/").await.unwrap();
        blobs.delete_prefix("originals/c/").await.unwrap();
        blobs.delete_prefix("originals/never-written/").await.unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("originals"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["b"], "the emptied and the empty job folders are gone, the other one stays");
        assert_eq!(files_in(dir.path()), ["originals/b/0.jpg"]);
    }

    #[tokio::test]
    async fn only_staged_files_left_untouched_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        blobs.put("originals/j/0.jpg", Bytes::from_static(b"kept")).await.unwrap();
        let folder = dir.path().join("originals/j");
        let hour = Duration::from_secs(60 * 60);
        let write = |name: &str, idle: Duration| {
            let file = std::fs::File::create(folder.join(name)).unwrap();
            file.set_modified(std::time::SystemTime::now() - idle).unwrap();
        };
        write("1.jpg#3", 2 * hour); // a write a crash cut short
        write("2.jpg#12", Duration::ZERO); // a write in progress
        write("3.jpg#a", 2 * hour); // an object whose name has a '#'
        write("4.jpg#", 2 * hour);

        assert_eq!(blobs.remove_abandoned_writes(hour).await.unwrap(), 1);
        assert_eq!(
            files_in(dir.path()),
            ["originals/j/0.jpg", "originals/j/2.jpg#12", "originals/j/3.jpg#a", "originals/j/4.jpg#"]
        );
        assert_eq!(blobs.remove_abandoned_writes(hour).await.unwrap(), 0);
        assert_eq!(blobs.remove_abandoned_writes(Duration::ZERO).await.unwrap(), 1, "the write in progress, once idle");
    }
}
