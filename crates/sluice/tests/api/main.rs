//! Integration tests of the whole service over real HTTP on 127.0.0.1, with real storage (a temp folder or
//! an in-process S3 server that checks signatures) and a real SMTP catcher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod documents;
mod files;
mod pipeline;
mod reports;
mod uploads;
mod web;
mod webhooks;
