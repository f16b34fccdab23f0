//! Pure, synchronous conversion of uploaded images into named variants.
//!
//! This crate owns everything between the bytes of an upload and the bytes of its variants: detecting the type
//! from magic bytes ([`MediaType::sniff_image`]), reading and checking the header before any decoding
//! ([`probe`], [`ConvertLimits`]), decoding once (JPEG with DCT-domain shrink-on-load), applying the Exif
//! orientation, fitting each [`VariantSpec`] (`cover`, `contain`, `fill`) with a Lanczos3 resize from
//! `fast_image_resize`, and encoding JPEG, PNG or lossy WebP with no metadata ([`convert_image`],
//! [`EncodedVariant`]). Failures are [`ConvertError`]s with stable codes. Its section of the configuration is
//! [`ConvertSettings`].
//!
//! It must not depend on tokio, object storage, HTTP or mail crates: callers run it on a blocking thread (the
//! server's convert stage) or directly (the `sluice convert` CLI), and it never does I/O of its own.
//!
//! JPEG is decoded and encoded in pure Rust by default (`jpeg-decoder` for 1/2 and 1/4 scale decodes, zune-jpeg
//! for full-size ones, `jpeg-encoder`); the `turbojpeg` cargo feature uses libjpeg-turbo instead (built from
//! source with cmake and nasm), faster at full size and at encoding, with the pure-Rust decoders kept for what
//! it does not take. In both builds a 1/8 scale decode reads the DC coefficients alone, stepping over the rest,
//! faster than either.
//!
//! Hostile input is expected: the declared pixel count is checked from the header before a decoder allocates,
//! decoders run under `image::Limits`, and nothing here panics on malformed data.

use std::collections::BTreeMap;

use image::metadata::Orientation;
use serde::Deserialize;
use sluice_core::{Fit, MediaType, VariantName, VariantSpec};

mod decode;
mod encode;
mod error;
mod geometry;
mod header;
mod icc;
mod jpeg_dc;
mod pixels;
mod scratch;
#[cfg(feature = "turbojpeg")]
mod turbo;

use pixels::Pixels;

pub use error::{BoxError, ConvertError};
pub use geometry::output_size;
pub use scratch::release_thread_buffers;

/// The default for [`ConvertSettings::max_pixels`]: 50 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// Raised whenever the same input and settings start giving different outputs (2: colour profiles kept), so
/// `sluice convert` redoes results that an earlier converter made.
pub const OUTPUT_REVISION: u32 = 2;

/// Settings of the `[convert]` configuration section: the named variants and the size limit.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvertSettings {
    /// The configured variants, by name (`[convert.variants.thumb]`, ...).
    pub variants: BTreeMap<VariantName, VariantSpec>,
    /// The largest image accepted, in pixels (width times height, as declared in the header).
    pub max_pixels: u64,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        Self { variants: BTreeMap::new(), max_pixels: DEFAULT_MAX_PIXELS }
    }
}

impl ConvertSettings {
    /// The limits these settings impose on one conversion.
    pub fn limits(&self) -> ConvertLimits {
        ConvertLimits { max_pixels: self.max_pixels }
    }

    /// Every configured variant, in name order, in the form [`convert_image`] takes.
    pub fn all_variants(&self) -> Vec<(VariantName, VariantSpec)> {
        self.variants.iter().map(|(name, spec)| (name.clone(), *spec)).collect()
    }
}

/// The resource limits of one conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvertLimits {
    /// The largest image accepted, in pixels, judged from the header before decoding.
    pub max_pixels: u64,
}

impl Default for ConvertLimits {
    fn default() -> Self {
        Self { max_pixels: DEFAULT_MAX_PIXELS }
    }
}

impl ConvertLimits {
    /// The most memory a decoder may allocate: enough for an image of `max_pixels` at 16 bits per RGBA sample,
    /// plus 64 MiB for decoder state. Peak memory of a whole conversion stays within about twice this.
    pub fn max_alloc_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
}

/// What the header of an image says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The type, from magic bytes.
    pub media: MediaType,
    /// Width as displayed (after the Exif orientation; 90-degree turns swap the stored sides).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
}

/// One encoded variant of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedVariant {
    /// The variant's name.
    pub name: VariantName,
    /// The type written ([`sluice_core::OutputFormat::resolve`] of the spec's format and the input type).
    pub media: MediaType,
    /// Pixel width of the output.
    pub width: u32,
    /// Pixel height of the output.
    pub height: u32,
    /// The encoded file, without metadata.
    pub bytes: Vec<u8>,
}

/// The longest side converted, in pixels: the most JPEG and GIF can declare. Past it a resize's filter tables
/// (which grow with the side, not with the pixel count) would take gigabytes for a thin strip of few pixels.
pub const MAX_SIDE: u32 = 65_535;

