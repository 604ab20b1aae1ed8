use crate::FaceError;
use image::ImageDecoder;

/// Pixels as decoded, possibly at a reduced scale of the full image.
pub(crate) struct Decoded {
    /// Interleaved pixels, `channels` bytes each.
    pub pixels: Vec<u8>,
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Decoded width and height.
    pub width: u32,
    pub height: u32,
    /// Width and height of the full image, which box coordinates refer to.
    pub full_width: u32,
    pub full_height: u32,
}

/// Decodes an image, checking its size against `max_pixels` before any pixel is decoded.
///
/// `wanted` maps the full size to the smallest decoded size that still serves the
/// output, or fails (for a box outside the image) before anything is decoded. JPEG is then decoded at 1/2, 1/4 or 1/8 scale in the DCT domain when that
/// suffices (what Pillow's `Image.draft` does): at a 48×48 output most of a full
/// decode would be thrown away by the resize anyway.
pub(crate) fn decode(
    bytes: &[u8],
    max_pixels: u64,
    wanted: impl Fn(u32, u32) -> Result<(u32, u32), FaceError>,
) -> Result<Decoded, FaceError> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(bytes, max_pixels, wanted)
    } else {
        decode_other(bytes, max_pixels, wanted)
    }
}

fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), FaceError> {
    if u64::from(width) * u64::from(height) > limit {
        return Err(FaceError::TooManyPixels {
            width,
            height,
            limit,
        });
    }
    Ok(())
}

fn decode_jpeg(
    bytes: &[u8],
    max_pixels: u64,
    wanted: impl Fn(u32, u32) -> Result<(u32, u32), FaceError>,
) -> Result<Decoded, FaceError> {
    let corrupt = |e: jpeg_decoder::Error| FaceError::Corrupt(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(corrupt)?;
    let info = decoder
        .info()
        .ok_or_else(|| FaceError::Corrupt("no JPEG frame header".into()))?;
    let (full_width, full_height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(full_width, full_height, max_pixels)?;
    let (want_w, want_h) = wanted(full_width, full_height)?;
    let clamp16 = |v: u32| u16::try_from(v.max(1)).unwrap_or(u16::MAX);
    let (width, height) = decoder
        .scale(clamp16(want_w), clamp16(want_h))
        .map_err(corrupt)?;
    let raw = decoder.decode().map_err(corrupt)?;
    let (width, height) = (u32::from(width), u32::from(height));
    let n = width as usize * height as usize;
    let (pixels, channels) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (raw, 1),
        jpeg_decoder::PixelFormat::RGB24 => (raw, 3),
        // 16-bit gray is big-endian: keep the high byte.
        jpeg_decoder::PixelFormat::L16 => (raw.chunks_exact(2).map(|p| p[0]).collect(), 1),
        jpeg_decoder::PixelFormat::CMYK32 => (
            raw.chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u16::from(p[3]);
                    [0, 1, 2].map(|i| ((255 - u16::from(p[i])) * k / 255) as u8)
                })
                .collect(),
            3,
        ),
    };
    if pixels.len() != n * channels {
        return Err(FaceError::Corrupt(format!(
            "decoder returned {} bytes for a {width}×{height} image",
            pixels.len()
        )));
    }
    Ok(Decoded {
        pixels,
        channels,
        width,
        height,
        full_width,
        full_height,
    })
}

fn decode_other(
    bytes: &[u8],
    max_pixels: u64,
    wanted: impl Fn(u32, u32) -> Result<(u32, u32), FaceError>,
) -> Result<Decoded, FaceError> {
    let corrupt = |e: image::ImageError| FaceError::Corrupt(e.to_string());
    let decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| FaceError::Corrupt(e.to_string()))?
        .into_decoder()
        .map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, max_pixels)?;
    // Other formats decode at full size; the call still validates the box first.
    wanted(width, height)?;
    let color = decoder.color_type();
    let image = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    let gray = color.channel_count() <= 2;
    let (pixels, channels) = if gray {
        (image.into_luma8().into_raw(), 1)
    } else {
        (image.into_rgb8().into_raw(), 3)
    };
    Ok(Decoded {
        pixels,
        channels,
        width,
        height,
        full_width: width,
        full_height: height,
    })
}
