//! The fault-and-abuse suite: drives the real `sluice` binary (kill -9 and restart loops, SIGTERM drain,
//! SMTP and S3 outages, backpressure, bounded job time, hostile input) against real maildev and s3s-fs on
//! 127.0.0.1. Every loop and wait is bounded; each test prints the figures it measured (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with the other test targets rather than copied: sample paths, the storage walk, error codes and
// the small variant set.
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod api_helpers;
#[path = "../batch/helpers.rs"]
#[allow(dead_code)]
mod batch_helpers;

mod crash;
mod drain;
mod helpers;
mod hostile;
mod limits;
mod outages;
