//! Alignment from landmarks (`valar prepare --align`): the face is turned so that the eyes
//! are level, and scaled and shifted so that they land on fixed points of the output.
//!
//! The eyes are the centres of the 68-point (iBUG/Multi-PIE) scheme's eye contours, the
//! scheme AffectNet and AFEW-VA annotate: points 36–41 and 42–47 (0-based). The output is
//! cut from a square of the source image turned by the eyes' angle; parts of that square
//! outside the image repeat the image's edge pixels.

use valar_core::FaceBox;

/// Where the eyes land in an aligned S×S face, as shares of S: their midpoint at
/// (S/2, `eye_y`·S), the two `eye_distance`·S apart on one row. Serialized into
/// `prep.json`'s `params` as `align_eye_distance` and `align_eye_y`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Alignment {
    /// Distance between the eye centres, as a share of the output's side.
    #[serde(rename = "align_eye_distance")]
    pub eye_distance: f64,
    /// Height of the eyes' row, as a share of the output's side from the top.
    #[serde(rename = "align_eye_y")]
    pub eye_y: f64,
}

impl Alignment {
    /// The placement `--align` uses: about where AffectNet's own (newer release) crops put
    /// the eyes (median eye distance 0.37 of the side, eyes' row at 0.38), so an aligned
    /// face is framed like a typical AffectNet face, only levelled and at one scale.
    pub const DEFAULT: Alignment = Alignment {
        eye_distance: 0.37,
        eye_y: 0.38,
    };

    /// Whether the placement can cut a face: a distance in (0, 1] and a row inside the face.
    pub fn is_valid(&self) -> bool {
        self.eye_distance > 0.0 && self.eye_distance <= 1.0 && self.eye_y > 0.0 && self.eye_y < 1.0
    }

    /// The text of model.onnx's `valar.crop.alignment` key for this placement.
    pub fn key_text(&self) -> String {
        format!("eyes distance={} y={}", self.eye_distance, self.eye_y)
    }

    /// Reads [`Alignment::key_text`] back: `Ok(None)` for `none`, or why the text is not one.
    pub fn from_key_text(text: &str) -> Result<Option<Alignment>, String> {
        let text = text.trim();
        if text == "none" {
            return Ok(None);
        }
        let expected = "expected `none` or `eyes distance=D y=Y`";
        let rest = text.strip_prefix("eyes ").ok_or(expected)?;
        let (mut distance, mut y) = (None, None);
        for part in rest.split_whitespace() {
            let (key, value) = part.split_once('=').ok_or(expected)?;
            let value = value.parse::<f64>().map_err(|_| expected.to_string())?;
            match key {
                "distance" => distance = Some(value),
                "y" => y = Some(value),
                _ => return Err(expected.into()),
            }
        }
        let (Some(eye_distance), Some(eye_y)) = (distance, y) else {
            return Err(expected.into());
        };
        let a = Alignment {
            eye_distance,
            eye_y,
        };
        if a.is_valid() {
            Ok(Some(a))
        } else {
            Err("the eye distance must lie in (0, 1] and the eyes' row in (0, 1)".into())
        }
    }
}

/// The centres of the two eyes in full-image pixels: `left` is the one on the image's
/// left (the person's right eye).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eyes {
    /// The eye on the image's left, (x, y).
    pub left: [f64; 2],
    /// The eye on the image's right, (x, y).
    pub right: [f64; 2],
}

/// Points in the 68-point scheme.
pub const LANDMARKS: usize = 68;

impl Eyes {
    /// The eyes of 68 landmarks: the means of points 36–41 and 42–47. An error says why the
    /// points cannot place the eyes (a count other than 68, a number that is not finite, or
    /// both eyes on one point).
    pub fn from_landmarks(points: &[[f64; 2]]) -> Result<Eyes, String> {
        if points.len() != LANDMARKS {
            return Err(format!(
                "{} landmarks, expected {LANDMARKS} (the 68-point scheme)",
                points.len()
            ));
        }
        if points.iter().flatten().any(|v| !v.is_finite()) {
            return Err("a landmark is not a finite number".into());
        }
        let mean = |range: std::ops::Range<usize>| {
            let n = range.len() as f64;
            let (sx, sy) = points[range]
                .iter()
                .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
            [sx / n, sy / n]
        };
        let (a, b) = (mean(36..42), mean(42..48));
        // Points 36–41 are the person's right eye, on the image's left in a frontal face;
        // ordered by x so that a mirrored annotation still gives a levelled face.
        let (left, right) = if a[0] <= b[0] { (a, b) } else { (b, a) };
        let eyes = Eyes { left, right };
        if eyes.distance() < 1e-6 {
            return Err("the two eyes' landmarks are at one point".into());
        }
        Ok(eyes)
    }

