//! The decoded raster: 8-bit samples in one of four layouts, with the few operations the converter needs
//! (alpha checks and flattening, orientation, resizing with `fast_image_resize`).

use std::borrow::Cow;

use fast_image_resize as fr;
use image::metadata::Orientation;
use image::{DynamicImage, ImageBuffer};

use crate::error::{BoxError, Reason};

/// How the samples of a pixel are laid out; always 8 bits per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Grey.
    L8,
    /// Grey and alpha.
    La8,
    /// Red, green, blue.
    Rgb8,
    /// Red, green, blue and (straight, not premultiplied) alpha.
    Rgba8,
}

impl Layout {
    pub(crate) fn channels(self) -> usize {
        match self {
            Self::L8 => 1,
            Self::La8 => 2,
            Self::Rgb8 => 3,
            Self::Rgba8 => 4,
        }
    }

    pub(crate) fn has_alpha(self) -> bool {
        matches!(self, Self::La8 | Self::Rgba8)
    }

    fn pixel_type(self) -> fr::PixelType {
        match self {
            Self::L8 => fr::PixelType::U8,
            Self::La8 => fr::PixelType::U8x2,
            Self::Rgb8 => fr::PixelType::U8x3,
            Self::Rgba8 => fr::PixelType::U8x4,
        }
    }

    pub(crate) fn color_type(self) -> image::ExtendedColorType {
        match self {
            Self::L8 => image::ExtendedColorType::L8,
            Self::La8 => image::ExtendedColorType::La8,
            Self::Rgb8 => image::ExtendedColorType::Rgb8,
            Self::Rgba8 => image::ExtendedColorType::Rgba8,
        }
    }
}

/// A raster in memory; `data.len() == width * height * layout.channels()` always holds.
#[derive(Clone, Debug)]
pub(crate) struct Pixels {
    pub layout: Layout,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Pixels {
    /// A raster from samples, checking the length.
    pub(crate) fn new(layout: Layout, width: u32, height: u32, data: Vec<u8>) -> Result<Self, BoxError> {
        let expected = (width as usize).checked_mul(height as usize).and_then(|n| n.checked_mul(layout.channels()));
        if expected != Some(data.len()) {
            return Err(Reason::boxed(format!("decoded {} bytes for a {width}x{height} {layout:?} image", data.len())));
        }
        Ok(Self { layout, width, height, data })
    }

    /// Takes the pixels of a decoded image, converting 16-bit and float samples to 8 bits.
    pub(crate) fn from_dynamic(image: DynamicImage) -> Result<Self, BoxError> {
        let (width, height) = (image.width(), image.height());
        let (layout, data) = match image {
            DynamicImage::ImageLuma8(buffer) => (Layout::L8, buffer.into_raw()),
            DynamicImage::ImageLumaA8(buffer) => (Layout::La8, buffer.into_raw()),
            DynamicImage::ImageRgb8(buffer) => (Layout::Rgb8, buffer.into_raw()),
            DynamicImage::ImageRgba8(buffer) => (Layout::Rgba8, buffer.into_raw()),
            other => {
                let color = other.color();
                match (color.has_color(), color.has_alpha()) {
                    (false, false) => (Layout::L8, other.into_luma8().into_raw()),
                    (false, true) => (Layout::La8, other.into_luma_alpha8().into_raw()),
                    (true, false) => (Layout::Rgb8, other.into_rgb8().into_raw()),
                    (true, true) => (Layout::Rgba8, other.into_rgba8().into_raw()),
                }
            }
        };
        Self::new(layout, width, height, data)
    }

    /// Drops the alpha channel when every pixel is opaque: cheaper to resize, smaller to encode.
    pub(crate) fn drop_opaque_alpha(self) -> Self {
        let channels = self.layout.channels();
        let (opaque_layout, kept) = match self.layout {
            Layout::La8 => (Layout::L8, 1),
            Layout::Rgba8 => (Layout::Rgb8, 3),
            Layout::L8 | Layout::Rgb8 => return self,
        };
        let opaque = self.data.chunks_exact(channels).all(|pixel| pixel.last() == Some(&255));
        if !opaque {
            return self;
        }
        let data = self.data.chunks_exact(channels).flat_map(|pixel| pixel.iter().take(kept).copied()).collect();
        Self { layout: opaque_layout, width: self.width, height: self.height, data }
    }

    /// Composites the pixels over white and drops alpha (for JPEG); borrowed when there is no alpha.
    pub(crate) fn flatten_on_white(&self) -> Cow<'_, Self> {
        let channels = self.layout.channels();
        let layout = match self.layout {
            Layout::La8 => Layout::L8,
            Layout::Rgba8 => Layout::Rgb8,
            Layout::L8 | Layout::Rgb8 => return Cow::Borrowed(self),
        };
        let mut data = Vec::with_capacity(self.data.len() / channels * (channels - 1));
        for pixel in self.data.chunks_exact(channels) {
            if let Some((&alpha, colour)) = pixel.split_last() {
                let alpha = u32::from(alpha);
                for &sample in colour {
                    let blended = u32::from(sample) * alpha + 255 * (255 - alpha);
                    // Rounded division by 255; at most 255, so the cast is lossless.
                    data.push(((blended + 127) / 255) as u8);
                }
            }
        }
        Cow::Owned(Self { layout, width: self.width, height: self.height, data })
    }