/// Sniffs the type and reads the header, rejecting other types and oversized images before any decoding.
fn checked_header(input: &[u8], limits: &ConvertLimits) -> Result<header::Header, ConvertError> {
    let media = MediaType::sniff_image(input).ok_or(ConvertError::UnsupportedType)?;
    let header = header::read(input, media).map_err(|source| ConvertError::Undecodable { media, source })?;
    if header.width > MAX_SIDE || header.height > MAX_SIDE {
        return Err(ConvertError::SideTooLong { width: header.width, height: header.height, max_side: MAX_SIDE });
    }
    if u64::from(header.width) * u64::from(header.height) > limits.max_pixels {
        return Err(ConvertError::TooManyPixels {
            width: header.width,
            height: header.height,
            max_pixels: limits.max_pixels,
        });
    }
    if let Some(frame) = header.jpeg {
        header::check_jpeg_data(input, header.width, header.height, frame)
            .map_err(|source| ConvertError::Undecodable { media, source })?;
    }
    Ok(header)
}

/// Whether an orientation turns the image by 90 degrees (so the displayed sides are the stored ones swapped).
fn is_transposed(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

fn swap_if(size: (u32, u32), swap: bool) -> (u32, u32) {
    if swap { (size.1, size.0) } else { size }
}

/// Reads only the header of `input`: its type from magic bytes and its displayed dimensions. Rejects anything
/// but JPEG, PNG, GIF and WebP (`unsupported_type`) and images over `limits.max_pixels`
/// (`too_many_pixels`) without decoding any pixels.
pub fn probe(input: &[u8], limits: &ConvertLimits) -> Result<ImageInfo, ConvertError> {
    let header = checked_header(input, limits)?;
    let orientation = match (header.media, header.jpeg) {
        (_, Some(frame)) => frame.orientation.unwrap_or(Orientation::NoTransforms),
        (MediaType::Gif, None) => Orientation::NoTransforms,
        (media, None) => {
            let input = decode::decodable(input, media);
            let mut decoder = decode::open_image(&input, media, limits)?;
            decode::decoder_orientation(&mut decoder)
        }
    };
    let (width, height) = swap_if((header.width, header.height), is_transposed(orientation));
    Ok(ImageInfo { media: header.media, width, height })
}

/// Converts `input` into every variant in `variants`, in order, from a single decode.
///
/// The header is checked first (as in [`probe`]); a JPEG is then decoded at 1/2, 1/4 or 1/8 scale when the
/// smaller decode is still at least twice the size every variant needs (so the final Lanczos3 step does real
/// filtering and nothing is enlarged). Variants are made largest first, each from the smallest larger output
/// that still leaves a 2x reduction (a cascade, as libvips' thumbnailer does). The Exif orientation is applied, so
/// outputs are upright and carry no metadata. GIFs contribute their first frame. Outputs in JPEG are composited
/// on white. With no variants, only the header is checked.
pub fn convert_image(
    input: &[u8],
    variants: &[(VariantName, VariantSpec)],
    limits: &ConvertLimits,
) -> Result<Vec<EncodedVariant>, ConvertError> {
    convert_with(input, variants, limits, JpegCodec::BUILT_IN)
}

/// The JPEG codecs a conversion can use; other formats always go through `image` and `webp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JpegCodec {
    /// `jpeg-decoder` (DCT-scaled decodes), zune-jpeg (full-size decodes) and `jpeg-encoder`: Rust and
    /// nothing else to build.
    #[cfg_attr(
        all(feature = "turbojpeg", not(test)),
        expect(dead_code, reason = "with libjpeg-turbo built in, only the tests choose the pure-Rust codec")
    )]
    PureRust,
    /// libjpeg-turbo (the `turbojpeg` feature), leaving what it does not do to the pure-Rust decoders.
    #[cfg(feature = "turbojpeg")]
    Turbo,
}

impl JpegCodec {
    /// The fastest codec this build has.
    #[cfg(feature = "turbojpeg")]
    pub(crate) const BUILT_IN: Self = Self::Turbo;
    /// The fastest codec this build has.
    #[cfg(not(feature = "turbojpeg"))]
    pub(crate) const BUILT_IN: Self = Self::PureRust;
}

