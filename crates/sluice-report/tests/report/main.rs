//! Integration tests of sluice-report: real samples to PDF and HTML, hostile and malformed inputs, limits.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used)]

mod errors;
mod numbers;
mod render;
mod rows;
mod support;
mod templates;
