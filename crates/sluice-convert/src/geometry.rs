//! Output sizes, crops and the JPEG shrink-on-load factor: pure arithmetic, unit-tested on its own.

use sluice_core::{Fit, VariantSpec};

/// The size of a variant as displayed (after orientation), for an image displayed as `width`x`height`.
///
/// `Cover` and `Fill` give the box exactly; `Contain` fits inside the box keeping the aspect ratio and never
/// enlarges. No side is ever 0.
pub fn output_size(width: u32, height: u32, spec: &VariantSpec) -> (u32, u32) {
    match spec.fit {
        Fit::Cover | Fit::Fill => (spec.width, spec.height),
        Fit::Contain => contain(width, height, spec.width, spec.height),
    }
}

fn contain(width: u32, height: u32, box_width: u32, box_height: u32) -> (u32, u32) {
    if width <= box_width && height <= box_height {
        return (width.max(1), height.max(1));
    }
    let (w, h, bw, bh) = (u64::from(width), u64::from(height), u64::from(box_width), u64::from(box_height));
    // Compare the ratios w/bw and h/bh exactly, then round the other side to the nearest pixel.
    if w * bh >= h * bw {
        let scaled = (2 * h * bw + w) / (2 * w);
        (box_width, clamp_side(scaled, box_height))
    } else {
        let scaled = (2 * w * bh + h) / (2 * h);
        (clamp_side(scaled, box_width), box_height)
    }
}

fn clamp_side(value: u64, max: u32) -> u32 {
    u32::try_from(value).unwrap_or(max).clamp(1, max)
}

/// The centred region of a `width`x`height` image that has the aspect ratio of `out_width`x`out_height`:
/// `(left, top, width, height)` in (fractional) source pixels.
pub(crate) fn centre_crop(width: u32, height: u32, out_width: u32, out_height: u32) -> (f64, f64, f64, f64) {
    let (w, h) = (f64::from(width), f64::from(height));
    let (ow, oh) = (f64::from(out_width), f64::from(out_height));
    if u64::from(width) * u64::from(out_height) > u64::from(height) * u64::from(out_width) {
        let crop_width = h * ow / oh;
        ((w - crop_width) / 2.0, 0.0, crop_width, h)
    } else {
        let crop_height = w * oh / ow;
        (0.0, (h - crop_height) / 2.0, w, crop_height)
    }
}

/// The smallest decoded size (stored frame) from which a variant of stored-frame size `out` can be made without
/// enlarging: the output itself for `Contain`/`Fill`, the cover-scaled whole image for `Cover`.
pub(crate) fn needed_source(width: u32, height: u32, out: (u32, u32), fit: Fit) -> (f64, f64) {
    let (ow, oh) = (f64::from(out.0), f64::from(out.1));
    match fit {
        Fit::Contain | Fit::Fill => (ow, oh),
        Fit::Cover => {
            let (w, h) = (f64::from(width), f64::from(height));
            let scale = (ow / w).max(oh / h);
            (w * scale, h * scale)
        }
    }
}

/// The largest JPEG DCT-domain shrink (8, 4, 2 or 1) whose decoded image, `ceil(side / shrink)`, still covers
/// every needed size. A tiny tolerance absorbs floating-point noise in the needs.
pub(crate) fn jpeg_shrink(width: u32, height: u32, needs: &[(f64, f64)]) -> u32 {
    [8u32, 4, 2]
        .into_iter()
        .find(|&shrink| {
            let (dw, dh) = (f64::from(width.div_ceil(shrink)), f64::from(height.div_ceil(shrink)));
            needs.iter().all(|&(nw, nh)| dw + 1e-6 >= nw && dh + 1e-6 >= nh)
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use sluice_core::OutputFormat;

    use super::*;

    fn spec(width: u32, height: u32, fit: Fit) -> VariantSpec {
        VariantSpec { width, height, fit, format: OutputFormat::Jpeg, quality: 80 }
    }

    #[test]
    fn contain_keeps_ratio_and_never_enlarges() {
        assert_eq!(output_size(4000, 3000, &spec(1024, 1024, Fit::Contain)), (1024, 768));
        assert_eq!(output_size(3000, 4000, &spec(1024, 1024, Fit::Contain)), (768, 1024));
        assert_eq!(output_size(300, 200, &spec(1024, 1024, Fit::Contain)), (300, 200));
        assert_eq!(output_size(1024, 10, &spec(1024, 1024, Fit::Contain)), (1024, 10));
        assert_eq!(output_size(6000, 4000, &spec(256, 100, Fit::Contain)), (150, 100));
        // Extreme panoramas keep at least one pixel.
        assert_eq!(output_size(60000, 1, &spec(256, 256, Fit::Contain)), (256, 1));
        assert_eq!(output_size(1, 60000, &spec(256, 256, Fit::Contain)), (1, 256));
    }

    #[test]
    fn cover_and_fill_give_the_box() {
        assert_eq!(output_size(4000, 3000, &spec(256, 256, Fit::Cover)), (256, 256));
        assert_eq!(output_size(10, 10, &spec(256, 100, Fit::Fill)), (256, 100));
    }

    #[test]
    fn centre_crop_matches_the_box_ratio() {
        assert_eq!(centre_crop(400, 300, 100, 100), (50.0, 0.0, 300.0, 300.0));
        assert_eq!(centre_crop(300, 400, 100, 100), (0.0, 50.0, 300.0, 300.0));
        assert_eq!(centre_crop(400, 300, 200, 150), (0.0, 0.0, 400.0, 300.0));
    }

    #[test]
    fn shrink_keeps_the_decode_at_least_as_large_as_needed() {
        // 6000x4000 to 256x256 contain (256x171): 1/8 gives 750x500.
        assert_eq!(jpeg_shrink(6000, 4000, &[(256.0, 171.0)]), 8);
        // A 1024-wide variant needs 1/4 at most (1500 wide).
        assert_eq!(jpeg_shrink(6000, 4000, &[(256.0, 171.0), (1024.0, 683.0)]), 4);
        // 2000 wide needs 1/2 (3000); 3001 wide needs the full image.
        assert_eq!(jpeg_shrink(6000, 4000, &[(2000.0, 1333.0)]), 2);
        assert_eq!(jpeg_shrink(6000, 4000, &[(3001.0, 2000.0)]), 1);
        // Cover needs the whole image scaled to cover the box: 256x256 from 6000x4000 needs 384x256.
        let need = needed_source(6000, 4000, (256, 256), Fit::Cover);
        assert_eq!(need, (384.0, 256.0));
        assert_eq!(jpeg_shrink(6000, 4000, &[need]), 8);
        let need = needed_source(6000, 4000, (600, 600), Fit::Cover);
        assert_eq!(jpeg_shrink(6000, 4000, &[need]), 4);
        // Odd sizes round up: 1001 / 8 = 126 (ceil) covers 126.
        assert_eq!(jpeg_shrink(1001, 1001, &[(126.0, 126.0)]), 8);
        assert_eq!(jpeg_shrink(1001, 1001, &[(127.0, 126.0)]), 4);
        // No variants: the smallest decode.
        assert_eq!(jpeg_shrink(100, 100, &[]), 8);
    }
}