    /// 68 landmarks as x, y pairs from 136 numbers in that order (AffectNet's `_lnd.npy`
    /// and `facial_landmarks` column).
    pub fn from_flat(numbers: &[f64]) -> Result<Eyes, String> {
        if numbers.len() != 2 * LANDMARKS {
            return Err(format!(
                "{} numbers, expected {} (x, y of the 68 landmarks)",
                numbers.len(),
                2 * LANDMARKS
            ));
        }
        let points: Vec<[f64; 2]> = numbers.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        Eyes::from_landmarks(&points)
    }

    /// The eyes of a `.npy` file of the 136 numbers (AffectNet's newer release's
    /// `annotations/<id>_lnd.npy`: a float array, or a string of numbers); the error names
    /// the file.
    pub fn read_npy(path: &std::path::Path) -> Result<Eyes, String> {
        let numbers = valar_core::read_npy_numbers(path).map_err(|e| e.to_string())?;
        Eyes::from_flat(&numbers).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// AffectNet's `facial_landmarks` text: 136 numbers separated by `;` (or `,`).
    pub fn parse(text: &str) -> Result<Eyes, String> {
        let numbers: Vec<f64> = text
            .split([';', ','])
            .map(|s| {
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("landmark `{}` is not a number", s.trim()))
            })
            .collect::<Result<_, _>>()?;
        Eyes::from_flat(&numbers)
    }

    fn distance(&self) -> f64 {
        (self.right[0] - self.left[0]).hypot(self.right[1] - self.left[1])
    }
}

/// The square of the source image an aligned face is cut from, in full-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Square {
    /// Its centre.
    pub centre: [f64; 2],
    /// Its side.
    pub side: f64,
    /// Cosine and sine of its turn: the direction from the left eye to the right.
    pub cos: f64,
    pub sin: f64,
}

impl Square {
    /// The square that puts `eyes` where `placement` says.
    pub fn of(eyes: Eyes, placement: Alignment) -> Square {
        let d = eyes.distance();
        let (cos, sin) = (
            (eyes.right[0] - eyes.left[0]) / d,
            (eyes.right[1] - eyes.left[1]) / d,
        );
        let side = d / placement.eye_distance;
        let mid = [
            (eyes.left[0] + eyes.right[0]) / 2.0,
            (eyes.left[1] + eyes.right[1]) / 2.0,
        ];
        // The eyes sit (0.5 − eye_y)·side above the centre, along the square's own down.
        let below = (0.5 - placement.eye_y) * side;
        Square {
            centre: [mid[0] - sin * below, mid[1] + cos * below],
            side,
            cos,
            sin,
        }
    }

    /// The image point at (u, v) of the square, both in [0, 1] from its top-left corner.
    pub fn point(&self, u: f64, v: f64) -> [f64; 2] {
        let (dx, dy) = ((u - 0.5) * self.side, (v - 0.5) * self.side);
        [
            self.centre[0] + dx * self.cos - dy * self.sin,
            self.centre[1] + dx * self.sin + dy * self.cos,
        ]
    }

    /// The smallest whole-pixel box holding the turned square.
    pub fn bounds(&self) -> FaceBox {
        let corners =
            [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)].map(|(u, v)| self.point(u, v));
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for [x, y] in corners {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let (x0, y0) = (x0.floor() as i64, y0.floor() as i64);
        FaceBox {
            x: x0,
            y: y0,
            width: (x1.ceil() as i64 - x0).max(1),
            height: (y1.ceil() as i64 - y0).max(1),
        }
    }
}

