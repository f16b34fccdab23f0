//! The colour profile of an input, carried into its outputs. A photo from a phone (Display P3) or a camera
//! (Adobe RGB) embeds one; an output without it is shown as sRGB, with duller or shifted colours.

use std::borrow::Cow;

use crate::pixels::Layout;

/// Largest profile carried over; larger ones (rare, and costly on every thumbnail) are dropped.
pub(crate) const MAX_PROFILE_BYTES: usize = 256 * 1024;
/// Profile data per JPEG APP2 segment: 65535 less the length field, `ICC_PROFILE\0` and the two counters.
const JPEG_CHUNK: usize = 65_519;

/// An ICC profile for RGB or grey pixels, checked enough to be worth embedding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IccProfile {
    bytes: Vec<u8>,
    grey: bool,
}

impl IccProfile {
    /// The profile in `bytes`, if it is one for RGB or grey pixels: a 128-byte header that declares the
    /// profile's own length and carries the `acsp` signature. CMYK, Lab and other profiles are refused, since
    /// outputs are RGB or grey.
    pub(crate) fn new(bytes: Vec<u8>) -> Option<Self> {
        if bytes.len() < 128 || bytes.len() > MAX_PROFILE_BYTES || bytes.get(36..40)? != b"acsp" {
            return None;
        }
        let declared = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
        if usize::try_from(declared).ok()? != bytes.len() {
            return None;
        }
        let grey = match bytes.get(16..20)? {
            b"RGB " => false,
            b"GRAY" => true,
            _ => return None,
        };
        Some(Self { bytes, grey })
    }

    /// The profile's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the profile describes pixels of `layout` (an RGB profile for RGB, a grey one for grey).
    pub(crate) fn fits(&self, layout: Layout) -> bool {
        self.grey == matches!(layout, Layout::L8 | Layout::La8)
    }
}

/// `png` without its `iCCP` chunk when that chunk inflates to more than any profile kept (a profile too large to
/// carry, or a decompression bomb: a few hundred kilobytes that inflate to the decoder's whole memory limit), so
/// the decoder never inflates it; otherwise `png` as it is.
pub(crate) fn without_oversized_png_profile(png: &[u8]) -> Cow<'_, [u8]> {
    match crate::header::png_iccp(png) {
        Some((chunk, compressed)) if fdeflate::decompress_to_vec_bounded(compressed, MAX_PROFILE_BYTES).is_err() => {
            Cow::Owned([&png[..chunk.start], &png[chunk.end..]].concat())
        }
        _ => Cow::Borrowed(png),
    }
}

/// `jpeg` (a whole JPEG from an encoder) with `profile` in APP2 `ICC_PROFILE` segments, placed after the SOI and
/// the JFIF APP0 segment if there is one.
pub(crate) fn into_jpeg(jpeg: Vec<u8>, profile: &IccProfile) -> Vec<u8> {
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        let length = jpeg.get(4..6).map_or(0, |bytes| usize::from(u16::from_be_bytes([bytes[0], bytes[1]])));
        at = (4 + length).min(jpeg.len());
    }
    let chunks: Vec<&[u8]> = profile.bytes.chunks(JPEG_CHUNK).collect();
    let count = u8::try_from(chunks.len()).unwrap_or(u8::MAX);
    let mut out = Vec::with_capacity(jpeg.len() + profile.bytes.len() + 18 * chunks.len());
    out.extend_from_slice(&jpeg[..at]);
    for (index, chunk) in chunks.iter().enumerate() {
        // 2 (length) + 12 (`ICC_PROFILE\0`) + 2 (counters) + data; at most 65535 by JPEG_CHUNK.
        let length = u16::try_from(chunk.len() + 16).unwrap_or(u16::MAX);
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.push(u8::try_from(index + 1).unwrap_or(u8::MAX));
        out.push(count);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// `webp` (a whole WebP from libwebp, `width` x `height`) with `profile` in an `ICCP` chunk. A simple file (one
/// `VP8 ` or `VP8L` chunk) gets the extended `VP8X` header that an ICC profile needs; an extended one gets its
/// ICC flag set. Anything else is returned unchanged.
pub(crate) fn into_webp(webp: Vec<u8>, profile: &IccProfile, width: u32, height: u32, alpha: bool) -> Vec<u8> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    if webp.len() < 20 || &webp[0..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return webp;
    }
    let mut iccp = chunk_header(b"ICCP", profile.bytes.len());
    iccp.extend_from_slice(&profile.bytes);
    if profile.bytes.len() % 2 == 1 {
        iccp.push(0);
    }
    let mut out = Vec::with_capacity(webp.len() + iccp.len() + 18);
    out.extend_from_slice(&webp[0..12]);
    match &webp[12..16] {
        b"VP8X" if webp.len() >= 30 => {
            out.extend_from_slice(&webp[12..30]);
            out[20] |= ICC_FLAG;
            out.extend_from_slice(&iccp);
            out.extend_from_slice(&webp[30..]);
        }
        b"VP8 " | b"VP8L" => {
            let mut vp8x = chunk_header(b"VP8X", 10);
            vp8x.push(ICC_FLAG | if alpha { ALPHA_FLAG } else { 0 });
            vp8x.extend_from_slice(&[0, 0, 0]);
            vp8x.extend_from_slice(&width.saturating_sub(1).to_le_bytes()[..3]);
            vp8x.extend_from_slice(&height.saturating_sub(1).to_le_bytes()[..3]);
            out.extend_from_slice(&vp8x);
            out.extend_from_slice(&iccp);
            out.extend_from_slice(&webp[12..]);
        }
        _ => return webp,
    }
    let riff_size = u32::try_from(out.len() - 8).unwrap_or(u32::MAX);
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out
}