/// [`convert_image`] with the JPEG codec chosen (tests compare the codecs).
pub(crate) fn convert_with(
    input: &[u8],
    variants: &[(VariantName, VariantSpec)],
    limits: &ConvertLimits,
    codec: JpegCodec,
) -> Result<Vec<EncodedVariant>, ConvertError> {
    let header = checked_header(input, limits)?;
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let media = header.media;
    let (pixels, orientation, profile) = match header.jpeg {
        Some(frame) => {
            let orientation = frame.orientation.unwrap_or(Orientation::NoTransforms);
            let scale = jpeg_scale_for(&header, orientation, variants);
            let pixels = decode::decode_jpeg(input, &header, frame, scale, limits, codec)?;
            (pixels, orientation, header::jpeg_icc_profile(input))
        }
        None => decode::decode_with_image(input, &header, limits)?,
    };
    let profile = profile.and_then(icc::IccProfile::new);
    let pixels = pixels.drop_opaque_alpha();
    let displayed = swap_if((header.width, header.height), is_transposed(orientation));
    let made = scratch::with_resizer(|resizer| {
        let source = Source { pixels: &pixels, displayed, orientation, media, profile: profile.as_ref() };
        make_variants(&source, variants, codec, resizer)
    });
    scratch::recycle(pixels.data);
    made
}

/// A decoded input, as the variants are made from it.
struct Source<'a> {
    /// The pixels in the stored frame, perhaps shrunk on load.
    pixels: &'a Pixels,
    /// The image's size as displayed (after the orientation).
    displayed: (u32, u32),
    /// The Exif orientation.
    orientation: Orientation,
    /// The input's type (outputs that keep the format take it).
    media: MediaType,
    /// The input's colour profile, carried into the outputs it fits.
    profile: Option<&'a icc::IccProfile>,
}

/// Resizes, orients and encodes every variant from `source`, largest first.
fn make_variants(
    source: &Source<'_>,
    variants: &[(VariantName, VariantSpec)],
    codec: JpegCodec,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<Vec<EncodedVariant>, ConvertError> {
    let Source { pixels, displayed, orientation, media, profile } = *source;
    let transposed = is_transposed(orientation);
    let (width, height) = displayed;
    // Largest variants first, so that each smaller one can be made from a larger output (see `pick_source`).
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by_key(|&index| {
        let (w, h) = output_size(width, height, &variants[index].1);
        std::cmp::Reverse(u64::from(w) * u64::from(h))
    });
    let mut made: Vec<Option<EncodedVariant>> = vec![None; variants.len()];
    let mut intermediates: Vec<Pixels> = Vec::new();
    for index in order {
        let (name, spec) = &variants[index];
        let internal = |source: BoxError| ConvertError::Internal { variant: name.clone(), source };
        let (out_width, out_height) = output_size(width, height, spec);
        // Resize in the stored frame (cheaper: only the small output is turned), then orient.
        let (stored_width, stored_height) = swap_if((out_width, out_height), transposed);
        let source = pick_source(pixels, &intermediates, (stored_width, stored_height), spec.fit);
        let crop = (spec.fit == Fit::Cover)
            .then(|| geometry::centre_crop(source.width, source.height, stored_width, stored_height));
        let resized = source.resized(stored_width, stored_height, crop, resizer).map_err(internal)?;
        let oriented = resized.oriented(orientation).map_err(internal)?;
        if (oriented.width, oriented.height) != (out_width, out_height) {
            return Err(internal(error::Reason::boxed(format!(
                "made {}x{} instead of {out_width}x{out_height}",
                oriented.width, oriented.height
            ))));
        }
        let out_media = spec.format.resolve(media);
        let bytes = encode::encode(&oriented, out_media, spec.quality, codec, profile)
            .map_err(|source| ConvertError::Encode { variant: name.clone(), media: out_media, source })?;
        drop(oriented);
        if spec.fit == Fit::Contain {
            // A contain output shows the whole image: a source for the smaller variants.
            intermediates.push(resized);
        }
        made[index] =
            Some(EncodedVariant { name: name.clone(), media: out_media, width: out_width, height: out_height, bytes });
    }
    Ok(made.into_iter().flatten().collect())
}

/// The image a variant of stored-frame size `out` is resized from: the smallest already-made whole-image output
/// that is still [`SHRINK_HEADROOM`] times what the variant needs, else the decoded image. A 256 px thumbnail is
/// then made from the 1024 px variant instead of the 24 MP decode: the same Lanczos3 filter over a quarter of
/// the rows and columns, with at least a 2x reduction left (the rule of the JPEG shrink-on-load, and libvips').
fn pick_source<'a>(decoded: &'a Pixels, intermediates: &'a [Pixels], out: (u32, u32), fit: Fit) -> &'a Pixels {
    intermediates
        .iter()
        .filter(|candidate| {
            let (need_width, need_height) = geometry::needed_source(candidate.width, candidate.height, out, fit);
            // One pixel of slack: a contain output's sides are rounded, so 2048x1365 serves 1024x683.
            f64::from(candidate.width) + 1.0 >= need_width * SHRINK_HEADROOM
                && f64::from(candidate.height) + 1.0 >= need_height * SHRINK_HEADROOM
        })
        .min_by_key(|candidate| u64::from(candidate.width) * u64::from(candidate.height))
        .unwrap_or(decoded)
}

/// How much larger than a variant's needed size a shrunk JPEG decode must stay. DCT-domain scaling is a crude
/// block filter (it aliases and over-sharpens); leaving at least a 2x reduction to the Lanczos3 resize keeps
/// outputs as clean as a full decode, the same rule libvips' thumbnailer follows.
const SHRINK_HEADROOM: f64 = 2.0;

/// How a JPEG is decoded for a set of variants: DCT scaling, and whether chroma may be upsampled the fast way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JpegScale {
    /// The shrink-on-load factor: 1, 2, 4 or 8.
    pub shrink: u32,
    /// Every variant is at most half the decoded size: the decode's chroma upsampling is filtered away by the
    /// resize anyway, so libjpeg-turbo's faster (merged) upsampling costs nothing visible.
    pub fast_upsample: bool,
}

