//! Painting primitives, the background and an easy face, which [`crate::hard`] builds on;
//! [`crate::picture`] puts them together into one image.

use rand::Rng;
use tiny_skia::{
    Color, FillRule, GradientStop, LineCap, LinearGradient, Paint, Path, PathBuilder, Pixmap,
    Point, RadialGradient, Rect, Shader, SpreadMode, Stroke, Transform,
};

use crate::face::{Face, Quad, Side};

/// A colour as linear-ish RGB fractions in [0, 1].
pub(crate) type Rgb = [f32; 3];

pub(crate) fn color(c: Rgb, alpha: f32) -> Color {
    let ch = |x: f32| x.clamp(0.0, 1.0);
    Color::from_rgba(ch(c[0]), ch(c[1]), ch(c[2]), alpha.clamp(0.0, 1.0)).unwrap_or(Color::BLACK)
}

pub(crate) fn scale(c: Rgb, k: f32) -> Rgb {
    [c[0] * k, c[1] * k, c[2] * k]
}

pub(crate) fn random_rgb(rng: &mut impl Rng, lo: f32, hi: f32) -> Rgb {
    [
        rng.random_range(lo..=hi),
        rng.random_range(lo..=hi),
        rng.random_range(lo..=hi),
    ]
}

pub(crate) fn solid(c: Rgb) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(color(c, 1.0));
    p.anti_alias = true;
    p
}

pub(crate) fn quad_path(q: &Quad) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(q.p0.0, q.p0.1);
    pb.quad_to(q.c.0, q.c.1, q.p2.0, q.p2.1);
    pb.finish()
}

/// The closed region between two curves that share their end points.
pub(crate) fn lens_path(a: &Quad, b: &Quad) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(a.p0.0, a.p0.1);
    pb.quad_to(a.c.0, a.c.1, a.p2.0, a.p2.1);
    pb.quad_to(b.c.0, b.c.1, b.p0.0, b.p0.1);
    pb.close();
    pb.finish()
}

pub(crate) fn oval_path(cx: f32, cy: f32, rx: f32, ry: f32) -> Option<Path> {
    Rect::from_ltrb(cx - rx, cy - ry, cx + rx, cy + ry).and_then(PathBuilder::from_oval)
}

pub(crate) fn stroke(width: f32) -> Stroke {
    Stroke {
        width,
        line_cap: LineCap::Round,
        ..Stroke::default()
    }
}

/// Fills the canvas with a two-colour gradient and a few translucent blobs.
pub(crate) fn paint_background(pm: &mut Pixmap, rng: &mut impl Rng) {
    let (w, h) = (pm.width() as f32, pm.height() as f32);
    let c1 = random_rgb(rng, 0.05, 0.95);
    let c2 = random_rgb(rng, 0.05, 0.95);
    let p1 = Point::from_xy(rng.random_range(0.0..=w), rng.random_range(0.0..=h));
    let p2 = Point::from_xy(rng.random_range(0.0..=w), rng.random_range(0.0..=h) + h);
    let shader = LinearGradient::new(
        p1,
        p2,
        vec![
            GradientStop::new(0.0, color(c1, 1.0)),
            GradientStop::new(1.0, color(c2, 1.0)),
        ],
        SpreadMode::Pad,
        Transform::identity(),
    )
    .unwrap_or(Shader::SolidColor(color(c1, 1.0)));
    let paint = Paint {
        shader,
        anti_alias: false,
        ..Paint::default()
    };
    if let Some(rect) = Rect::from_xywh(0.0, 0.0, w, h) {
        pm.fill_rect(rect, &paint, Transform::identity(), None);
    }
    for _ in 0..rng.random_range(2..=6) {
        let c = random_rgb(rng, 0.0, 1.0);
        let (cx, cy) = (rng.random_range(0.0..=w), rng.random_range(0.0..=h));
        let (rx, ry) = (
            rng.random_range(0.03..=0.4) * w,
            rng.random_range(0.03..=0.4) * h,
        );
        let mut paint = solid(c);
        paint.set_color(color(c, rng.random_range(0.15..=0.5)));
        if let Some(path) = oval_path(cx, cy, rx, ry) {
            let angle = rng.random_range(0.0..=180.0);
            let t = Transform::from_rotate_at(angle, cx, cy);
            pm.fill_path(&path, &paint, FillRule::Winding, t, None);
        }
    }
}

