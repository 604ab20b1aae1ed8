//! The nuisance of `--difficulty hard`: what makes real faces hard to read.
//!
//! On a real photograph the affect cue (a few pixels of mouth curve and eye opening
//! at 48×48) is small next to who the person is, how the head is turned, how it is
//! lit, what covers it and how the picture was taken. These painters add that
//! variation around the (already weakened, see [`crate::face::HARD_CUE`]) cue:
//! identity accessories (hair styles, beards, glasses), occluding hands and hair,
//! background clutter, directional light and cast shadows, and afterwards low
//! resolution and blur. Every draw comes from the image's own random stream.

use image::RgbImage;
use image::imageops::{self, FilterType};
use rand::Rng;
use tiny_skia::{
    FillRule, GradientStop, LinearGradient, Paint, PathBuilder, Pixmap, Point, RadialGradient,
    Rect, Shader, SpreadMode, Transform,
};

use crate::face::{Face, Pt, Side};
use crate::render::{Rgb, color, oval_path, paint_features, random_rgb, scale, solid, stroke};

/// `solid` with an alpha.
fn translucent(c: Rgb, alpha: f32) -> Paint<'static> {
    let mut p = solid(c);
    p.set_color(color(c, alpha));
    p
}

/// A skin colour from very dark to pale, warm or cool.
fn skin_tone(rng: &mut impl Rng) -> Rgb {
    let lum = rng.random_range(0.18..=0.95);
    let tint = rng.random_range(-0.06..=0.14);
    [lum * (1.0 + tint), lum, lum * (1.0 - 1.3 * tint)]
}

/// Unrelated objects in front of the background: boxes, poles and blobs, some of
/// them as dark and as large as facial features.
pub(crate) fn paint_clutter(pm: &mut Pixmap, rng: &mut impl Rng) {
    let (w, h) = (pm.width() as f32, pm.height() as f32);
    for _ in 0..rng.random_range(3..=10) {
        let c = random_rgb(rng, 0.0, 1.0);
        let paint = translucent(c, rng.random_range(0.4..=1.0));
        let (cx, cy) = (rng.random_range(0.0..=w), rng.random_range(0.0..=h));
        let angle = rng.random_range(0.0..=180.0);
        let at = Transform::from_rotate_at(angle, cx, cy);
        match rng.random_range(0..3) {
            0 => {
                let (rw, rh) = (
                    rng.random_range(0.05..=0.5) * w,
                    rng.random_range(0.05..=0.5) * h,
                );
                if let Some(r) = Rect::from_xywh(cx - rw / 2.0, cy - rh / 2.0, rw, rh) {
                    pm.fill_rect(r, &paint, at, None);
                }
            }
            1 => {
                let mut pb = PathBuilder::new();
                let len = rng.random_range(0.2..=1.2) * w;
                pb.move_to(cx - len / 2.0, cy);
                pb.line_to(cx + len / 2.0, cy);
                if let Some(p) = pb.finish() {
                    let width = rng.random_range(0.005..=0.05) * w;
                    pm.stroke_path(&p, &paint, &stroke(width), at, None);
                }
            }
            _ => {
                let (rx, ry) = (
                    rng.random_range(0.02..=0.2) * w,
                    rng.random_range(0.02..=0.2) * h,
                );
                if let Some(p) = oval_path(cx, cy, rx, ry) {
                    pm.fill_path(&p, &paint, FillRule::Winding, at, None);
                }
            }
        }
    }
}

/// The colours of one person's face, drawn before anything is painted.
struct Palette {
    skin: Rgb,
    /// Eyes and mouth opening.
    dark: Rgb,
    hair: Rgb,
    brow: Rgb,
    lips: Rgb,
}

impl Palette {
    fn draw(rng: &mut impl Rng) -> Self {
        let skin = skin_tone(rng);
        // Feature contrast varies between people and photographs: some eyes and
        // mouths are nearly as light as the skin.
        let dark = scale(skin, rng.random_range(0.1..=0.35));
        let hair = scale(random_rgb(rng, 0.3, 1.0), rng.random_range(0.05..=0.95));
        let brow = if rng.random_bool(0.5) { hair } else { dark };
        let lips = [
            skin[0] * rng.random_range(0.7..=0.95),
            skin[1] * rng.random_range(0.55..=0.85),
            skin[2] * rng.random_range(0.55..=0.85),
        ];
        Palette {
            skin,
            dark,
            hair,
            brow,
            lips,
        }
    }
}

