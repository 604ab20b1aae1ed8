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
    /// Head yaw and pitch in radians (hard faces only; 0 leaves features unwarped).
    pub yaw: f32,
    pub pitch: f32,
}

/// How strongly a hard face's features follow its affect, relative to an easy face.
/// The calibration knob of `--difficulty hard` (README, "Hard synthetic faces").
/// It is above 1 because a hard face's resting features vary from person to
/// person by more than the whole easy cue, and the lighting, blur and occlusion
/// on top hide much of it: at 1.0 and below the reference recipe learned nothing
/// at all from 3,000 faces, while on real faces it reaches CCC ≈ 0.4.
pub(crate) const HARD_CUE: f32 = 1.5;

/// How far hard faces are moved, scaled, rolled and turned from a frontal, centred
/// face, as a share of the widest pose tried (±12% offset, 28% smaller, ±20° roll,
/// ±26° yaw, ±17° pitch). Calibrated with [`HARD_CUE`]: wider poses left the
/// reference recipe unable to learn anything from 3,000 faces, unlike real ones,
/// which face detectors crop and roughly align.
pub(crate) const HARD_POSE: f32 = 0.3;

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
            yaw: 0.0,
            pitch: 0.0,
        }
    }

    /// A hard face showing (valence, arousal): the affect moves the same features as
    /// on an easy face, by [`HARD_CUE`] as much and scaled by how expressive this
    /// person is, on top of a resting face that is this person's own (eye opening,
    /// mouth curve and brow height, face shape, feature placement), in a pose.
    pub(crate) fn sample_hard(
        rng: &mut impl Rng,
        (v, a): (f64, f64),
        center: Pt,
        half: f32,
    ) -> Self {
        let (v, a) = (v as f32, a as f32);
        // Arousal as a dial centred on 0 so the resting values are the person's own.
        let ta = a / 2.0;
        let gain = HARD_CUE * rng.random_range(0.5..=1.5);
        let geo = HARD_POSE;
        let unit = half * rng.random_range((1.0 - 0.28 * geo)..=1.0);
        let offset = 0.12 * geo * half;
        let eye_y = -0.17 + jitter(rng, 0.07);
        let eye_h = (rng.random_range(0.07..=0.2) + gain * 0.24 * ta).max(0.015);
        let mouth_open = (rng.random_range(-0.06..=0.07) + gain * 0.2 * ta).max(0.0);
        let brow_gap = rng.random_range(0.05..=0.15);
        Face {
            center: (
                center.0 + jitter(rng, offset),
                center.1 + jitter(rng, offset),
            ),
            unit,
            angle: jitter(rng, 0.35 * geo),
            face_rx: rng.random_range(0.6..=0.86),
            face_ry: rng.random_range(0.82..=0.98),
            face_cy: 0.03 + jitter(rng, 0.04),
            eye_dx: rng.random_range(0.27..=0.38),
            eye_y,
            eye_hw: rng.random_range(0.12..=0.19),
            eye_h,
            brow_y: eye_y - 0.6 * eye_h - brow_gap - gain * 0.1 * ta,
            brow_inner_dy: jitter(rng, 0.05) - gain * 0.08 * v,
            brow_width: rng.random_range(0.03..=0.1),
            nose_tip: 0.2 + jitter(rng, 0.05),
            mouth_y: 0.5 + jitter(rng, 0.07),
            mouth_hw: rng.random_range(0.22..=0.34) + gain * 0.04 * v,
            mouth_lift: jitter(rng, 0.07) + gain * 0.2 * v,
            mouth_open,
            lip: rng.random_range(0.03..=0.08),
            yaw: jitter(rng, 0.45 * geo),
            pitch: jitter(rng, 0.3 * geo),
        }
    }

    /// Moves a face-unit feature point as turning the head by yaw and pitch would:
    /// the point rides a sphere, so it shifts and foreshortens. The identity when
    /// the head faces the camera, which keeps easy faces exactly as they were.
    pub(crate) fn warp(&self, p: Pt) -> Pt {
        if self.yaw == 0.0 && self.pitch == 0.0 {
            return p;
        }
        // The head is an ellipsoid as wide and tall as its oval: a feature at x rides
        // the circle of radius face_rx, so features near the centre move most and
        // those near the silhouette foreshorten instead of leaving the head.
        let turn = |x: f32, r: f32, by: f32| {
            r * ((x / r).clamp(-1.0, 1.0).asin() + by)
                .clamp(-1.5, 1.5)
                .sin()
        };
        (
            turn(p.0, self.face_rx, self.yaw),
            turn(p.1 - self.face_cy, self.face_ry, self.pitch) + self.face_cy,
        )
    }

    /// A curve with its three points warped by the head pose.
    fn warp_quad(&self, q: Quad) -> Quad {
        Quad {
            p0: self.warp(q.p0),
            c: self.warp(q.c),
            p2: self.warp(q.p2),
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
        (self.warp_quad(upper), self.warp_quad(lower))
    }

    /// One brow, from its outer to its inner end.
    pub(crate) fn brow(&self, side: Side) -> Quad {
        let sx = side.sign();
        let outer = (sx * (self.eye_dx + 0.2), self.brow_y + 0.03);
        let inner = (sx * (self.eye_dx - 0.17), self.brow_y + self.brow_inner_dy);
        let mid = (sx * (self.eye_dx + 0.01), self.brow_y - 0.035);
        self.warp_quad(Quad::through(outer, mid, inner))
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
        .map(|q| self.warp_quad(q))
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
            p[27 + i] = self.warp((
                0.0,
                self.eye_y + (self.nose_tip - self.eye_y) * i as f32 / 3.0,
            ));
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
            p[31 + i] = self.warp((dx, self.nose_tip + dy));
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

    fn hard(seed: u64, v: f64, a: f64) -> Face {
        Face::sample_hard(
            &mut ChaCha8Rng::seed_from_u64(seed),
            (v, a),
            (100.0, 100.0),
            50.0,
        )
    }

    #[test]
    fn hard_faces_keep_the_layout_and_hide_the_cue_among_identities() {
        let eye = |p: &[Pt; 68]| p[41].1 - p[37].1;
        let corner = |p: &[Pt; 68]| p[66].1 - p[48].1;
        for seed in 0..50 {
            let p = hard(seed, 0.3, 0.3).landmarks_local();
            assert!(p[36].0 < p[39].0 && p[42].0 < p[45].0, "seed {seed}");
            assert!(p[48].0 < p[51].0 && p[51].0 < p[54].0, "seed {seed}");
            assert!(p[19].1 < p[37].1 && p[30].1 < p[51].1, "seed {seed}");
            assert!(p.iter().all(|q| q.0.abs() <= 1.1 && q.1.abs() <= 1.1));
            // Same person (same seed), other affect: the cue moves the features the
            // right way.
            let (hi, lo) = (hard(seed, 0.0, 1.0), hard(seed, 0.0, -1.0));
            let d_eye = eye(&hi.landmarks_local()) - eye(&lo.landmarks_local());
            let (smile, frown) = (hard(seed, 1.0, 0.0), hard(seed, -1.0, 0.0));
            let d_mouth = corner(&smile.landmarks_local()) - corner(&frown.landmarks_local());
            assert!(
                d_eye > 0.0 && d_mouth > 0.0,
                "seed {seed}: {d_eye} {d_mouth}"
            );
        }
        // Between people showing the same affect, the eye opening spreads over a far
        // larger share of the cue's range than on easy faces.
        let spread_over_cue = |make: &dyn Fn(u64, f64, f64) -> Face| {
            let open: Vec<f32> = (0..50)
                .map(|s| eye(&make(s, 0.0, 0.0).landmarks_local()))
                .collect();
            let spread = open.iter().cloned().fold(f32::MIN, f32::max)
                - open.iter().cloned().fold(f32::MAX, f32::min);
            let cue: f32 = (0..50)
                .map(|s| {
                    eye(&make(s, 0.0, 1.0).landmarks_local())
                        - eye(&make(s, 0.0, -1.0).landmarks_local())
                })
                .sum::<f32>()
                / 50.0;
            spread / cue
        };
        let easy = |s: u64, v: f64, a: f64| {
            Face::sample(
                &mut ChaCha8Rng::seed_from_u64(s),
                (v, a),
                (100.0, 100.0),
                50.0,
            )
        };
        let (h, e) = (spread_over_cue(&hard), spread_over_cue(&easy));
        assert!(h > 2.0 * e, "identity spread / cue: hard {h}, easy {e}");
    }

    #[test]
    fn pose_warp_is_the_identity_facing_the_camera() {
        let f = face(0.2, -0.3);
        assert_eq!((f.yaw, f.pitch), (0.0, 0.0));
        assert_eq!(f.warp((0.123, -0.456)), (0.123, -0.456));
        let turned = Face {
            yaw: 0.4,
            ..f.clone()
        };
        let (a, b) = (turned.warp((-0.3, 0.0)), turned.warp((0.3, 0.0)));
        // Both shift towards the turn; the side turning away is foreshortened.
        assert!(a.0 > -0.3 && b.0 > 0.3);
        assert!(b.0 - turned.warp((0.0, 0.0)).0 < turned.warp((0.0, 0.0)).0 - a.0);
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