    /// Expands grey to RGB (for WebP, which only takes RGB and RGBA); borrowed when it is RGB already.
    pub(crate) fn rgb_family(&self) -> Cow<'_, Self> {
        let layout = match self.layout {
            Layout::L8 => Layout::Rgb8,
            Layout::La8 => Layout::Rgba8,
            Layout::Rgb8 | Layout::Rgba8 => return Cow::Borrowed(self),
        };
        let data = match self.layout {
            Layout::L8 => self.data.iter().flat_map(|&grey| [grey, grey, grey]).collect(),
            _ => self.data.chunks_exact(2).flat_map(|pixel| [pixel[0], pixel[0], pixel[0], pixel[1]]).collect(),
        };
        Cow::Owned(Self { layout, width: self.width, height: self.height, data })
    }

    /// Applies an Exif orientation (rotation and/or mirror); borrowed when the pixels are upright already, so
    /// an upright output that also serves the smaller variants is not copied.
    pub(crate) fn oriented(&self, orientation: Orientation) -> Result<Cow<'_, Self>, BoxError> {
        if orientation == Orientation::NoTransforms {
            return Ok(Cow::Borrowed(self));
        }
        let (layout, width, height) = (self.layout, self.width, self.height);
        let data = self.data.clone();
        let mismatch = || Reason::boxed("raster size mismatch");
        let mut image = match layout {
            Layout::L8 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(width, height, data).ok_or_else(mismatch)?),
            Layout::La8 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(width, height, data).ok_or_else(mismatch)?),
            Layout::Rgb8 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(width, height, data).ok_or_else(mismatch)?),
            Layout::Rgba8 => DynamicImage::ImageRgba8(ImageBuffer::from_raw(width, height, data).ok_or_else(mismatch)?),
        };
        image.apply_orientation(orientation);
        Self::from_dynamic(image).map(Cow::Owned)
    }

    /// Resizes to `width`x`height` (Lanczos3 convolution, SIMD), optionally from a crop of the source. Alpha is
    /// premultiplied before filtering and divided back after, so transparent pixels do not bleed their colour.
    pub(crate) fn resized(
        &self,
        width: u32,
        height: u32,
        crop: Option<(f64, f64, f64, f64)>,
        resizer: &mut fr::Resizer,
    ) -> Result<Self, BoxError> {
        let pixel_type = self.layout.pixel_type();
        let source = fr::images::ImageRef::new(self.width, self.height, &self.data, pixel_type)?;
        let mut target = fr::images::Image::new(width, height, pixel_type);
        let mut options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
            .use_alpha(self.layout.has_alpha());
        if let Some((left, top, crop_width, crop_height)) = crop {
            options = options.crop(left, top, crop_width, crop_height);
        }
        resizer.resize(&source, &mut target, &options)?;
        Self::new(self.layout, width, height, target.into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_composites_over_white() {
        let pixels = Pixels::new(Layout::Rgba8, 3, 1, vec![255, 0, 0, 0, 255, 0, 0, 255, 0, 0, 255, 128]).unwrap();
        let flat = pixels.flatten_on_white();
        assert_eq!(flat.layout, Layout::Rgb8);
        assert_eq!(flat.data, vec![255, 255, 255, 255, 0, 0, 127, 127, 255]);
    }

    #[test]
    fn opaque_alpha_is_dropped_only_when_opaque() {
        let opaque = Pixels::new(Layout::La8, 2, 1, vec![10, 255, 20, 255]).unwrap().drop_opaque_alpha();
        assert_eq!((opaque.layout, opaque.data), (Layout::L8, vec![10, 20]));
        let translucent = Pixels::new(Layout::La8, 2, 1, vec![10, 255, 20, 254]).unwrap().drop_opaque_alpha();
        assert_eq!(translucent.layout, Layout::La8);
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        assert!(Pixels::new(Layout::Rgb8, 2, 2, vec![0; 11]).is_err());
        assert!(Pixels::new(Layout::Rgb8, u32::MAX, u32::MAX, vec![]).is_err());
    }

    #[test]
    fn alpha_does_not_bleed_when_resizing() {
        // Left half: transparent *green*; right half: opaque red. Downscaled, no pixel may turn greenish.
        let mut data = Vec::new();
        for _ in 0..8 {
            for x in 0..8 {
                data.extend_from_slice(if x < 4 { &[0, 255, 0, 0] } else { &[255, 0, 0, 255] });
            }
        }
        let pixels = Pixels::new(Layout::Rgba8, 8, 8, data).unwrap();
        let small = pixels.resized(4, 4, None, &mut fr::Resizer::new()).unwrap();
        for pixel in small.data.chunks_exact(4) {
            if pixel[3] > 0 {
                assert!(pixel[1] < 8, "green bled into {pixel:?}");
            }
        }
    }
}
