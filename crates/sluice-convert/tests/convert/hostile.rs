//! Hostile and broken inputs: pixel floods, truncation, corruption, other types. Never a panic.

use std::time::{Duration, Instant};

use sluice_convert::{ConvertError, MAX_SIDE, probe};
use sluice_core::{Fit, OutputFormat};

use crate::*;

fn thumb() -> [(sluice_core::VariantName, sluice_core::VariantSpec); 2] {
    [variant("thumb", 64, 64, Fit::Cover, OutputFormat::Webp), variant("png", 50, 50, Fit::Contain, OutputFormat::Png)]
}

fn code_of(input: &[u8]) -> &'static str {
    match convert_image(input, &thumb(), &ConvertLimits::default()) {
        Ok(_) => "ok",
        Err(error) => error.code(),
    }
}

/// A PNG claiming `width`x`height`, with a tiny (valid) IDAT that is far too short for it.
fn flood_png(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1-bit grey: 30000x30000 is ~110 MB raw, a few hundred KB deflated
    png.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
    png.extend_from_slice(&png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend_from_slice(&png_chunk(b"IEND", &[]));
    png
}

#[test]
fn pixel_flood_png_is_rejected_from_the_header() {
    let input = flood_png(30_000, 30_000);
    let started = Instant::now();
    let error = probe(&input, &ConvertLimits::default()).unwrap_err();
    assert!(
        matches!(error, ConvertError::TooManyPixels { width: 30_000, height: 30_000, max_pixels: 50_000_000 }),
        "{error:?}"
    );
    assert_eq!(code_of(&input), "too_many_pixels");
    assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());
    // Under a lower limit, an ordinary image is rejected the same way.
    let small = png_from(&rgb_image(100, 100, |_, _| [1, 2, 3]).into());
    let error = convert_image(&small, &thumb(), &ConvertLimits { max_pixels: 9_999 }).unwrap_err();
    assert_eq!(error.code(), "too_many_pixels");
    assert!(convert_image(&small, &thumb(), &ConvertLimits { max_pixels: 10_000 }).is_ok());
}

#[test]
fn a_thin_strip_with_a_side_past_the_limit_is_rejected_from_the_header() {
    // 50 million pixels in all, within max_pixels, but a side of 50,000,000: resizing it would build filter
    // tables of gigabytes.
    for (width, height) in [(1, 50_000_000), (50_000_000, 1), (MAX_SIDE + 1, 2)] {
        let input = flood_png(width, height);
        let error = probe(&input, &ConvertLimits::default()).unwrap_err();
        assert!(matches!(error, ConvertError::SideTooLong { max_side: MAX_SIDE, .. }), "{error:?}");
        assert_eq!(code_of(&input), "too_many_pixels");
        assert!(error.to_string().contains("a side may be at most 65535 pixels"), "{error}");
    }
    // A side of exactly the limit is converted.
    let strip = png_from(&rgb_image(2, MAX_SIDE, |_, y| [(y % 251) as u8, 2, 3]).into());
    assert!(convert_image(&strip, &thumb(), &ConvertLimits::default()).is_ok());
}

#[test]
fn floods_in_every_format_are_rejected_from_the_header() {
    // GIF: a 65535x65535 logical screen.
    let mut gif = b"GIF89a\xff\xff\xff\xff\x00\x00\x00".to_vec();
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B]);
    // JPEG: a frame header of 65000x65000.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0xFD, 0xE8, 0xFD, 0xE8, 3];
    jpeg.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xDA, 0, 8]);
    // WebP: a 16384x16384 VP8X canvas.
    let mut webp = b"RIFF\x20\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
    webp.extend_from_slice(&[0xFF, 0x3F, 0x00, 0xFF, 0x3F, 0x00]);
    for (name, input) in [("gif", gif), ("jpeg", jpeg), ("webp", webp)] {
        assert_eq!(code_of(&input), "too_many_pixels", "{name}");
        assert_eq!(probe(&input, &ConvertLimits::default()).unwrap_err().code(), "too_many_pixels", "{name}");
    }
}

