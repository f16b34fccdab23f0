//! Encoders. None of them writes metadata: outputs carry no Exif, XMP, ICC or text chunks.

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use sluice_core::MediaType;

use crate::JpegCodec;
use crate::error::{BoxError, Reason};
use crate::pixels::{Layout, Pixels};

/// The largest side libwebp encodes.
const WEBP_MAX_SIDE: u32 = 16_383;

/// Encodes `pixels` as `media` (JPEG, PNG or WebP) with `quality` (1 to 100; ignored for PNG); JPEG with
/// `codec`.
pub(crate) fn encode(pixels: &Pixels, media: MediaType, quality: u8, codec: JpegCodec) -> Result<Vec<u8>, BoxError> {
    let _ = codec; // only the `turbojpeg` feature has a choice
    match media {
        #[cfg(feature = "turbojpeg")]
        MediaType::Jpeg if codec == JpegCodec::Turbo => crate::turbo::encode(&pixels.flatten_on_white(), quality),
        MediaType::Jpeg => jpeg(&pixels.flatten_on_white(), quality),
        MediaType::Png => png(pixels),
        MediaType::Webp => webp(&pixels.rgb_family(), quality),
        other => Err(Reason::boxed(format!("{other} is not an output format"))),
    }
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

fn png(pixels: &Pixels) -> Result<Vec<u8>, BoxError> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive).write_image(
        &pixels.data,
        pixels.width,
        pixels.height,
        pixels.layout.color_type(),
    )?;
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
