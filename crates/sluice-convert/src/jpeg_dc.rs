//! A JPEG decoded at 1/8 scale from its DC coefficients alone: the fastest way from a large photo to a
//! thumbnail.
//!
//! At 1/8 scale every 8x8 block becomes one pixel, the block's mean, which is its DC coefficient: the 63 AC
//! coefficients of the block do not matter. libjpeg-turbo and `jpeg-decoder` still decode each of them and
//! run a 1x1 inverse DCT per block; here they are only stepped over, mostly one table lookup per coefficient
//! (code and value bits together). Thumbnails of large photos took about 12% less time than with
//! libjpeg-turbo's 1/8 decode, and less than half the time of `jpeg-decoder`'s. Without chroma subsampling
//! the pixels equal libjpeg-turbo's exactly; with it, libjpeg-turbo makes 2x2 chroma from four coefficients
//! where this repeats the DC: a mean difference under one level.
//!
//! Only the common case is taken: baseline or extended sequential Huffman JPEG, 8-bit samples, one scan
//! holding every component, grey or YCbCr with whole-number chroma subsampling. Anything else, and any damage
//! (truncated data, a missing restart marker, a bad code), returns `None` and the file goes to the general
//! decoders, which then name the error: this path never decides that a file is broken.

use crate::header::be16;
use crate::pixels::{Layout, Pixels};

/// Bits looked up at once when decoding a DC code.
const FAST_BITS: u32 = 9;
/// Bits looked up at once when skipping an AC coefficient (its code and its value bits).
const SKIP_BITS: u32 = 11;
/// The most blocks an MCU may hold (the JPEG standard's limit).
const MAX_BLOCKS_PER_MCU: usize = 10;

/// Decodes `input` at 1/8 of its size (sides rounded up, as libjpeg does), or `None` when it is not a JPEG
/// this decoder takes or it is damaged.
pub(crate) fn decode_eighth(input: &[u8]) -> Option<Pixels> {
    let frame = Frame::parse(input)?;
    let planes = frame.decode_planes(input)?;
    frame.assemble(&planes)
}

/// One component of the frame and the tables its scan uses.
#[derive(Clone, Copy, Debug)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant_table: usize,
    dc_table: usize,
    ac_table: usize,
}

/// What the markers before the scan say.
#[derive(Default)]
struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
    /// The DC quantiser of each table (the only element of a quantisation table that matters here).
    dc_quant: [Option<i32>; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    /// Where the entropy-coded data of the scan starts.
    scan_start: usize,
}

impl Frame {
    /// Reads markers up to the first scan; `None` for anything this decoder does not take.
    fn parse(input: &[u8]) -> Option<Self> {
        if input.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut frame = Frame::default();
        let mut adobe_transform = None;
        let mut at = 2;
        loop {
            // Markers may be preceded by any number of 0xFF fill bytes.
            while *input.get(at)? == 0xFF && *input.get(at + 1)? == 0xFF {
                at += 1;
            }
            if *input.get(at)? != 0xFF {
                return None;
            }
            let marker = *input.get(at + 1)?;
            let length = usize::from(be16(input, at + 2)?);
            let body = input.get(at + 4..(at + 2).checked_add(length)?)?;
            match marker {
                // Baseline and extended sequential, Huffman coded.
                0xC0 | 0xC1 => frame.read_frame_header(body)?,
                0xC4 => frame.read_huffman_tables(body)?,
                0xDB => frame.read_quant_tables(body)?,
                0xDD => frame.restart_interval = usize::from(be16(body, 0)?),
                0xEE if body.starts_with(b"Adobe") => adobe_transform = Some(*body.get(11)?),
                0xDA => {
                    frame.read_scan_header(body)?;
                    frame.scan_start = at + 2 + length;
                    break;
                }
                // Progressive, lossless, arithmetic coding, hierarchical: the general decoders.
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                // The end of the image, or a stray marker without a length, before any scan.
                0xD0..=0xD9 | 0x01 => return None,
                _ => {} // APPn, COM and the like
            }
            at += 2 + length;
        }
        let ids: Vec<u8> = frame.components.iter().map(|component| component.id).collect();
        let rgb = adobe_transform == Some(0) || ids == b"RGB";
        (frame.width > 0 && frame.height > 0 && !(frame.components.len() == 3 && rgb)).then_some(frame)
    }

