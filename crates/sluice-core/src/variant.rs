use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MediaType;

/// The name of a configured image variant (`thumb`, `medium`, ...): 1 to 32 characters of `a-z`, `0-9`, `-`
/// and `_`, so it is safe inside a storage key and a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "thumb")]
pub struct VariantName(String);

/// Why a variant name or spec is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    /// The name has characters outside `a-z0-9_-` or the wrong length.
    #[error("variant names are 1 to 32 characters of a-z, 0-9, '-' and '_' (got {0:?})")]
    BadName(String),
    /// Width or height is zero or absurdly large.
    #[error("variant {what} must be between 1 and {max} pixels (got {value})")]
    BadDimension {
        /// `width` or `height`.
        what: &'static str,
        /// The value given.
        value: u32,
        /// The largest allowed.
        max: u32,
    },
    /// Quality outside 1..=100.
    #[error("variant quality must be between 1 and 100 (got {0})")]
    BadQuality(u8),
}

impl VariantName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for VariantName {
    type Err = VariantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok { Ok(Self(s.to_owned())) } else { Err(VariantError::BadName(s.to_owned())) }
    }
}

impl TryFrom<String> for VariantName {
    type Error = VariantError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<VariantName> for String {
    fn from(name: VariantName) -> Self {
        name.0
    }
}

impl fmt::Display for VariantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an image is fitted into a variant's box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fill the box exactly, cropping the overflow around the centre.
    Cover,
    /// Fit inside the box, keeping the aspect ratio; never enlarges.
    Contain,
    /// Stretch to the box exactly, ignoring the aspect ratio.
    Fill,
}

/// The encoding of a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Baseline JPEG (alpha flattened on white).
    Jpeg,
    /// Lossless PNG.
    Png,
    /// Lossy WebP.
    Webp,
    /// The input's own format (GIF becomes PNG: one frame is kept).
    Same,
}

impl OutputFormat {
    /// The concrete media type written for an input of type `input`.
    pub fn resolve(self, input: MediaType) -> MediaType {
        match self {
            Self::Jpeg => MediaType::Jpeg,
            Self::Png => MediaType::Png,
            Self::Webp => MediaType::Webp,
            Self::Same => match input {
                MediaType::Jpeg => MediaType::Jpeg,
                MediaType::Webp => MediaType::Webp,
                _ => MediaType::Png,
            },
        }
    }
}

/// One named output of an image: the box it fits, how, and its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawVariantSpec")]
pub struct VariantSpec {
    /// Box width in pixels.
    pub width: u32,
    /// Box height in pixels.
    pub height: u32,
    /// How the image is fitted into the box.
    pub fit: Fit,
    /// Output encoding.
    pub format: OutputFormat,
    /// Encoder quality, 1 to 100 (ignored for PNG).
    pub quality: u8,
}

/// The largest side a variant may ask for.
pub const MAX_VARIANT_SIDE: u32 = 16_384;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariantSpec {
    width: u32,
    height: u32,
    #[serde(default = "default_fit")]
    fit: Fit,
    #[serde(default = "default_format")]
    format: OutputFormat,
    #[serde(default = "default_quality")]
    quality: u8,
}

fn default_fit() -> Fit {
    Fit::Contain
}

fn default_format() -> OutputFormat {
    OutputFormat::Jpeg
}

fn default_quality() -> u8 {
    82
}

impl VariantSpec {
    /// A checked spec.
    pub fn new(width: u32, height: u32, fit: Fit, format: OutputFormat, quality: u8) -> Result<Self, VariantError> {
        for (what, value) in [("width", width), ("height", height)] {
            if value == 0 || value > MAX_VARIANT_SIDE {
                return Err(VariantError::BadDimension { what, value, max: MAX_VARIANT_SIDE });
            }
        }
        if !(1..=100).contains(&quality) {
            return Err(VariantError::BadQuality(quality));
        }
        Ok(Self { width, height, fit, format, quality })
    }
}

impl TryFrom<RawVariantSpec> for VariantSpec {
    type Error = VariantError;

    fn try_from(raw: RawVariantSpec) -> Result<Self, Self::Error> {
        Self::new(raw.width, raw.height, raw.fit, raw.format, raw.quality)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_key_safe() {
        assert!("thumb".parse::<VariantName>().is_ok());
        assert!("x-2_b".parse::<VariantName>().is_ok());
        for bad in ["", "Thumb", "../x", "a/b", "a b", &"x".repeat(33)] {
            assert!(bad.parse::<VariantName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn specs_are_checked() {
        assert!(VariantSpec::new(256, 256, Fit::Cover, OutputFormat::Webp, 80).is_ok());
        assert!(VariantSpec::new(0, 256, Fit::Cover, OutputFormat::Webp, 80).is_err());
        assert!(VariantSpec::new(256, 100_000, Fit::Cover, OutputFormat::Webp, 80).is_err());
        assert!(VariantSpec::new(256, 256, Fit::Cover, OutputFormat::Webp, 0).is_err());
        let parsed: Result<VariantSpec, _> =
            serde_json::from_str(r#"{"width":10,"height":10,"fit":"cover","format":"png","quality":90}"#);
        assert!(parsed.is_ok());
        let unknown: Result<VariantSpec, _> = serde_json::from_str(r#"{"width":10,"height":10,"colour":"red"}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn same_format_resolves_per_input() {
        assert_eq!(OutputFormat::Same.resolve(MediaType::Jpeg), MediaType::Jpeg);
        assert_eq!(OutputFormat::Same.resolve(MediaType::Gif), MediaType::Png);
        assert_eq!(OutputFormat::Webp.resolve(MediaType::Png), MediaType::Webp);
    }
}
