//! `sluice-testkit`: runs sluice's test services in the foreground for the end-to-end script.
//!
//! `sluice-testkit s3 --host 127.0.0.1 --port 9100 --access-key K --secret-key S --bucket B DATA_DIR` serves
//! the same in-process S3 server the tests use (s3s-fs, SigV4 checked) until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

/// Real services for sluice's tests.
#[derive(Debug, Parser)]
#[command(name = "sluice-testkit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve an S3 API over DATA_DIR (one sub-folder per bucket) until SIGTERM/SIGINT.
    S3 {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 9100)]
        port: u16,
        /// Access key id clients sign with.
        #[arg(long)]
        access_key: String,
        /// Secret key clients sign with.
        #[arg(long)]
        secret_key: String,
        /// Bucket to create (as DATA_DIR/BUCKET) if missing.
        #[arg(long)]
        bucket: String,
        /// Folder holding the buckets; created if missing.
        data_dir: PathBuf,
    },
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn report(error: &dyn std::error::Error) -> ExitCode {
    let mut message = format!("sluice-testkit: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("{message}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::S3 { host, port, access_key, secret_key, bucket, data_dir } => {
            if let Err(error) = std::fs::create_dir_all(&data_dir) {
                return report(&error);
            }
            let service = match sluice_testkit::s3_service(&data_dir, &access_key, &secret_key, &bucket) {
                Ok(service) => service,
                Err(error) => return report(&error),
            };
            let listener = match TcpListener::bind((host.as_str(), port)).await {
                Ok(listener) => listener,
                Err(error) => return report(&error),
            };
            match listener.local_addr() {
                Ok(addr) => println!("sluice-testkit: S3 on http://{addr} (bucket {bucket}, region us-east-1)"),
                Err(error) => return report(&error),
            }
            sluice_testkit::serve(listener, service, shutdown_signal()).await;
            println!("sluice-testkit: S3 stopped");
            ExitCode::SUCCESS
        }
    }
}
