use crate::FaceError;
use image::ImageDecoder;
use image::metadata::Orientation;
use std::panic::{AssertUnwindSafe, catch_unwind};
use valar_core::FaceBox;

/// Pixels as decoded: possibly at a reduced scale, and possibly only the top rows.
pub(crate) struct Decoded {
    /// Interleaved pixels, `channels` bytes each, `rows` rows of `width`.
    pub pixels: Vec<u8>,
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Width of the decoded image (the full width times the decode scale).
    pub width: u32,
    /// Height of the decoded image (the full height times the decode scale).
    pub height: u32,
    /// Rows actually decoded: decoding stops below the face, so this may be under `height`.
    pub rows: u32,
    /// Width and height of the full image, which box coordinates refer to.
    pub full_width: u32,
    pub full_height: u32,
}

/// How an image is to be decoded.
pub(crate) struct Request<F> {
    /// Images with more pixels than this are refused before any pixel is decoded.
    pub max_pixels: u64,
    /// Decode JPEGs straight to luma.
    pub gray: bool,
    /// With `Some(size)`, a JPEG is decoded at the smallest DCT scale that keeps the
    /// crop at least `size` pixels on its shorter side, and only down to the crop.
    pub reduce_to: Option<u32>,
    /// The face's side in full-image pixels when it is not the crop's shorter side: an
    /// aligned face is a turned square inside the crop, and the scale must keep that square
    /// `reduce_to` pixels across.
    pub face_side: Option<f64>,
    /// Given the full width and height, the region that will be cropped (or why the
    /// image cannot be used), called before any pixel is decoded.
    pub crop: F,
}

/// Decodes an image: JPEG through libjpeg-turbo (mozjpeg's build of it), the rest
/// through `image`.
///
/// libjpeg can decode at 1/8, 1/4 or 1/2 scale in the DCT domain and stop after any
/// row, which is what Pillow's `draft` relies on. Measured on valar's synthetic faces
/// (`just bench-prep`), that is the difference between decoding at Pillow's speed and
/// well above it; zune-jpeg, used before, always decodes the whole image at full size.
pub(crate) fn decode<F>(bytes: &[u8], request: &Request<F>) -> Result<Decoded, FaceError>
where
    F: Fn(u32, u32) -> Result<FaceBox, FaceError>,
{
    if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(bytes, request)
    } else {
        decode_other(bytes, request)
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

/// The smallest of libjpeg's scales n/8 (n = 1, 2, 4, 8) at which the crop's shorter
/// side still has at least `size` pixels: the rule of Pillow's `draft`, applied to the
/// face rather than the whole image.
pub fn scale_numerator(crop: FaceBox, size: u32) -> u8 {
    numerator_for(crop.width.min(crop.height) as f64, size)
}

/// The smallest n/8 (n = 1, 2, 4, 8) that keeps `side` full-image pixels at least `size`.
fn numerator_for(side: f64, size: u32) -> u8 {
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| side * f64::from(n) >= f64::from(size) * 8.0)
        .unwrap_or(8)
}

/// How many decoded rows the resize needs: the crop's bottom edge at the decode scale
/// (`height` rows for the image's `full_height`), plus the reach of the Catmull-Rom
/// kernel below it (2 source pixels per output pixel, wider when downscaling), plus
/// one row for rounding. With these rows the face is identical to one cut from the
/// whole decoded image (test `stopping_below_the_face_changes_no_pixel`).
pub fn rows_needed(crop: FaceBox, size: u32, height: u32, full_height: u32) -> u32 {
    let scale = f64::from(height) / f64::from(full_height.max(1));
    let bottom = ((crop.y + crop.height) as f64 * scale).ceil();
    let ratio = crop.height as f64 * scale / f64::from(size.max(1));
    let reach = (2.0 * ratio.max(1.0)).ceil() + 1.0;
    (bottom + reach).clamp(1.0, f64::from(height)) as u32
}

/// Whether an end-of-image marker follows the first scan's header. libjpeg pads a
/// truncated file with gray and only warns, and valar stops decoding below the face
/// anyway, so truncation is caught here: inside entropy-coded data 0xFF is always
/// followed by 0x00 or a restart marker, so an `FF D9` after the scan header is the end.
fn has_end_marker(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => i += 1,
            // Searched from the end, where the marker of a whole file sits.
            0xDA => return memchr::memmem::rfind(&bytes[i..], &[0xFF, 0xD9]).is_some(),
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => i += 2 + usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]])),
        }
    }
    false
}

/// The message a libjpeg fatal error carries (mozjpeg turns them into unwinding panics).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the JPEG decoder failed".to_string())
        .trim_start_matches("libjpeg fatal error: ")
        .to_string()
}

fn decode_jpeg<F>(bytes: &[u8], request: &Request<F>) -> Result<Decoded, FaceError>
where
    F: Fn(u32, u32) -> Result<FaceBox, FaceError>,
{
    if !has_end_marker(bytes) {
        return Err(FaceError::Corrupt(
            "no end-of-image marker after the image data (truncated file)".into(),
        ));
    }
    // mozjpeg reports libjpeg's fatal errors by unwinding, without the panic hook.
    match catch_unwind(AssertUnwindSafe(|| decode_libjpeg(bytes, request))) {
        Ok(Some(result)) => result,
        // Colour spaces libjpeg cannot convert (CMYK, YCCK) go through `image`.
        Ok(None) => decode_other(bytes, request),
        Err(payload) => Err(FaceError::Corrupt(panic_message(payload))),
    }
}

