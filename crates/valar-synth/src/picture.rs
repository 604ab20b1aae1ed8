//! One finished image: a cluttered background, an optional face, sensor-like noise, and for a
//! hard image the nuisance of [`crate::hard`]. Its own module above `render` and `hard`, so
//! that `hard` uses `render`'s primitives without `render` using `hard`.

use crate::face::Face;
use crate::render::{paint_background, paint_face};
use image::{GrayImage, RgbImage};
use rand::Rng;
use tiny_skia::Pixmap;

/// A finished picture, colour or single-channel like some of AffectNet's.
pub(crate) enum Picture {
    /// Three-channel RGB.
    Rgb(RgbImage),
    /// Single-channel grayscale.
    Gray(GrayImage),
}

/// Renders a `w`×`h` image, with `face` drawn when given, and adds noise. A hard
/// image also gets identity accessories, occluders, lighting, clutter and
/// degradation (see [`crate::hard`]).
pub(crate) fn render(
    rng: &mut impl Rng,
    w: u32,
    h: u32,
    face: Option<&Face>,
    gray: bool,
    hard: bool,
) -> Picture {
    let Some(mut pm) = Pixmap::new(w.max(1), h.max(1)) else {
        // Only reachable for absurd sizes; fall back to an empty picture rather than panic.
        return Picture::Rgb(RgbImage::new(w, h));
    };
    if !hard {
        paint_background(&mut pm, rng);
        if let Some(f) = face {
            paint_face(&mut pm, rng, f);
        }
        let sigma = rng.random_range(1.5f32..=6.0);
        let img = add_noise(&pm, rng, sigma);
        return if gray {
            Picture::Gray(image::imageops::grayscale(&img))
        } else {
            Picture::Rgb(img)
        };
    }
    paint_background(&mut pm, rng);
    crate::hard::paint_clutter(&mut pm, rng);
    if let Some(f) = face {
        crate::hard::paint_face(&mut pm, rng, f);
        crate::hard::paint_occluders(&mut pm, rng, f);
    }
    crate::hard::paint_lighting(&mut pm, rng, face);
    let sigma = rng.random_range(1.5f32..=7.0);
    let img = crate::hard::degrade(add_noise(&pm, rng, sigma), rng);
    if gray {
        Picture::Gray(image::imageops::grayscale(&img))
    } else {
        Picture::Rgb(img)
    }
}

/// The pixmap as RGB with bell-shaped per-channel noise of about `sigma` levels.
fn add_noise(pm: &Pixmap, rng: &mut impl Rng, sigma: f32) -> RgbImage {
    let (w, h) = (pm.width(), pm.height());
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    // The sum of two uniform bytes minus 255 is triangular with sd ≈ 104.5: cheap,
    // bell-ish noise, four samples per 64-bit draw, scaled in 16.16 fixed point
    // because a float round per channel dominated the whole render.
    let k = (sigma / 104.5 * 65536.0).round() as i32;
    let mut bits = 0u64;
    for (i, px) in pm.data().chunks_exact(4).enumerate() {
        if i % 4 == 0 {
            bits = rng.next_u64();
        }
        let pair = bits >> ((i % 4) * 16);
        let tri = (pair & 0xff) as i32 + ((pair >> 8) & 0xff) as i32 - 255;
        let n = (tri * k + 32768) >> 16;
        // The background is opaque, so premultiplied and straight colour coincide.
        for &c in &px[..3] {
            rgb.push((c as i32 + n).clamp(0, 255) as u8);
        }
    }
    // The buffer has exactly w·h·3 bytes, so this cannot fail; an empty image is
    // the harmless answer if it ever did.
    RgbImage::from_raw(w, h, rgb).unwrap_or_else(|| RgbImage::new(w, h))
}
