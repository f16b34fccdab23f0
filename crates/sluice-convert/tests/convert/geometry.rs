//! Fit modes, never-enlarge, shrink-on-load quality.

use sluice_core::{Fit, OutputFormat};

use crate::*;

fn photo(width: u32, height: u32) -> Vec<u8> {
    jpeg_from(&rgb_image(width, height, |x, y| [(x * 255 / width) as u8, (y * 255 / height) as u8, noise(x, y, 1)]), 90)
}

#[test]
fn every_fit_gives_the_right_dimensions() {
    let input = photo(4000, 3000);
    let outputs = convert(
        &input,
        &[
            variant("contain", 1024, 1024, Fit::Contain, OutputFormat::Jpeg),
            variant("contain-tall", 1024, 500, Fit::Contain, OutputFormat::Png),
            variant("cover", 256, 256, Fit::Cover, OutputFormat::Webp),
            variant("cover-wide", 300, 100, Fit::Cover, OutputFormat::Jpeg),
            variant("fill", 200, 400, Fit::Fill, OutputFormat::Png),
        ],
    );
    let sizes: Vec<(String, u32, u32)> = outputs.iter().map(|o| (o.name.to_string(), o.width, o.height)).collect();
    assert_eq!(
        sizes,
        [
            ("contain".to_owned(), 1024, 768),
            ("contain-tall".to_owned(), 667, 500),
            ("cover".to_owned(), 256, 256),
            ("cover-wide".to_owned(), 300, 100),
            ("fill".to_owned(), 200, 400),
        ]
    );
    for output in &outputs {
        decode_checked(output);
    }
}

#[test]
fn contain_never_enlarges_but_cover_and_fill_fill_the_box() {
    let input = photo(300, 200);
    let contain = convert_one(&input, 1024, 1024, Fit::Contain, OutputFormat::Jpeg);
    assert_eq!((contain.width, contain.height), (300, 200));
    decode_checked(&contain);
    let cover = convert_one(&input, 1024, 1024, Fit::Cover, OutputFormat::Jpeg);
    assert_eq!((cover.width, cover.height), (1024, 1024));
    decode_checked(&cover);
    let fill = convert_one(&input, 600, 100, Fit::Fill, OutputFormat::Png);
    assert_eq!((fill.width, fill.height), (600, 100));
    decode_checked(&fill);
}

#[test]
fn cover_crops_around_the_centre_and_fill_stretches() {
    // Three vertical bands: red | green | blue, each 100 wide, 100 high.
    let bands = rgb_image(300, 100, |x, _| match x / 100 {
        0 => [255, 0, 0],
        1 => [0, 255, 0],
        _ => [0, 0, 255],
    });
    let input = png_from(&bands.into());
    let cover = decode_checked(&convert_one(&input, 50, 50, Fit::Cover, OutputFormat::Png));
    // The crop is centred: both edges see the same (small) ringing from the neighbouring bands, none red
    // or blue dominates, and the inside is pure green.
    let (left, right) = (rgb_at(&cover, 0, 25), rgb_at(&cover, 49, 25));
    assert!(left[0].abs_diff(right[2]) <= 2 && left[0] < 24 && left[1] > 230, "edges {left:?} {right:?}");
    for (x, y) in [(3, 3), (25, 25), (46, 46)] {
        assert!(close(rgb_at(&cover, x, y), [0, 255, 0], 2), "cover pixel ({x},{y}) is {:?}", rgb_at(&cover, x, y));
    }
    let fill = decode_checked(&convert_one(&input, 30, 30, Fit::Fill, OutputFormat::Png));
    assert!(close(rgb_at(&fill, 2, 15), [255, 0, 0], 2));
    assert!(close(rgb_at(&fill, 15, 15), [0, 255, 0], 2));
    assert!(close(rgb_at(&fill, 27, 15), [0, 0, 255], 2));
    let contain = decode_checked(&convert_one(&input, 30, 30, Fit::Contain, OutputFormat::Png));
    assert_eq!((contain.width(), contain.height()), (30, 10));
}

#[test]
fn shrink_on_load_matches_a_full_decode() {
    // The same small variant, once alone (decoded at 1/8) and once next to a full-size one (decoded whole).
    let input = photo(2400, 1600);
    let thumb = variant("thumb", 200, 200, Fit::Contain, OutputFormat::Png);
    let big = variant("big", 2400, 2400, Fit::Contain, OutputFormat::Jpeg);
    let alone = convert(&input, std::slice::from_ref(&thumb));
    let together = convert(&input, &[thumb, big]);
    let a = decode_checked(&alone[0]).to_rgb8();
    let b = decode_checked(&together[0]).to_rgb8();
    assert_eq!(a.dimensions(), (200, 133));
    let diff = mean_abs_diff(&a, &b);
    assert!(diff < 4.0, "shrink-on-load differs from a full decode by {diff}");

    // On a real, detailed photo the shrunk decode (1/4 here) is nearly indistinguishable from a full one.
    let input = sample("forest-stream.jpg");
    let thumb = variant("thumb", 256, 256, Fit::Cover, OutputFormat::Png);
    let alone = convert(&input, std::slice::from_ref(&thumb));
    let together = convert(&input, &[thumb, variant("big", 4000, 4000, Fit::Contain, OutputFormat::Png)]);
    let diff = mean_abs_diff(&decode_checked(&alone[0]).to_rgb8(), &decode_checked(&together[0]).to_rgb8());
    assert!(diff < 2.0, "shrink-on-load differs from a full decode by {diff} on a photo");
}

#[test]
fn real_photos_convert_to_every_format() {
    let variants = [
        variant("thumb", 256, 256, Fit::Cover, OutputFormat::Webp),
        variant("medium", 1024, 1024, Fit::Contain, OutputFormat::Jpeg),
        variant("same", 640, 640, Fit::Contain, OutputFormat::Same),
        variant("png", 320, 200, Fit::Fill, OutputFormat::Png),
    ];
    let cases = [
        ("dragonfly-on-branch.jpg", (1024, 768), MediaType::Jpeg),
        ("dandelions-at-sunset.jpg", (1024, 576), MediaType::Jpeg),
        ("portrait-wine-and-drum.jpg", (683, 1024), MediaType::Jpeg),
        ("fig-bowl-vignette-alpha.png", (1024, 693), MediaType::Png),
        ("ladybird-pan-animated.gif", (480, 300), MediaType::Png),
        ("rowing-boats-evening-glow.webp", (1024, 640), MediaType::Webp),
        ("paint-brushes-cmyk.jpg", (1024, 806), MediaType::Jpeg),
    ];
    for (name, medium, same) in cases {
        let outputs = convert(&sample(name), &variants);
        assert_eq!(outputs.len(), 4, "{name}");
        for output in &outputs {
            decode_checked(output);
        }
        assert_eq!((outputs[0].media, outputs[0].width, outputs[0].height), (MediaType::Webp, 256, 256), "{name}");
        assert_eq!((outputs[1].width, outputs[1].height), medium, "{name}");
        assert_eq!(outputs[2].media, same, "{name}");
        assert_eq!((outputs[3].media, outputs[3].width, outputs[3].height), (MediaType::Png, 320, 200), "{name}");
    }
}