/// The JPEG shrink-on-load factor for these variants: the largest whose decode is still [`SHRINK_HEADROOM`]
/// times the size every variant needs.
fn jpeg_scale_for(
    header: &header::Header,
    orientation: Orientation,
    variants: &[(VariantName, VariantSpec)],
) -> JpegScale {
    let transposed = is_transposed(orientation);
    let (width, height) = swap_if((header.width, header.height), transposed);
    let needs: Vec<(f64, f64)> = variants
        .iter()
        .map(|(_, spec)| {
            let stored_out = swap_if(output_size(width, height, spec), transposed);
            let (need_width, need_height) = geometry::needed_source(header.width, header.height, stored_out, spec.fit);
            (need_width * SHRINK_HEADROOM, need_height * SHRINK_HEADROOM)
        })
        .collect();
    let shrink = geometry::jpeg_shrink(header.width, header.height, &needs);
    let fast_upsample = shrink > 1
        || needs.iter().all(|&(need_width, need_height)| {
            f64::from(header.width) + 1e-6 >= need_width && f64::from(header.height) + 1e-6 >= need_height
        });
    JpegScale { shrink, fast_upsample }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    fn grey(width: u32, height: u32) -> Pixels {
        let len = usize::try_from(width * height).unwrap();
        Pixels::new(Layout::L8, width, height, vec![128; len]).unwrap()
    }

    #[test]
    fn smaller_variants_come_from_the_smallest_output_with_2x_headroom() {
        let decoded = grey(6000, 4000);
        let made = [grey(2048, 1365), grey(1024, 683)];
        // 256x171 from the 1024 output (4x), 1024x683 from the 2048 output (2x, rounding forgiven).
        assert_eq!(pick_source(&decoded, &made, (256, 171), Fit::Contain).width, 1024);
        assert_eq!(pick_source(&decoded, &made, (1024, 683), Fit::Contain).width, 2048);
        // 1500 wide needs 3000: only the decode has that.
        assert_eq!(pick_source(&decoded, &made, (1500, 1000), Fit::Contain).width, 6000);
        // Cover needs the whole image scaled to cover the box: 600x600 needs 900x600, twice is 1800x1200.
        assert_eq!(pick_source(&decoded, &made, (600, 600), Fit::Cover).width, 2048);
        assert_eq!(pick_source(&decoded, &made, (700, 700), Fit::Cover).width, 6000);
    }

    #[test]
    fn jpeg_scale_keeps_2x_headroom_and_upsamples_fast_only_when_the_resize_halves() {
        let header = |width, height| header::Header { media: MediaType::Jpeg, width, height, jpeg: None };
        let contain = |side| {
            let spec = VariantSpec {
                width: side,
                height: side,
                fit: Fit::Contain,
                format: sluice_core::OutputFormat::Jpeg,
                quality: 80,
            };
            (VariantName::try_from(format!("v{side}")).unwrap(), spec)
        };
        let scale = |width, height, sides: &[u32]| {
            let variants: Vec<_> = sides.iter().map(|&side| contain(side)).collect();
            jpeg_scale_for(&header(width, height), Orientation::NoTransforms, &variants)
        };
        // Task A on a 24 MP photo: the 2048 variant needs a full decode, but it is less than half of it.
        assert_eq!(scale(6000, 4000, &[2048, 1024, 256]), JpegScale { shrink: 1, fast_upsample: true });
        // A variant more than half the size: full decode with smooth upsampling.
        assert_eq!(scale(6000, 4000, &[4000, 256]), JpegScale { shrink: 1, fast_upsample: false });
        assert_eq!(scale(6000, 4000, &[1024]), JpegScale { shrink: 2, fast_upsample: true });
        assert_eq!(scale(6000, 4000, &[256]), JpegScale { shrink: 8, fast_upsample: true });
        // Never enlarging: a small photo's variant is the photo itself.
        assert_eq!(scale(800, 600, &[1024]), JpegScale { shrink: 1, fast_upsample: false });
    }
}
