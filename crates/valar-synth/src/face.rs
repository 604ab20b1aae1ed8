//! The face's geometry: label-driven shape parameters, curves and 68 iBUG landmarks.
//!
//! Geometry lives in "face units": origin at the face box centre, x right, y down,
//! the box spanning [-1, 1]. One affine map places it in the image, so the drawn
//! shapes and the written landmarks come from the very same numbers.

use rand::Rng;
use tiny_skia::Transform;

/// A point in face units or image pixels.
pub(crate) type Pt = (f32, f32);

/// A quadratic Bézier curve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quad {
    pub p0: Pt,
    pub c: Pt,
    pub p2: Pt,
}

impl Quad {
    /// The curve from `p0` to `p2` that passes through `mid` at t = 0.5.
    pub(crate) fn through(p0: Pt, mid: Pt, p2: Pt) -> Self {
        let c = (
            2.0 * mid.0 - 0.5 * (p0.0 + p2.0),
            2.0 * mid.1 - 0.5 * (p0.1 + p2.1),
        );
        Quad { p0, c, p2 }
    }

    /// The point at parameter `t` in [0, 1].
    pub(crate) fn at(&self, t: f32) -> Pt {
        let s = 1.0 - t;
        (
            s * s * self.p0.0 + 2.0 * s * t * self.c.0 + t * t * self.p2.0,
            s * s * self.p0.1 + 2.0 * s * t * self.c.1 + t * t * self.p2.1,
        )
    }
}

/// Which of the two eyes/brows, as seen in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The image's left (the subject's right), iBUG points 17-21 and 36-41.
    Left,
    /// The image's right, iBUG points 22-26 and 42-47.
    Right,
}

impl Side {
    fn sign(self) -> f32 {
        match self {
            Side::Left => -1.0,
            Side::Right => 1.0,
        }
    }
}

/// One face: where it sits and the shape that encodes its affect.
#[derive(Debug, Clone)]
pub(crate) struct Face {
    /// Face centre in image pixels.
    pub center: Pt,
    /// Image pixels per face unit (half the box side, jittered).
    pub unit: f32,
    /// In-plane rotation in radians.
    pub angle: f32,
    /// Head oval radii and vertical centre.
    pub face_rx: f32,
    pub face_ry: f32,
    pub face_cy: f32,
    /// Eye centres at (±eye_dx, eye_y); half-width and opening (arousal).
    pub eye_dx: f32,
    pub eye_y: f32,
    pub eye_hw: f32,
    pub eye_h: f32,
    /// Brow height (arousal) and how far the inner ends drop (negative valence).
    pub brow_y: f32,
    pub brow_inner_dy: f32,
    pub brow_width: f32,
    /// Nose tip height.
    pub nose_tip: f32,
    /// Mouth line height, half-width, corner lift (valence) and opening (arousal).
    pub mouth_y: f32,
    pub mouth_hw: f32,
    pub mouth_lift: f32,
    pub mouth_open: f32,
    pub lip: f32,
}

fn jitter(rng: &mut impl Rng, amount: f32) -> f32 {
    rng.random_range(-amount..=amount)
}

impl Face {
    /// A face showing (valence, arousal), centred near `center` with a box half-side of `half`.
    pub(crate) fn sample(rng: &mut impl Rng, (v, a): (f64, f64), center: Pt, half: f32) -> Self {
        let (v, a) = (v as f32, a as f32);
        // Arousal as a 0..1 dial: closed eyes and mouth at -1, wide open at +1.
        let ta = (a + 1.0) / 2.0;
        let unit = half * rng.random_range(0.9..=1.0);
        let offset = 0.04 * half;
        let eye_y = -0.17 + jitter(rng, 0.03);
        let eye_h = (0.03 + 0.24 * ta + jitter(rng, 0.02)).max(0.015);
        let mouth_open = (0.2 * ta - 0.01 + jitter(rng, 0.015)).max(0.0);
        Face {
            center: (
                center.0 + jitter(rng, offset),
                center.1 + jitter(rng, offset),
            ),
            unit,
            angle: jitter(rng, 0.14),
            face_rx: 0.74 + jitter(rng, 0.06),
            face_ry: 0.92 + jitter(rng, 0.03),
            face_cy: 0.03 + jitter(rng, 0.02),
            eye_dx: 0.33 + jitter(rng, 0.025),
            eye_y,
            eye_hw: 0.16 + jitter(rng, 0.015),
            eye_h,
            brow_y: eye_y - 0.6 * eye_h - 0.09 - 0.1 * ta + jitter(rng, 0.015),
            brow_inner_dy: -0.08 * v + jitter(rng, 0.01),
            brow_width: 0.065 + jitter(rng, 0.01),
            nose_tip: 0.2 + jitter(rng, 0.02),
            mouth_y: 0.5 + jitter(rng, 0.03),
            mouth_hw: 0.29 + 0.04 * v + jitter(rng, 0.02),
            mouth_lift: 0.2 * v + jitter(rng, 0.012),
            mouth_open,
            lip: 0.055 + jitter(rng, 0.01),
        }
    }

