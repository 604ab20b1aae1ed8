use crate::FaceError;
use crate::align::{Alignment, Eyes, Square, sample};
use crate::decode::{Decoded, Request, decode};
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::path::Path;
use valar_core::{ColorMode, FaceBox};

/// How faces are cut out and scaled. Serialized flat into `prep.json`'s `params` (and so
/// into the shard and pipeline fingerprints) under these names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaceSpec {
    /// Output side length S (faces are S×S).
    pub size: u32,
    /// Gray (one channel) or RGB.
    pub color: ColorMode,
    /// Extra context around the box, as a share of the box size on each side.
    /// Written widened to f64, as `prep.json` has always held it (0.1 as 0.10000000149011612).
    #[serde(serialize_with = "widened")]
    pub margin: f32,
    /// Images with more pixels than this are refused (Pillow's default is 89,478,485).
    pub max_pixels: u64,
    /// Decode JPEGs at full size. By default a JPEG is decoded at the smallest DCT
    /// scale (1/8, 1/4, 1/2 or 1) that keeps the face at least `size` pixels on its
    /// shorter side, as Pillow's `draft` does, and only down to the face's last row.
    pub full_scale: bool,
    /// Faces levelled and placed by their eyes (`valar prepare --align`) instead of cut
    /// from a box: see [`decode_aligned`]. Absent from `prep.json` when off, so folders
    /// prepared without it keep their bytes.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub align: Option<Alignment>,
}

impl FaceSpec {
    /// The defaults, the one place they are written: 48×48 gray, the box alone, Pillow's
    /// pixel limit, JPEGs decoded at the smallest scale that keeps the face.
    pub const DEFAULT: FaceSpec = FaceSpec {
        size: 48,
        color: ColorMode::Gray,
        margin: 0.0,
        max_pixels: 89_478_485,
        full_scale: false,
        align: None,
    };
}

impl Default for FaceSpec {
    fn default() -> Self {
        FaceSpec::DEFAULT
    }
}

fn widened<S: serde::Serializer>(margin: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*margin))
}

/// A preprocessed face.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// Pixels, channel planes one after the other: C×S×S.
    pub pixels: Vec<u8>,
    /// The region actually cropped, in full-image pixels: the box plus margin, clamped.
    pub face_box: FaceBox,
    /// Width of the source image.
    pub image_width: u32,
    /// Height of the source image.
    pub image_height: u32,
}

/// Reads an image file and preprocesses the face in it (the whole image without a box).
pub fn load_face(
    path: &Path,
    face_box: Option<FaceBox>,
    spec: &FaceSpec,
) -> Result<Face, FaceError> {
    let bytes = read_image(path, spec.max_pixels)?;
    decode_face(&bytes, face_box, spec)
}

/// Bytes a file may take per pixel of the pixel limit: 16-bit RGBA stored
/// uncompressed (TIFF, PNG without compression), the largest layout `image` decodes.
const BYTES_PER_PIXEL: u64 = 8;

/// The smallest size limit, so that a small `max_pixels` does not refuse an image for
/// its metadata (EXIF thumbnails, ICC profiles).
const MIN_FILE_LIMIT: u64 = 64 << 20;

/// The largest image file valar reads for a given pixel limit: a file any larger
/// cannot be an image within the limit, and reading it whole first would cost its
/// size in memory (716 MB at Pillow's default limit of 89,478,485 pixels).
pub fn image_file_limit(max_pixels: u64) -> u64 {
    max_pixels
        .saturating_mul(BYTES_PER_PIXEL)
        .max(MIN_FILE_LIMIT)
}

/// Reads an image file's bytes: only a regular file (or a link to one), and only up to
/// [`image_file_limit`], so a FIFO, `/dev/zero` or a 20 GB sparse file named `.jpg`
/// is a reject with its reason rather than a hang or an out-of-memory kill.
pub fn read_image(path: &Path, max_pixels: u64) -> Result<Vec<u8>, FaceError> {
    use valar_core::ReadError;
    let why = if image_file_limit(max_pixels) == MIN_FILE_LIMIT {
        "the least size limit valar sets on an image file".to_string()
    } else {
        format!("{BYTES_PER_PIXEL} bytes per pixel of the pixel limit, --max-pixels {max_pixels}")
    };
    match valar_core::read_regular_file(path, image_file_limit(max_pixels)) {
        Ok(bytes) => Ok(bytes),
        Err(ReadError::Missing) => Err(FaceError::Missing),
        Err(ReadError::Io(e)) => Err(FaceError::Unreadable(e)),
        Err(e @ ReadError::NotRegular { .. }) => Err(FaceError::NotRegular(e.to_string())),
        Err(e @ ReadError::TooLarge { .. }) => {
            Err(FaceError::TooLarge(e.with_limit_reason(&why).to_string()))
        }
    }
}