#[test]
fn gif_frame_larger_than_its_screen_is_refused_not_allocated() {
    // A 10x10 screen whose only frame claims 65535x65535.
    let mut gif = b"GIF89a\x0a\x00\x0a\x00\x80\x00\x00".to_vec();
    gif.extend_from_slice(&[0, 0, 0, 255, 255, 255]); // global palette, two colours
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
    gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0, 0x3B]);
    let code = code_of(&gif);
    assert!(matches!(code, "undecodable" | "memory_limit"), "{code}");
}

#[test]
fn truncated_files_are_undecodable() {
    let photo = jpeg_from(&rgb_image(256, 256, |x, y| [noise(x, y, 3), noise(x, y, 4), noise(x, y, 5)]), 90);
    let png = png_from(&rgb_image(256, 256, |x, y| [noise(x, y, 6), 0, 0]).into());
    let webp = webp::Encoder::from_rgb(&rgb_image(256, 256, |x, y| [noise(x, y, 7), 9, 9]), 256, 256)
        .encode_simple(false, 80.0)
        .unwrap()
        .to_vec();
    for (name, file) in [("jpeg", &photo), ("png", &png), ("webp", &webp)] {
        for fraction in [0.5, 0.9] {
            let cut = &file[..(file.len() as f64 * fraction) as usize];
            assert_eq!(code_of(cut), "undecodable", "{name} cut at {fraction}");
        }
    }
    // Variants that need every pixel: a full-size decode must fail the same way.
    let full = [variant("full", 256, 256, Fit::Contain, OutputFormat::Jpeg)];
    for fraction in [0.33, 0.9] {
        let cut = &photo[..(photo.len() as f64 * fraction) as usize];
        let error = convert_image(cut, &full, &ConvertLimits::default()).err().map(|error| error.code());
        assert_eq!(error, Some("undecodable"), "jpeg cut at {fraction}, decoded at full size");
    }
    // Cut inside the headers: probe already fails.
    assert_eq!(probe(&photo[..20], &ConvertLimits::default()).unwrap_err().code(), "undecodable");
    assert_eq!(probe(&png[..12], &ConvertLimits::default()).unwrap_err().code(), "undecodable");
}

#[test]
fn other_types_are_unsupported() {
    for input in [
        &b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>"[..],
        b"<?xml version=\"1.0\"?><svg/>",
        b"hello, world\n",
        b"%PDF-1.7\n",
        b"",
        b"\xFF\xD8",
        b"BM\x3a\0\0\0",
        b"RIFF\0\0\0\0WAVEfmt ",
    ] {
        assert_eq!(code_of(input), "unsupported_type", "{input:?}");
        assert_eq!(probe(input, &ConvertLimits::default()).unwrap_err().code(), "unsupported_type");
    }
}

#[test]
fn corrupted_files_never_panic() {
    let jpeg = jpeg_from(&rgb_image(96, 64, |x, y| [noise(x, y, 8), noise(x, y, 9), 3]), 80);
    let progressive_sample = sample("ladybird-pan-animated.gif");
    let png = png_from(&rgba_image(48, 32, |x, y| [noise(x, y, 10), 1, 2, noise(x, y, 11)]).into());
    let webp = webp::Encoder::from_rgba(&rgba_image(48, 32, |x, y| [noise(x, y, 12), 1, 2, 200]), 48, 32)
        .encode_simple(false, 70.0)
        .unwrap()
        .to_vec();
    let gif = progressive_sample[..progressive_sample.len().min(20_000)].to_vec();
    let mut seed = 0x1234_5678u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for file in [&jpeg, &png, &webp, &gif] {
        for _ in 0..150 {
            let mut mutated = file.clone();
            for _ in 0..1 + next() % 6 {
                // Keep the magic bytes so the decoders are exercised.
                let at = 12 + next() as usize % (mutated.len() - 12);
                mutated[at] = next() as u8;
            }
            let _ = probe(&mutated, &ConvertLimits::default());
            let _ = convert_image(&mutated, &thumb(), &ConvertLimits::default());
        }
    }
}
