//! [`S3Server`]: a real S3 API served in-process by s3s-fs, with SigV4 checked.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::KitError;

/// The region test clients should sign for.
pub const REGION: &str = "us-east-1";
const BUCKET: &str = "sluice-test";
const ACCESS_KEY: &str = "sluice-test-access";
const SECRET_KEY: &str = "sluice-test-secret-key-0123456789";
/// Binds tried (100 ms apart) when restarting on the same port.
const REBIND_ATTEMPTS: u32 = 50;

/// An S3 server on `127.0.0.1:<free port>` in the current Tokio runtime, storing objects as plain files in
/// a temp folder, with one empty bucket. Requests must be signed (SigV4) with [`S3Server::access_key`] and
/// [`S3Server::secret_key`]. The server stops, open connections included, when this is dropped.
///
/// [`S3Server::stop`] and [`S3Server::restart`] take it down and bring it back on the same port with the same
/// objects, as an outage of a real S3 would.
#[derive(Debug)]
pub struct S3Server {
    addr: SocketAddr,
    dir: TempDir,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl S3Server {
    /// Starts a server with a fresh data folder and bucket. Must be called inside a Tokio runtime.
    pub async fn start() -> Result<S3Server, KitError> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-s3-")
            .tempdir()
            .map_err(KitError::io("creating a temp folder for the S3 server"))?;
        let service = s3_service(dir.path(), ACCESS_KEY, SECRET_KEY, BUCKET)?;
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).await.map_err(KitError::io("binding the S3 server to 127.0.0.1"))?;
        let addr = listener.local_addr().map_err(KitError::io("reading the S3 server's address"))?;
        let task = tokio::spawn(serve(listener, service, std::future::pending()));
        Ok(S3Server { addr, dir, task: Mutex::new(Some(task)) })
    }

    /// Takes the server down: the port is closed and open connections are dropped. The objects stay.
    /// Does nothing when it is stopped already.
    pub async fn stop(&self) {
        let task = self.lock_task().take();
        if let Some(task) = task {
            task.abort();
            // Wait until the task is gone, so its listener is closed when this returns.
            let _ = task.await;
        }
    }

    /// Stops the server if it runs and serves the same folder on the same port again. Binding is retried for
    /// a few seconds, as the port may linger briefly after the stop.
    pub async fn restart(&self) -> Result<(), KitError> {
        self.stop().await;
        let service = s3_service(self.dir.path(), ACCESS_KEY, SECRET_KEY, BUCKET)?;
        let mut attempts = 0;
        let listener = loop {
            attempts += 1;
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) if attempts >= REBIND_ATTEMPTS => {
                    return Err(KitError::Io {
                        what: format!("binding the S3 server to {} again", self.addr),
                        source: error,
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        *self.lock_task() = Some(tokio::spawn(serve(listener, service, std::future::pending())));
        Ok(())
    }

    fn lock_task(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        // A panic while holding the lock cannot leave the Option inconsistent.
        self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The endpoint URL, `http://127.0.0.1:PORT` (path-style requests).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bucket created for this server.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The access key id requests must be signed with.
    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    /// The secret key requests must be signed with.
    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    /// The region to sign for.
    pub fn region(&self) -> &str {
        REGION
    }

    /// The data folder; the bucket is its sub-folder of the same name and objects are plain files in it.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Dropping the serve future drops its JoinSet, which aborts every open connection.
        if let Some(task) = self.lock_task().take() {
            task.abort();
        }
    }
}

fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The S3 service over `data_dir` (created if missing) with `bucket` created as a sub-folder and SigV4
/// authentication for one key pair.
pub fn s3_service(data_dir: &Path, access_key: &str, secret_key: &str, bucket: &str) -> Result<S3Service, KitError> {
    if !is_bucket_name(bucket) {
        return Err(KitError::BadBucket(bucket.to_owned()));
    }
    let bucket_dir = data_dir.join(bucket);
    std::fs::create_dir_all(&bucket_dir).map_err(KitError::io(format!("creating {}", bucket_dir.display())))?;
    let fs = s3s_fs::FileSystem::new(data_dir)
        .map_err(|error| KitError::S3Fs { dir: data_dir.to_owned(), detail: format!("{error:?}") })?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
    Ok(builder.build())
}

/// Serves `service` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` completes; open connections are
/// then dropped.
pub async fn serve(listener: TcpListener, service: S3Service, shutdown: impl Future<Output = ()>) {
    let builder = Builder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let connection = builder.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                    connections.spawn(async move {
                        // A client that goes away mid-request is not the server's problem.
                        let _ = connection.await;
                    });
                }
                // Out of file descriptors, say: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