/// Starts a sub-path at `p`.
fn move_to(pb: &mut PathBuilder, p: Pt) {
    pb.move_to(p.0, p.1);
}

/// A quadratic curve through control point `c` to `p`.
fn quad_to(pb: &mut PathBuilder, c: Pt, p: Pt) {
    pb.quad_to(c.0, c.1, p.0, p.1);
}

/// The face of one person: head and hair style, skin, features, and maybe a beard,
/// a moustache, fringe or glasses, all independent of the affect. Each part draws from
/// `rng` in this order, so the same seed paints the same face.
pub(crate) fn paint_face(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face) {
    let t = f.transform();
    let colours = Palette::draw(rng);
    paint_head(pm, rng, f, &colours);
    let bearded = paint_beard(pm, rng, f, colours.hair);
    paint_nose(pm, rng, f, colours.skin);
    paint_features(pm, f, t, colours.dark, colours.brow, colours.lips);
    paint_moustache(pm, rng, f, colours.hair, bearded);
    paint_fringe(pm, rng, f, colours.hair);
    paint_glasses(pm, rng, f);
}

/// Long hair behind the head (sometimes), the shaded skin of the head, and hair on top
/// (mostly).
fn paint_head(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face, colours: &Palette) {
    let t = f.transform();
    let (skin, hair) = (colours.skin, colours.hair);
    // Long hair falls behind the head and frames it down to the jaw.
    if rng.random_bool(0.35)
        && let Some(p) = oval_path(0.0, f.face_cy + 0.15, f.face_rx * 1.3, f.face_ry * 1.1)
    {
        pm.fill_path(&p, &solid(hair), FillRule::Winding, t, None);
    }
    if let Some(p) = oval_path(0.0, f.face_cy, f.face_rx, f.face_ry) {
        let centre = Point::from_xy(0.0, f.face_cy - 0.1);
        let shader = RadialGradient::new(
            centre,
            centre,
            1.0,
            vec![
                GradientStop::new(0.0, color(scale(skin, 1.06), 1.0)),
                GradientStop::new(1.0, color(scale(skin, rng.random_range(0.6..=0.9)), 1.0)),
            ],
            SpreadMode::Pad,
            Transform::identity(),
        )
        .unwrap_or(Shader::SolidColor(color(skin, 1.0)));
        let paint = Paint {
            shader,
            anti_alias: true,
            ..Paint::default()
        };
        pm.fill_path(&p, &paint, FillRule::Winding, t, None);
    }
    if rng.random_bool(0.8) {
        let ry = f.face_ry * rng.random_range(0.5..=0.85);
        if let Some(p) = oval_path(0.0, f.face_cy - 0.35, f.face_rx * 1.08, ry) {
            pm.fill_path(&p, &solid(hair), FillRule::Winding, t, None);
        }
    }
}

/// A beard (sometimes); returns whether there is one. It covers the jaw and the skin
/// around the mouth, so the dark mouth opening no longer stands out against skin.
fn paint_beard(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face, hair: Rgb) -> bool {
    let bearded = rng.random_bool(0.18);
    if bearded
        && let Some(p) = oval_path(
            0.0,
            f.mouth_y + 0.12,
            f.face_rx * 0.85,
            rng.random_range(0.3..=0.45),
        )
    {
        let paint = translucent(hair, rng.random_range(0.6..=0.95));
        pm.fill_path(&p, &paint, FillRule::Winding, f.transform(), None);
    }
    bearded
}