/// Samples the square out of interleaved pixels (`channels` per pixel, `width` × `rows`,
/// at `scale` decoded pixels per full-image pixel) into an upright `n` × `n` image,
/// bilinearly, repeating the edge pixels outside the image.
pub(crate) fn sample(
    pixels: &[u8],
    channels: usize,
    (width, rows): (u32, u32),
    scale: [f64; 2],
    square: &Square,
    n: u32,
) -> Vec<u8> {
    let (w, h) = (width as usize, rows as usize);
    let at = |x: usize, y: usize, c: usize| f64::from(pixels[(y * w + x) * channels + c]);
    let mut out = Vec::with_capacity(n as usize * n as usize * channels);
    for v in 0..n {
        for u in 0..n {
            let [x, y] = square.point(
                (f64::from(u) + 0.5) / f64::from(n),
                (f64::from(v) + 0.5) / f64::from(n),
            );
            // Pixel centres sit at half-integers.
            let sx = (x * scale[0] - 0.5).clamp(0.0, (w - 1) as f64);
            let sy = (y * scale[1] - 0.5).clamp(0.0, (h - 1) as f64);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            for c in 0..channels {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
                let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
                out.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn landmarks(left: [f64; 2], right: [f64; 2]) -> Vec<[f64; 2]> {
        // Every eye point on its eye's centre; the rest anywhere.
        (0..68)
            .map(|i| match i {
                36..=41 => left,
                42..=47 => right,
                _ => [i as f64, 2.0 * i as f64],
            })
            .collect()
    }

    #[test]
    fn the_eyes_are_the_means_of_their_six_points_ordered_by_x() {
        let mut points = landmarks([0.0, 0.0], [0.0, 0.0]);
        for (k, p) in points[36..42].iter_mut().enumerate() {
            *p = [100.0 + k as f64, 50.0];
        }
        for (k, p) in points[42..48].iter_mut().enumerate() {
            *p = [10.0 + k as f64, 40.0];
        }
        let eyes = Eyes::from_landmarks(&points).unwrap();
        assert_eq!(eyes.left, [12.5, 40.0]);
        assert_eq!(eyes.right, [102.5, 50.0]);
        let flat: Vec<f64> = points.iter().flatten().copied().collect();
        assert_eq!(Eyes::from_flat(&flat).unwrap(), eyes);
        let text: Vec<String> = flat.iter().map(f64::to_string).collect();
        assert_eq!(Eyes::parse(&text.join(";")).unwrap(), eyes);
        assert!(
            Eyes::from_flat(&flat[..134])
                .unwrap_err()
                .contains("134 numbers")
        );
        assert!(Eyes::parse("1;2;x").unwrap_err().contains("`x`"));
        let same = landmarks([5.0, 5.0], [5.0, 5.0]);
        assert!(
            Eyes::from_landmarks(&same)
                .unwrap_err()
                .contains("one point")
        );
        let mut nan = landmarks([1.0, 1.0], [9.0, 1.0]);
        nan[3][0] = f64::NAN;
        assert!(Eyes::from_landmarks(&nan).unwrap_err().contains("finite"));
    }

    #[test]
    fn the_square_puts_the_eyes_on_the_placement() {
        // Eyes 40 px apart, turned by 30°.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let eyes = Eyes {
            left: [100.0, 100.0],
            right: [100.0 + 40.0 * c, 100.0 + 40.0 * s],
        };
        let a = Alignment::DEFAULT;
        let sq = Square::of(eyes, a);
        assert!((sq.side - 40.0 / a.eye_distance).abs() < 1e-9);
        let u = (1.0 - a.eye_distance) / 2.0;
        for (got, want) in [
            (sq.point(u, a.eye_y), eyes.left),
            (sq.point(1.0 - u, a.eye_y), eyes.right),
        ] {
            assert!((got[0] - want[0]).abs() < 1e-9 && (got[1] - want[1]).abs() < 1e-9);
        }
        let b = sq.bounds();
        for (u, v) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
            let [x, y] = sq.point(u, v);
            assert!(x >= b.x as f64 && x <= (b.x + b.width) as f64);
            assert!(y >= b.y as f64 && y <= (b.y + b.height) as f64);
        }
    }

    #[test]
    fn the_key_text_reads_back() {
        let a = Alignment::DEFAULT;
        assert_eq!(a.key_text(), "eyes distance=0.37 y=0.38");
        assert_eq!(Alignment::from_key_text(&a.key_text()).unwrap(), Some(a));
        assert_eq!(Alignment::from_key_text("none").unwrap(), None);
        for bad in [
            "eyes",
            "eyes distance=0.4",
            "eyes distance=2 y=0.4",
            "level",
            "eyes d=1 y=2",
        ] {
            assert!(Alignment::from_key_text(bad).is_err(), "{bad}");
        }
    }
}