    fn read_frame_header(&mut self, body: &[u8]) -> Option<()> {
        let (precision, count) = (*body.first()?, usize::from(*body.get(5)?));
        if precision != 8 || !self.components.is_empty() || !(count == 1 || count == 3) {
            return None;
        }
        self.height = usize::from(be16(body, 1)?);
        self.width = usize::from(be16(body, 3)?);
        for index in 0..count {
            let at = 6 + 3 * index;
            let (id, sampling, quant_table) = (*body.get(at)?, *body.get(at + 1)?, usize::from(*body.get(at + 2)?));
            let (h, v) = (usize::from(sampling >> 4), usize::from(sampling & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || quant_table > 3 {
                return None;
            }
            self.components.push(Component { id, h, v, quant_table, dc_table: 0, ac_table: 0 });
        }
        let blocks: usize = self.components.iter().map(|component| component.h * component.v).sum();
        let (h_max, v_max) = self.max_sampling();
        let whole = self.components.iter().all(|component| h_max % component.h == 0 && v_max % component.v == 0);
        // Luma at full resolution: only chroma is ever repeated (a grey image's one component always is).
        let luma_full = self.components.first().is_some_and(|luma| (luma.h, luma.v) == (h_max, v_max));
        (whole && luma_full && (count == 1 || blocks <= MAX_BLOCKS_PER_MCU)).then_some(())
    }

    fn read_huffman_tables(&mut self, mut body: &[u8]) -> Option<()> {
        while let Some(&class_and_id) = body.first() {
            let (class, id) = (class_and_id >> 4, usize::from(class_and_id & 15));
            let counts = body.get(1..17)?;
            let total: usize = counts.iter().map(|&count| usize::from(count)).sum();
            let values = body.get(17..17 + total)?;
            let table = Huffman::new(counts, values)?;
            match (class, id) {
                (0, 0..=3) => self.dc_tables[id] = Some(table),
                (1, 0..=3) => self.ac_tables[id] = Some(table),
                _ => return None,
            }
            body = &body[17 + total..];
        }
        Some(())
    }

    fn read_quant_tables(&mut self, mut body: &[u8]) -> Option<()> {
        while let Some(&precision_and_id) = body.first() {
            let (wide, id) = (precision_and_id >> 4, usize::from(precision_and_id & 15));
            let (dc, size) = match wide {
                0 => (i32::from(*body.get(1)?), 65),
                1 => (i32::from(be16(body, 1)?), 129),
                _ => return None,
            };
            *self.dc_quant.get_mut(id)? = Some(dc);
            body = body.get(size..)?;
        }
        Some(())
    }

    fn read_scan_header(&mut self, body: &[u8]) -> Option<()> {
        let count = usize::from(*body.first()?);
        // One scan with every component (interleaved, or the only one of a grey image).
        if self.components.is_empty() || count != self.components.len() {
            return None;
        }
        for index in 0..count {
            let (id, tables) = (*body.get(1 + 2 * index)?, *body.get(2 + 2 * index)?);
            let component = self.components.get_mut(index).filter(|component| component.id == id)?;
            component.dc_table = usize::from(tables >> 4);
            component.ac_table = usize::from(tables & 15);
        }
        // Spectral selection 0..63 and no successive approximation: a sequential scan.
        let tail = body.get(1 + 2 * count..4 + 2 * count)?;
        if tail != [0, 63, 0] {
            return None;
        }
        let complete = self.components.iter().all(|component| {
            self.dc_quant.get(component.quant_table).is_some_and(Option::is_some)
                && self.dc_tables.get(component.dc_table).is_some_and(Option::is_some)
                && self.ac_tables.get(component.ac_table).is_some_and(Option::is_some)
        });
        complete.then_some(())
    }

    fn max_sampling(&self) -> (usize, usize) {
        let h = self.components.iter().map(|component| component.h).max().unwrap_or(1);
        let v = self.components.iter().map(|component| component.v).max().unwrap_or(1);
        (h, v)
    }

    /// MCUs across and down, and each component's blocks per MCU; a single-component scan has one block per
    /// MCU whatever its sampling factors.
    fn mcu_grid(&self) -> (usize, usize, Vec<(usize, usize)>) {
        if let [_] = self.components.as_slice() {
            return (self.width.div_ceil(8), self.height.div_ceil(8), vec![(1, 1)]);
        }
        let (h_max, v_max) = self.max_sampling();
        let blocks = self.components.iter().map(|component| (component.h, component.v)).collect();
        (self.width.div_ceil(8 * h_max), self.height.div_ceil(8 * v_max), blocks)
    }

    /// Decodes the scan into one plane per component holding a pixel per block (MCU padding included).
    fn decode_planes(&self, input: &[u8]) -> Option<Vec<Plane>> {
        let (mcus_across, mcus_down, blocks) = self.mcu_grid();
        let mut planes: Vec<Plane> = blocks
            .iter()
            .map(|&(h, v)| {
                let width = mcus_across * h;
                Plane { width, samples: vec![0; width * mcus_down * v] }
            })
            .collect();
        let mut tables = Vec::with_capacity(self.components.len());
        for component in &self.components {
            let dc = self.dc_tables.get(component.dc_table)?.as_ref()?;
            let ac = self.ac_tables.get(component.ac_table)?.as_ref()?;
            tables.push((dc, ac, *self.dc_quant.get(component.quant_table)?.as_ref()?));
        }
        let mut bits = BitReader::new(input, self.scan_start);
        let mut predictions = [0i32; 3];
        let mut restarts = 0u8;
        let total = mcus_across * mcus_down;
        for mcu in 0..total {
            if self.restart_interval > 0 && mcu > 0 && mcu % self.restart_interval == 0 {
                bits.restart(restarts)?;
                restarts = restarts.wrapping_add(1);
                predictions = [0; 3];
            }
            let (row, column) = (mcu / mcus_across, mcu % mcus_across);
            for (index, &(h, v)) in blocks.iter().enumerate() {
                let (dc_table, ac_table, quant) = tables[index];
                let plane = &mut planes[index];
                for y in 0..v {
                    let line = (row * v + y) * plane.width + column * h;
                    for x in 0..h {
                        let difference = bits.dc_difference(dc_table)?;
                        predictions[index] = predictions[index].wrapping_add(difference);
                        bits.skip_ac(ac_table)?;
                        plane.samples[line + x] = block_mean(predictions[index], quant);
                    }
                }
            }
            // Cut short: stop at once rather than decode the rest of the image from padding.
            if !bits.within_data() {
                return None;
            }
        }
        bits.within_data().then_some(planes)
    }

    /// The 1/8-scale image from the planes: grey as is, YCbCr with chroma replicated and turned into RGB.
    fn assemble(&self, planes: &[Plane]) -> Option<Pixels> {
        let (width, height) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let out_width = u32::try_from(width).ok()?;
        let out_height = u32::try_from(height).ok()?;
        if let [grey] = planes {
            let mut data = Vec::with_capacity(width * height);
            for row in grey.samples.chunks_exact(grey.width).take(height) {
                data.extend_from_slice(row.get(..width)?);
            }
            return Pixels::new(Layout::L8, out_width, out_height, data).ok();
        }
        let [luma, blue, red] = planes else { return None };
        let (h_max, v_max) = self.max_sampling();
        let [_, cb, cr] = self.components.as_slice() else { return None };
        let (h_step, v_step) = (h_max / cb.h, v_max / cb.v);
        let (h_step_red, v_step_red) = (h_max / cr.h, v_max / cr.v);
        let mut data = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            let luma_row = luma.samples.get(y * luma.width..)?.get(..width)?;
            let blue_row = blue.samples.get(y / v_step * blue.width..)?;
            let red_row = red.samples.get(y / v_step_red * red.width..)?;
            for (x, &lum) in luma_row.iter().enumerate() {
                let (cb, cr) = (*blue_row.get(x / h_step)?, *red_row.get(x / h_step_red)?);
                data.extend_from_slice(&ycbcr_to_rgb(lum, cb, cr));
            }
        }
        Pixels::new(Layout::Rgb8, out_width, out_height, data).ok()
    }
}

/// One component at 1/8 scale: a sample per block.
struct Plane {
    width: usize,
    samples: Vec<u8>,
}

/// The pixel an 8x8 block shrinks to: its dequantised DC coefficient over 8, rounded, plus the level shift
/// (libjpeg's 1x1 inverse DCT).
fn block_mean(dc: i32, quant: i32) -> u8 {
    let mean = (i64::from(dc) * i64::from(quant) + 4) >> 3;
    (mean + 128).clamp(0, 255) as u8
}

/// JFIF's YCbCr to RGB in libjpeg's fixed point (16 fraction bits, rounded).
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const HALF: i32 = 1 << 15;
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let red = y + ((91_881 * cr + HALF) >> 16);
    let green = y + ((-22_554 * cb - 46_802 * cr + HALF) >> 16);
    let blue = y + ((116_130 * cb + HALF) >> 16);
    [red, green, blue].map(|value| value.clamp(0, 255) as u8)
}

