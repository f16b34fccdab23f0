//! Start-up and orderly shutdown of the whole service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_gateway::{AppState, JobDocument};
use sluice_notify::Mailer;
use sluice_pipeline::{Links, Pipeline, PipelineParts, RenderDocument, Reports, Webhooks};
use sluice_storage::{Blobs, Journal};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Settings;

/// A built service, bound to its address and ready to run: gateway, convert stage and notify stage.
pub struct Server {
    listener: TcpListener,
    pipeline: Pipeline,
    state: AppState,
    closing: CancellationToken,
}

impl Server {
    /// Opens storage and the mail transport, starts the pipeline (which resumes unfinished jobs) and binds
    /// the listening socket. Must run inside a tokio runtime.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listen = settings.server.listen;
        let listener =
            TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Like [`Server::build`], on a socket bound already (tests bind port 0 first to learn the address
    /// that `server.public_url` must name).
    pub async fn build_with_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let blobs = Blobs::from_settings(&settings.storage).context("storage (check storage.url and storage.s3)")?;
        let mailer = Mailer::from_settings(&settings.mail).context("mail (check mail.url and mail.from)")?;
        let links = Links::new(&settings.server.public_url)
            .with_signer(settings.server.link_signer())
            .with_presigner(blobs.presigner().cloned(), Duration::from_secs(settings.server.link_ttl_secs));
        let reports = Reports::load(settings.reports).context("report templates (check reports.templates_dir)")?;
        let document_links = links.clone();
        let render: RenderDocument =
            Arc::new(move |record| serde_json::to_vec(&JobDocument::new(record, &document_links)));
        let webhooks = Webhooks::new(settings.webhooks, render).context("webhooks")?;
        let pipeline = Pipeline::start(PipelineParts {
            journal: Journal::new(blobs.clone()),
            blobs,
            convert: settings.convert,
            reports,
            mailer,
            links,
            settings: settings.pipeline,
            webhooks,
        });
        let closing = CancellationToken::new();
        let state = AppState::new(pipeline.clone(), settings.server, closing.clone());
        Ok(Self { listener, pipeline, state, closing })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener.local_addr().context("listening socket has no address")
    }

    /// Serves until `shutdown` completes, then stops taking uploads (503 `shutting_down`), lets in-flight
    /// work finish within `pipeline.shutdown_grace_secs`, closes the listener and returns. Unfinished work
    /// resumes on the next start.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, pipeline, state, closing } = self;
        let address = listener.local_addr().context("listening socket has no address")?;
        tracing::info!(%address, "listening on http://{address}");
        let server_closing = closing.clone();
        let receiving = state.clone();
        let mut server = tokio::spawn(sluice_gateway::serve(listener, state, async move {
            server_closing.cancelled().await;
        }));
        tokio::select! {
            () = shutdown => {}
            result = &mut server => {
                // The server ended by itself: a fatal socket error.
                pipeline.shutdown().await;
                return match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error).context("HTTP server failed"),
                    Err(error) => Err(error).context("HTTP server task failed"),
                };
            }
        }
        // The listener stays open while the pipeline drains: uploads meanwhile get 503 `shutting_down` with
        // `Retry-After` (not a refused connection), and job documents and event streams keep answering.
        tracing::info!("shutting down: no new uploads; finishing in-flight work");
        // Uploads whose bodies are still arriving get the same grace as conversions: cut off, they would be lost.
        let ((), received) = tokio::join!(pipeline.shutdown(), receiving.uploads_received(pipeline.shutdown_grace()));
        if !received {
            tracing::warn!("uploads still being received at the shutdown deadline are cut off");
        }
        closing.cancel();
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(error = %error, "HTTP server ended with an error"),
            Ok(Err(error)) => tracing::warn!(error = %error, "HTTP server task failed"),
            Err(_) => tracing::warn!("open connections did not close in time; leaving them"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}
