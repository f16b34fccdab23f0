//! Decoding into [`Pixels`]: JPEG at 1/8 scale from its DC coefficients alone ([`crate::jpeg_dc`]), else through
//! libjpeg-turbo (the `turbojpeg` feature) or, in pure Rust, through `jpeg-decoder` with DCT-domain
//! shrink-on-load and zune-jpeg at full size; everything else (and the rare JPEG the JPEG decoders do not
//! support) through `image`, always under memory limits.

use std::borrow::Cow;
use std::io::Cursor;

use image::metadata::Orientation;
use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use sluice_core::MediaType;

use crate::error::{ConvertError, Reason};
use crate::header::{Header, JpegFrame};
use crate::pixels::{Layout, Pixels};
use crate::scratch;
use crate::{ConvertLimits, JpegCodec, JpegScale};

/// The `image` crate limits for one decode: the declared size was already checked, these stop anything the
/// header did not announce (a GIF frame larger than its canvas, a huge metadata chunk).
pub(crate) fn image_limits(limits: &ConvertLimits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc_bytes());
    image_limits
}

fn image_format(media: MediaType) -> Result<ImageFormat, ConvertError> {
    match media {
        MediaType::Jpeg => Ok(ImageFormat::Jpeg),
        MediaType::Png => Ok(ImageFormat::Png),
        MediaType::Gif => Ok(ImageFormat::Gif),
        MediaType::Webp => Ok(ImageFormat::WebP),
        _ => Err(ConvertError::UnsupportedType),
    }
}

/// `input` as [`open_image`] should see it: a PNG without an `iCCP` chunk that would inflate past any profile
/// kept (see [`crate::icc::without_oversized_png_profile`]), anything else as it is.
pub(crate) fn decodable(input: &[u8], media: MediaType) -> Cow<'_, [u8]> {
    match media {
        MediaType::Png => crate::icc::without_oversized_png_profile(input),
        _ => Cow::Borrowed(input),
    }
}

/// Opens an `image` decoder (headers only) with limits set.
pub(crate) fn open_image<'a>(
    input: &'a [u8],
    media: MediaType,
    limits: &ConvertLimits,
) -> Result<impl ImageDecoder + 'a, ConvertError> {
    let mut reader = ImageReader::with_format(Cursor::new(input), image_format(media)?);
    reader.limits(image_limits(limits));
    reader.into_decoder().map_err(|error| ConvertError::from_image(media, error))
}

/// The orientation an `image` decoder reports; unreadable metadata counts as upright, never as an error.
pub(crate) fn decoder_orientation(decoder: &mut impl ImageDecoder) -> Orientation {
    decoder.orientation().unwrap_or(Orientation::NoTransforms)
}

/// Decodes a non-JPEG image (or a JPEG at full size) with `image`; returns its pixels (stored frame),
/// orientation and embedded ICC profile (unchecked; unreadable counts as none).
pub(crate) fn decode_with_image(
    input: &[u8],
    header: &Header,
    limits: &ConvertLimits,
) -> Result<(Pixels, Orientation, Option<Vec<u8>>), ConvertError> {
    let media = header.media;
    let input = decodable(input, media);
    let mut decoder = open_image(&input, media, limits)?;
    if decoder.dimensions() != (header.width, header.height) {
        return Err(ConvertError::undecodable(
            media,
            Reason::boxed(format!(
                "the decoder sees {:?}, the header declares {}x{}",
                decoder.dimensions(),
                header.width,
                header.height
            )),
        ));
    }
    let orientation = match header.jpeg {
        Some(frame) => frame.orientation.unwrap_or(Orientation::NoTransforms),
        None => decoder_orientation(&mut decoder),
    };
    let profile = decoder.icc_profile().ok().flatten();
    Ok((read_pixels(decoder, media)?, orientation, profile))
}