/// Preprocesses the face in an encoded image already in memory.
pub fn decode_face(
    bytes: &[u8],
    face_box: Option<FaceBox>,
    spec: &FaceSpec,
) -> Result<Face, FaceError> {
    if let Some(b) = face_box
        && (b.width <= 0 || b.height <= 0)
    {
        return Err(FaceError::EmptyBox(b));
    }
    let size = spec.size.max(1);
    let gray = spec.color == ColorMode::Gray;
    let request = Request {
        max_pixels: spec.max_pixels,
        gray,
        reduce_to: (!spec.full_scale).then_some(size),
        face_side: None,
        crop: |w, h| crop_region(face_box, spec.margin, w, h),
    };
    face_from(decode(bytes, &request)?, face_box, spec)
}

/// Reads an image file and cuts the face aligned by `eyes`, as [`decode_aligned`].
pub fn load_aligned(path: &Path, eyes: Eyes, spec: &FaceSpec) -> Result<Face, FaceError> {
    let bytes = read_image(path, spec.max_pixels)?;
    decode_aligned(&bytes, eyes, spec)
}

/// Preprocesses a face aligned by its eyes (in full-image pixels): the image is turned so
/// that the eyes are level and scaled so that they land where `spec.align` places them
/// ([`Alignment::DEFAULT`] when it is `None`). The square this cuts is sampled at the
/// decode's scale and then resized as a box is, so an aligned face is as sharp as a boxed
/// one. `Face::face_box` is the part of the image the turned square covers.
pub fn decode_aligned(bytes: &[u8], eyes: Eyes, spec: &FaceSpec) -> Result<Face, FaceError> {
    let size = spec.size.max(1);
    let square = Square::of(eyes, spec.align.unwrap_or(Alignment::DEFAULT));
    let bounds = square.bounds();
    let request = Request {
        max_pixels: spec.max_pixels,
        gray: spec.color == ColorMode::Gray,
        reduce_to: (!spec.full_scale).then_some(size),
        face_side: Some(square.side),
        crop: |w, h| crop_region(Some(bounds), 0.0, w, h),
    };
    let decoded = decode(bytes, &request)?;
    let crop = crop_region(Some(bounds), 0.0, decoded.full_width, decoded.full_height)?;
    let scale = [
        f64::from(decoded.width) / f64::from(decoded.full_width),
        f64::from(decoded.height) / f64::from(decoded.full_height),
    ];
    // The square at the decode's scale: neither enlarged nor shrunk before the resize.
    let n = (square.side * scale[0]).round().clamp(1.0, 8192.0) as u32;
    let upright = sample(
        &decoded.pixels,
        decoded.channels,
        (decoded.width, decoded.rows),
        scale,
        &square,
        n,
    );
    let turned = Decoded {
        pixels: upright,
        channels: decoded.channels,
        width: n,
        height: n,
        rows: n,
        full_width: n,
        full_height: n,
    };
    let pixels = crop_and_resize(&turned, FaceBox::whole(n, n), size, spec.color)?;
    Ok(Face {
        pixels,
        face_box: crop,
        image_width: decoded.full_width,
        image_height: decoded.full_height,
    })
}

/// Cuts and scales the face out of decoded pixels.
fn face_from(
    decoded: Decoded,
    face_box: Option<FaceBox>,
    spec: &FaceSpec,
) -> Result<Face, FaceError> {
    let size = spec.size.max(1);
    let crop = crop_region(
        face_box,
        spec.margin,
        decoded.full_width,
        decoded.full_height,
    )?;
    let pixels = crop_and_resize(&decoded, crop, size, spec.color)?;
    Ok(Face {
        pixels,
        face_box: crop,
        image_width: decoded.full_width,
        image_height: decoded.full_height,
    })
}

