//! Where outputs go and how they are written: names derived from the input's relative path, folders
//! created without following links planted in the output folder, and atomic writes (a temp file in the same
//! folder, renamed over the final name), so an interrupted run never leaves a half-written output.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use sluice_core::MediaType;

/// The output of variant `variant` (type `media`) of the input at `relative`, relative to the output
/// folder: `sub/photo.jpg` + `thumb` + WebP gives `sub/photo.jpg.thumb.webp`.
pub fn output_path(relative: &Path, variant: &str, media: MediaType) -> PathBuf {
    let mut name: OsString = relative.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".");
    name.push(variant);
    name.push(".");
    name.push(media.extension());
    relative.with_file_name(name)
}

/// Makes sure the folder `relative` exists under `root`, creating what is missing, and refusing anything
/// on the way that is not a real folder (a symbolic link planted in the output folder is not followed).
pub fn ensure_folder(root: &Path, relative: &Path) -> anyhow::Result<PathBuf> {
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let Component::Normal(part) = component else {
            anyhow::bail!("refusing the output path {}: it leaves the output folder", relative.display());
        };
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => anyhow::bail!("{} is in the way: it exists and is not a folder", current.display()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => match fs::create_dir(&current) {
                Ok(()) => {}
                // Another worker made it first: check what is there now.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&current).is_ok_and(|meta| meta.is_dir()) {
                        anyhow::bail!("{} is in the way: it exists and is not a folder", current.display());
                    }
                }
                Err(error) => return Err(error).with_context(|| format!("cannot create {}", current.display())),
            },
            Err(error) => return Err(error).with_context(|| format!("cannot inspect {}", current.display())),
        }
    }
    Ok(current)
}

/// Tells temp files of concurrent writers apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `root/relative` atomically: into a new temp file in the same folder, then renamed over
/// the final name (a rename replaces a link planted there rather than writing through it).
pub fn write_atomically(root: &Path, relative: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let folder = ensure_folder(root, relative.parent().unwrap_or(Path::new("")))?;
    let Some(name) = relative.file_name() else {
        anyhow::bail!("refusing the output path {}: it has no file name", relative.display());
    };
    let target = folder.join(name);
    let serial = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = folder.join(format!(".sluice-tmp-{}-{serial}", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(bytes)?;
        file.flush()?;
        fs::rename(&temp, &target)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(())
}

/// Whether `root/relative` is a regular file (not a link) of exactly `bytes` bytes.
pub fn is_intact(root: &Path, relative: &Path, bytes: u64) -> bool {
    fs::symlink_metadata(root.join(relative)).is_ok_and(|meta| meta.is_file() && meta.len() == bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_the_whole_input_name() {
        let path = output_path(Path::new("sub/photo.jpg"), "thumb", MediaType::Webp);
        assert_eq!(path, Path::new("sub/photo.jpg.thumb.webp"));
        assert_eq!(output_path(Path::new("a.png"), "large", MediaType::Jpeg), Path::new("a.png.large.jpg"));
    }
}