/// Decodes every pixel: 8-bit samples straight into this thread's spare buffer (see [`scratch`]), anything
/// else (16-bit, float) through a `DynamicImage`, converted to 8 bits.
fn read_pixels(decoder: impl ImageDecoder, media: MediaType) -> Result<Pixels, ConvertError> {
    let (width, height) = decoder.dimensions();
    let layout = match decoder.color_type() {
        ColorType::L8 => Layout::L8,
        ColorType::La8 => Layout::La8,
        ColorType::Rgb8 => Layout::Rgb8,
        ColorType::Rgba8 => Layout::Rgba8,
        _ => {
            let image = DynamicImage::from_decoder(decoder).map_err(|error| ConvertError::from_image(media, error))?;
            return Pixels::from_dynamic(image).map_err(|error| ConvertError::undecodable(media, error));
        }
    };
    let len = usize::try_from(decoder.total_bytes())
        .map_err(|_| ConvertError::undecodable(media, Reason::boxed("the image does not fit in memory")))?;
    let mut data = scratch::zeroed(len);
    decoder.read_image(&mut data).map_err(|error| ConvertError::from_image(media, error))?;
    Pixels::new(layout, width, height, data).map_err(|error| ConvertError::undecodable(media, error))
}

/// Whether the end-of-image marker is among the last bytes of a JPEG. In entropy-coded data every 0xFF is
/// followed by 0x00 or a restart marker, so the marker there means the scan ended, not that it was cut off.
fn scan_ends(input: &[u8]) -> bool {
    const TAIL: usize = 4096;
    input[input.len().saturating_sub(TAIL)..].windows(2).any(|pair| pair == [0xFF, 0xD9])
}

/// Decodes a JPEG at `1/scale.shrink` of its size (1, 2, 4 or 8) in the DCT domain, with libjpeg-turbo when `codec`
/// says so and it takes the file, else at full size with zune-jpeg and scaled with `jpeg-decoder`. When
/// `jpeg-decoder` cannot produce the requested size, or reports an unsupported feature, falls back to a
/// full-size decode with `image`.
pub(crate) fn decode_jpeg(
    input: &[u8],
    header: &Header,
    frame: JpegFrame,
    scale: JpegScale,
    limits: &ConvertLimits,
    codec: JpegCodec,
) -> Result<Pixels, ConvertError> {
    // At 1/8 only the DC coefficients matter: skipping the rest is faster than any full decoder (see `jpeg_dc`).
    if scale.shrink == 8
        && let Some(pixels) = crate::jpeg_dc::decode_eighth(input)
        && (pixels.width, pixels.height) == (header.width.div_ceil(8), header.height.div_ceil(8))
    {
        return Ok(pixels);
    }
    #[cfg(feature = "turbojpeg")]
    if codec == JpegCodec::Turbo
        && let Some(pixels) = crate::turbo::decode(input, header, frame, scale)
    {
        return Ok(pixels);
    }
    let shrink = scale.shrink;
    let _ = codec; // only the `turbojpeg` feature has a choice
    // A full-size decode is faster with zune-jpeg (through `image`) than with `jpeg-decoder`, which stays for
    // what only it does: DCT scaling, and the files zune-jpeg refuses (which then fail or convert as before).
    // zune-jpeg fills a cut-short file with grey instead of failing, so a file whose scan does not end is left
    // to `jpeg-decoder`, which rejects it.
    if shrink == 1
        && scan_ends(input)
        && let Ok((pixels, _, _)) = decode_with_image(input, header, limits)
    {
        return Ok(pixels);
    }
    let media = MediaType::Jpeg;
    let mut decoder = jpeg_decoder::Decoder::new(input);
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc_bytes()).unwrap_or(usize::MAX));
    let (full_width, full_height) = (header.width, header.height);
    let mut expected = (full_width, full_height);
    if shrink > 1 {
        let wanted = (full_width.div_ceil(shrink), full_height.div_ceil(shrink));
        // JPEG sides are at most 65535, so these fit; a failed conversion just means no shrinking.
        let request = (u16::try_from(wanted.0), u16::try_from(wanted.1));
        if let (Ok(width), Ok(height)) = request {
            match decoder.scale(width, height) {
                Ok((got_width, got_height)) => {
                    let got = (u32::from(got_width), u32::from(got_height));
                    if got == wanted {
                        expected = wanted;
                    } else if let (Ok(w), Ok(h)) = (u16::try_from(full_width), u16::try_from(full_height)) {
                        // The decoder picked another factor (it can for tiny sides): decode at full size.
                        decoder.scale(w, h).map_err(jpeg_error)?;
                    }
                }
                Err(error) => return jpeg_fallback(input, header, limits, error),
            }
        }
    }
    let data = match decoder.decode() {
        Ok(data) => data,
        Err(error) => return jpeg_fallback(input, header, limits, error),
    };
    let info = decoder.info().ok_or_else(|| ConvertError::undecodable(media, Reason::boxed("no frame decoded")))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if (width, height) != expected {
        return Err(ConvertError::undecodable(
            media,
            Reason::boxed(format!("decoded {width}x{height}, expected {}x{}", expected.0, expected.1)),
        ));
    }
    let (layout, data) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (Layout::L8, data),
        jpeg_decoder::PixelFormat::RGB24 => (Layout::Rgb8, data),
        jpeg_decoder::PixelFormat::CMYK32 => (Layout::Rgb8, cmyk_to_rgb(&data)),
        jpeg_decoder::PixelFormat::L16 => (Layout::L8, l16_to_l8(&data, frame.precision)),
    };
    Pixels::new(layout, width, height, data).map_err(|error| ConvertError::undecodable(media, error))
}