/// The nose: a line down its bridge and the curve under its tip, a little darker than
/// the skin.
fn paint_nose(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face, skin: Rgb) {
    let nose = scale(skin, rng.random_range(0.6..=0.85));
    let mut pb = PathBuilder::new();
    move_to(&mut pb, f.warp((0.02, f.eye_y + 0.06)));
    quad_to(
        &mut pb,
        f.warp((0.05, f.nose_tip - 0.05)),
        f.warp((0.0, f.nose_tip + 0.02)),
    );
    move_to(&mut pb, f.warp((-0.11, f.nose_tip + 0.04)));
    quad_to(
        &mut pb,
        f.warp((0.0, f.nose_tip + 0.1)),
        f.warp((0.11, f.nose_tip + 0.04)),
    );
    if let Some(p) = pb.finish() {
        pm.stroke_path(&p, &solid(nose), &stroke(0.03), f.transform(), None);
    }
}

/// A moustache (mostly with a beard, rarely without) hides the upper lip and the mouth
/// corners' curve.
fn paint_moustache(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face, hair: Rgb, bearded: bool) {
    if rng.random_bool(if bearded { 0.6 } else { 0.06 }) {
        let y = f.mouth_y - 0.5 * f.mouth_open - f.lip - 0.03;
        let mut pb = PathBuilder::new();
        move_to(&mut pb, f.warp((-f.mouth_hw * 1.05, y + 0.05)));
        quad_to(
            &mut pb,
            f.warp((0.0, y - 0.06)),
            f.warp((f.mouth_hw * 1.05, y + 0.05)),
        );
        if let Some(p) = pb.finish() {
            let width = rng.random_range(0.04..=0.08);
            pm.stroke_path(&p, &solid(hair), &stroke(width), f.transform(), None);
        }
    }
}

/// A fringe down to (or over) the brows (sometimes) hides their height.
fn paint_fringe(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face, hair: Rgb) {
    if rng.random_bool(0.2) {
        let bottom = f.brow_y + rng.random_range(-0.08..=0.06);
        if let Some(p) = oval_path(0.0, bottom - 0.4, f.face_rx * 1.02, 0.4) {
            pm.fill_path(&p, &solid(hair), FillRule::Winding, f.transform(), None);
        }
    }
}

/// Glasses (sometimes) frame the eyes; dark ones hide how open they are.
fn paint_glasses(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face) {
    if !rng.random_bool(0.22) {
        return;
    }
    let t = f.transform();
    let frame = scale(random_rgb(rng, 0.2, 1.0), rng.random_range(0.05..=0.7));
    let width = rng.random_range(0.02..=0.06);
    let sunglasses = rng.random_bool(0.25);
    let lens_alpha = rng.random_range(0.75..=0.95);
    let (rx, ry) = (f.eye_hw * 1.45, rng.random_range(0.1..=0.16));
    let centres = [Side::Left, Side::Right].map(|side| {
        let x = if side == Side::Left {
            -f.eye_dx
        } else {
            f.eye_dx
        };
        f.warp((x, f.eye_y + 0.01))
    });
    for c in centres {
        if let Some(p) = oval_path(c.0, c.1, rx, ry) {
            if sunglasses {
                let paint = translucent(scale(frame, 0.3), lens_alpha);
                pm.fill_path(&p, &paint, FillRule::Winding, t, None);
            }
            pm.stroke_path(&p, &solid(frame), &stroke(width), t, None);
        }
    }
    let mut pb = PathBuilder::new();
    pb.move_to(centres[0].0 + rx, centres[0].1);
    pb.line_to(centres[1].0 - rx, centres[1].1);
    if let Some(p) = pb.finish() {
        pm.stroke_path(&p, &solid(frame), &stroke(width), t, None);
    }
}