/// A RIFF chunk's FourCC and little-endian size.
fn chunk_header(fourcc: &[u8; 4], size: usize) -> Vec<u8> {
    let mut header = fourcc.to_vec();
    header.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal profile header: `space` pixels, the declared length equal to the real one.
    fn profile_bytes(space: &[u8; 4], len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        bytes[0..4].copy_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        bytes[12..16].copy_from_slice(b"mntr");
        bytes[16..20].copy_from_slice(space);
        bytes[20..24].copy_from_slice(b"XYZ ");
        bytes[36..40].copy_from_slice(b"acsp");
        bytes
    }

    #[test]
    fn only_whole_rgb_and_grey_profiles_are_kept() {
        assert!(IccProfile::new(profile_bytes(b"RGB ", 300)).is_some_and(|p| p.fits(Layout::Rgb8)));
        assert!(IccProfile::new(profile_bytes(b"GRAY", 200)).is_some_and(|p| p.fits(Layout::L8)));
        assert!(IccProfile::new(profile_bytes(b"GRAY", 200)).is_some_and(|p| !p.fits(Layout::Rgba8)));
        assert!(IccProfile::new(profile_bytes(b"CMYK", 300)).is_none());
        let mut wrong_length = profile_bytes(b"RGB ", 300);
        wrong_length.truncate(299);
        assert!(IccProfile::new(wrong_length).is_none());
        let mut unsigned = profile_bytes(b"RGB ", 300);
        unsigned[36] = b'x';
        assert!(IccProfile::new(unsigned).is_none());
        assert!(IccProfile::new(profile_bytes(b"RGB ", MAX_PROFILE_BYTES + 2)).is_none());
        assert!(IccProfile::new(vec![0; 64]).is_none());
    }

    #[test]
    fn a_png_profile_that_inflates_past_the_bound_is_cut_out_before_decoding() {
        let mut small = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut small);
        image::ImageEncoder::set_icc_profile(&mut encoder, profile_bytes(b"RGB ", 3000)).unwrap();
        image::ImageEncoder::write_image(encoder, &[7; 4 * 3 * 3], 4, 3, image::ExtendedColorType::Rgb8).unwrap();
        assert!(crate::header::png_iccp(&small).is_some());
        assert!(matches!(without_oversized_png_profile(&small), Cow::Borrowed(_)), "a small profile stays");

        // 64 MiB of zeros in about 64 KiB, after IHDR (the chunk's CRC is not checked before it is cut out).
        let mut data = b"bomb\0\0".to_vec();
        data.extend_from_slice(&fdeflate::compress_to_vec(&vec![0; 64 << 20]));
        let mut chunk = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        chunk.extend_from_slice(b"iCCP");
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(&[0; 4]);
        let mut bomb = small.clone();
        let (existing, _) = crate::header::png_iccp(&small).unwrap();
        bomb.splice(existing, chunk);
        let Cow::Owned(cut) = without_oversized_png_profile(&bomb) else { panic!("the bomb was left in") };
        assert!(crate::header::png_iccp(&cut).is_none());
        let mut decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(&cut)).unwrap();
        assert_eq!(image::ImageDecoder::icc_profile(&mut decoder).unwrap(), None);
    }

    #[test]
    fn a_large_profile_is_split_over_numbered_jpeg_segments_and_read_back_whole() {
        let profile = IccProfile::new(profile_bytes(b"RGB ", 150_000)).unwrap();
        // SOI, a JFIF APP0, a stand-in for the rest of a file.
        let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2][..], &[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]].concat();
        let out = into_jpeg(jpeg, &profile);
        assert_eq!(&out[8..10], &[0xFF, 0xE2], "after SOI and APP0");
        assert_eq!(crate::header::jpeg_icc_profile(&out).as_deref(), Some(profile.bytes()));
    }
}
