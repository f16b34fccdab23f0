//! Encoders. Outputs carry no Exif, XMP or text chunks; the input's ICC colour profile is kept when it fits
//! the output's pixels (see [`crate::icc`]).

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use sluice_core::MediaType;

use crate::JpegCodec;
use crate::error::{BoxError, Reason};
use crate::icc::{self, IccProfile};
use crate::pixels::{Layout, Pixels};

/// The largest side libwebp encodes.
const WEBP_MAX_SIDE: u32 = 16_383;

/// Encodes `pixels` as `media` (JPEG, PNG or WebP) with `quality` (1 to 100; ignored for PNG); JPEG with
/// `codec`. `profile`, the input's colour profile, is embedded when it fits the encoded pixels.
pub(crate) fn encode(
    pixels: &Pixels,
    media: MediaType,
    quality: u8,
    codec: JpegCodec,
    profile: Option<&IccProfile>,
) -> Result<Vec<u8>, BoxError> {
    let fitting = |layout| profile.filter(|profile| profile.fits(layout));
    match media {
        MediaType::Jpeg => {
            let flat = pixels.flatten_on_white();
            let bytes = jpeg_with(&flat, quality, codec)?;
            Ok(match fitting(flat.layout) {
                Some(profile) => icc::into_jpeg(bytes, profile),
                None => bytes,
            })
        }
        MediaType::Png => png(pixels, fitting(pixels.layout)),
        MediaType::Webp => {
            let rgb = pixels.rgb_family();
            let bytes = webp(&rgb, quality)?;
            Ok(match fitting(rgb.layout) {
                Some(profile) => icc::into_webp(bytes, profile, rgb.width, rgb.height, rgb.layout.has_alpha()),
                None => bytes,
            })
        }
        other => Err(Reason::boxed(format!("{other} is not an output format"))),
    }
}

/// A JPEG of opaque `pixels` with `codec`.
fn jpeg_with(pixels: &Pixels, quality: u8, codec: JpegCodec) -> Result<Vec<u8>, BoxError> {
    let _ = codec; // only the `turbojpeg` feature has a choice
    #[cfg(feature = "turbojpeg")]
    if codec == JpegCodec::Turbo {
        return crate::turbo::encode(pixels, quality);
    }
    jpeg(pixels, quality)
}

/// Baseline JPEG, 4:2:0 chroma below quality 90, 4:4:4 from 90. Standard Huffman tables: jpeg-encoder's
/// optimised tables (about 20% smaller files) are misread by zune-jpeg 0.5 (a white image decodes yellow), so
/// they stay off until that is understood.
fn jpeg(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, BoxError> {
    let (Ok(width), Ok(height)) = (u16::try_from(pixels.width), u16::try_from(pixels.height)) else {
        return Err(Reason::boxed(format!(
            "JPEG sides are at most 65535 pixels (asked for {}x{})",
            pixels.width, pixels.height
        )));
    };
    let color_type = match pixels.layout {
        Layout::L8 => jpeg_encoder::ColorType::Luma,
        Layout::Rgb8 => jpeg_encoder::ColorType::Rgb,
        Layout::La8 | Layout::Rgba8 => return Err(Reason::boxed("JPEG takes no alpha; flatten first")),
    };
    // Room for a typical q80 photo (an eighth of a byte per pixel or less), so the output is copied once or not
    // at all as it grows, instead of a dozen times from empty.
    let mut out = Vec::with_capacity(pixels.data.len() / pixels.layout.channels() / 8);
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100)).encode(&pixels.data, width, height, color_type)?;
    Ok(out)
}

fn png(pixels: &Pixels, profile: Option<&IccProfile>) -> Result<Vec<u8>, BoxError> {
    let mut out = Vec::new();
    let mut encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive);
    if let Some(profile) = profile {
        encoder.set_icc_profile(profile.bytes().to_vec())?;
    }
    encoder.write_image(&pixels.data, pixels.width, pixels.height, pixels.layout.color_type())?;
    Ok(out)
}

fn webp(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, BoxError> {
    if pixels.width > WEBP_MAX_SIDE || pixels.height > WEBP_MAX_SIDE {
        return Err(Reason::boxed(format!(
            "WebP sides are at most {WEBP_MAX_SIDE} pixels (asked for {}x{})",
            pixels.width, pixels.height
        )));
    }
    let encoder = match pixels.layout {
        Layout::Rgb8 => webp::Encoder::from_rgb(&pixels.data, pixels.width, pixels.height),
        Layout::Rgba8 => webp::Encoder::from_rgba(&pixels.data, pixels.width, pixels.height),
        Layout::L8 | Layout::La8 => return Err(Reason::boxed("WebP needs RGB or RGBA samples")),
    };
    let memory = encoder
        .encode_simple(false, f32::from(quality.clamp(1, 100)))
        .map_err(|error| Reason::boxed(format!("libwebp failed: {error:?}")))?;
    Ok(memory.to_vec())
}