/// Things in front of the face: a hand resting on the chin, cheek, mouth or over an
/// eye, and loose strands of hair.
pub(crate) fn paint_occluders(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face) {
    let t = f.transform();
    if rng.random_bool(0.2) {
        let side = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
        let target: Pt = match rng.random_range(0..4) {
            0 => (side * 0.1, f.mouth_y),
            1 => (side * 0.5, 0.3),
            2 => (0.0, 0.85),
            _ => (side * f.eye_dx, f.eye_y),
        };
        let skin = skin_tone(rng);
        let (prx, pry) = (rng.random_range(0.2..=0.32), rng.random_range(0.16..=0.26));
        // The palm sits below or beside the target with the fingers reaching over it.
        let angle: f32 = rng.random_range(-2.4..=-0.7);
        let reach = rng.random_range(0.2..=0.4);
        let palm = (
            target.0 - angle.cos() * reach,
            target.1 - angle.sin() * reach,
        );
        let hand =
            Transform::from_rotate_at(angle.to_degrees() + 90.0, palm.0, palm.1).post_concat(t);
        if let Some(p) = oval_path(palm.0, palm.1, prx, pry) {
            pm.fill_path(&p, &solid(skin), FillRule::Winding, hand, None);
        }
        let finger_w = rng.random_range(0.06..=0.1);
        let finger_len = rng.random_range(0.25..=0.45);
        let mut pb = PathBuilder::new();
        for k in 0..4 {
            let x = palm.0 - prx * 0.75 + prx * 0.5 * k as f32;
            pb.move_to(x, palm.1);
            pb.line_to(
                x,
                palm.1 - pry - finger_len * (1.0 - 0.12 * (k as f32 - 1.5).abs()),
            );
        }
        if let Some(p) = pb.finish() {
            pm.stroke_path(
                &p,
                &solid(scale(skin, 0.8)),
                &stroke(finger_w * 1.15),
                hand,
                None,
            );
            pm.stroke_path(&p, &solid(skin), &stroke(finger_w), hand, None);
        }
    }
    if rng.random_bool(0.1) {
        let hair = scale(random_rgb(rng, 0.3, 1.0), rng.random_range(0.05..=0.9));
        let x0 = rng.random_range(-0.7..=0.7);
        let x1 = x0 + rng.random_range(-0.5..=0.5);
        let mut pb = PathBuilder::new();
        pb.move_to(x0, -1.0);
        pb.quad_to(
            (x0 + x1) / 2.0 + rng.random_range(-0.3..=0.3),
            0.0,
            x1,
            rng.random_range(0.0..=0.8),
        );
        if let Some(p) = pb.finish() {
            let width = rng.random_range(0.05..=0.16);
            pm.stroke_path(
                &p,
                &translucent(hair, rng.random_range(0.6..=1.0)),
                &stroke(width),
                t,
                None,
            );
        }
    }
}

/// Light from one side, a cast shadow, a bright spot, and over- or under-exposure.
pub(crate) fn paint_lighting(pm: &mut Pixmap, rng: &mut impl Rng, face: Option<&Face>) {
    let (w, h) = (pm.width() as f32, pm.height() as f32);
    let full = Rect::from_xywh(0.0, 0.0, w, h);
    let centre = face.map_or((w / 2.0, h / 2.0), |f| f.center);
    let reach = face.map_or(w.max(h) / 2.0, |f| f.unit * 1.2);
    // A gradient across the face from shadowed to lit, in any direction.
    let angle: f32 = rng.random_range(0.0..=std::f32::consts::TAU);
    let (dx, dy) = (angle.cos() * reach, angle.sin() * reach);
    let depth = rng.random_range(0.1..=0.5);
    if let (Some(shader), Some(rect)) = (
        LinearGradient::new(
            Point::from_xy(centre.0 - dx, centre.1 - dy),
            Point::from_xy(centre.0 + dx, centre.1 + dy),
            vec![
                GradientStop::new(0.0, color([0.0; 3], depth)),
                GradientStop::new(1.0, color([0.0; 3], 0.0)),
            ],
            SpreadMode::Pad,
            Transform::identity(),
        ),
        full,
    ) {
        let paint = Paint {
            shader,
            anti_alias: false,
            ..Paint::default()
        };
        pm.fill_rect(rect, &paint, Transform::identity(), None);
    }
    // A hard-edged cast shadow over part of the face.
    if rng.random_bool(0.4) {
        let off = rng.random_range(-0.6..=0.6) * reach;
        let big = 4.0 * w.max(h);
        let turn = rng.random_range(0.0..=360.0);
        if let Some(r) = Rect::from_xywh(centre.0 + off, centre.1 - big / 2.0, big, big) {
            let at = Transform::from_rotate_at(turn, centre.0, centre.1);
            pm.fill_rect(
                r,
                &translucent([0.0; 3], rng.random_range(0.15..=0.4)),
                at,
                None,
            );
        }
    }
    // A specular or window highlight.
    if rng.random_bool(0.3) {
        let c = Point::from_xy(
            centre.0 + rng.random_range(-1.0..=1.0) * reach,
            centre.1 + rng.random_range(-1.0..=1.0) * reach,
        );
        let r = rng.random_range(0.3..=1.0) * reach;
        if let (Some(shader), Some(rect)) = (
            RadialGradient::new(
                c,
                c,
                r,
                vec![
                    GradientStop::new(0.0, color([1.0; 3], rng.random_range(0.2..=0.6))),
                    GradientStop::new(1.0, color([1.0; 3], 0.0)),
                ],
                SpreadMode::Pad,
                Transform::identity(),
            ),
            full,
        ) {
            let paint = Paint {
                shader,
                anti_alias: false,
                ..Paint::default()
            };
            pm.fill_rect(rect, &paint, Transform::identity(), None);
        }
    }
    // Exposure: a veil of black or white that flattens the contrast.
    if rng.random_bool(0.5)
        && let Some(rect) = full
    {
        let tone = if rng.random_bool(0.5) {
            [0.0; 3]
        } else {
            [1.0; 3]
        };
        let veil = translucent(tone, rng.random_range(0.05..=0.3));
        pm.fill_rect(rect, &veil, Transform::identity(), None);
    }
}

