//! `sluice`: the command line of the asynchronous upload-and-conversion pipeline.

mod batch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::{LogFormat, LogSettings, Server, Settings};
use tracing_subscriber::EnvFilter;

/// sluice: upload gateway, image conversion and e-mail notices in one binary.
///
/// `sluice serve` runs the HTTP gateway and the conversion and notification stages. Uploads answer
/// `202 Accepted` at once; conversion happens in the background; a notice is mailed when a job ends.
#[derive(Parser)]
#[command(name = "sluice", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway, the convert stage and the notify stage.
    ///
    /// Configuration: the embedded defaults, then FILE, then SLUICE__SECTION__KEY environment variables
    /// (e.g. SLUICE__SERVER__LISTEN=0.0.0.0:8080).
    Serve {
        /// A TOML config file layered over the defaults.
        #[arg(long, short, env = "SLUICE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check the configuration (defaults, file and environment merged), print a summary without secrets, and
    /// exit: 0 when it is valid, 1 with the offending key otherwise.
    Check {
        /// A TOML config file layered over the defaults.
        #[arg(long, short, env = "SLUICE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Convert every image of a folder (recursively) into the configured variants, on this machine.
    ///
    /// Outputs mirror the folder: the `thumb` variant of INPUT_DIR/sub/photo.jpg goes to
    /// OUT_DIR/sub/photo.jpg.thumb.webp. OUT_DIR also gets summary.json, summary.html (a contact sheet) and
    /// .sluice-manifest.json, which lets a re-run skip inputs whose content and settings are unchanged.
    /// Files that are not images are skipped. Exit status: 0 all converted, 2 some rejected, 1 fatal error.
    Convert {
        /// The folder to convert.
        #[arg(value_name = "INPUT_DIR")]
        input: PathBuf,
        /// Where outputs and summaries are written (created if missing; may lie inside INPUT_DIR).
        #[arg(long, short, value_name = "OUT_DIR")]
        out: PathBuf,
        /// A TOML config file layered over the defaults (its [convert] section names the variants).
        #[arg(long, short, env = "SLUICE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Only these configured variants (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        variants: Vec<String>,
        /// Images converted at once (default: one per CPU core).
        #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Reconvert everything, even inputs the manifest says are unchanged.
        #[arg(long)]
        force: bool,
    },
    /// Upload every image of a folder to a running sluice server and follow the jobs to the end.
    ///
    /// One job per file, streamed from disk; progress over server-sent events (polling if the stream
    /// breaks). Nothing is written locally unless --out is given (outputs are then downloaded and the
    /// summaries written there). Exit status: 0 all converted, 2 some rejected, 1 fatal error (server
    /// unreachable, 5xx after retries, a job that failed or timed out).
    Submit {
        /// The folder to upload.
        #[arg(value_name = "INPUT_DIR")]
        input: PathBuf,
        /// The server's base URL.
        #[arg(long, value_name = "URL", env = "SLUICE_SERVER")]
        server: String,
        /// A bearer token, when the server sets server.api_tokens (better from the environment than the
        /// command line, where other users can see it).
        #[arg(long, value_name = "TOKEN", env = "SLUICE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// An e-mail address to notify when each job ends.
        #[arg(long, value_name = "ADDR")]
        notify: Option<String>,
        /// Only these variants (comma-separated names configured on the server).
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        variants: Vec<String>,
        /// Files uploaded and followed at once.
        #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        /// Download the outputs and write summary.json and summary.html here.
        #[arg(long, short, value_name = "OUT_DIR")]
        out: Option<PathBuf>,
        /// Longest wait, in seconds, for one job to finish.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        job_timeout: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sluice: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let settings = Settings::load(config.as_deref())?;
            init_logging(&settings.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("sluice")
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let server = Server::build(settings).await?;
                server.run_until(shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            let settings = Settings::load(config.as_deref())?;
            sluice_pipeline::Reports::load(settings.reports.clone())
                .context("report templates (check reports.templates_dir)")?;
            println!("{}", settings.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert { input, out, config, variants, jobs, force } => {
            let args = batch::convert::ConvertArgs { input, out, config, variants, jobs: jobs.map(usize::from), force };
            batch::convert::run(&args)
        }
        Command::Submit { input, server, token, notify, variants, concurrency, out, job_timeout } => {
            let args = batch::submit::SubmitArgs {
                input,
                server,
                token,
                notify,
                variants,
                concurrency: usize::from(concurrency),
                out,
                job_timeout: Duration::from_secs(job_timeout),
            };
            batch::submit::run(&args)
        }
    }
}

fn init_logging(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match settings.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
