//! Input colour types, alpha, GIF frames, CMYK, metadata stripping, settings and error codes.

use image::codecs::gif::GifEncoder;
use image::{
    Delay, DynamicImage, Frame, GrayAlphaImage, GrayImage, ImageBuffer, ImageDecoder, ImageEncoder, LumaA, RgbImage,
};
use sluice_convert::{ConvertError, ConvertSettings, DEFAULT_MAX_PIXELS, probe};
use sluice_core::{Fit, OutputFormat};

use crate::*;

/// Half transparent (left, black and transparent), half opaque red.
fn half_transparent() -> RgbaImage {
    rgba_image(64, 32, |x, _| if x < 32 { [0, 0, 0, 0] } else { [255, 0, 0, 255] })
}

#[test]
fn jpeg_outputs_flatten_alpha_on_white() {
    let input = png_from(&half_transparent().into());
    let output = decode_checked(&convert_one(&input, 64, 32, Fit::Contain, OutputFormat::Jpeg));
    assert!(close(rgb_at(&output, 4, 16), [255, 255, 255], 6), "transparent became {:?}", rgb_at(&output, 4, 16));
    assert!(close(rgb_at(&output, 60, 16), [255, 0, 0], 12), "red became {:?}", rgb_at(&output, 60, 16));

    // A real vignette: the corners are fully transparent.
    let output = decode_checked(&convert_one(
        &sample("fig-bowl-vignette-alpha.png"),
        300,
        300,
        Fit::Contain,
        OutputFormat::Jpeg,
    ));
    assert!(close(rgb_at(&output, 1, 1), [255, 255, 255], 6), "corner is {:?}", rgb_at(&output, 1, 1));
}

#[test]
fn png_and_webp_outputs_keep_alpha() {
    let input = png_from(&half_transparent().into());
    for format in [OutputFormat::Png, OutputFormat::Webp] {
        let output = decode_checked(&convert_one(&input, 32, 16, Fit::Contain, format)).to_rgba8();
        assert_eq!(output.get_pixel(2, 8).0[3], 0, "{format:?}");
        let right = output.get_pixel(29, 8).0;
        assert!(right[3] == 255 && right[0] > 240 && right[1] < 20, "{format:?}: {right:?}");
    }
}

#[test]
fn grey_sixteen_bit_and_grey_alpha_inputs() {
    let grey: DynamicImage = GrayImage::from_fn(50, 40, |x, _| image::Luma([(x * 5) as u8])).into();
    let grey16: DynamicImage =
        ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(50, 40, |_, _| Rgba([65535, 0, 32768, 65535])).into();
    let grey_alpha: DynamicImage =
        GrayAlphaImage::from_fn(50, 40, |x, _| LumaA([200, if x < 25 { 0 } else { 255 }])).into();
    let grey_jpeg = {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(&vec![128; 400 * 300], 400, 300, image::ExtendedColorType::L8)
            .unwrap();
        out
    };
    for (name, input) in [
        ("grey png", png_from(&grey)),
        ("rgba16 png", png_from(&grey16)),
        ("grey+alpha png", png_from(&grey_alpha)),
        ("grey jpeg", grey_jpeg),
    ] {
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Same] {
            let output = convert_one(&input, 25, 25, Fit::Cover, format);
            let decoded = decode_checked(&output);
            assert_eq!((decoded.width(), decoded.height()), (25, 25), "{name} {format:?}");
        }
    }
    let output = decode_checked(&convert_one(&png_from(&grey16), 10, 10, Fit::Fill, OutputFormat::Png));
    assert!(close(rgb_at(&output, 5, 5), [255, 0, 128], 1), "16-bit became {:?}", rgb_at(&output, 5, 5));
}

#[test]
fn palette_png_with_transparency() {
    // Hand-made 2x2 palette PNG: red, transparent / blue, green.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&png_chunk(b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 8, 3, 0, 0, 0]));
    png.extend_from_slice(&png_chunk(b"PLTE", &[255, 0, 0, 0, 0, 0, 0, 0, 255, 0, 255, 0]));
    png.extend_from_slice(&png_chunk(b"tRNS", &[255, 0, 255, 255]));
    // zlib stored block of the filtered rows: [0, 0, 1], [0, 2, 3].
    let raw = [0u8, 0, 1, 0, 2, 3];
    let mut zlib = vec![0x78, 0x01, 0x01, raw.len() as u8, 0, !(raw.len() as u8), 0xFF];
    zlib.extend_from_slice(&raw);
    let adler = {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &raw {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    };
    zlib.extend_from_slice(&adler.to_be_bytes());
    png.extend_from_slice(&png_chunk(b"IDAT", &zlib));
    png.extend_from_slice(&png_chunk(b"IEND", &[]));
    let output = decode_checked(&convert_one(&png, 2, 2, Fit::Fill, OutputFormat::Png)).to_rgba8();
    assert_eq!(output.get_pixel(0, 0).0, [255, 0, 0, 255]);
    assert_eq!(output.get_pixel(1, 0).0[3], 0);
    assert_eq!(output.get_pixel(0, 1).0, [0, 0, 255, 255]);
    assert_eq!(output.get_pixel(1, 1).0, [0, 255, 0, 255]);
}

#[test]
fn gif_contributes_its_first_frame() {
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        for colour in [[255, 0, 0, 255], [0, 0, 255, 255]] {
            let frame = Frame::from_parts(rgba_image(40, 30, |_, _| colour), 0, 0, Delay::from_numer_denom_ms(100, 1));
            encoder.encode_frame(frame).unwrap();
        }
    }
    let output = convert_one(&gif, 20, 20, Fit::Contain, OutputFormat::Same);
    assert_eq!((output.media, output.width, output.height), (MediaType::Png, 20, 15));
    let decoded = decode_checked(&output);
    assert!(close(rgb_at(&decoded, 10, 7), [255, 0, 0], 2), "first frame is red, saw {:?}", rgb_at(&decoded, 10, 7));
}

