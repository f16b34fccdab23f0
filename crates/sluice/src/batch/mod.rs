//! Batch conversion of whole folders: `sluice convert DIR` (local, on the same conversion code as the
//! server's worker) and `sluice submit DIR` (uploads to a running gateway and follows the jobs).
//!
//! Both commands share the folder walk ([`walk`]: recursive, never follows a symbolic link, keeps non-UTF-8
//! names as raw bytes), the classification of a file from its magic bytes ([`classify`]), the output naming
//! and atomic writes ([`output`]), the progress display ([`progress`]) and the end-of-run report ([`report`]:
//! a table on stdout, `summary.json` and `summary.html`). `convert` adds the re-run manifest ([`manifest`]).
//!
//! Outputs mirror the input folder: the variant `thumb` (WebP) of `INPUT/sub/photo.jpg` is written to
//! `OUT/sub/photo.jpg.thumb.webp`. Keeping the whole input name (extension included) means `photo.jpg` and
//! `photo.png` never collide, and since variant names and extensions have no dots, the mapping is one-to-one.
//!
//! Exit statuses: 0 when every image converted (skipped non-images do not count), 2 when some were rejected,
//! 1 on a fatal error (unreadable input folder, bad configuration, unreachable server, a job that failed).

pub mod classify;
pub mod convert;
pub mod events;
pub mod manifest;
pub mod output;
pub mod progress;
pub mod report;
pub mod submit;
pub mod walk;

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_core::{MediaType, Problem};

/// What became of one input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every requested variant was written in this run.
    Converted,
    /// Converted by an earlier run; content and settings are unchanged, so nothing was done.
    Unchanged,
    /// An image (or a file named as one) that cannot be converted; `problem` says why.
    Rejected,
    /// Not something sluice converts (a CSV, a README, a symbolic link); `problem` says why.
    Skipped,
    /// The file could not be processed for a reason that is not its own (a server-side job failure, a
    /// timeout); counts as a fatal error.
    Failed,
}

impl Outcome {
    /// The lower-case name used in the table, the JSON and the HTML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Converted => "converted",
            Self::Unchanged => "unchanged",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// One written (or downloaded) variant of an input.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputFacts {
    /// The variant name.
    pub name: String,
    /// The type written.
    pub media: MediaType,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Size in bytes.
    pub bytes: u64,
}

/// Everything known about one input at the end of a run.
#[derive(Clone, Debug)]
pub struct FileReport {
    /// The path relative to the input folder (raw bytes on Unix, so non-UTF-8 names survive).
    pub path: PathBuf,
    /// What became of it.
    pub outcome: Outcome,
    /// The type detected from its content, for images.
    pub media: Option<MediaType>,
    /// Its size in bytes (0 when it could not be read).
    pub bytes: u64,
    /// SHA-256 of its content, when it was read in full.
    pub sha256: Option<String>,
    /// Displayed width and height (after Exif orientation), when the header could be read.
    pub dimensions: Option<(u32, u32)>,
    /// The outputs, in variant-name order.
    pub outputs: Vec<OutputFacts>,
    /// Where each output is, relative to the output folder (same order as `outputs`); empty when nothing
    /// was written locally (`submit` without `--out`).
    pub output_paths: Vec<PathBuf>,
    /// Where each output can be downloaded (only for `submit`).
    pub output_urls: Vec<String>,
    /// Why it was rejected, skipped or failed.
    pub problem: Option<Problem>,
    /// The server's job id (only for `submit`).
    pub job: Option<String>,
    /// Whether this run did the conversion work (false for unchanged and skipped files).
    pub processed_now: bool,
}

impl FileReport {
    /// A report with nothing but a path, an outcome and a size.
    pub fn new(path: PathBuf, outcome: Outcome, bytes: u64) -> Self {
        Self {
            path,
            outcome,
            media: None,
            bytes,
            sha256: None,
            dimensions: None,
            outputs: Vec::new(),
            output_paths: Vec::new(),
            output_urls: Vec::new(),
            problem: None,
            job: None,
            processed_now: false,
        }
    }

    /// A report with nothing but a path, an outcome, a size and a reason.
    pub fn with_problem(path: PathBuf, outcome: Outcome, bytes: u64, problem: Problem) -> Self {
        Self { problem: Some(problem), ..Self::new(path, outcome, bytes) }
    }
}

/// The process exit status for a finished run: 1 if anything failed, else 2 if anything was rejected, else 0.
pub fn exit_code(files: &[FileReport]) -> ExitCode {
    if files.iter().any(|file| file.outcome == Outcome::Failed) {
        ExitCode::from(1)
    } else if files.iter().any(|file| file.outcome == Outcome::Rejected) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
