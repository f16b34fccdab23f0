//! The HTTP server loop: hyper connections with a header read timeout, drained gracefully on shutdown.
//!
//! `axum::serve` sets no timer on hyper, so a client that opens a connection and sends its request head one
//! byte at a time (slowloris) holds a connection forever. Here every HTTP/1 connection must deliver its
//! request head within `server.header_read_timeout_secs`, or hyper closes it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Extension;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer as _;

use crate::{AppState, router};

/// Pause after a failed `accept` (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `state` on `listener` until `shutdown` completes, then stops taking connections and lets open
/// requests finish (event streams are ended through the state's closing token). Handlers can extract
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_read_timeout = Duration::from_secs(state.settings.header_read_timeout_secs);
    let app = router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    // half_close: a client may shut its sending side once the body is sent and still read the answer.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout).half_close(true);
    builder.http2().timer(TokioTimer::new());
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (socket, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(Extension(ConnectInfo::<SocketAddr>(remote)).layer(app.clone()));
        let builder = builder.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let mut connection = pin!(builder.serve_connection_with_upgrades(TokioIo::new(socket), service));
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                // Timeouts and clients that go away mid-request end here; the server goes on.
                tracing::debug!(%remote, error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}