#[test]
fn cmyk_jpeg_colours_match_an_independent_decoder() {
    // Our path (jpeg-decoder, shrink-on-load) against image's zune-jpeg decode of the same file.
    let input = sample("paint-brushes-cmyk.jpg");
    for (width, height) in [(128, 100), (1365, 1074)] {
        let ours = decode_checked(&convert_one(&input, width, height, Fit::Fill, OutputFormat::Png)).to_rgb8();
        let reference = image::load_from_memory(&input)
            .unwrap()
            .resize_exact(width, height, image::imageops::FilterType::Lanczos3)
            .to_rgb8();
        let diff = mean_abs_diff(&ours, &reference);
        assert!(diff < 6.0, "CMYK at {width}x{height} differs from zune-jpeg by {diff}");
    }
}

/// Whether `bytes` holds metadata: Exif anywhere, XMP, ICC, or PNG text/eXIf chunks. (A real colour profile is
/// kept, see the next test; the one below is no profile and is dropped.)
fn has_metadata(bytes: &[u8]) -> bool {
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    contains(b"Exif")
        || contains(b"EXIF")
        || contains(b"eXIf")
        || contains(b"http://ns.adobe.com/xap")
        || contains(b"ICC_PROFILE")
        || contains(b"iCCP")
        || contains(b"tEXt")
        || contains(b"zTXt")
        || contains(b"iTXt")
}

#[test]
fn outputs_carry_no_metadata() {
    let base = jpeg_from(&rgb_image(200, 100, |x, y| [noise(x, y, 2), 90, 40]), 90);
    let mut input = with_exif_orientation(&base, 1, false);
    // Add an XMP APP1 and an ICC APP2 as well.
    for (marker, payload) in [
        (0xE1u8, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>".to_vec()),
        (0xE2u8, b"ICC_PROFILE\0\x01\x01fake-profile".to_vec()),
    ] {
        let mut segment = vec![0xFF, marker];
        segment.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(&payload);
        input.splice(2..2, segment);
    }
    assert!(has_metadata(&input));
    let portrait = sample("portrait-dogs-at-window-exif-orientation-6.jpg");
    assert!(has_metadata(&portrait));
    for source in [&input, &portrait] {
        let outputs = convert(
            source,
            &[
                variant("a", 64, 64, Fit::Cover, OutputFormat::Jpeg),
                variant("b", 64, 64, Fit::Cover, OutputFormat::Png),
                variant("c", 64, 64, Fit::Cover, OutputFormat::Webp),
            ],
        );
        for output in outputs {
            assert!(!has_metadata(&output.bytes), "{} has metadata", output.name);
            decode_checked(&output);
        }
    }
}

/// A minimal ICC profile of `len` bytes for `space` pixels: what the converter checks (the length it declares,
/// the colour space, the `acsp` signature). Decoders and encoders carry profiles without reading them.
fn icc_profile(space: &[u8; 4], len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|at| (at % 251) as u8).collect();
    bytes[0..4].copy_from_slice(&(len as u32).to_be_bytes());
    bytes[12..16].copy_from_slice(b"mntr");
    bytes[16..20].copy_from_slice(space);
    bytes[20..24].copy_from_slice(b"XYZ ");
    bytes[36..40].copy_from_slice(b"acsp");
    bytes
}

/// The ICC profile `bytes` embeds, as `image` reads it.
fn read_icc(bytes: &[u8]) -> Option<Vec<u8>> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().unwrap();
    reader.into_decoder().unwrap().icc_profile().unwrap()
}

fn jpeg_with_profile(image: &RgbImage, profile: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_icc_profile(profile.to_vec()).unwrap();
    encoder.write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8).unwrap();
    out
}

fn png_with_profile(image: &DynamicImage, profile: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder.set_icc_profile(profile.to_vec()).unwrap();
    encoder.write_image(image.as_bytes(), image.width(), image.height(), image.color().into()).unwrap();
    out
}