/// A canonical Huffman table with lookup tables for short codes.
struct Huffman {
    /// By the next [`FAST_BITS`] bits: code length and symbol, or 0 when the code is longer.
    fast: Box<[u16; 1 << FAST_BITS]>,
    /// By the next [`SKIP_BITS`] bits, for an AC table: the bits of the code and its value together, and how far
    /// the coefficient index moves (0: end of block); (0, 0) when they do not fit.
    skip: Box<[(u8, u8); 1 << SKIP_BITS]>,
    /// The largest code of each length (index 1 to 16), or -1 when there is none.
    max_code: [i32; 17],
    /// Added to a code of each length to index `values`.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    /// Builds the table from the DHT counts per code length (16 of them) and the symbols; `None` when the
    /// counts overflow the code space.
    fn new(counts: &[u8], values: &[u8]) -> Option<Self> {
        let mut table = Huffman {
            fast: Box::new([0; 1 << FAST_BITS]),
            skip: Box::new([(0, 0); 1 << SKIP_BITS]),
            max_code: [-1; 17],
            offset: [0; 17],
            values: values.to_vec(),
        };
        let (mut code, mut index) = (0u32, 0usize);
        for length in 1..=16u32 {
            let count = usize::from(*counts.get(length as usize - 1)?);
            table.offset[length as usize] = i32::try_from(index).ok()? - i32::try_from(code).ok()?;
            for _ in 0..count {
                if code >= 1 << length {
                    return None; // more codes than the length allows
                }
                let symbol = *values.get(index)?;
                if length <= FAST_BITS {
                    let first = (code << (FAST_BITS - length)) as usize;
                    table.fast[first..first + (1 << (FAST_BITS - length))]
                        .fill((length << 8) as u16 | u16::from(symbol));
                }
                let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                let total = length + size;
                if total <= SKIP_BITS {
                    let advance = match (run, size) {
                        (_, 1..) => run + 1,
                        (15, 0) => 16,
                        _ => 0, // end of block
                    };
                    let first = (code << (SKIP_BITS - length)) as usize;
                    table.skip[first..first + (1 << (SKIP_BITS - length))].fill((total as u8, advance as u8));
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                table.max_code[length as usize] = i32::try_from(code).ok()? - 1;
            }
            code <<= 1;
        }
        Some(table)
    }
}

/// Reads the entropy-coded data most significant bit first, removing stuffed zero bytes. At a marker (or the
/// end of the input) it supplies zero bytes and counts them, so reading past the data is noticed afterwards.
struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
    /// Bits not consumed yet, in the top `count` bits.
    buffer: u64,
    count: u32,
    /// Zero bytes supplied past a marker or the end and not discarded.
    padding: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], position: usize) -> Self {
        Self { data, position, buffer: 0, count: 0, padding: 0 }
    }

    /// Fills the buffer to at least 57 bits.
    fn refill(&mut self) {
        // Whole bytes at once while none of the next eight is 0xFF (nearly always in compressed data).
        if let Some(chunk) = self.data.get(self.position..self.position + 8)
            && let Ok(chunk) = <[u8; 8]>::try_from(chunk)
        {
            let word = u64::from_be_bytes(chunk);
            let inverted = !word;
            let has_ff = inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080 != 0;
            if !has_ff {
                let bytes = (64 - self.count) / 8;
                self.buffer |= (word >> (64 - 8 * bytes)) << (64 - 8 * bytes - self.count);
                self.count += 8 * bytes;
                self.position += bytes as usize;
                return;
            }
        }
        while self.count <= 56 {
            let byte = match self.data.get(self.position) {
                Some(0xFF) if self.data.get(self.position + 1) == Some(&0x00) => {
                    self.position += 2;
                    0xFF
                }
                Some(0xFF) | None => {
                    self.padding += 1;
                    0
                }
                Some(&byte) => {
                    self.position += 1;
                    byte
                }
            };
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    fn peek(&self, bits: u32) -> u32 {
        (self.buffer >> (64 - bits)) as u32
    }

    fn consume(&mut self, bits: u32) {
        self.buffer <<= bits;
        self.count -= bits;
    }

    /// The next Huffman symbol; `None` for a code the table does not have.
    fn symbol(&mut self, table: &Huffman) -> Option<u8> {
        if self.count < 16 {
            self.refill();
        }
        let fast = table.fast[self.peek(FAST_BITS) as usize];
        if fast != 0 {
            self.consume(u32::from(fast >> 8));
            return Some(fast as u8);
        }
        let bits = self.peek(16);
        for length in FAST_BITS + 1..=16 {
            let code = (bits >> (16 - length)) as i32;
            if code <= table.max_code[length as usize] {
                self.consume(length);
                let index = usize::try_from(code + table.offset[length as usize]).ok()?;
                return table.values.get(index).copied();
            }
        }
        None
    }

    /// The value of the next `size` bits (1 to 16) as a signed coefficient difference (JPEG's EXTEND).
    fn signed(&mut self, size: u32) -> i32 {
        if self.count < size {
            self.refill();
        }
        let raw = self.peek(size) as i32;
        self.consume(size);
        if raw < 1 << (size - 1) { raw - (1 << size) + 1 } else { raw }
    }

    fn dc_difference(&mut self, table: &Huffman) -> Option<i32> {
        let size = u32::from(self.symbol(table)?);
        match size {
            0 => Some(0),
            1..=16 => Some(self.signed(size)),
            _ => None,
        }
    }

    /// Steps over the 63 AC coefficients of a block.
    fn skip_ac(&mut self, table: &Huffman) -> Option<()> {
        let mut index = 1;
        // The hot loop: kept in locals so that the buffer stays in registers.
        let (mut buffer, mut count) = (self.buffer, self.count);
        while index < 64 {
            if count < 32 {
                (self.buffer, self.count) = (buffer, count);
                self.refill();
                (buffer, count) = (self.buffer, self.count);
            }
            let (total, advance) = table.skip[(buffer >> (64 - SKIP_BITS)) as usize];
            if total > 0 {
                buffer <<= total;
                count -= u32::from(total);
                if advance == 0 {
                    break;
                }
                index += usize::from(advance);
                continue;
            }
            (self.buffer, self.count) = (buffer, count);
            let symbol = self.symbol(table)?;
            let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
            match (run, size) {
                (15, 0) => index += 16,
                (_, 0) => return Some(()),
                _ => {
                    if self.count < size {
                        self.refill();
                    }
                    self.consume(size);
                    index += run + 1;
                }
            }
            (buffer, count) = (self.buffer, self.count);
        }
        (self.buffer, self.count) = (buffer, count);
        Some(())
    }

    /// Whether every bit consumed was data, not padding supplied past its end.
    fn within_data(&self) -> bool {
        self.count >= 8 * self.padding
    }

    /// Ends a restart interval: checks it, then expects restart marker `number` (mod 8) where the data of the
    /// interval ends, and starts afresh after it.
    fn restart(&mut self, number: u8) -> Option<()> {
        // What is left may only be the padding bits of the interval's last byte.
        if !self.within_data() || self.count - 8 * self.padding >= 8 {
            return None;
        }
        while self.data.get(self.position) == Some(&0xFF) && self.data.get(self.position + 1) == Some(&0xFF) {
            self.position += 1;
        }
        if self.data.get(self.position..self.position + 2)? != [0xFF, 0xD0 + (number & 7)] {
            return None;
        }
        self.position += 2;
        (self.buffer, self.count, self.padding) = (0, 0, 0);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::*;

    /// A photo-like test image: smooth gradients plus a fine texture, so blocks have many AC coefficients.
    fn test_rgb(width: u16, height: u16) -> Vec<u8> {
        let mut data = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
        for y in 0..u32::from(height) {
            for x in 0..u32::from(width) {
                let texture = (x * 7 + y * 13) % 23;
                data.extend_from_slice(&[
                    ((x * 255 / u32::from(width)) + texture).min(255) as u8,
                    ((y * 255 / u32::from(height)) + texture).min(255) as u8,
                    ((((x + y) * 255) / (u32::from(width) + u32::from(height))) + texture).min(255) as u8,
                ]);
            }
        }
        data
    }

    fn encode(width: u16, height: u16, sampling: SamplingFactor, restart: u16, grey: bool) -> Vec<u8> {
        let rgb = test_rgb(width, height);
        let luma: Vec<u8> = rgb.chunks_exact(3).map(|pixel| pixel[1]).collect();
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 90);
        encoder.set_sampling_factor(sampling);
        if restart > 0 {
            encoder.set_restart_interval(restart);
        }
        if grey {
            encoder.encode(&luma, width, height, ColorType::Luma).unwrap();
        } else {
            encoder.encode(&rgb, width, height, ColorType::Rgb).unwrap();
        }
        out
    }

    /// `jpeg-decoder`'s own 1/8-scale decode: the reference.
    fn reference(input: &[u8]) -> (u16, u16, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(input);
        decoder.read_info().unwrap();
        let info = decoder.info().unwrap();
        decoder.scale(info.width.div_ceil(8), info.height.div_ceil(8)).unwrap();
        let data = decoder.decode().unwrap();
        let info = decoder.info().unwrap();
        (info.width, info.height, data)
    }

    fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(&x, &y)| f64::from(x.abs_diff(y))).sum::<f64>() / a.len() as f64
    }

    #[test]
    fn matches_a_full_decoder_at_one_eighth_for_every_subsampling_and_restart_interval() {
        let samplings = [SamplingFactor::R_4_4_4, SamplingFactor::R_4_2_2, SamplingFactor::R_4_2_0];
        for sampling in samplings {
            for restart in [0, 1, 7] {
                // Sides that are not multiples of the MCU, to exercise the padding.
                let input = encode(611, 397, sampling, restart, false);
                let pixels = decode_eighth(&input).unwrap_or_else(|| panic!("{sampling:?} restart {restart}"));
                let (width, height, expected) = reference(&input);
                assert_eq!((pixels.width, pixels.height), (u32::from(width), u32::from(height)));
                assert_eq!(pixels.layout, Layout::Rgb8);
                let difference = mean_difference(&pixels.data, &expected);
                // The reference truncates where libjpeg rounds, and interpolates subsampled chroma where a
                // fast 1/8 decode repeats it: small differences, where a decoding error makes large ones.
                let limit = if sampling == SamplingFactor::R_4_4_4 { 1.5 } else { 3.0 };
                assert!(difference < limit, "{sampling:?} restart {restart}: mean difference {difference}");
            }
        }
        let grey = encode(131, 77, SamplingFactor::R_4_4_4, 3, true);
        let pixels = decode_eighth(&grey).unwrap();
        let (_, _, expected) = reference(&grey);
        assert_eq!(pixels.layout, Layout::L8);
        assert!(mean_difference(&pixels.data, &expected) < 1.0);
    }

    #[test]
    fn damaged_or_unusual_files_are_left_to_the_general_decoders() {
        let input = encode(203, 117, SamplingFactor::R_4_2_0, 0, false);
        // Cut short: the scan runs out of data.
        assert!(decode_eighth(&input[..input.len() / 2]).is_none());
        // A restart marker missing.
        let with_restarts = encode(203, 117, SamplingFactor::R_4_2_0, 2, false);
        let rst = with_restarts.windows(2).rposition(|pair| pair == [0xFF, 0xD3]).unwrap();
        let mut broken = with_restarts.clone();
        broken[rst + 1] = 0xD5;
        assert!(decode_eighth(&broken).is_none());
        // Progressive.
        let mut progressive = Vec::new();
        let mut encoder = Encoder::new(&mut progressive, 80);
        encoder.set_progressive(true);
        encoder.encode(&test_rgb(64, 64), 64, 64, ColorType::Rgb).unwrap();
        assert!(decode_eighth(&progressive).is_none());
        // Not a JPEG at all.
        assert!(decode_eighth(b"GIF89a").is_none());
    }

    #[test]
    fn only_frames_with_luma_at_full_resolution_are_taken() {
        // Precision 8, 64x64, three components: id, sampling factors (h << 4 | v), quantisation table.
        let header = |luma: u8, chroma: u8| [8, 0, 64, 0, 64, 3, 1, luma, 0, 2, chroma, 1, 3, chroma, 1];
        assert!(Frame::default().read_frame_header(&header(0x22, 0x11)).is_some());
        assert!(Frame::default().read_frame_header(&header(0x11, 0x11)).is_some());
        // Chroma sampled more finely than luma (legal, but libjpeg would upsample luma): the general decoders.
        assert!(Frame::default().read_frame_header(&header(0x11, 0x22)).is_none());
        // Ratios that are not whole numbers (3 against 2).
        assert!(Frame::default().read_frame_header(&header(0x33, 0x22)).is_none());
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let input = encode(96, 64, SamplingFactor::R_4_2_0, 4, false);
        let mut state = 0x2545_F491_u32;
        for round in 0..2000 {
            let mut damaged = input.clone();
            for _ in 0..1 + round % 4 {
                // xorshift: a fixed sequence of positions and values.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let at = state as usize % damaged.len();
                damaged[at] = (state >> 24) as u8;
            }
            let _ = decode_eighth(&damaged);
        }
    }
}
