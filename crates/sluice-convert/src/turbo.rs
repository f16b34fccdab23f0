//! JPEG through libjpeg-turbo (the `turbojpeg` cargo feature): decoding, with DCT scaling at 1/2 and 1/4 (1/8
//! goes to the DC-only decoder first), and encoding with its SIMD encoder, both faster than the pure-Rust
//! codecs on photos. Anything unusual (CMYK, 12-bit samples, a file libjpeg-turbo warns
//! about) is left to the pure-Rust path, so errors and their codes stay the same with or without the feature.

use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use crate::JpegScale;
use crate::error::BoxError;
use crate::header::{Header, JpegFrame};
use crate::pixels::{Layout, Pixels};

/// Decodes a JPEG at `1/scale.shrink` of its size (1, 2, 4 or 8; sides rounded up, as `jpeg-decoder` does),
/// with fast chroma upsampling when `scale` allows it. `None` when libjpeg-turbo should not or cannot do it;
/// the caller then decodes with the pure-Rust path, which also names the error of a broken file.
pub(crate) fn decode(input: &[u8], header: &Header, frame: JpegFrame, scale: JpegScale) -> Option<Pixels> {
    if frame.precision != 8 {
        return None;
    }
    let mut decompressor = Decompressor::new().ok()?;
    let found = decompressor.read_header(input).ok()?;
    if (found.width, found.height) != (usize::try_from(header.width).ok()?, usize::try_from(header.height).ok()?) {
        return None;
    }
    let (format, layout) = match found.colorspace {
        Colorspace::Gray => (PixelFormat::GRAY, Layout::L8),
        Colorspace::YCbCr | Colorspace::RGB => (PixelFormat::RGB, Layout::Rgb8),
        // libjpeg-turbo gives CMYK only as ink amounts; the pure-Rust path turns those into RGB.
        Colorspace::CMYK | Colorspace::YCCK => return None,
    };
    let factor = ScalingFactor::new(1, usize::try_from(scale.shrink).ok()?);
    decompressor.set_scaling_factor(factor).ok()?;
    decompressor.set_fast_upsample(scale.fast_upsample).ok()?;
    let scaled = found.scaled(factor);
    let pitch = scaled.width.checked_mul(format.size())?;
    let mut image = Image {
        pixels: crate::scratch::zeroed(pitch.checked_mul(scaled.height)?),
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    // Any error, warnings included (a truncated file decodes partly with a warning), goes to the pure-Rust path.
    decompressor.decompress(input, image.as_deref_mut()).ok()?;
    let (width, height) = (u32::try_from(scaled.width).ok()?, u32::try_from(scaled.height).ok()?);
    Pixels::new(layout, width, height, image.pixels).ok()
}

/// Encodes grey or RGB pixels as a baseline JPEG with the same choices as the pure-Rust encoder: 4:2:0 chroma
/// below quality 90, 4:4:4 from 90, standard Huffman tables, no metadata.
pub(crate) fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, BoxError> {
    let (format, subsamp) = match pixels.layout {
        Layout::L8 => (PixelFormat::GRAY, Subsamp::Gray),
        Layout::Rgb8 if quality >= 90 => (PixelFormat::RGB, Subsamp::None),
        Layout::Rgb8 => (PixelFormat::RGB, Subsamp::Sub2x2),
        Layout::La8 | Layout::Rgba8 => return Err(crate::error::Reason::boxed("JPEG takes no alpha; flatten first")),
    };
    let width = usize::try_from(pixels.width)?;
    let height = usize::try_from(pixels.height)?;
    let mut compressor = Compressor::new()?;
    compressor.set_quality(i32::from(quality.clamp(1, 100)))?;
    compressor.set_subsamp(subsamp)?;
    let image = Image { pixels: pixels.data.as_slice(), width, pitch: width * format.size(), height, format };
    Ok(compressor.compress_to_vec(image)?)
}

#[cfg(test)]
mod tests {
    use image::codecs::jpeg::JpegEncoder;
    use image::{DynamicImage, GrayImage, RgbImage};
    use sluice_core::{Fit, OutputFormat, VariantName, VariantSpec};

    use crate::{ConvertLimits, EncodedVariant, JpegCodec, convert_with};

    fn variant(name: &str, side: u32, format: OutputFormat) -> (VariantName, VariantSpec) {
        let spec = VariantSpec { width: side, height: side, fit: Fit::Contain, format, quality: 85 };
        (name.parse().unwrap(), spec)
    }

    /// Stored quadrants red, green / blue, white, with a smooth ramp so resizing has something to do.
    fn quadrant_jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| {
            let ramp = u8::try_from((x + y) % 64).unwrap();
            image::Rgb(match (x * 2 / width, y * 2 / height) {
                (0, 0) => [255 - ramp, 0, 0],
                (1, 0) => [0, 255 - ramp, 0],
                (0, _) => [0, 0, 255 - ramp],
                _ => [255 - ramp, 255 - ramp, 255 - ramp],
            })
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95).encode_image(&image).unwrap();
        out
    }

    /// `jpeg` with an Exif APP1 segment carrying `orientation` (little-endian TIFF, one IFD entry).
    fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut payload = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        payload.extend_from_slice(&orientation.to_le_bytes());
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn both(input: &[u8], variants: &[(VariantName, VariantSpec)]) -> (Vec<EncodedVariant>, Vec<EncodedVariant>) {
        let limits = ConvertLimits::default();
        let rust = convert_with(input, variants, &limits, JpegCodec::PureRust).unwrap();
        let turbo = convert_with(input, variants, &limits, JpegCodec::Turbo).unwrap();
        (rust, turbo)
    }

    fn decoded(output: &EncodedVariant) -> DynamicImage {
        image::load_from_memory(&output.bytes).unwrap()
    }

    /// Same names, types and sizes, and pixels that differ by less than `tolerance` on average.
    fn assert_alike(rust: &[EncodedVariant], turbo: &[EncodedVariant], tolerance: f64, context: &str) {
        assert_eq!(rust.len(), turbo.len(), "{context}");
        for (a, b) in rust.iter().zip(turbo) {
            assert_eq!((&a.name, a.media, a.width, a.height), (&b.name, b.media, b.width, b.height), "{context}");
            let (a, b) = (decoded(a).to_rgb8(), decoded(b).to_rgb8());
            assert_eq!(a.dimensions(), b.dimensions(), "{context}");
            let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
            let mean = total as f64 / a.as_raw().len() as f64;
            assert!(mean < tolerance, "{context}: {} differs by {mean:.2} on average", a.width());
        }
    }

    #[test]
    fn libjpeg_turbo_gives_the_same_geometry_and_orientation_at_every_scale() {
        let stored = quadrant_jpeg(640, 480);
        // Alone, each variant is decoded at another scale: 1/1 (640), 1/2 (160), 1/8 (40).
        let sizes = [(640, OutputFormat::Jpeg), (160, OutputFormat::Png), (40, OutputFormat::Png)];
        for orientation in 1..=8u16 {
            let input = with_orientation(&stored, orientation);
            for (side, format) in sizes {
                let (rust, turbo) = both(&input, &[variant("only", side, format)]);
                let expected = if orientation >= 5 { (side * 3 / 4, side) } else { (side, side * 3 / 4) };
                assert_eq!((turbo[0].width, turbo[0].height), expected, "orientation {orientation}, {side}");
                assert_alike(&rust, &turbo, 4.0, &format!("orientation {orientation}, {side} px"));
            }
        }
    }

    #[test]
    fn real_photos_and_grey_and_cmyk_match_the_pure_rust_path() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
        let variants = [
            variant("large", 2048, OutputFormat::Jpeg),
            variant("medium", 1024, OutputFormat::Jpeg),
            variant("small", 256, OutputFormat::Jpeg),
        ];
        for name in [
            "forest-stream.jpg",
            "portrait-dogs-at-window-exif-orientation-6.jpg",
            "portrait-mountain-sunset-exif-orientation-8.jpg",
            "paint-brushes-cmyk.jpg", // left to the pure-Rust decoder, encoded by libjpeg-turbo
        ] {
            let input = std::fs::read(samples.join(name)).unwrap();
            let (rust, turbo) = both(&input, &variants);
            // Two encoders at q85 on fine detail differ by a few levels; a wrong turn or crop by dozens.
            assert_alike(&rust, &turbo, 5.0, name);
        }
        let grey = GrayImage::from_fn(300, 200, |x, y| image::Luma([u8::try_from((x * 255 / 300 + y) % 256).unwrap()]));
        let mut input = Vec::new();
        JpegEncoder::new_with_quality(&mut input, 90).encode_image(&grey).unwrap();
        let (rust, turbo) = both(&input, &[variant("grey", 100, OutputFormat::Jpeg)]);
        assert_eq!(decoded(&turbo[0]).color(), image::ColorType::L8);
        assert_alike(&rust, &turbo, 3.0, "grey");
    }

    #[test]
    fn broken_files_fail_with_the_same_code_on_both_paths() {
        let whole = quadrant_jpeg(640, 480);
        let limits = ConvertLimits::default();
        for cut in [whole.len() / 3, whole.len() * 2 / 3] {
            let input = &whole[..cut];
            let variants = [variant("thumb", 100, OutputFormat::Jpeg)];
            let rust = convert_with(input, &variants, &limits, JpegCodec::PureRust).map(|_| ());
            let turbo = convert_with(input, &variants, &limits, JpegCodec::Turbo).map(|_| ());
            assert_eq!(rust.map_err(|e| e.code()), turbo.map_err(|e| e.code()), "cut at {cut}");
        }
    }
}
