//! The recursive walk of an input folder.
//!
//! Symbolic links are never followed (a link is reported as skipped, whatever it points to), so nothing
//! outside the input folder is ever read. Names stay `OsString`s, so non-UTF-8 names on Linux are kept byte
//! for byte. A folder to exclude (the output folder, when it lies inside the input folder) is not entered.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sluice_core::Problem;

use super::{FileReport, Outcome};

/// A regular file found by the walk.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// Its path relative to the input folder.
    pub relative: PathBuf,
    /// Its full path (the canonical input folder joined with `relative`).
    pub absolute: PathBuf,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files, sorted by path.
    pub files: Vec<InputFile>,
    /// Entries not looked into: symbolic links, special files, unreadable folders.
    pub not_walked: Vec<FileReport>,
}

/// Names at the top of the output folder that belong to sluice; an input folder with one of these names at
/// its top level would collide with them, so it is skipped.
pub const RESERVED_NAMES: [&str; 3] = ["summary.json", "summary.html", super::manifest::MANIFEST_NAME];

/// Walks `root` (already canonical) recursively, not entering `exclude` (canonical) when it is inside.
///
/// Fails only when `root` itself cannot be read; problems below it become reports.
pub fn walk(root: &Path, exclude: Option<&Path>) -> anyhow::Result<Walk> {
    let mut found = Walk::default();
    let top = fs::read_dir(root).with_context(|| format!("cannot read the input folder {}", root.display()))?;
    let mut first = Some(top);
    // Folders still to read, opened only when their turn comes (so a wide tree holds one handle at a time).
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(folder) = pending.pop() {
        let entries = match first.take() {
            Some(entries) => entries,
            None => match fs::read_dir(root.join(&folder)) {
                Ok(entries) => entries,
                Err(error) => {
                    found.not_walked.push(unreadable(folder, &error));
                    continue;
                }
            },
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    found.not_walked.push(unreadable(folder.clone(), &error));
                    continue;
                }
            };
            let relative = folder.join(entry.file_name());
            let absolute = root.join(&relative);
            // `DirEntry::file_type` does not follow symbolic links.
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(error) => {
                    found.not_walked.push(unreadable(relative, &error));
                    continue;
                }
            };
            if kind.is_symlink() {
                found.not_walked.push(FileReport::with_problem(
                    relative,
                    Outcome::Skipped,
                    0,
                    Problem::new("symlink", "symbolic links are not followed"),
                ));
            } else if kind.is_dir() {
                if exclude == Some(absolute.as_path()) {
                    continue;
                }
                let top_level = folder.as_os_str().is_empty();
                if top_level && RESERVED_NAMES.iter().any(|name| entry.file_name() == *name) {
                    found.not_walked.push(FileReport::with_problem(
                        relative,
                        Outcome::Skipped,
                        0,
                        Problem::new("reserved_name", "this folder name is used by sluice's own summary files"),
                    ));
                    continue;
                }
                pending.push(relative);
            } else if kind.is_file() {
                found.files.push(InputFile { relative, absolute });
            } else {
                found.not_walked.push(FileReport::with_problem(
                    relative,
                    Outcome::Skipped,
                    0,
                    Problem::new("not_a_regular_file", "not a regular file (a device, socket or pipe)"),
                ));
            }
        }
    }
    found.files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(found)
}

fn unreadable(relative: PathBuf, error: &io::Error) -> FileReport {
    FileReport::with_problem(
        relative,
        Outcome::Rejected,
        0,
        Problem::new("unreadable", format!("cannot read: {error}")),
    )
}

/// Canonicalises the input folder, failing with a clear message when it is missing or not a folder.
pub fn canonical_input(input: &Path) -> anyhow::Result<PathBuf> {
    let canonical =
        fs::canonicalize(input).with_context(|| format!("cannot read the input folder {}", input.display()))?;
    if !canonical.is_dir() {
        anyhow::bail!("the input {} is not a folder", input.display());
    }
    Ok(canonical)
}

/// Creates (if needed) and canonicalises the output folder, refusing layouts where writing outputs would
/// write into the input: the output folder may lie inside the input folder (it is then not walked), but not
/// be the input folder or contain it.
pub fn prepare_output(output: &Path, input: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(output).with_context(|| format!("cannot create the output folder {}", output.display()))?;
    let canonical =
        fs::canonicalize(output).with_context(|| format!("cannot open the output folder {}", output.display()))?;
    if input.starts_with(&canonical) {
        anyhow::bail!(
            "the output folder {} is (or contains) the input folder {}; choose an output folder elsewhere or inside it",
            output.display(),
            input.display()
        );
    }
    Ok(canonical)
}
