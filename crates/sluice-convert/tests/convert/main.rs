//! Integration tests of `sluice-convert` on real, generated images and on the repository's samples.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used)]

mod formats;
mod geometry;
mod hostile;
mod orientation;

use std::path::PathBuf;

use image::{DynamicImage, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};
use sluice_convert::{ConvertLimits, EncodedVariant, convert_image};
use sluice_core::{Fit, MediaType, OutputFormat, VariantName, VariantSpec};

/// A variant named `name`.
pub fn variant(name: &str, width: u32, height: u32, fit: Fit, format: OutputFormat) -> (VariantName, VariantSpec) {
    let spec = VariantSpec::new(width, height, fit, format, 85).unwrap();
    (name.parse().unwrap(), spec)
}

/// Converts with default limits, panicking with the error code on failure.
pub fn convert(input: &[u8], variants: &[(VariantName, VariantSpec)]) -> Vec<EncodedVariant> {
    convert_image(input, variants, &ConvertLimits::default()).unwrap_or_else(|e| panic!("{}: {e}", e.code()))
}

/// Converts to a single variant.
pub fn convert_one(input: &[u8], width: u32, height: u32, fit: Fit, format: OutputFormat) -> EncodedVariant {
    let mut outputs = convert(input, &[variant("v", width, height, fit, format)]);
    assert_eq!(outputs.len(), 1);
    outputs.remove(0)
}

/// Decodes an output and checks it is what it claims: type from magic bytes, dimensions.
pub fn decode_checked(output: &EncodedVariant) -> DynamicImage {
    assert_eq!(MediaType::sniff_image(&output.bytes), Some(output.media), "{} has the wrong magic bytes", output.name);
    let image = image::load_from_memory(&output.bytes).unwrap();
    assert_eq!((image.width(), image.height()), (output.width, output.height), "{} dimensions", output.name);
    image
}

/// Encodes an RGB image as a baseline JPEG.
pub fn jpeg_from(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// Encodes any 8/16-bit image as PNG.
pub fn png_from(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// An RGB image from a function of the pixel position.
pub fn rgb_image(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb(f(x, y)))
}

/// An RGBA image from a function of the pixel position.
pub fn rgba_image(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| Rgba(f(x, y)))
}

/// Deterministic noise, so JPEGs have real entropy-coded data.
pub fn noise(x: u32, y: u32, salt: u32) -> u8 {
    let mut h = x.wrapping_mul(0x9E37_79B9) ^ y.wrapping_mul(0x85EB_CA6B) ^ salt.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h & 0xFF) as u8
}

/// A file of the repository's `samples/` folder.
pub fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether two colours are within `tolerance` on every channel.
pub fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= tolerance)
}

/// The RGB colour of a pixel.
pub fn rgb_at(image: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let Rgba([r, g, b, _]) = image.to_rgba8().get_pixel(x, y).to_owned();
    [r, g, b]
}

/// Mean absolute difference per channel between two RGB images of the same size.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
    total as f64 / a.as_raw().len() as f64
}

/// CRC-32 (ISO-HDLC), for hand-made PNG chunks.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG chunk with its length and CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    chunk
}

/// A TIFF block (as found in Exif) whose IFD0 holds only an orientation tag.
pub fn exif_tiff(orientation: u16, big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut tiff = if big_endian { b"MM\0\x2A".to_vec() } else { b"II\x2A\0".to_vec() };
    tiff.extend_from_slice(&u32b(8));
    tiff.extend_from_slice(&u16b(1));
    tiff.extend_from_slice(&u16b(0x0112));
    tiff.extend_from_slice(&u16b(3));
    tiff.extend_from_slice(&u32b(1));
    tiff.extend_from_slice(&u16b(orientation));
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&u32b(0));
    tiff
}

/// Inserts an APP1 Exif segment with `orientation` right after the SOI of a JPEG.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16, big_endian: bool) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&exif_tiff(orientation, big_endian));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}