/// `None` when the colour space is one libjpeg cannot turn into gray or RGB.
fn decode_libjpeg<F>(bytes: &[u8], request: &Request<F>) -> Option<Result<Decoded, FaceError>>
where
    F: Fn(u32, u32) -> Result<FaceBox, FaceError>,
{
    use mozjpeg::ColorSpace;
    let corrupt = |e: std::io::Error| FaceError::Corrupt(e.to_string());
    // APP1 holds EXIF, whose Orientation tag says how the stored pixels are turned.
    let mut header =
        match mozjpeg::Decompress::with_markers(&[mozjpeg::Marker::APP(1)]).from_mem(bytes) {
            Ok(d) => d,
            Err(e) => return Some(Err(corrupt(e))),
        };
    if matches!(
        header.color_space(),
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK
    ) {
        return None;
    }
    let orientation = header
        .markers()
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Some((|| {
        let (w, h) = header.size();
        let (width, height) = (
            u32::try_from(w).map_err(|_| FaceError::Corrupt("width out of range".into()))?,
            u32::try_from(h).map_err(|_| FaceError::Corrupt("height out of range".into()))?,
        );
        check_pixels(width, height, request.max_pixels)?;
        let (shown_w, shown_h) = displayed(width, height, orientation);
        let crop = (request.crop)(shown_w, shown_h)?;
        let numerator = match (request.reduce_to, request.face_side) {
            (None, _) => 8,
            (Some(size), None) => scale_numerator(crop, size),
            (Some(size), Some(side)) => numerator_for(side, size),
        };
        header.scale(numerator);
        let mut started = if request.gray {
            header.grayscale()
        } else {
            header.rgb()
        }
        .map_err(corrupt)?;
        let channels = if request.gray { 1 } else { 3 };
        let (out_w, out_h) = (started.width() as u32, started.height() as u32);
        // The crop's rows are display rows; once the image is turned they can be any
        // stored rows, so a turned image is decoded whole (phones' photos, a few).
        let rows = match request.reduce_to {
            Some(size) if orientation == Orientation::NoTransforms => {
                rows_needed(crop, size, out_h, height)
            }
            _ => out_h,
        };
        let mut pixels = vec![0u8; out_w as usize * rows as usize * channels];
        started.read_scanlines_into(&mut pixels).map_err(corrupt)?;
        let decoded = Decoded {
            pixels,
            channels,
            width: out_w,
            height: out_h,
            rows,
            full_width: width,
            full_height: height,
        };
        orient(decoded, orientation)
    })())
}

/// Width and height as the image is shown, once its EXIF orientation is applied.
fn displayed(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (height, width),
        _ => (width, height),
    }
}

/// Turns whole decoded pixels the way EXIF says the image is shown, with `image`'s own
/// transform (the one Pillow's `ImageOps.exif_transpose` matches), so that boxes, given
/// in display coordinates as AffectNet's are, cut the region a viewer sees.
fn orient(decoded: Decoded, orientation: Orientation) -> Result<Decoded, FaceError> {
    if orientation == Orientation::NoTransforms {
        return Ok(decoded);
    }
    let Decoded {
        pixels,
        channels,
        width,
        height,
        full_width,
        full_height,
        ..
    } = decoded;
    let short = || FaceError::Corrupt("decoded fewer pixels than the image holds".into());
    let mut image = if channels == 1 {
        image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(width, height, pixels).ok_or_else(short)?,
        )
    } else {
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, pixels).ok_or_else(short)?,
        )
    };
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let (full_width, full_height) = displayed(full_width, full_height, orientation);
    Ok(Decoded {
        pixels: image.into_bytes(),
        channels,
        width,
        height,
        rows: height,
        full_width,
        full_height,
    })
}

pub(crate) fn decode_other<F>(bytes: &[u8], request: &Request<F>) -> Result<Decoded, FaceError>
where
    F: Fn(u32, u32) -> Result<FaceBox, FaceError>,
{
    let corrupt = |e: image::ImageError| FaceError::Corrupt(e.to_string());
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| FaceError::Corrupt(e.to_string()))?;
    // The pixel limit is valar's to enforce, with its own reason; `image`'s default
    // limits would otherwise refuse a huge image first, as a decoding error.
    decoder.no_limits();
    let mut decoder = decoder.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, request.max_pixels)?;
    // An unreadable EXIF block leaves the image as stored, as viewers do.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let (width, height) = displayed(width, height, orientation);
    (request.crop)(width, height)?;
    let color = decoder.color_type();
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
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
        rows: height,
        full_width: width,
        full_height: height,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn face_box(x: i64, y: i64, width: i64, height: i64) -> FaceBox {
        FaceBox {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn the_scale_is_the_smallest_that_keeps_the_face_at_the_output_size() {
        // A 400-pixel face for 48-pixel output: 1/8 gives 50 pixels, enough.
        assert_eq!(scale_numerator(face_box(0, 0, 400, 500), 48), 1);
        // 300 pixels: 1/8 gives 37.5, too few; 1/4 gives 75.
        assert_eq!(scale_numerator(face_box(0, 0, 300, 300), 48), 2);
        assert_eq!(scale_numerator(face_box(0, 0, 100, 120), 48), 4);
        // The shorter side decides.
        assert_eq!(scale_numerator(face_box(0, 0, 1000, 90), 48), 8);
        assert_eq!(scale_numerator(face_box(0, 0, 96, 96), 48), 4);
    }

    #[test]
    fn the_end_marker_is_looked_for_after_the_scan_header() {
        // SOI, an APP0 segment whose payload holds FF D9 (as an EXIF thumbnail would),
        // then SOS and scan data without an end marker.
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        bytes.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0x00, 0x56]);
        assert!(!has_end_marker(&bytes));
        bytes.extend([0xFF, 0xD9]);
        assert!(has_end_marker(&bytes));
        assert!(!has_end_marker(&[0xFF, 0xD8]));
        assert!(!has_end_marker(b"\xFF\xD8\xFF\xE0 not a JPEG"));
    }
}
