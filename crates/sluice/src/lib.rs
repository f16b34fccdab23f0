//! The `sluice` binary's library: settings loading and the server's life cycle.
//!
//! This crate composes the others into one deployable: [`Settings`] layers the embedded defaults, a config
//! file and `SLUICE__…` environment variables, each section owned by its crate; [`Server`] opens storage and
//! the mail transport, starts the pipeline and the gateway, and shuts them down in order. It is the only crate
//! that uses `anyhow`. The command-line interface lives in `main.rs`.

mod server;
mod settings;

pub use server::Server;
pub use settings::{DEFAULT_CONFIG, LogFormat, LogSettings, Settings};
