//! What to do with a file: an image is judged from its first bytes (never from its name); a table (CSV, TSV,
//! JSON) from its first bytes and its name, by the same rule as the server's.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sluice_core::{MediaType, Problem};
use sluice_report::looks_like_tabular;

/// Bytes read to decide a file's type (an image needs a few; a table needs a few records).
pub const SNIFF_LEN: usize = 8 * 1024;

/// The converter a file goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// A JPEG, PNG, GIF or WebP image, converted into the configured variants.
    Image(MediaType),
    /// A CSV, TSV or JSON table ([`MediaType::Csv`] or [`MediaType::Json`]), rendered into a PDF and an HTML
    /// report.
    Report(MediaType),
}

impl Handler {
    /// The type of the input.
    pub fn media(self) -> MediaType {
        match self {
            Self::Image(media) | Self::Report(media) => media,
        }
    }
}

/// Why a file goes to no converter, and whether that is the file's fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotConverted {
    /// Not something sluice converts (reported as skipped; not an error).
    Skip(Problem),
    /// Named as an image but is not one (reported as rejected, like the server's `type_mismatch`).
    Reject(Problem),
}

/// Decides from `head` (the first [`SNIFF_LEN`] bytes or fewer) what converts the file named `name`.
pub fn classify(head: &[u8], name: &OsStr) -> Result<Handler, NotConverted> {
    if let Some(media) = MediaType::sniff_image(head) {
        return Ok(Handler::Image(media));
    }
    if let Some(kind) = looks_like_tabular(head, &name.to_string_lossy(), "") {
        return Ok(Handler::Report(kind.media()));
    }
    let named_as_image = Path::new(name)
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|extension| MediaType::from_extension(extension).is_image());
    match (named_as_image, head.is_empty()) {
        (true, true) => {
            Err(NotConverted::Reject(Problem::new("empty_file", "the file is named as an image but is empty")))
        }
        (true, false) => Err(NotConverted::Reject(Problem::new(
            "type_mismatch",
            "the file is named as an image, but its content is not JPEG, PNG, GIF or WebP",
        ))),
        (false, _) => Err(NotConverted::Skip(Problem::new(
            "not_converted",
            "not a JPEG, PNG, GIF or WebP image, nor a CSV, TSV or JSON table",
        ))),
    }
}

/// Opens `path` for reading without following a symbolic link (on Unix the open itself refuses one, so a
/// file swapped for a link after the walk is not followed either), and checks it is a regular file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// Reads up to `limit` bytes from the start of `file`.
pub fn read_head(file: &mut File, limit: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(limit.min(1 << 20));
    file.by_ref().take(limit as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_and_the_name_only_blames() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0];
        assert_eq!(classify(&jpeg, OsStr::new("notes.txt")), Ok(Handler::Image(MediaType::Jpeg)));
        assert!(
            matches!(classify(b"hello", OsStr::new("photo.JPG")), Err(NotConverted::Reject(p)) if p.code == "type_mismatch")
        );
        assert!(matches!(classify(b"", OsStr::new("a.png")), Err(NotConverted::Reject(p)) if p.code == "empty_file"));
        assert_eq!(classify(b"a,b\n1,2\n", OsStr::new("sales.csv")), Ok(Handler::Report(MediaType::Csv)));
        assert_eq!(classify(b"[{\"a\": 1}]", OsStr::new("rows.json")), Ok(Handler::Report(MediaType::Json)));
        assert!(
            matches!(classify(b"a,b\n", OsStr::new("notes.txt")), Err(NotConverted::Skip(p)) if p.code == "not_converted")
        );
        assert!(
            matches!(classify(b"a,b\n", OsStr::new("table.png")), Err(NotConverted::Reject(p)) if p.code == "type_mismatch")
        );
    }
}
