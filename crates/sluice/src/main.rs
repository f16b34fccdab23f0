//! `sluice`: the command line of the asynchronous upload-and-conversion pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

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
            println!("{}", settings.summary());
            Ok(ExitCode::SUCCESS)
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