    /// Face units to image pixels.
    pub(crate) fn transform(&self) -> Transform {
        let (s, c) = self.angle.sin_cos();
        let u = self.unit;
        Transform::from_row(u * c, u * s, -u * s, u * c, self.center.0, self.center.1)
    }

    /// Maps a face-unit point into image pixels.
    pub(crate) fn to_image(&self, p: Pt) -> Pt {
        let (s, c) = self.angle.sin_cos();
        let u = self.unit;
        (
            self.center.0 + u * (c * p.0 - s * p.1),
            self.center.1 + u * (s * p.0 + c * p.1),
        )
    }

    /// Upper and lower lid curves of one eye, each from the outer to the inner corner.
    pub(crate) fn eye(&self, side: Side) -> (Quad, Quad) {
        let cx = side.sign() * self.eye_dx;
        let outer = (cx + side.sign() * self.eye_hw, self.eye_y);
        let inner = (cx - side.sign() * self.eye_hw, self.eye_y);
        let upper = Quad::through(outer, (cx, self.eye_y - 0.6 * self.eye_h), inner);
        let lower = Quad::through(outer, (cx, self.eye_y + 0.4 * self.eye_h), inner);
        (upper, lower)
    }

    /// One brow, from its outer to its inner end.
    pub(crate) fn brow(&self, side: Side) -> Quad {
        let sx = side.sign();
        let outer = (sx * (self.eye_dx + 0.2), self.brow_y + 0.03);
        let inner = (sx * (self.eye_dx - 0.17), self.brow_y + self.brow_inner_dy);
        let mid = (sx * (self.eye_dx + 0.01), self.brow_y - 0.035);
        Quad::through(outer, mid, inner)
    }

    /// Mouth curves, left corner to right corner: (outer upper, inner upper, inner lower, outer lower).
    pub(crate) fn mouth(&self) -> [Quad; 4] {
        let y = self.mouth_y;
        let corner_y = y - self.mouth_lift;
        let l = (-self.mouth_hw, corner_y);
        let r = (self.mouth_hw, corner_y);
        let half_open = 0.5 * self.mouth_open;
        [
            Quad::through(l, (0.0, y - half_open - self.lip), r),
            Quad::through(l, (0.0, y - half_open), r),
            Quad::through(l, (0.0, y + half_open), r),
            Quad::through(l, (0.0, y + half_open + self.lip), r),
        ]
    }

    /// A point on the head oval; `theta` = 0 points right, π/2 down to the chin.
    pub(crate) fn oval_point(&self, theta: f32) -> Pt {
        (
            self.face_rx * theta.cos(),
            self.face_cy + self.face_ry * theta.sin(),
        )
    }

    /// The 68 iBUG landmarks in face units.
    pub(crate) fn landmarks_local(&self) -> [Pt; 68] {
        let mut p = [(0.0f32, 0.0f32); 68];
        // Jaw 0-16: from the image-left temple, under the chin, to the right temple.
        let start = std::f32::consts::PI + 0.2;
        let span = std::f32::consts::PI + 0.4;
        for (i, q) in p[0..17].iter_mut().enumerate() {
            *q = self.oval_point(start - span * i as f32 / 16.0);
        }
        // Brows 17-26: left brow outer→inner, right brow inner→outer.
        let (lb, rb) = (self.brow(Side::Left), self.brow(Side::Right));
        for i in 0..5 {
            p[17 + i] = lb.at(i as f32 / 4.0);
            p[22 + i] = rb.at(1.0 - i as f32 / 4.0);
        }
        // Nose 27-30 bridge downwards, 31-35 base left→right.
        for i in 0..4 {
            p[27 + i] = (
                0.0,
                self.eye_y + (self.nose_tip - self.eye_y) * i as f32 / 3.0,
            );
        }
        for (i, (dx, dy)) in [
            (-0.11, 0.04),
            (-0.055, 0.055),
            (0.0, 0.06),
            (0.055, 0.055),
            (0.11, 0.04),
        ]
        .into_iter()
        .enumerate()
        {
            p[31 + i] = (dx, self.nose_tip + dy);
        }
        // Eyes 36-41 (left: outer, upper ×2, inner, lower ×2) and 42-47 (right: inner, upper ×2, outer, lower ×2).
        let (lu, ll) = self.eye(Side::Left);
        p[36] = lu.at(0.0);
        p[37] = lu.at(1.0 / 3.0);
        p[38] = lu.at(2.0 / 3.0);
        p[39] = lu.at(1.0);
        p[40] = ll.at(2.0 / 3.0);
        p[41] = ll.at(1.0 / 3.0);
        let (ru, rl) = self.eye(Side::Right);
        p[42] = ru.at(1.0);
        p[43] = ru.at(2.0 / 3.0);
        p[44] = ru.at(1.0 / 3.0);
        p[45] = ru.at(0.0);
        p[46] = rl.at(1.0 / 3.0);
        p[47] = rl.at(2.0 / 3.0);
        // Mouth 48-59 outer contour clockwise from the left corner, 60-67 inner contour.
        let [ou, iu, il, ol] = self.mouth();
        p[48] = ou.at(0.0);
        for i in 1..=5 {
            p[48 + i] = ou.at(i as f32 / 6.0);
        }
        p[54] = ou.at(1.0);
        for i in 1..=5 {
            p[54 + i] = ol.at(1.0 - i as f32 / 6.0);
        }
        p[60] = iu.at(0.0);
        for i in 1..=3 {
            p[60 + i] = iu.at(i as f32 / 4.0);
        }
        p[64] = iu.at(1.0);
        for i in 1..=3 {
            p[64 + i] = il.at(1.0 - i as f32 / 4.0);
        }
        p
    }