/// What a camera and the web do to a photo: a small source upscaled (a face that
/// was only a few dozen pixels across) and out-of-focus or motion-free blur.
pub(crate) fn degrade(img: RgbImage, rng: &mut impl Rng) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut img = img;
    if rng.random_bool(0.25) {
        let k = rng.random_range(0.2..=0.45);
        let (sw, sh) = (
            ((w as f32 * k) as u32).max(12),
            ((h as f32 * k) as u32).max(12),
        );
        let small = imageops::resize(&img, sw, sh, FilterType::Triangle);
        img = imageops::resize(&small, w, h, FilterType::Triangle);
    }
    if rng.random_bool(0.4) {
        // In pixels of a 224-pixel face, so the blur means the same at every size.
        let sigma = rng.random_range(0.5..=2.5) * w.min(h) as f32 / 224.0;
        img = imageops::fast_blur(&img, sigma);
    }
    img
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn mean_luma(pm: &Pixmap) -> f64 {
        let d = pm.data();
        d.chunks_exact(4)
            .map(|p| p[0] as f64 + p[1] as f64 + p[2] as f64)
            .sum::<f64>()
            / (3.0 * (d.len() / 4) as f64)
    }

    #[test]
    fn lighting_darkens_on_average_and_varies() {
        let mut changes = vec![];
        for seed in 0..40 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut pm = Pixmap::new(64, 64).unwrap();
            pm.fill(tiny_skia::Color::from_rgba8(128, 128, 128, 255));
            paint_lighting(&mut pm, &mut rng, None);
            changes.push(mean_luma(&pm) - 128.0);
        }
        let mean = changes.iter().sum::<f64>() / 40.0;
        let spread = changes.iter().cloned().fold(f64::MIN, f64::max)
            - changes.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            mean < -5.0,
            "lighting should mostly shade, mean change {mean}"
        );
        assert!(
            spread > 40.0,
            "lighting should vary between images, spread {spread}"
        );
    }

    #[test]
    fn degrade_keeps_the_size_and_softens_edges() {
        let mut img = RgbImage::new(96, 96);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb(if x % 2 == 0 { [255; 3] } else { [0; 3] });
        }
        let edge = |im: &RgbImage| {
            im.enumerate_pixels()
                .filter(|(x, _, _)| *x > 0)
                .map(|(x, y, p)| (p.0[0] as i32 - im.get_pixel(x - 1, y).0[0] as i32).abs())
                .sum::<i32>()
        };
        let sharp = edge(&img);
        let mut softened = 0;
        for seed in 0..20 {
            let out = degrade(img.clone(), &mut ChaCha8Rng::seed_from_u64(seed));
            assert_eq!(out.dimensions(), (96, 96));
            if edge(&out) < sharp / 2 {
                softened += 1;
            }
        }
        // About two thirds of images are blurred or downscaled.
        assert!((8..=19).contains(&softened), "{softened} of 20 softened");
    }
}
