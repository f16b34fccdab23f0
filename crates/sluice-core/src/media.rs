use std::fmt;

use serde::{Deserialize, Serialize};

/// The media types sluice reads or writes, identified from content (never from a client's word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    /// JPEG image.
    Jpeg,
    /// PNG image.
    Png,
    /// GIF image (first frame is converted).
    Gif,
    /// WebP image.
    Webp,
    /// Comma- or otherwise-delimited text data.
    Csv,
    /// JSON data.
    Json,
    /// PDF document.
    Pdf,
    /// HTML document.
    Html,
    /// Anything else: stored as uploaded, never converted.
    Other,
}

impl MediaType {
    /// The IANA media type, as sent in `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Csv => "text/csv",
            Self::Json => "application/json",
            Self::Pdf => "application/pdf",
            Self::Html => "text/html; charset=utf-8",
            Self::Other => "application/octet-stream",
        }
    }

    /// The file extension used in storage keys.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Pdf => "pdf",
            Self::Html => "html",
            Self::Other => "bin",
        }
    }

    /// The type a stored key's extension stands for; keys are ours, so the extension is trustworthy.
    pub fn from_extension(extension: &str) -> Self {
        match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Self::Jpeg,
            "png" => Self::Png,
            "gif" => Self::Gif,
            "webp" => Self::Webp,
            "csv" | "tsv" => Self::Csv,
            "json" => Self::Json,
            "pdf" => Self::Pdf,
            "html" | "htm" => Self::Html,
            _ => Self::Other,
        }
    }

    /// Whether this is an image format the converter decodes.
    pub fn is_image(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png | Self::Gif | Self::Webp)
    }

    /// Detects an image type from the first bytes of a file (magic numbers).
    pub fn sniff_image(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_images_from_magic_bytes() {
        assert_eq!(MediaType::sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(MediaType::Jpeg));
        assert_eq!(MediaType::sniff_image(b"\x89PNG\r\n\x1a\n...."), Some(MediaType::Png));
        assert_eq!(MediaType::sniff_image(b"GIF89a..."), Some(MediaType::Gif));
        assert_eq!(MediaType::sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some(MediaType::Webp));
        assert_eq!(MediaType::sniff_image(b"<svg xmlns="), None);
        assert_eq!(MediaType::sniff_image(b""), None);
    }

    #[test]
    fn extensions_round_trip() {
        for media in [MediaType::Jpeg, MediaType::Png, MediaType::Gif, MediaType::Webp, MediaType::Pdf] {
            assert_eq!(MediaType::from_extension(media.extension()), media);
        }
    }
}
