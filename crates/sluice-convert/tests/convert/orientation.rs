//! Exif orientation 1-8: dimensions swap for 5-8, and every pixel lands where a correct viewer shows it.

use sluice_convert::probe;
use sluice_core::{Fit, OutputFormat};

use crate::*;

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// Stored quadrants: top-left red, top-right green, bottom-left blue, bottom-right white.
fn quadrants(width: u32, height: u32) -> RgbImage {
    rgb_image(width, height, |x, y| match (x * 2 / width, y * 2 / height) {
        (0, 0) => RED,
        (1, 0) => GREEN,
        (0, _) => BLUE,
        _ => WHITE,
    })
}

/// Where the stored quadrant `(qx, qy)` is displayed under an Exif orientation.
fn displayed_quadrant(orientation: u16, (qx, qy): (u32, u32)) -> (u32, u32) {
    match orientation {
        1 => (qx, qy),
        2 => (1 - qx, qy),
        3 => (1 - qx, 1 - qy),
        4 => (qx, 1 - qy),
        5 => (qy, qx),
        6 => (1 - qy, qx),
        7 => (1 - qy, 1 - qx),
        8 => (qy, 1 - qx),
        _ => unreachable!(),
    }
}

fn check_placement(output: &DynamicImage, orientation: u16, context: &str) {
    let (width, height) = (output.width(), output.height());
    for (stored, colour) in [((0, 0), RED), ((1, 0), GREEN), ((0, 1), BLUE), ((1, 1), WHITE)] {
        let (qx, qy) = displayed_quadrant(orientation, stored);
        let (x, y) = (width / 4 + qx * width / 2, height / 4 + qy * height / 2);
        let seen = rgb_at(output, x, y);
        assert!(
            close(seen, colour, 40),
            "{context}, orientation {orientation}: {colour:?} expected at ({x},{y}), saw {seen:?}"
        );
    }
}

#[test]
fn all_eight_orientations_at_full_size() {
    let stored = jpeg_from(&quadrants(64, 32), 95);
    for orientation in 1..=8u16 {
        for big_endian in [false, true] {
            let input = with_exif_orientation(&stored, orientation, big_endian);
            let expected = if orientation >= 5 { (32, 64) } else { (64, 32) };
            let info = probe(&input, &ConvertLimits::default()).unwrap();
            assert_eq!((info.width, info.height), expected, "probe, orientation {orientation}");
            // A box larger than the image: no resize, only the orientation.
            let output = convert_one(&input, 500, 500, Fit::Contain, OutputFormat::Png);
            assert_eq!((output.width, output.height), expected, "orientation {orientation}");
            check_placement(&decode_checked(&output), orientation, "full size");
        }
    }
}

#[test]
fn orientations_with_shrink_on_load_and_every_fit() {
    let stored = jpeg_from(&quadrants(800, 400), 95);
    for orientation in 1..=8u16 {
        let input = with_exif_orientation(&stored, orientation, orientation % 2 == 0);
        let outputs = convert(
            &input,
            &[
                variant("contain", 60, 60, Fit::Contain, OutputFormat::Png),
                variant("cover", 40, 80, Fit::Cover, OutputFormat::Png),
                variant("fill", 30, 50, Fit::Fill, OutputFormat::Png),
            ],
        );
        let contain = if orientation >= 5 { (30, 60) } else { (60, 30) };
        assert_eq!((outputs[0].width, outputs[0].height), contain, "orientation {orientation}");
        assert_eq!((outputs[1].width, outputs[1].height), (40, 80));
        assert_eq!((outputs[2].width, outputs[2].height), (30, 50));
        check_placement(&decode_checked(&outputs[0]), orientation, "contain");
        check_placement(&decode_checked(&outputs[2]), orientation, "fill");
    }
}

#[test]
fn real_portraits_come_out_upright() {
    for (name, stored) in [
        ("portrait-dogs-at-window-exif-orientation-6.jpg", (3088, 2056)),
        ("portrait-mountain-sunset-exif-orientation-8.jpg", (2848, 1900)),
    ] {
        let input = sample(name);
        let info = probe(&input, &ConvertLimits::default()).unwrap();
        assert_eq!((info.width, info.height), (stored.1, stored.0), "{name}");
        let output = convert_one(&input, 512, 512, Fit::Contain, OutputFormat::Jpeg);
        assert!(output.height == 512 && output.width < 512, "{name} is {}x{}", output.width, output.height);
        decode_checked(&output);
    }
}

#[test]
fn png_and_webp_orientation_is_applied() {
    // PNG with an eXIf chunk (orientation 6) before the image data.
    let png = png_from(&quadrants(40, 20).into());
    let ihdr_end = 8 + 25;
    let mut oriented_png = png[..ihdr_end].to_vec();
    oriented_png.extend_from_slice(&png_chunk(b"eXIf", &exif_tiff(6, false)));
    oriented_png.extend_from_slice(&png[ihdr_end..]);
    let output = convert_one(&oriented_png, 100, 100, Fit::Contain, OutputFormat::Png);
    assert_eq!((output.width, output.height), (20, 40));
    check_placement(&decode_checked(&output), 6, "png");

    // WebP: an extended (VP8X) file with an EXIF chunk around a lossy frame.
    let image = quadrants(40, 20);
    let lossy = webp::Encoder::from_rgb(image.as_raw(), 40, 20).encode_simple(false, 95.0).unwrap().to_vec();
    assert_eq!(&lossy[12..16], b"VP8 ");
    let vp8_chunk = &lossy[12..];
    let exif = exif_tiff(8, true);
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0x08, 0, 0, 0]); // flags: EXIF present
    body.extend_from_slice(&39u32.to_le_bytes()[..3]);
    body.extend_from_slice(&19u32.to_le_bytes()[..3]);
    body.extend_from_slice(vp8_chunk);
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    body.extend_from_slice(&exif);
    if exif.len() % 2 == 1 {
        body.push(0);
    }
    let mut webp_file = b"RIFF".to_vec();
    webp_file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp_file.extend_from_slice(&body);
    let info = probe(&webp_file, &ConvertLimits::default()).unwrap();
    assert_eq!((info.media, info.width, info.height), (MediaType::Webp, 20, 40));
    let output = convert_one(&webp_file, 100, 100, Fit::Contain, OutputFormat::Png);
    assert_eq!((output.width, output.height), (20, 40));
    check_placement(&decode_checked(&output), 8, "webp");
}
