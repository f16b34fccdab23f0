//! Header readers: the type from magic bytes, the declared dimensions and, for JPEG, the Exif orientation,
//! read with bounded, panic-free parsers before any codec sees the data.

use image::metadata::Orientation;
use sluice_core::MediaType;

use crate::error::{BoxError, Reason};

/// What the header of an image declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Detected type.
    pub media: MediaType,
    /// Stored width (before orientation).
    pub width: u32,
    /// Stored height (before orientation).
    pub height: u32,
    /// The JPEG frame, for JPEG inputs.
    pub jpeg: Option<JpegFrame>,
}

/// The parts of a JPEG header the decoder choice depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JpegFrame {
    /// Sample precision in bits (8 for ordinary photos).
    pub precision: u8,
    /// Exif orientation from the first APP1 Exif segment, if any.
    pub orientation: Option<Orientation>,
    /// Whether the data is arithmetic-coded (not Huffman).
    pub arithmetic: bool,
}

/// Reads the header of `input`, whose type is `media`.
pub(crate) fn read(input: &[u8], media: MediaType) -> Result<Header, BoxError> {
    let (width, height, jpeg) = match media {
        MediaType::Jpeg => {
            let (width, height, frame) = jpeg(input)?;
            (width, height, Some(frame))
        }
        MediaType::Png => {
            let (width, height) = png(input)?;
            (width, height, None)
        }
        MediaType::Gif => {
            let (width, height) = gif(input)?;
            (width, height, None)
        }
        MediaType::Webp => {
            let (width, height) = webp(input)?;
            (width, height, None)
        }
        _ => return Err(Reason::boxed("not an image type")),
    };
    if width == 0 || height == 0 {
        return Err(Reason::boxed(format!("the header declares an empty image ({width}x{height})")));
    }
    Ok(Header { media, width, height, jpeg })
}

/// The big-endian 16-bit number at `at`, if the data is long enough.
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn le16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn le24(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(3)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0]))
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn truncated() -> BoxError {
    Reason::boxed("the header is truncated")
}

/// Walks the JPEG marker segments up to the first scan, the way decoders do (bytes between segments are
/// skipped, fill bytes ignored), handing each segment's marker and payload to `visit`.
fn jpeg_segments<'a>(
    input: &'a [u8],
    mut visit: impl FnMut(u8, &'a [u8]) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    let mut pos = 2; // after SOI
    loop {
        // Skip anything up to the next 0xFF, then fill bytes.
        while matches!(input.get(pos), Some(&byte) if byte != 0xFF) {
            pos += 1;
        }
        while input.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = input.get(pos) else { break };
        pos += 1;
        match marker {
            // Stuffed zero, SOI, TEM, RSTn: no length.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            // EOI or start of scan: the headers are over.
            0xD9 | 0xDA => break,
            _ => {}
        }
        let Some(length) = be16(input, pos) else { break };
        let length = usize::from(length);
        if length < 2 {
            return Err(Reason::boxed("a JPEG segment has an invalid length"));
        }
        let Some(payload) = input.get(pos + 2..pos + length) else { break };
        visit(marker, payload)?;
        pos += length;
    }
    Ok(())
}

