use sluice_core::{MediaType, VariantName};

/// A boxed error from one of the codec or resize crates, kept as the `source` of a [`ConvertError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an image could not be converted. Every variant has a stable [`code`](ConvertError::code) for the API
/// and a sentence for a person in its `Display`; the underlying codec error, when there is one, is the
/// `source`, never repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The content is not a JPEG, PNG, GIF or WebP image (judged from its magic bytes).
    #[error("the content is not a JPEG, PNG, GIF or WebP image")]
    UnsupportedType,
    /// The header declares more pixels than the configured maximum; nothing was decoded.
    #[error("the image is {width}x{height} pixels, more than the {max_pixels} pixels allowed")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The configured maximum number of pixels.
        max_pixels: u64,
    },
    /// A side of the image is longer than [`MAX_SIDE`](crate::MAX_SIDE) pixels (a 1 x 50,000,000 strip, say);
    /// nothing was decoded. Same code as [`ConvertError::TooManyPixels`]: the image is too large to convert.
    #[error("the image is {width}x{height} pixels; a side may be at most {max_side} pixels")]
    SideTooLong {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The longest side converted.
        max_side: u32,
    },
    /// The decoder would need more memory than the limits allow (a frame larger than its canvas, say).
    #[error("decoding this {media} image would need more memory than allowed")]
    MemoryLimit {
        /// The detected input type.
        media: MediaType,
        /// The decoder's report.
        #[source]
        source: BoxError,
    },
    /// The file is truncated, corrupt or uses a feature the decoder does not support.
    #[error("the {media} image is truncated, corrupt or uses an unsupported feature")]
    Undecodable {
        /// The detected input type.
        media: MediaType,
        /// The decoder's report.
        #[source]
        source: BoxError,
    },
    /// A variant could not be encoded (a WebP side above 16383 pixels, say).
    #[error("variant {variant} could not be encoded as {media}")]
    Encode {
        /// The variant being written.
        variant: VariantName,
        /// The output type.
        media: MediaType,
        /// The encoder's report.
        #[source]
        source: BoxError,
    },
    /// A step that cannot fail on valid input failed: a bug in sluice, not in the upload.
    #[error("internal error while making variant {variant}")]
    Internal {
        /// The variant being made.
        variant: VariantName,
        /// What failed.
        #[source]
        source: BoxError,
    },
}

impl ConvertError {
    /// The stable snake_case code shown to clients (`too_many_pixels`, `undecodable`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedType => "unsupported_type",
            Self::TooManyPixels { .. } | Self::SideTooLong { .. } => "too_many_pixels",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Undecodable { .. } => "undecodable",
            Self::Encode { .. } => "encode_failed",
            Self::Internal { .. } => "internal",
        }
    }

    /// Whether trying again with the same input cannot succeed. Every error caused by the input is
    /// permanent (conversion is deterministic); only [`ConvertError::Internal`] is not, so a caller may retry
    /// it or report it as its own failure rather than blame the file.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Internal { .. })
    }

    pub(crate) fn undecodable(media: MediaType, source: impl Into<BoxError>) -> Self {
        Self::Undecodable { media, source: source.into() }
    }

    /// Maps an `image` decoding error: limit errors become [`ConvertError::MemoryLimit`], the rest
    /// [`ConvertError::Undecodable`].
    pub(crate) fn from_image(media: MediaType, error: image::ImageError) -> Self {
        match error {
            image::ImageError::Limits(_) => Self::MemoryLimit { media, source: Box::new(error) },
            other => Self::undecodable(media, other),
        }
    }
}

/// A plain-text reason, for failures found by sluice's own checks rather than by a codec.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reason(pub(crate) String);

impl Reason {
    pub(crate) fn boxed(message: impl Into<String>) -> BoxError {
        Box::new(Self(message.into()))
    }
}
