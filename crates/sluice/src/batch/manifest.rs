//! The re-run manifest, `OUT_DIR/.sluice-manifest.json`: for every image converted (or rejected) before, its
//! size, modification time, SHA-256, the fingerprint of the settings used, and the result. A re-run skips an
//! input whose size and modification time (or, when those moved, whose SHA-256) and settings fingerprint are
//! unchanged and whose outputs are still in place.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_convert::ConvertLimits;
use sluice_core::{MediaType, Problem, VariantName, VariantSpec};
use sluice_pipeline::Reports;

use super::OutputFacts;

/// The manifest's file name in the output folder.
pub const MANIFEST_NAME: &str = ".sluice-manifest.json";

/// Bumped when the manifest's shape changes; an older manifest is ignored (everything reconverts).
const MANIFEST_VERSION: u32 = 1;

/// The manifest: one entry per input, keyed by [`path_key`].
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format version.
    pub version: u32,
    /// Entries by path key.
    pub entries: BTreeMap<String, Entry>,
}

/// What an earlier run recorded for one input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// The settings fingerprint ([`fingerprint`]) the result was made with.
    pub settings: String,
    /// The type detected.
    pub media: MediaType,
    /// Displayed dimensions, when the header was readable.
    pub dimensions: Option<(u32, u32)>,
    /// The outputs written (empty when rejected).
    pub outputs: Vec<OutputFacts>,
    /// Why it was rejected.
    pub error: Option<Problem>,
}

impl Manifest {
    /// Reads the manifest of `out_dir`; a missing, unreadable or outdated one is an empty manifest.
    pub fn load(out_dir: &Path) -> Self {
        let Ok(text) = std::fs::read(out_dir.join(MANIFEST_NAME)) else { return Self::fresh() };
        match serde_json::from_slice::<Self>(&text) {
            Ok(manifest) if manifest.version == MANIFEST_VERSION => manifest,
            _ => Self::fresh(),
        }
    }

    fn fresh() -> Self {
        Self { version: MANIFEST_VERSION, entries: BTreeMap::new() }
    }

    /// Writes the manifest atomically into `out_dir`.
    pub fn save(&self, out_dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self).context("cannot serialise the manifest")?;
        super::output::write_atomically(out_dir, Path::new(MANIFEST_NAME), &text)
    }
}

/// The manifest key of a relative path: the path itself when it is UTF-8, else a NUL (which no file name can
/// hold, so the two kinds never collide) followed by the hex of the raw bytes.
pub fn path_key(relative: &Path) -> String {
    match relative.to_str() {
        Some(text) => text.to_owned(),
        None => format!("\0{}", hex::encode(os_bytes(relative.as_os_str()))),
    }
}

/// The raw bytes of a name (on Unix exactly; elsewhere its lossy UTF-8).
pub fn os_bytes(name: &OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        name.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        name.to_string_lossy().into_owned().into_bytes()
    }
}

/// The fingerprint of everything that shapes the outputs: the variant specs, the limits, sluice's version and
/// the converter's [`sluice_convert::OUTPUT_REVISION`].
pub fn fingerprint(variants: &[(VariantName, VariantSpec)], limits: &ConvertLimits) -> String {
    let described = serde_json::json!({
        "sluice": env!("CARGO_PKG_VERSION"),
        "outputs": sluice_convert::OUTPUT_REVISION,
        "max_pixels": limits.max_pixels,
        "variants": variants,
    });
    hex::encode(Sha256::digest(described.to_string().as_bytes()))
}

/// The fingerprint of everything that shapes reports: the limits, the locale, both templates and sluice's
/// version.
pub fn report_fingerprint(reports: &Reports) -> String {
    let settings = &reports.settings;
    let described = serde_json::json!({
        "sluice": env!("CARGO_PKG_VERSION"),
        "max_rows": settings.max_rows,
        "max_columns": settings.max_columns,
        "max_cell_bytes": settings.max_cell_bytes,
        "locale": settings.locale,
        "typst": reports.templates.typst(),
        "html": reports.templates.html(),
    });
    hex::encode(Sha256::digest(described.to_string().as_bytes()))
}

/// A modification time in nanoseconds since the Unix epoch (0 when unknown or before 1970).
pub fn mtime_ns(modified: std::io::Result<SystemTime>) -> u64 {
    modified
        .ok()
        .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_raw_names_apart() {
        assert_eq!(path_key(Path::new("sub/a.jpg")), "sub/a.jpg");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let raw = Path::new(OsStr::from_bytes(b"caf\xe9.jpg"));
            assert_eq!(path_key(raw), "\u{0}636166e92e6a7067");
        }
    }
}