#[test]
fn outputs_keep_a_colour_profile_that_fits_them() {
    let every_format = [
        variant("a", 64, 64, Fit::Cover, OutputFormat::Jpeg),
        variant("b", 64, 64, Fit::Cover, OutputFormat::Png),
        variant("c", 64, 64, Fit::Cover, OutputFormat::Webp),
    ];
    // Wide-gamut RGB (Display P3, Adobe RGB): larger than one JPEG segment holds, so split over two.
    let rgb = icc_profile(b"RGB ", 70_000);
    let photo = rgb_image(200, 100, |x, y| [noise(x, y, 3), 120, 60]);
    let translucent = DynamicImage::from(rgba_image(80, 60, |x, y| [noise(x, y, 5), 40, 200, (x * 3) as u8]));
    for (input, what) in [
        (jpeg_with_profile(&photo, &rgb), "JPEG"),
        (png_with_profile(&DynamicImage::from(photo.clone()), &rgb), "PNG"),
        // With alpha, libwebp writes the extended format itself.
        (png_with_profile(&translucent, &rgb), "PNG with alpha"),
    ] {
        assert_eq!(read_icc(&input).as_deref(), Some(&rgb[..]), "the {what} input carries the profile");
        for output in convert(&input, &every_format) {
            assert_eq!(read_icc(&output.bytes).as_deref(), Some(&rgb[..]), "{what} to {}", output.name);
            decode_checked(&output);
        }
    }
    // A grey profile fits grey outputs only: a grey PNG keeps it as PNG and JPEG, not as WebP (RGB).
    let grey = icc_profile(b"GRAY", 400);
    let input =
        png_with_profile(&DynamicImage::from(GrayImage::from_fn(90, 60, |x, y| [noise(x, y, 7)].into())), &grey);
    for output in convert(&input, &every_format) {
        let expected = (output.name.as_str() != "c").then_some(&grey[..]);
        assert_eq!(read_icc(&output.bytes).as_deref(), expected, "grey to {}", output.name);
        decode_checked(&output);
    }
    // A CMYK profile describes none of the outputs (they are RGB): dropped.
    let input = jpeg_with_profile(&photo, &icc_profile(b"CMYK", 500));
    for output in convert(&input, &every_format) {
        assert_eq!(read_icc(&output.bytes), None, "CMYK profile in {}", output.name);
    }
}

#[test]
fn settings_deserialize_strictly_with_defaults() {
    let settings: ConvertSettings = serde_json::from_str(
        r#"{"variants":{"thumb":{"width":256,"height":256,"fit":"cover","format":"webp","quality":80}}}"#,
    )
    .unwrap();
    assert_eq!(settings.max_pixels, DEFAULT_MAX_PIXELS);
    assert_eq!(settings.all_variants().len(), 1);
    assert_eq!(settings.limits().max_pixels, 50_000_000);
    assert!(serde_json::from_str::<ConvertSettings>(r#"{"max_pixel":1}"#).is_err());
    assert!(serde_json::from_str::<ConvertSettings>(r#"{"variants":{"Bad Name":{"width":1,"height":1}}}"#).is_err());
    assert_eq!(serde_json::from_str::<ConvertSettings>("{}").unwrap(), ConvertSettings::default());
}

#[test]
fn error_codes_and_permanence() {
    let err = probe(b"<svg/>", &ConvertLimits::default()).unwrap_err();
    assert_eq!((err.code(), err.is_permanent()), ("unsupported_type", true));
    let err = ConvertError::TooManyPixels { width: 1, height: 2, max_pixels: 1 };
    assert_eq!(err.code(), "too_many_pixels");
    assert_eq!(err.to_string(), "the image is 1x2 pixels, more than the 1 pixels allowed");
}

/// A file of this crate's `tests/fixtures/` folder (made with ImageMagick and cjpeg from `samples/`).
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

#[test]
fn progressive_jpeg_with_and_without_shrink_on_load() {
    let input = fixture("progressive.jpg");
    let small = decode_checked(&convert_one(&input, 80, 80, Fit::Contain, OutputFormat::Png)).to_rgb8();
    assert_eq!(small.dimensions(), (80, 53));
    // The same size made from a full decode (forced by a second, full-size variant) looks the same.
    let outputs = convert(
        &input,
        &[
            variant("small", 80, 80, Fit::Contain, OutputFormat::Png),
            variant("full", 320, 320, Fit::Contain, OutputFormat::Png),
        ],
    );
    let from_full = decode_checked(&outputs[0]).to_rgb8();
    assert_eq!((outputs[1].width, outputs[1].height), (320, 213));
    let diff = mean_abs_diff(&small, &from_full);
    assert!(diff < 5.0, "progressive shrink-on-load differs by {diff}");
}

#[test]
fn arithmetic_coded_jpeg_falls_back_cleanly() {
    // jpeg-decoder does not support arithmetic coding; the fallback decoder either converts it or the file is
    // reported undecodable, never a panic or an internal error.
    match convert_image(
        &fixture("arithmetic.jpg"),
        &[variant("v", 32, 32, Fit::Cover, OutputFormat::Png)],
        &ConvertLimits::default(),
    ) {
        Ok(outputs) => assert_eq!((outputs[0].width, outputs[0].height), (32, 32)),
        Err(error) => assert_eq!(error.code(), "undecodable", "{error:?}"),
    }
}