/// The first frame header and the first Exif orientation of a JPEG.
fn jpeg(input: &[u8]) -> Result<(u32, u32, JpegFrame), BoxError> {
    let mut frame: Option<(u32, u32, u8)> = None;
    let mut orientation = None;
    let mut arithmetic = false;
    jpeg_segments(input, |marker, payload| {
        match marker {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF if frame.is_none() => {
                arithmetic = marker >= 0xC9;
                let (Some(&precision), Some(height), Some(width)) =
                    (payload.first(), be16(payload, 1), be16(payload, 3))
                else {
                    return Err(Reason::boxed("the JPEG frame header is too short"));
                };
                frame = Some((u32::from(width), u32::from(height), precision));
            }
            0xE1 if orientation.is_none() => {
                if let Some(tiff) = payload.strip_prefix(b"Exif\0\0") {
                    orientation = Orientation::from_exif_chunk(tiff);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    let (width, height, precision) =
        frame.ok_or_else(|| Reason::boxed("no JPEG frame header before the image data"))?;
    Ok((width, height, JpegFrame { precision, orientation, arithmetic }))
}

/// Refuses a JPEG whose data cannot be decoded in bounded time and space whatever its header says: one too small
/// to hold its declared size, or one with too many scans. Checked once the declared size is within limits.
pub(crate) fn check_jpeg_data(input: &[u8], width: u32, height: u32, frame: JpegFrame) -> Result<(), BoxError> {
    // Huffman coding spends at least one bit on every 8x8 block (its DC value), so a file smaller than that is
    // cut short, however its end looks: decoders would fill the missing part with grey at full size.
    let blocks = u64::from(width.div_ceil(8)) * u64::from(height.div_ceil(8));
    let bits = u64::try_from(input.len()).unwrap_or(u64::MAX).saturating_mul(8);
    if !frame.arithmetic && bits < blocks {
        return Err(Reason::boxed(format!(
            "the JPEG is cut short: {} bytes cannot hold a {width}x{height} image",
            input.len()
        )));
    }
    let scans = jpeg_scans(input);
    if scans > MAX_JPEG_SCANS {
        return Err(Reason::boxed(format!(
            "the JPEG has {scans} scans, more than the {MAX_JPEG_SCANS} decoded; encoders write about 10"
        )));
    }
    Ok(())
}

/// Most scans a JPEG may have. Each scan of a progressive JPEG is a pass over the whole image, so a small file of
/// thousands of near-empty scans costs minutes of CPU (a decoder cannot be stopped midway); encoders write
/// about 10, and a handful of tools a few dozen.
const MAX_JPEG_SCANS: usize = 256;

/// How many scans a JPEG has: its start-of-scan markers. In entropy-coded data every 0xFF byte is followed by
/// 0x00 or a restart marker, so `FF DA` there is always a real marker.
fn jpeg_scans(input: &[u8]) -> usize {
    input.windows(2).filter(|pair| *pair == [0xFF, 0xDA]).count()
}

/// The ICC profile a JPEG embeds: its APP2 `ICC_PROFILE` chunks joined in their sequence order. None when
/// there is none, or when the chunks do not make one whole profile (missing, repeated or out-of-range numbers).
pub(crate) fn jpeg_icc_profile(input: &[u8]) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    jpeg_segments(input, |marker, payload| {
        if marker == 0xE2
            && let Some(rest) = payload.strip_prefix(b"ICC_PROFILE\0")
            && let [sequence, count, data @ ..] = rest
        {
            chunks.push((*sequence, *count, data));
        }
        Ok(())
    })
    .ok()?;
    let count = chunks.first()?.1;
    chunks.sort_by_key(|&(sequence, _, _)| sequence);
    let whole = chunks.len() == usize::from(count)
        && chunks.iter().enumerate().all(|(at, &(sequence, of, _))| usize::from(sequence) == at + 1 && of == count);
    whole.then(|| chunks.iter().flat_map(|&(_, _, data)| data.iter().copied()).collect())
}

/// The `iCCP` chunk of a PNG, if one comes before the image data: the byte range of the whole chunk (length,
/// type, data and CRC) and its compressed profile.
pub(crate) fn png_iccp(input: &[u8]) -> Option<(std::ops::Range<usize>, &[u8])> {
    let mut pos = 8; // after the signature
    loop {
        let length = usize::try_from(be32(input, pos)?).ok()?;
        let data_start = pos.checked_add(8)?;
        let data_end = data_start.checked_add(length)?;
        match input.get(pos + 4..data_start)? {
            b"IDAT" | b"IEND" => return None,
            b"iCCP" => {
                let data = input.get(data_start..data_end)?;
                // A name of 1 to 79 bytes, its NUL, the compression method, then the zlib stream.
                let name_end = data.iter().position(|&byte| byte == 0)?;
                return Some((pos..data_end.checked_add(4)?, data.get(name_end + 2..)?));
            }
            _ => pos = data_end.checked_add(4)?,
        }
    }
}

/// The IHDR chunk, which must come first.
fn png(input: &[u8]) -> Result<(u32, u32), BoxError> {
    if input.get(12..16) != Some(b"IHDR") {
        return Err(Reason::boxed("the PNG does not start with an IHDR chunk"));
    }
    let width = be32(input, 16).ok_or_else(truncated)?;
    let height = be32(input, 20).ok_or_else(truncated)?;
    Ok((width, height))
}

/// The logical screen descriptor: the canvas every frame is drawn on.
fn gif(input: &[u8]) -> Result<(u32, u32), BoxError> {
    let width = le16(input, 6).ok_or_else(truncated)?;
    let height = le16(input, 8).ok_or_else(truncated)?;
    Ok((u32::from(width), u32::from(height)))
}

/// The first chunk: `VP8X` (canvas size), `VP8 ` (lossy key frame) or `VP8L` (lossless).
fn webp(input: &[u8]) -> Result<(u32, u32), BoxError> {
    const PAYLOAD: usize = 20;
    match input.get(12..16) {
        Some(b"VP8X") => {
            let width = le24(input, PAYLOAD + 4).ok_or_else(truncated)? + 1;
            let height = le24(input, PAYLOAD + 7).ok_or_else(truncated)? + 1;
            Ok((width, height))
        }
        Some(b"VP8 ") => {
            if input.get(PAYLOAD + 3..PAYLOAD + 6) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err(Reason::boxed("the WebP key frame has no start code"));
            }
            let width = le16(input, PAYLOAD + 6).ok_or_else(truncated)? & 0x3FFF;
            let height = le16(input, PAYLOAD + 8).ok_or_else(truncated)? & 0x3FFF;
            Ok((u32::from(width), u32::from(height)))
        }
        Some(b"VP8L") => {
            if input.get(PAYLOAD) != Some(&0x2F) {
                return Err(Reason::boxed("the lossless WebP has no signature"));
            }
            let bits = le32(input, PAYLOAD + 1).ok_or_else(truncated)?;
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => Err(Reason::boxed("the WebP has no VP8X, VP8 or VP8L chunk first")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_walks_segments_and_reads_orientation() {
        // SOI, APP1 Exif (big-endian TIFF, one IFD entry: orientation 6), SOF0 100x50 3 components, SOS.
        let mut data = vec![0xFF, 0xD8];
        let tiff: Vec<u8> = [
            &b"MM\0\x2A"[..],
            &[0, 0, 0, 8],       // IFD0 offset
            &[0, 1],             // one entry
            &[0x01, 0x12, 0, 3], // orientation, SHORT
            &[0, 0, 0, 1],       // count 1
            &[0, 6, 0, 0],       // value 6
            &[0, 0, 0, 0],       // next IFD
        ]
        .concat();
        let app1_len = (2 + 6 + tiff.len()) as u16;
        data.extend_from_slice(&[0xFF, 0xE1]);
        data.extend_from_slice(&app1_len.to_be_bytes());
        data.extend_from_slice(b"Exif\0\0");
        data.extend_from_slice(&tiff);
        data.extend_from_slice(&[0x12, 0x34]); // junk between segments is skipped
        data.extend_from_slice(&[0xFF, 0xFF, 0xC0, 0, 17, 8, 0, 50, 0, 100, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        data.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        let header = read(&data, MediaType::Jpeg).map_err(|e| e.to_string());
        let expected = JpegFrame { precision: 8, orientation: Some(Orientation::Rotate90), arithmetic: false };
        assert_eq!(header, Ok(Header { media: MediaType::Jpeg, width: 100, height: 50, jpeg: Some(expected) }));
    }

    #[test]
    fn jpegs_with_too_many_scans_are_refused_from_the_header() {
        // SOF2 (progressive) 16x16 grey, then scans that each carry one byte of data.
        let mut data = vec![0xFF, 0xD8, 0xFF, 0xC2, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0];
        let scan = [0xFF, 0xDA, 0, 8, 1, 1, 0, 1, 63, 0x10, 0x00];
        for _ in 0..MAX_JPEG_SCANS {
            data.extend_from_slice(&scan);
        }
        let check = |data: &[u8]| {
            let (width, height, frame) = jpeg(data).unwrap_or_else(|error| panic!("{error}"));
            check_jpeg_data(data, width, height, frame)
        };
        let mut ended = data.clone();
        ended.extend_from_slice(&[0xFF, 0xD9]);
        assert!(check(&ended).is_ok(), "{MAX_JPEG_SCANS} scans are decoded");
        data.extend_from_slice(&scan);
        data.extend_from_slice(&[0xFF, 0xD9]);
        let refused = check(&data).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(refused.contains(&format!("{} scans", MAX_JPEG_SCANS + 1)), "{refused}");
    }

    #[test]
    fn jpegs_too_small_for_their_size_are_cut_short() {
        // A 16x16 baseline header claiming 7000x7000, then a few bytes of data: 765,625 blocks need 95,704 bytes.
        let mut data = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0x1B, 0x58, 0x1B, 0x58, 1, 1, 0x11, 0];
        data.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0x34, 0xFF, 0xD9]);
        let check = |data: &[u8]| {
            let (width, height, frame) = jpeg(data).unwrap_or_else(|error| panic!("{error}"));
            check_jpeg_data(data, width, height, frame)
        };
        let refused = check(&data).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(refused.contains("cut short") && refused.contains("7000x7000"), "{refused}");
        // The same frame with enough bytes passes the check.
        let mut whole = data[..data.len() - 2].to_vec();
        whole.resize(whole.len() + 95_704, 0);
        whole.extend_from_slice(&[0xFF, 0xD9]);
        assert!(check(&whole).is_ok());
    }

    #[test]
    fn broken_headers_are_errors_not_panics() {
        let cases: [(&[u8], MediaType); 9] = [
            (&[0xFF, 0xD8, 0xFF], MediaType::Jpeg),
            (&[0xFF, 0xD8, 0xFF, 0xC0, 0x00], MediaType::Jpeg),
            (&[0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x03, 8], MediaType::Jpeg),
            (&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01], MediaType::Jpeg),
            (&[0xFF, 0xD8, 0xFF, 0xC0, 0, 8, 8, 0, 0, 0, 5, 1], MediaType::Jpeg),
            (b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0", MediaType::Png),
            (b"GIF89a\x01", MediaType::Gif),
            (b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0", MediaType::Webp),
            (b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0\0\0\0", MediaType::Webp),
        ];
        for (data, media) in cases {
            assert!(read(data, media).is_err(), "{data:?}");
        }
        // Every prefix of a valid header is handled without panicking.
        let full = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f\x00\x00\x00\x00";
        for end in 0..full.len() {
            let _ = read(&full[..end], MediaType::Webp);
        }
    }

    #[test]
    fn webp_variants() {
        let lossless = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f\x63\xc0\x0d\x00";
        // width-1 = 0x0063 (99), height-1 = (0x000dc0 << 0) >> 14 ... computed below.
        let bits = u32::from_le_bytes([0x63, 0xc0, 0x0d, 0x00]);
        let expected = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
        let header = read(lossless, MediaType::Webp).map_err(|e| e.to_string());
        assert_eq!(header.map(|h| (h.width, h.height)), Ok(expected));
        let extended = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x2f\x75\x00\x2f\x75\x00";
        let header = read(extended, MediaType::Webp).map_err(|e| e.to_string());
        assert_eq!(header.map(|h| (h.width, h.height)), Ok((30000, 30000)));
    }
}