    /// The 68 iBUG landmarks in image pixels.
    pub(crate) fn landmarks(&self) -> [Pt; 68] {
        self.landmarks_local().map(|q| self.to_image(q))
    }
}

/// Landmarks as AffectNet writes them: `x;y;x;y;…` with 2 decimals.
pub(crate) fn format_landmarks(points: &[Pt; 68]) -> String {
    let mut s = String::with_capacity(68 * 14);
    for (i, (x, y)) in points.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        s.push_str(&format!("{x:.2};{y:.2}"));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn face(v: f64, a: f64) -> Face {
        Face::sample(
            &mut ChaCha8Rng::seed_from_u64(5),
            (v, a),
            (100.0, 100.0),
            50.0,
        )
    }

    #[test]
    fn landmarks_follow_ibug_layout() {
        let p = face(0.3, 0.2).landmarks_local();
        // Chin is the lowest jaw point, jaw runs left to right.
        assert!(p[8].1 > p[0].1 && p[8].1 > p[16].1);
        assert!(p[0].0 < p[8].0 && p[8].0 < p[16].0);
        // Brows above eyes, eyes above nose tip, nose above mouth.
        assert!(p[19].1 < p[37].1 && p[24].1 < p[44].1);
        assert!(p[37].1 < p[30].1 && p[30].1 < p[51].1);
        // Left features on the left; mouth corners are the extremes of the mouth.
        assert!(p[36].0 < p[39].0 && p[39].0 < p[42].0 && p[42].0 < p[45].0);
        assert!(p[48].0 < p[51].0 && p[51].0 < p[54].0);
        assert!(p[51].1 <= p[62].1 && p[62].1 <= p[66].1 && p[66].1 <= p[57].1);
        // Every point inside the box.
        assert!(p.iter().all(|q| q.0.abs() <= 1.0 && q.1.abs() <= 1.0));
    }

    #[test]
    fn shape_moves_with_labels() {
        let smile = face(1.0, 0.0).landmarks_local();
        let frown = face(-1.0, 0.0).landmarks_local();
        // Mouth corners rise above the lip centre when smiling, sink below when frowning.
        assert!(smile[48].1 < smile[66].1 - 0.1);
        assert!(frown[48].1 > frown[66].1 + 0.1);
        let calm = face(0.0, -1.0).landmarks_local();
        let excited = face(0.0, 1.0).landmarks_local();
        let eye = |p: &[Pt; 68]| p[41].1 - p[37].1;
        let mouth = |p: &[Pt; 68]| p[66].1 - p[62].1;
        assert!(eye(&excited) > eye(&calm) + 0.15);
        assert!(mouth(&excited) > mouth(&calm) + 0.15);
        assert!(excited[19].1 < calm[19].1 - 0.1, "brows rise with arousal");
    }

    #[test]
    fn image_transform_matches_point_map() {
        let f = face(0.1, 0.1);
        let t = f.transform();
        let mut q = tiny_skia::Point::from_xy(0.3, -0.4);
        t.map_point(&mut q);
        let r = f.to_image((0.3, -0.4));
        assert!((q.x - r.0).abs() < 1e-3 && (q.y - r.1).abs() < 1e-3);
    }

    #[test]
    fn landmark_string_has_136_numbers() {
        let s = format_landmarks(&face(0.0, 0.0).landmarks());
        let nums: Vec<f32> = s.split(';').map(|x| x.parse().unwrap()).collect();
        assert_eq!(nums.len(), 136);
    }
}