/// The box grown by the margin and clamped to the image; an error if nothing is left.
fn crop_region(
    face_box: Option<FaceBox>,
    margin: f32,
    width: u32,
    height: u32,
) -> Result<FaceBox, FaceError> {
    let Some(b) = face_box else {
        return Ok(FaceBox::whole(width, height));
    };
    let mx = (f64::from(margin) * b.width as f64).round() as i64;
    let my = (f64::from(margin) * b.height as f64).round() as i64;
    let x0 = (b.x - mx).max(0);
    let y0 = (b.y - my).max(0);
    let x1 = (b.x + b.width + mx).min(i64::from(width));
    let y1 = (b.y + b.height + my).min(i64::from(height));
    if x1 <= x0 || y1 <= y0 {
        return Err(FaceError::BoxOutsideImage {
            face_box: b,
            width,
            height,
        });
    }
    Ok(FaceBox {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// Pillow's integer BT.601 luma, so gray faces match `Image.convert("L")`.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

fn crop_and_resize(
    decoded: &Decoded,
    crop: FaceBox,
    size: u32,
    color: ColorMode,
) -> Result<Vec<u8>, FaceError> {
    let (pixels, pixel_type) = match (color, decoded.channels) {
        (ColorMode::Gray, 3) => (
            decoded
                .pixels
                .chunks_exact(3)
                .map(|p| luma(p[0], p[1], p[2]))
                .collect(),
            PixelType::U8,
        ),
        (ColorMode::Gray, _) => (decoded.pixels.clone(), PixelType::U8),
        (ColorMode::Rgb, 1) => (
            decoded.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
            PixelType::U8x3,
        ),
        (ColorMode::Rgb, _) => (decoded.pixels.clone(), PixelType::U8x3),
    };
    let resize_error =
        |e: &dyn std::fmt::Display| FaceError::Corrupt(format!("resize failed: {e}"));
    let src = Image::from_vec_u8(decoded.width, decoded.rows, pixels, pixel_type)
        .map_err(|e| resize_error(&e))?;
    let mut dst = Image::new(size, size, pixel_type);
    // Box coordinates refer to the full image; the decode may be smaller.
    let sx = f64::from(decoded.width) / f64::from(decoded.full_width);
    let sy = f64::from(decoded.height) / f64::from(decoded.full_height);
    let (left, top) = (crop.x as f64 * sx, crop.y as f64 * sy);
    // x·s + w·s can land a rounding error past the edge that (x + w)·s sits on.
    let width = (crop.width as f64 * sx).min(f64::from(decoded.width) - left);
    let height = (crop.height as f64 * sy).min(f64::from(decoded.rows) - top);
    let options = ResizeOptions::new()
        // Catmull-Rom is the bicubic filter Pillow's resize uses by default.
        .resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
        .crop(left, top, width, height);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| resize_error(&e))?;
    let out = dst.into_vec();
    Ok(match color {
        ColorMode::Gray => out,
        // Planar C×S×S, the layout of faces.npy and of the model input.
        ColorMode::Rgb => (0..3)
            .flat_map(|c| out.iter().skip(c).step_by(3).copied().collect::<Vec<_>>())
            .collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::scale_numerator;
    use image::{ImageEncoder, Rgb, RgbImage};

    /// A JPEG whose left half is black and right half white, 400×300.
    fn half_and_half_jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn png(width: u32, height: u32, color: [u8; 3]) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, Rgb(color));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    #[test]
    fn crops_the_box_and_resizes_to_size() {
        let jpeg = half_and_half_jpeg(400, 300);
        let spec = FaceSpec::default();
        // A box entirely in the white half gives a white face; in the black half, black.
        let white = decode_face(
            &jpeg,
            Some(FaceBox {
                x: 250,
                y: 50,
                width: 100,
                height: 100,
            }),
            &spec,
        )
        .unwrap();
        let black = decode_face(
            &jpeg,
            Some(FaceBox {
                x: 20,
                y: 50,
                width: 100,
                height: 100,
            }),
            &spec,
        )
        .unwrap();
        assert_eq!(white.pixels.len(), 48 * 48);
        assert!(
            white.pixels.iter().all(|&v| v > 240),
            "{:?}",
            &white.pixels[..8]
        );
        assert!(black.pixels.iter().all(|&v| v < 15));
        assert_eq!((white.image_width, white.image_height), (400, 300));
    }

    /// A gray image with two bright 5×5 eyes at `left` and `right` (their centres).
    fn eyes_image(width: u32, height: u32, left: [f64; 2], right: [f64; 2]) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| {
            let near = |c: [f64; 2]| {
                (f64::from(x) + 0.5 - c[0]).abs() < 2.5 && (f64::from(y) + 0.5 - c[1]).abs() < 2.5
            };
            if near(left) || near(right) {
                Rgb([255, 255, 255])
            } else {
                Rgb([40, 40, 40])
            }
        });
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    /// The brightness-weighted centre of the pixels of `face` (S×S gray) brighter than the
    /// background, within columns `cols`.
    fn bright_centre(face: &[u8], size: usize, cols: std::ops::Range<usize>) -> [f64; 2] {
        let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
        for y in 0..size {
            for x in cols.clone() {
                let w = f64::from(face[y * size + x].saturating_sub(60));
                sx += w * (x as f64 + 0.5);
                sy += w * (y as f64 + 0.5);
                sw += w;
            }
        }
        assert!(sw > 0.0, "no bright pixel in columns {cols:?}");
        [sx / sw, sy / sw]
    }

    #[test]
    fn alignment_puts_the_eyes_where_it_says() {
        // Eyes 60 px apart, the face turned by 25°, in a 320×260 image; and the same eyes
        // level and close to the top-left corner, where the square leaves the image.
        let t = 25f64.to_radians();
        for (left, right) in [
            (
                [120.0, 100.0],
                [120.0 + 60.0 * t.cos(), 100.0 + 60.0 * t.sin()],
            ),
            ([30.0, 30.0], [90.0, 30.0]),
        ] {
            let bytes = eyes_image(320, 260, left, right);
            let points: Vec<[f64; 2]> = (0..68)
                .map(|i| match i {
                    36..=41 => left,
                    42..=47 => right,
                    _ => [200.0, 200.0],
                })
                .collect();
            let eyes = Eyes::from_landmarks(&points).unwrap();
            for (size, placement) in [
                (48u32, Alignment::DEFAULT),
                (
                    64,
                    Alignment {
                        eye_distance: 0.5,
                        eye_y: 0.45,
                    },
                ),
            ] {
                let spec = FaceSpec {
                    size,
                    align: Some(placement),
                    ..FaceSpec::default()
                };
                let face = decode_aligned(&bytes, eyes, &spec).unwrap();
                let s = size as usize;
                let got_left = bright_centre(&face.pixels, s, 0..s / 2);
                let got_right = bright_centre(&face.pixels, s, s / 2..s);
                let sf = f64::from(size);
                let want_y = placement.eye_y * sf;
                let want_left = (0.5 - placement.eye_distance / 2.0) * sf;
                let want_right = (0.5 + placement.eye_distance / 2.0) * sf;
                for (got, want) in [
                    (got_left, [want_left, want_y]),
                    (got_right, [want_right, want_y]),
                ] {
                    assert!(
                        (got[0] - want[0]).abs() < 0.5 && (got[1] - want[1]).abs() < 0.5,
                        "size {size}, eyes {left:?} {right:?}: found {got:?}, expected {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_jpeg_decoded_at_reduced_scale_aligns_like_the_full_scale_one() {
        let t = (-12f64).to_radians();
        let (left, right) = (
            [400.0, 300.0],
            [400.0 + 200.0 * t.cos(), 300.0 + 200.0 * t.sin()],
        );
        let png = eyes_image(900, 700, left, right);
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let jpeg = encode_jpeg(&img);
        let eyes = Eyes { left, right };
        let spec = FaceSpec {
            align: Some(Alignment::DEFAULT),
            ..FaceSpec::default()
        };
        let reduced = decode_aligned(&jpeg, eyes, &spec).unwrap();
        let full = decode_aligned(
            &jpeg,
            eyes,
            &FaceSpec {
                full_scale: true,
                ..spec.clone()
            },
        )
        .unwrap();
        assert!(mean_difference(&reduced.pixels, &full.pixels) < 3.0);
        // The part of the image the turned square covers.
        assert!(reduced.face_box.width > 540 && reduced.face_box.height > 540);
    }

    #[test]
    fn whole_image_without_box_and_rgb_is_planar() {
        let bytes = png(60, 40, [200, 100, 50]);
        let spec = FaceSpec {
            color: ColorMode::Rgb,
            size: 8,
            ..FaceSpec::default()
        };
        let face = decode_face(&bytes, None, &spec).unwrap();
        assert_eq!(face.face_box, FaceBox::whole(60, 40));
        assert_eq!(face.pixels.len(), 3 * 64);
        assert!(face.pixels[..64].iter().all(|&v| v == 200));
        assert!(face.pixels[64..128].iter().all(|&v| v == 100));
        assert!(face.pixels[128..].iter().all(|&v| v == 50));
        let gray = decode_face(
            &bytes,
            None,
            &FaceSpec {
                size: 8,
                ..FaceSpec::default()
            },
        )
        .unwrap();
        assert!(gray.pixels.iter().all(|&v| v == luma(200, 100, 50)));
    }

    #[test]
    fn box_is_clamped_and_margin_grows_it() {
        let bytes = png(100, 100, [9, 9, 9]);
        let spec = FaceSpec {
            margin: 0.1,
            ..FaceSpec::default()
        };
        let face = decode_face(
            &bytes,
            Some(FaceBox {
                x: 80,
                y: -10,
                width: 50,
                height: 50,
            }),
            &spec,
        )
        .unwrap();
        assert_eq!(
            face.face_box,
            FaceBox {
                x: 75,
                y: 0,
                width: 25,
                height: 45
            }
        );
    }

    #[test]
    fn bad_boxes_are_reported() {
        let bytes = png(100, 100, [9, 9, 9]);
        let spec = FaceSpec::default();
        for b in [
            FaceBox {
                x: 0,
                y: 0,
                width: 0,
                height: 10,
            },
            FaceBox {
                x: 0,
                y: 0,
                width: 10,
                height: -3,
            },
        ] {
            assert_eq!(
                decode_face(&bytes, Some(b), &spec).unwrap_err().reason(),
                "bad_box"
            );
        }
        let outside = FaceBox {
            x: 150,
            y: 0,
            width: 20,
            height: 20,
        };
        assert_eq!(
            decode_face(&bytes, Some(outside), &spec)
                .unwrap_err()
                .reason(),
            "box_outside_image"
        );
        let jpeg = half_and_half_jpeg(64, 64);
        assert_eq!(
            decode_face(&jpeg, Some(outside), &spec)
                .unwrap_err()
                .reason(),
            "box_outside_image"
        );
    }

    #[test]
    fn corrupt_truncated_and_oversized_images_are_reported() {
        let spec = FaceSpec::default();
        assert_eq!(
            decode_face(b"not an image at all", None, &spec)
                .unwrap_err()
                .reason(),
            "corrupt_image"
        );
        let jpeg = half_and_half_jpeg(400, 300);
        let truncated = &jpeg[..jpeg.len() / 2];
        assert_eq!(
            decode_face(truncated, None, &spec).unwrap_err().reason(),
            "corrupt_image"
        );
        let small_limit = FaceSpec {
            max_pixels: 400 * 300 - 1,
            ..FaceSpec::default()
        };
        assert_eq!(
            decode_face(&jpeg, None, &small_limit).unwrap_err().reason(),
            "too_many_pixels"
        );
        assert_eq!(
            decode_face(
                &png(100, 100, [0, 0, 0]),
                None,
                &FaceSpec {
                    max_pixels: 99,
                    ..FaceSpec::default()
                }
            )
            .unwrap_err()
            .reason(),
            "too_many_pixels"
        );
    }

    /// A 400×300 JPEG with detail everywhere: rings, stripes and a ramp.
    fn textured_jpeg(rgb: bool) -> Vec<u8> {
        let (w, h) = (400u32, 300u32);
        let img = RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let ring = (((fx - 200.0).hypot(fy - 150.0) / 6.0).sin() * 90.0 + 128.0) as u8;
            let stripe = if (x / 7 + y / 11) % 2 == 0 { 40 } else { 210 };
            Rgb([ring, stripe, (x + y) as u8])
        });
        let mut out = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        if rgb {
            encoder
                .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .unwrap();
        } else {
            let gray = image::DynamicImage::ImageRgb8(img).into_luma8();
            encoder
                .write_image(gray.as_raw(), w, h, image::ExtendedColorType::L8)
                .unwrap();
        }
        out
    }

    #[test]
    fn stopping_below_the_face_changes_no_pixel() {
        for rgb in [false, true] {
            let jpeg = textured_jpeg(rgb);
            for (color, size) in [
                (ColorMode::Gray, 48),
                (ColorMode::Rgb, 32),
                (ColorMode::Gray, 20),
            ] {
                for face in [
                    FaceBox {
                        x: 10,
                        y: 10,
                        width: 100,
                        height: 100,
                    },
                    FaceBox {
                        x: 150,
                        y: 60,
                        width: 170,
                        height: 190,
                    },
                    FaceBox {
                        x: 0,
                        y: 97,
                        width: 53,
                        height: 61,
                    },
                ] {
                    // The same shorter side, so the same DCT scale, but reaching the
                    // image's bottom edge: this decode holds every row.
                    let tall = FaceBox {
                        height: 300 - face.y,
                        ..face
                    };
                    let request = |b: FaceBox| Request {
                        max_pixels: u64::MAX,
                        gray: color == ColorMode::Gray,
                        reduce_to: Some(size),
                        face_side: None,
                        crop: move |_, _| Ok(b),
                    };
                    assert_eq!(scale_numerator(face, size), scale_numerator(tall, size));
                    let short = decode(&jpeg, &request(face)).unwrap();
                    let full = decode(&jpeg, &request(tall)).unwrap();
                    assert_eq!(full.rows, full.height);
                    assert!(short.rows < full.rows, "{face} needs every row");
                    assert_eq!(
                        crop_and_resize(&short, face, size, color).unwrap(),
                        crop_and_resize(&full, face, size, color).unwrap(),
                        "box {face}, size {size}, {color:?}, rgb source {rgb}"
                    );
                }
            }
        }
    }

    #[test]
    fn reduced_scale_faces_stay_close_to_full_scale_ones() {
        let jpeg = textured_jpeg(false);
        let full = FaceSpec {
            full_scale: true,
            ..FaceSpec::default()
        };
        let mut total = 0u64;
        let mut count = 0u64;
        for face in [
            FaceBox {
                x: 0,
                y: 0,
                width: 400,
                height: 300,
            },
            FaceBox {
                x: 100,
                y: 50,
                width: 200,
                height: 200,
            },
            FaceBox {
                x: 20,
                y: 20,
                width: 120,
                height: 110,
            },
        ] {
            let reduced = decode_face(&jpeg, Some(face), &FaceSpec::default()).unwrap();
            let exact = decode_face(&jpeg, Some(face), &full).unwrap();
            for (a, b) in reduced.pixels.iter().zip(&exact.pixels) {
                total += u64::from(a.abs_diff(*b));
                count += 1;
            }
        }
        // This image is far busier than a face (stripes 7 pixels wide, close to the
        // 1/4-scale Nyquist limit), so it bounds the difference from above; on
        // synthetic faces `just bench-prep` measures it (README).
        let mean = total as f64 / count as f64;
        assert!(mean < 6.0, "mean absolute difference {mean}");
        assert!(
            mean > 0.0,
            "a reduced decode that changes nothing was not reduced"
        );
    }

    #[test]
    fn a_box_on_the_edge_of_an_odd_sized_image_fits_at_every_scale() {
        // Sizes that do not divide by 8, so the scaled edge is a rounded fraction.
        for (w, h) in [(353u32, 353u32), (401, 299), (997, 613), (250, 431)] {
            let jpeg = half_and_half_jpeg(w, h);
            for (x, y) in [(8i64, 43i64), (0, 0), (w as i64 / 3, h as i64 / 5)] {
                let side = (i64::from(w) - x).min(i64::from(h) - y);
                let face = FaceBox {
                    x,
                    y,
                    width: side,
                    height: side,
                };
                for size in [24, 48, 112] {
                    let spec = FaceSpec {
                        size,
                        ..FaceSpec::default()
                    };
                    let out = decode_face(&jpeg, Some(face), &spec);
                    assert!(
                        out.is_ok(),
                        "{w}×{h}, box {face}, size {size}: {:?}",
                        out.err()
                    );
                }
            }
        }
    }

    #[test]
    fn files_that_are_not_images_are_refused_before_a_byte_is_read() {
        assert_eq!(image_file_limit(89_478_485), 715_827_880);
        assert_eq!(image_file_limit(1_000), 64 << 20);
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = load_face(&zero, None, &FaceSpec::default()).unwrap_err();
        assert_eq!(err.reason(), "not_a_regular_file", "{err}");
        let big = dir.path().join("big.jpg");
        std::fs::File::create(&big)
            .unwrap()
            .set_len((64 << 20) + 1)
            .unwrap();
        let small = FaceSpec {
            max_pixels: 1_000,
            ..FaceSpec::default()
        };
        let err = load_face(&big, None, &small).unwrap_err();
        assert_eq!(err.reason(), "file_too_large", "{err}");
        assert!(err.to_string().contains("least size limit"), "{err}");
        let err = load_face(&dir.path().join("none.jpg"), None, &small).unwrap_err();
        assert_eq!(err.reason(), "missing_file", "{err}");
    }

    #[test]
    fn a_huge_header_is_too_many_pixels_not_a_decoder_error() {
        let mut jpeg = half_and_half_jpeg(64, 64);
        // Patch the frame header (SOF0: FF C0, length, precision, height, width).
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        let err = decode_face(&jpeg, None, &FaceSpec::default()).unwrap_err();
        assert_eq!(err.reason(), "too_many_pixels", "{err}");
        assert!(err.to_string().contains("60000×60000"), "{err}");
    }

    #[test]
    fn a_file_cut_below_the_face_is_still_truncated() {
        let jpeg = textured_jpeg(true);
        let cut = &jpeg[..jpeg.len() * 9 / 10];
        let face = FaceBox {
            x: 10,
            y: 10,
            width: 100,
            height: 100,
        };
        let err = decode_face(cut, Some(face), &FaceSpec::default()).unwrap_err();
        assert_eq!(err.reason(), "corrupt_image");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    /// `jpeg` with an EXIF block whose Orientation tag is `orientation`, right after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        // Tag 0x0112 (Orientation), type SHORT, count 1, the value padded to 4 bytes.
        tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend(orientation.to_be_bytes());
        tiff.extend([0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    fn encode_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
        let total: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        total as f64 / a.len() as f64
    }

    #[test]
    fn exif_orientation_is_applied_before_the_box_is_cut_in_both_decoders() {
        // Upright, 320×200: a bright square in the top-left quarter on a dark ramp,
        // so every turn moves the square to another corner.
        let upright = RgbImage::from_fn(320, 200, |x, y| {
            if x < 120 && y < 90 {
                Rgb([250, 240, 230])
            } else {
                Rgb([(x / 8) as u8, (y / 8) as u8, 20])
            }
        });
        let face = FaceBox {
            x: 10,
            y: 10,
            width: 100,
            height: 70,
        };
        type Decoder = Box<dyn Fn(&[u8]) -> Face>;
        type Store = fn(&RgbImage) -> RgbImage;
        let mut decoders: Vec<(&str, Decoder)> = Vec::new();
        for (name, full_scale) in [("libjpeg reduced", false), ("libjpeg full", true)] {
            let spec = FaceSpec {
                full_scale,
                ..FaceSpec::default()
            };
            decoders.push((
                name,
                Box::new(move |b| decode_face(b, Some(face), &spec).unwrap()),
            ));
        }
        decoders.push((
            "image",
            Box::new(move |b| {
                let spec = FaceSpec::default();
                let request = Request {
                    max_pixels: u64::MAX,
                    gray: true,
                    reduce_to: None,
                    face_side: None,
                    crop: |w, h| crop_region(Some(face), 0.0, w, h),
                };
                let decoded = crate::decode::decode_other(b, &request).unwrap();
                face_from(decoded, Some(face), &spec).unwrap()
            }),
        ));
        let want = decode_face(&encode_jpeg(&upright), Some(face), &FaceSpec::default()).unwrap();
        assert!(want.pixels.iter().all(|&v| v > 200));
        // Stored pixels are the upright image turned back: what a phone writes.
        let ops: [(u16, Store); 3] = [
            (3, image::imageops::rotate180),
            (6, image::imageops::rotate270),
            (8, image::imageops::rotate90),
        ];
        for (tag, store) in ops {
            let stored = encode_jpeg(&store(&upright));
            let tagged = with_exif_orientation(&stored, tag);
            for (name, decode) in &decoders {
                let got = decode(&tagged);
                let diff = mean_difference(&got.pixels, &want.pixels);
                assert!(diff < 3.0, "orientation {tag}, {name}: differs by {diff}");
                assert_eq!((got.image_width, got.image_height), (320, 200));
                assert_eq!(got.face_box, want.face_box);
                // Without the tag the same box lands on the dark ramp.
                let ignored = mean_difference(&decode(&stored).pixels, &want.pixels);
                assert!(ignored > 100.0, "orientation {tag}, {name}: {ignored}");
            }
        }
    }

    #[test]
    fn missing_file_is_reported() {
        let err = load_face(
            Path::new("/definitely/not/here.jpg"),
            None,
            &FaceSpec::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "missing_file");
    }
}