/// `jpeg-decoder` does not do everything (12-bit samples, arithmetic coding, ...): for an unsupported
/// feature try `image` at full size; any other failure means the file is broken.
fn jpeg_fallback(
    input: &[u8],
    header: &Header,
    limits: &ConvertLimits,
    error: jpeg_decoder::Error,
) -> Result<Pixels, ConvertError> {
    match error {
        jpeg_decoder::Error::Unsupported(_) => decode_with_image(input, header, limits).map(|(pixels, _, _)| pixels),
        other => Err(jpeg_error(other)),
    }
}

fn jpeg_error(error: jpeg_decoder::Error) -> ConvertError {
    let media = MediaType::Jpeg;
    match &error {
        jpeg_decoder::Error::Format(message) if message.contains("exceeds maximum allowed size") => {
            ConvertError::MemoryLimit { media, source: Box::new(error) }
        }
        _ => ConvertError::undecodable(media, error),
    }
}

/// `jpeg-decoder` gives real ink amounts (Adobe's inverted storage undone): white is C=M=Y=K=0.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for pixel in cmyk.chunks_exact(4) {
        if let [c, m, y, k] = *pixel {
            let white = 255 - u32::from(k);
            for ink in [c, m, y] {
                // (255 - ink) * (255 - k) / 255, rounded; at most 255.
                rgb.push((((255 - u32::from(ink)) * white + 127) / 255) as u8);
            }
        }
    }
    rgb
}

/// Native-endian 16-bit grey with `precision` significant bits to 8-bit grey.
fn l16_to_l8(data: &[u8], precision: u8) -> Vec<u8> {
    let max = (1u32 << precision.clamp(2, 16)) - 1;
    data.chunks_exact(2)
        .map(|pair| {
            let value = u32::from(u16::from_ne_bytes([pair[0], pair[1]])).min(max);
            ((value * 255 + max / 2) / max) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion() {
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255]), vec![255, 255, 255, 255, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn sixteen_bit_grey() {
        let data: Vec<u8> = [0u16, 4095, 2048].iter().flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(l16_to_l8(&data, 12), vec![0, 255, 128]);
    }
}