/// Draws the face: hair, shaded head, nose, eyes, brows and mouth.
pub(crate) fn paint_face(pm: &mut Pixmap, rng: &mut impl Rng, f: &Face) {
    let t = f.transform();
    // Skin from dark to pale with a warm/cool tint; features are much darker so they
    // stay visible after grayscale conversion and downscaling.
    let lum = rng.random_range(0.3..=0.92);
    let tint = rng.random_range(-0.06..=0.12);
    let skin = [lum * (1.0 + tint), lum, lum * (1.0 - 1.3 * tint)];
    let dark = scale(skin, rng.random_range(0.1..=0.3));
    let hair = scale(random_rgb(rng, 0.3, 1.0), rng.random_range(0.05..=0.45));
    let brow = if rng.random_bool(0.5) { hair } else { dark };
    let lips = [skin[0] * 0.8, skin[1] * 0.55, skin[2] * 0.55];

    if rng.random_bool(0.7) {
        let hair_ry = f.face_ry * rng.random_range(0.6..=0.8);
        if let Some(p) = oval_path(0.0, f.face_cy - 0.3, f.face_rx * 1.08, hair_ry) {
            pm.fill_path(&p, &solid(hair), FillRule::Winding, t, None);
        }
    }
    if let Some(p) = oval_path(0.0, f.face_cy, f.face_rx, f.face_ry) {
        let centre = Point::from_xy(0.0, f.face_cy - 0.1);
        let shader = RadialGradient::new(
            centre,
            centre,
            1.0,
            vec![
                GradientStop::new(0.0, color(scale(skin, 1.06), 1.0)),
                GradientStop::new(1.0, color(scale(skin, 0.8), 1.0)),
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

    // Nose: a soft bridge and base, darker than skin but far lighter than the features.
    let nose = scale(skin, 0.72);
    let mut pb = PathBuilder::new();
    pb.move_to(0.02, f.eye_y + 0.06);
    pb.quad_to(0.05, f.nose_tip - 0.05, 0.0, f.nose_tip + 0.02);
    pb.move_to(-0.11, f.nose_tip + 0.04);
    pb.quad_to(0.0, f.nose_tip + 0.1, 0.11, f.nose_tip + 0.04);
    if let Some(p) = pb.finish() {
        pm.stroke_path(&p, &solid(nose), &stroke(0.03), t, None);
    }

    paint_features(pm, f, t, dark, brow, lips);
}

/// The features that carry the affect, in the face's own transform `t`: eyes (filled lens
/// and lash line), brows, the lips and, when open, the mouth. Easy and hard faces alike.
pub(crate) fn paint_features(
    pm: &mut Pixmap,
    f: &Face,
    t: Transform,
    dark: Rgb,
    brow: Rgb,
    lips: Rgb,
) {
    for side in [Side::Left, Side::Right] {
        let (upper, lower) = f.eye(side);
        if let Some(p) = lens_path(&upper, &lower) {
            pm.fill_path(&p, &solid(dark), FillRule::Winding, t, None);
        }
        // The lash line keeps a nearly closed eye visible as a curve.
        if let Some(p) = quad_path(&upper) {
            pm.stroke_path(&p, &solid(dark), &stroke(0.035), t, None);
        }
        if let Some(p) = quad_path(&f.brow(side)) {
            pm.stroke_path(&p, &solid(brow), &stroke(f.brow_width), t, None);
        }
    }

    let [outer_up, inner_up, inner_low, outer_low] = f.mouth();
    if let Some(p) = lens_path(&outer_up, &outer_low) {
        pm.fill_path(&p, &solid(lips), FillRule::Winding, t, None);
    }
    if f.mouth_open > 0.005
        && let Some(p) = lens_path(&inner_up, &inner_low)
    {
        pm.fill_path(&p, &solid(dark), FillRule::Winding, t, None);
    }
    if let Some(p) = quad_path(&inner_up) {
        pm.stroke_path(&p, &solid(dark), &stroke(0.035), t, None);
    }
}
