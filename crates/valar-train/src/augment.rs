//! Seeded augmentation of training faces: horizontal flips, shifts, scales and rotations
//! (resampled bilinearly), brightness and contrast jitter, random erasing, and mixup of whole
//! batches. Each face goes through them in torchvision's usual order: flip, affine, colour
//! jitter, then (after the fixed pixel mapping) erasing.

use crate::config::{Augment, TrainConfig};
use crate::data::normalize_pixel;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Largest shift of `full`, as a fraction of the face side.
const MAX_SHIFT: f32 = 0.1;
/// Scale range of `full` and `affine`, around 1.
const MAX_SCALE_CHANGE: f32 = 0.1;
/// Largest shift of `affine`, as a fraction of the side (torchvision's `translate=(0.08, 0.08)`).
const AFFINE_MAX_SHIFT: f32 = 0.08;
/// Largest rotation of `affine`, in degrees (torchvision's `degrees=10`).
const AFFINE_MAX_DEGREES: f32 = 10.0;
/// Random erasing's share of the face area and aspect ratio (h/w): torchvision's defaults.
const ERASE_AREA: (f32, f32) = (0.02, 0.33);
const ERASE_RATIO: (f32, f32) = (0.3, 3.3);
/// Boxes random erasing tries before leaving the face whole, as torchvision does.
const ERASE_TRIES: usize = 10;
/// The input erased pixels take: 0 under the fixed mapping x/127.5 − 1, i.e. mid grey
/// (127.5), as torchvision's `value=0` is 0 after its `Normalize`.
const ERASED: f32 = 0.0;

/// The geometric choices for one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AugParams {
    pub flip: bool,
    /// Shift in pixels, right and down.
    pub dx: f32,
    pub dy: f32,
    /// Zoom factor (> 1 enlarges the face).
    pub scale: f32,
    /// Rotation in degrees about the face centre, counter-clockwise as the face is seen
    /// (rows running down), as torchvision's `rotate`.
    pub angle: f32,
}

impl AugParams {
    /// No change at all.
    pub(crate) const IDENTITY: AugParams = AugParams {
        flip: false,
        dx: 0.0,
        dy: 0.0,
        scale: 1.0,
        angle: 0.0,
    };

    /// Draws the choices for one face of side `size`. `none`, `flip` and `full` always take
    /// four values from `rng`, so their streams stay aligned whatever is drawn; `affine` takes
    /// a fifth, the angle. `Augment::Flip` keeps only the flip (an exact pixel mirror, no
    /// resampling); `Augment::None` changes nothing.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, size: usize, kind: Augment) -> Self {
        let side = size as f32;
        let flip = rng.random::<f32>() < 0.5;
        let sx = rng.random::<f32>() * 2.0 - 1.0;
        let sy = rng.random::<f32>() * 2.0 - 1.0;
        let scale = 1.0 + (rng.random::<f32>() * 2.0 - 1.0) * MAX_SCALE_CHANGE;
        match kind {
            Augment::Full => AugParams {
                flip,
                dx: sx * MAX_SHIFT * side,
                dy: sy * MAX_SHIFT * side,
                scale,
                angle: 0.0,
            },
            // torchvision's RandomAffine rounds its translation to whole pixels.
            Augment::Affine => AugParams {
                flip,
                dx: (sx * AFFINE_MAX_SHIFT * side).round(),
                dy: (sy * AFFINE_MAX_SHIFT * side).round(),
                scale,
                angle: (rng.random::<f32>() * 2.0 - 1.0) * AFFINE_MAX_DEGREES,
            },
            Augment::Flip => AugParams {
                flip,
                ..AugParams::IDENTITY
            },
            Augment::None => AugParams::IDENTITY,
        }
    }
}

/// Brightness and contrast factors for one face, as torchvision's `ColorJitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Jitter {
    /// Every pixel times this.
    pub brightness: f32,
    /// Blend with the face's mean grey: `mean + contrast·(pixel − mean)`.
    pub contrast: f32,
    /// Whether brightness comes before contrast (torchvision draws the order per image too).
    pub brightness_first: bool,
}

impl Jitter {
    /// No change.
    pub(crate) const NONE: Jitter = Jitter {
        brightness: 1.0,
        contrast: 1.0,
        brightness_first: true,
    };

    /// Draws the order, then both factors uniformly in `[1 − j, 1 + j]` (three values).
    pub(crate) fn draw(rng: &mut ChaCha8Rng, j: f64) -> Self {
        let brightness_first = rng.random::<bool>();
        let mut factor = || (1.0 + (rng.random::<f64>() * 2.0 - 1.0) * j) as f32;
        let brightness = factor();
        let contrast = factor();
        Jitter {
            brightness,
            contrast,
            brightness_first,
        }
    }

    /// Applies both factors to a face's planes (values in [0, 255]), clamping after each as
    /// torchvision does.
    fn apply(&self, planes: &mut [f32], channels: usize) {
        let bright = |v: &mut [f32]| {
            for p in v.iter_mut() {
                *p = (*p * self.brightness).clamp(0.0, 255.0);
            }
        };
        let contrast = |v: &mut [f32]| {
            let m = mean_grey(v, channels);
            for p in v.iter_mut() {
                *p = (m + self.contrast * (*p - m)).clamp(0.0, 255.0);
            }
        };
        if self.brightness_first {
            bright(planes);
            contrast(planes);
        } else {
            contrast(planes);
            bright(planes);
        }
    }
}

/// The mean grey of a face: the mean of its one plane, or of torchvision's grey
/// (0.299 R + 0.587 G + 0.114 B) for three.
fn mean_grey(planes: &[f32], channels: usize) -> f32 {
    let n = planes.len() / channels.max(1);
    if channels != 3 || n == 0 {
        return planes.iter().map(|&v| f64::from(v)).sum::<f64>() as f32
            / planes.len().max(1) as f32;
    }
    let weights = [0.299, 0.587, 0.114];
    let sum: f64 = planes
        .chunks(n)
        .zip(weights)
        .map(|(plane, w)| w * plane.iter().map(|&v| f64::from(v)).sum::<f64>())
        .sum();
    (sum / n as f64) as f32
}

/// A rectangle of a face that random erasing blanks, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EraseBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl EraseBox {
    /// torchvision's `RandomErasing.get_params`: with probability `p`, up to ten tries at a
    /// box of area `U(0.02, 0.33)` of the face and aspect ratio `exp(U(ln 0.3, ln 3.3))`,
    /// sides rounded, kept when both sides are smaller than the face's, placed uniformly.
    /// `None`: the face stays whole.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, p: f64, size: usize) -> Option<Self> {
        if rng.random::<f64>() >= p {
            return None;
        }
        let area = (size * size) as f32;
        let (lo, hi) = (ERASE_RATIO.0.ln(), ERASE_RATIO.1.ln());
        for _ in 0..ERASE_TRIES {
            let erase = area * rng.random_range(ERASE_AREA.0..ERASE_AREA.1);
            let ratio = rng.random_range(lo..hi).exp();
            let height = (erase * ratio).sqrt().round() as usize;
            let width = (erase / ratio).sqrt().round() as usize;
            if !(height < size && width < size) {
                continue;
            }
            return Some(EraseBox {
                top: rng.random_range(0..=size - height),
                left: rng.random_range(0..=size - width),
                height,
                width,
            });
        }
        None
    }

    /// Sets the box to [`ERASED`] in every plane of a face (`channels × size × size`).
    fn apply(&self, face: &mut [f32], size: usize) {
        for plane in face.chunks_mut(size * size) {
            for row in plane.chunks_mut(size).skip(self.top).take(self.height) {
                row[self.left..self.left + self.width].fill(ERASED);
            }
        }
    }
}

/// Everything done to one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FaceAug {
    pub geometry: AugParams,
    pub jitter: Jitter,
    pub erase: Option<EraseBox>,
}

/// Appends the normalized, geometrically transformed face (`channels × size × size`) to `out`
/// (the geometry alone, for tests).
#[cfg(test)]
pub(crate) fn augment_into(
    src: &[u8],
    channels: usize,
    size: usize,
    p: &AugParams,
    out: &mut Vec<f32>,
) {
    let face = FaceAug {
        geometry: *p,
        jitter: Jitter::NONE,
        erase: None,
    };
    augment_face_into(src, channels, size, &face, &mut Vec::new(), out);
}

/// Appends one augmented face to `out`: resampled, jittered, rounded back to byte values so
/// augmented and plain inputs share one mapping, mapped by [`normalize_pixel`], then erased.
/// `scratch` holds the face's pixel values between the steps.
pub(crate) fn augment_face_into(
    src: &[u8],
    channels: usize,
    size: usize,
    face: &FaceAug,
    scratch: &mut Vec<f32>,
    out: &mut Vec<f32>,
) {
    scratch.clear();
    resample(src, channels, size, &face.geometry, scratch);
    if face.jitter != Jitter::NONE {
        face.jitter.apply(scratch, channels);
    }
    let start = out.len();
    out.extend(
        scratch
            .iter()
            .map(|v| normalize_pixel(v.round().clamp(0.0, 255.0) as u8)),
    );
    if let Some(erase) = face.erase {
        erase.apply(&mut out[start..], size);
    }
}

/// Appends the transformed face's pixel values (not yet rounded) to `out`. Each output pixel
/// samples the source bilinearly at the inverse-mapped position (undo shift, rotation and
/// scale about the centre, then the flip mirrors the result), clamped to the edge: pixels
/// mapped from outside the face repeat its border rather than turning black.
fn resample(src: &[u8], channels: usize, size: usize, p: &AugParams, out: &mut Vec<f32>) {
    if *p == AugParams::IDENTITY {
        out.extend(src[..channels * size * size].iter().map(|&v| f32::from(v)));
        return;
    }
    let c = (size as f32 - 1.0) / 2.0;
    let last = size as f32 - 1.0;
    // At angle 0 these are exactly 1 and 0, so shifts and scales map as they always did.
    let (sin, cos) = p.angle.to_radians().sin_cos();
    for ch in 0..channels {
        let plane = &src[ch * size * size..(ch + 1) * size * size];
        let at = |x: usize, y: usize| f32::from(plane[y * size + x]);
        for y in 0..size {
            let ry = y as f32 - c - p.dy;
            for x in 0..size {
                let xo = if p.flip { last - x as f32 } else { x as f32 };
                let rx = xo - c - p.dx;
                let u = ((cos * rx - sin * ry) / p.scale + c).clamp(0.0, last);
                let v = ((sin * rx + cos * ry) / p.scale + c).clamp(0.0, last);
                let (x0, y0) = (u.floor() as usize, v.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
                let (fx, fy) = (u - x0 as f32, v - y0 as f32);
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
}

/// The generators an epoch's face augmentation draws from, one per kind of choice, so that
/// turning one on leaves the others' draws as they were.
pub(crate) struct AugStreams {
    /// Flips, shifts, scales, rotations (the stream valar always used).
    pub geometry: ChaCha8Rng,
    pub jitter: ChaCha8Rng,
    pub erasing: ChaCha8Rng,
}

/// Draws and applies one epoch's per-face augmentation.
pub(crate) struct EpochAugmenter {
    kind: Augment,
    jitter: f64,
    erasing: f64,
    streams: AugStreams,
    scratch: Vec<f32>,
}

impl EpochAugmenter {
    pub(crate) fn new(config: &TrainConfig, streams: AugStreams) -> Self {
        EpochAugmenter {
            kind: config.augment,
            jitter: config.jitter,
            erasing: config.erasing,
            streams,
            scratch: Vec::new(),
        }
    }

    /// Whether any face is changed; otherwise faces go in as prepared and nothing is drawn.
    pub(crate) fn is_active(&self) -> bool {
        self.kind != Augment::None || self.jitter > 0.0 || self.erasing > 0.0
    }

    /// Draws the next face's choices (each stream only when its setting is on).
    pub(crate) fn draw(&mut self, size: usize) -> FaceAug {
        let s = &mut self.streams;
        FaceAug {
            geometry: match self.kind {
                Augment::None => AugParams::IDENTITY,
                kind => AugParams::draw(&mut s.geometry, size, kind),
            },
            jitter: if self.jitter > 0.0 {
                Jitter::draw(&mut s.jitter, self.jitter)
            } else {
                Jitter::NONE
            },
            erase: if self.erasing > 0.0 {
                EraseBox::draw(&mut s.erasing, self.erasing, size)
            } else {
                None
            },
        }
    }

    /// Appends the next face, `src` (`channels × size × size` bytes), augmented, to `out`.
    pub(crate) fn face_into(
        &mut self,
        src: &[u8],
        channels: usize,
        size: usize,
        out: &mut Vec<f32>,
    ) {
        let face = self.draw(size);
        augment_face_into(src, channels, size, &face, &mut self.scratch, out);
    }
}

/// One batch's mixup: the share `lambda` of each face that stays its own, and the face
/// `perm[i]` that face `i` is mixed with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mix {
    pub lambda: f32,
    pub perm: Vec<usize>,
}

impl Mix {
    /// `lambda ~ Beta(alpha, alpha)` and a uniform permutation of `batch` rows, as Zhang et
    /// al. (2018) mix a batch with a shuffled copy of itself.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, alpha: f64, batch: usize) -> Self {
        let lambda = beta_symmetric(rng, alpha) as f32;
        let mut perm: Vec<usize> = (0..batch).collect();
        perm.shuffle(rng);
        Mix { lambda, perm }
    }
}

/// Mixup of a batch (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"): row
/// `i` of the inputs `x` and of every matrix in `targets` becomes
/// `lambda·row[i] + (1 − lambda)·row[perm[i]]`, all from the rows as they were. Each matrix
/// holds `perm.len()` rows of its own width (its length / the batch); the labels and any
/// other per-face target (such as one-hot classes) mix exactly as their faces do.
pub(crate) fn mix_batch(mix: &Mix, x: &mut [f32], targets: &mut [&mut [f32]]) {
    mix_rows(mix, x);
    for t in targets.iter_mut() {
        mix_rows(mix, t);
    }
}

fn mix_rows(mix: &Mix, m: &mut [f32]) {
    let batch = mix.perm.len();
    if batch == 0 {
        return;
    }
    assert!(
        m.len().is_multiple_of(batch),
        "mixup: a matrix of {} values does not hold {batch} rows",
        m.len()
    );
    let width = m.len() / batch;
    let before = m.to_vec();
    let keep = 1.0 - mix.lambda;
    for (row, &other) in m.chunks_mut(width).zip(&mix.perm) {
        let partner = &before[other * width..(other + 1) * width];
        for (v, &w) in row.iter_mut().zip(partner) {
            *v = mix.lambda * *v + keep * w;
        }
    }
}

/// A draw of `Beta(a, a)` as `X / (X + Y)` with `X, Y ~ Gamma(a, 1)`, computed from the
/// logarithms of the gamma draws so that small `a`, whose draws underflow, still gives 0 or 1.
fn beta_symmetric(rng: &mut ChaCha8Rng, a: f64) -> f64 {
    let lx = ln_gamma_draw(rng, a);
    let ly = ln_gamma_draw(rng, a);
    1.0 / (1.0 + (ly - lx).exp())
}

/// The logarithm of a `Gamma(a, 1)` draw, `a > 0`, by Marsaglia and Tsang (2000), "A simple
/// method for generating gamma variables", ACM TOMS 26(3): 363–372; for `a < 1` their
/// boost `Gamma(a) = Gamma(a + 1)·U^(1/a)`, taken in logarithms.
fn ln_gamma_draw(rng: &mut ChaCha8Rng, a: f64) -> f64 {
    if a < 1.0 {
        let u = 1.0 - rng.random::<f64>(); // (0, 1]
        return ln_gamma_draw(rng, a + 1.0) + u.ln() / a;
    }
    let d = a - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.random::<f64>();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d.ln() + v.ln();
        }
    }
}

/// A standard normal draw by the Box–Muller transform.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1], so the logarithm is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(size: usize) -> Vec<u8> {
        (0..size * size)
            .map(|k| ((k % size) * 10 + (k / size)) as u8)
            .collect()
    }

    #[test]
    fn identity_copies_and_flip_mirrors() {
        let src = ramp(6);
        let mut out = Vec::new();
        augment_into(&src, 1, 6, &AugParams::IDENTITY, &mut out);
        let plain: Vec<f32> = src.iter().map(|&p| normalize_pixel(p)).collect();
        assert_eq!(out, plain);
        out.clear();
        let flip = AugParams {
            flip: true,
            ..AugParams::IDENTITY
        };
        augment_into(&src, 1, 6, &flip, &mut out);
        for y in 0..6 {
            for x in 0..6 {
                assert_eq!(out[y * 6 + x], plain[y * 6 + 5 - x]);
            }
        }
    }

    /// Each kind draws four values per face, so the stream stays aligned across kinds, and
    /// only `full` ever moves or scales.
    #[test]
    fn flip_only_draws_never_shift_or_scale() {
        let mut a = ChaCha8Rng::seed_from_u64(4);
        let mut b = ChaCha8Rng::seed_from_u64(4);
        let mut flips = 0;
        for _ in 0..200 {
            let f = AugParams::draw(&mut a, 48, Augment::Flip);
            let full = AugParams::draw(&mut b, 48, Augment::Full);
            assert_eq!((f.dx, f.dy, f.scale), (0.0, 0.0, 1.0));
            assert_eq!(f.flip, full.flip);
            flips += usize::from(f.flip);
        }
        assert!((60..140).contains(&flips), "{flips} flips of 200");
        assert_eq!(
            AugParams::draw(&mut a, 48, Augment::None),
            AugParams::IDENTITY
        );
    }

    #[test]
    fn whole_pixel_shift_moves_content() {
        let src = ramp(6);
        let mut out = Vec::new();
        let shift = AugParams {
            dx: 2.0,
            ..AugParams::IDENTITY
        };
        augment_into(&src, 1, 6, &shift, &mut out);
        // Output x takes source x − 2, clamped at the left edge.
        assert_eq!(out[3], normalize_pixel(src[1]));
        assert_eq!(out[0], normalize_pixel(src[0]));
    }

    #[test]
    fn draws_are_seeded_and_bounded() {
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            let p = AugParams::draw(&mut a, 48, Augment::Full);
            assert_eq!(p, AugParams::draw(&mut b, 48, Augment::Full));
            assert!(p.dx.abs() <= 4.8 && p.dy.abs() <= 4.8);
            assert!((0.9..=1.1).contains(&p.scale));
        }
    }

    fn face(src: &[u8], channels: usize, size: usize, f: &FaceAug) -> Vec<f32> {
        let mut out = Vec::new();
        augment_face_into(src, channels, size, f, &mut Vec::new(), &mut out);
        out
    }

    fn only(geometry: AugParams) -> FaceAug {
        FaceAug {
            geometry,
            jitter: Jitter::NONE,
            erase: None,
        }
    }

    /// 90° counter-clockwise, as numpy's `rot90` and torchvision's `rotate(img, 90)`: output
    /// (x, y) takes source (size − 1 − y, x), the top row becoming the left column.
    #[test]
    fn ninety_degrees_rotates_the_pixels() {
        for size in [5, 6] {
            let src = ramp(size);
            let rot = AugParams {
                angle: 90.0,
                ..AugParams::IDENTITY
            };
            let out = face(&src, 1, size, &only(rot));
            for y in 0..size {
                for x in 0..size {
                    let want = normalize_pixel(src[x * size + (size - 1 - y)]);
                    assert_eq!(out[y * size + x], want, "size {size}, ({x}, {y})");
                }
            }
            // Every plane turns alike.
            let two: Vec<u8> = src.iter().chain(&src).copied().collect();
            let out2 = face(&two, 2, size, &only(rot));
            assert_eq!(&out2[..size * size], &out2[size * size..]);
            assert_eq!(&out2[..size * size], &out[..]);
        }
    }

    /// `affine` draws rotations in ±10°, whole-pixel shifts in ±8% and scales in 0.9–1.1,
    /// and its flips are `full`'s (the same first draw of the same stream).
    #[test]
    fn affine_draws_are_bounded_seeded_and_flip_as_full() {
        let mut a = ChaCha8Rng::seed_from_u64(9);
        let mut b = ChaCha8Rng::seed_from_u64(9);
        let (mut left, mut right) = (0, 0);
        for _ in 0..400 {
            let mut full = b.clone();
            let p = AugParams::draw(&mut a, 48, Augment::Affine);
            assert_eq!(p, AugParams::draw(&mut b, 48, Augment::Affine));
            assert_eq!(p.flip, AugParams::draw(&mut full, 48, Augment::Full).flip);
            assert!(p.angle.abs() <= 10.0, "{p:?}");
            assert!(p.dx.abs() <= 4.0 && p.dy.abs() <= 4.0, "{p:?}");
            assert_eq!((p.dx.fract(), p.dy.fract()), (0.0, 0.0), "{p:?}");
            assert!((0.9..=1.1).contains(&p.scale));
            left += usize::from(p.angle > 5.0);
            right += usize::from(p.angle < -5.0);
        }
        // Both directions, each about a quarter of the time.
        assert!(left > 60 && right > 60, "{left} {right}");
    }

    /// A small rotation turns a face's content about its centre: the centre pixel stays and
    /// a corner that moves in from outside repeats the border.
    #[test]
    fn small_rotation_keeps_the_centre() {
        let size = 7;
        let src: Vec<u8> = (0..size * size).map(|k| (k * 5) as u8).collect();
        let p = AugParams {
            angle: 10.0,
            ..AugParams::IDENTITY
        };
        let out = face(&src, 1, size, &only(p));
        assert_eq!(out[3 * size + 3], normalize_pixel(src[3 * size + 3]));
        assert_ne!(out, face(&src, 1, size, &only(AugParams::IDENTITY)));
        assert!(out.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn zero_jitter_is_the_identity_and_factors_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(Jitter::draw(&mut rng, 0.0).brightness, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let j = Jitter::draw(&mut rng, 0.0);
        assert_eq!((j.brightness, j.contrast), (1.0, 1.0));
        let src = ramp(6);
        let plain = face(&src, 1, 6, &only(AugParams::IDENTITY));
        let still = FaceAug {
            jitter: Jitter {
                brightness_first: false,
                ..j
            },
            ..only(AugParams::IDENTITY)
        };
        assert_eq!(face(&src, 1, 6, &still), plain);
        let (mut firsts, mut lo, mut hi) = (0, 1.0f32, 1.0f32);
        for _ in 0..500 {
            let j = Jitter::draw(&mut rng, 0.2);
            for f in [j.brightness, j.contrast] {
                assert!((0.8..=1.2).contains(&f), "{j:?}");
                lo = lo.min(f);
                hi = hi.max(f);
            }
            firsts += usize::from(j.brightness_first);
        }
        assert!(lo < 0.82 && hi > 1.18, "{lo} {hi}");
        assert!((180..320).contains(&firsts), "{firsts}");
    }

    /// Brightness multiplies and clamps; contrast blends with the mean grey; the order matters
    /// only through the clamp, and the result is rounded back to byte values.
    #[test]
    fn jitter_scales_pixels_and_blends_with_the_mean() {
        let src = [10u8, 50, 90, 250];
        let raw = |f: &FaceAug| -> Vec<f32> {
            face(&src, 1, 2, f)
                .iter()
                .map(|v| (v + 1.0) * 127.5)
                .collect()
        };
        let jit = |brightness, contrast, brightness_first| FaceAug {
            jitter: Jitter {
                brightness,
                contrast,
                brightness_first,
            },
            ..only(AugParams::IDENTITY)
        };
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-3);
        // Brightness 1.2: 12, 60, 108, 300 → clamped to 255.
        assert!(close(
            &raw(&jit(1.2, 1.0, true)),
            &[12.0, 60.0, 108.0, 255.0]
        ));
        // Contrast 0.5 about the mean 100: 55, 75, 95, 175.
        assert!(close(
            &raw(&jit(1.0, 0.5, true)),
            &[55.0, 75.0, 95.0, 175.0]
        ));
        // Contrast 2 about 100: −80 → 0, 0, 80, 400 → 255.
        assert!(close(&raw(&jit(1.0, 2.0, false)), &[0.0, 0.0, 80.0, 255.0]));
        // Brightness first, then contrast about the new mean (12+60+108+255)/4 = 108.75.
        let m = 108.75f32;
        let want: Vec<f32> = [12.0f32, 60.0, 108.0, 255.0]
            .iter()
            .map(|&v| (m + 0.5 * (v - m)).round())
            .collect();
        assert!(close(&raw(&jit(1.2, 0.5, true)), &want));
        // Contrast first: 55, 75, 95, 175, then ×1.2: 66, 90, 114, 210.
        assert!(close(
            &raw(&jit(1.2, 0.5, false)),
            &[66.0, 90.0, 114.0, 210.0]
        ));
    }

    /// A colour face's contrast mean is torchvision's grey, 0.299 R + 0.587 G + 0.114 B.
    #[test]
    fn colour_contrast_uses_the_weighted_grey() {
        let planes = [100.0f32, 100.0, 0.0, 0.0, 200.0, 200.0];
        let m = mean_grey(&planes, 3);
        assert!((m - (0.299 * 100.0 + 0.114 * 200.0)).abs() < 1e-3, "{m}");
        assert!((mean_grey(&[1.0, 2.0, 3.0, 6.0], 1) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn erasing_with_zero_probability_never_erases() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        assert!((0..500).all(|_| EraseBox::draw(&mut rng, 0.0, 48).is_none()));
    }

    /// With p = 1 every face gets one rectangle of mid grey (input 0) whose area lies in 2–33%
    /// of the face (up to the rounding of its sides) and aspect in 0.3–3.3, inside the face,
    /// in every plane, with every other pixel untouched.
    #[test]
    fn erasing_with_probability_one_blanks_a_rectangle_within_bounds() {
        let size = 48;
        let src: Vec<u8> = (0..2 * size * size).map(|k| (k % 251) as u8).collect();
        let plain = face(&src, 2, size, &only(AugParams::IDENTITY));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut erased, mut small, mut large) = (0, usize::MAX, 0);
        for _ in 0..300 {
            let Some(b) = EraseBox::draw(&mut rng, 1.0, size) else {
                continue;
            };
            erased += 1;
            let area = b.height * b.width;
            small = small.min(area);
            large = large.max(area);
            let (a, s2) = (area as f32, (size * size) as f32);
            assert!(a >= 0.02 * s2 * 0.8 && a <= 0.33 * s2 * 1.2, "{b:?}");
            let ratio = b.height as f32 / b.width as f32;
            assert!((0.2..=5.0).contains(&ratio), "{b:?}");
            assert!(
                b.top + b.height <= size && b.left + b.width <= size,
                "{b:?}"
            );
            let out = face(
                &src,
                2,
                size,
                &FaceAug {
                    erase: Some(b),
                    ..only(AugParams::IDENTITY)
                },
            );
            for (k, (&o, &p)) in out.iter().zip(&plain).enumerate() {
                let (y, x) = ((k / size) % size, k % size);
                let inside = (b.top..b.top + b.height).contains(&y)
                    && (b.left..b.left + b.width).contains(&x);
                assert_eq!(o, if inside { 0.0 } else { p }, "{b:?} at {k}");
            }
        }
        // Ten tries almost always find a box that fits (torchvision leaves the rest whole).
        assert!(erased >= 290, "{erased} of 300");
        assert!(small < 100 && large > 500, "{small} {large}");
    }

    /// λ and the permutation apply alike to the images and to every target matrix, each with
    /// its own row width; rows mix from the values as they were before mixing.
    #[test]
    fn mixup_mixes_labels_exactly_as_images() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mix = Mix::draw(&mut rng, 0.4, 4);
        assert_eq!(mix, Mix::draw(&mut ChaCha8Rng::seed_from_u64(11), 0.4, 4));
        let mut sorted = mix.perm.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3]);
        assert!((0.0..=1.0).contains(&mix.lambda));
        // Row i of each matrix is (i, i, …) scaled per matrix, so every mix is checkable.
        let rows = |width: usize, k: f32| -> Vec<f32> {
            (0..4 * width).map(|v| (v / width) as f32 * k).collect()
        };
        let (mut x, mut va, mut expr) = (rows(6, 1.0), rows(2, 0.5), rows(8, 0.1));
        mix_batch(&mix, &mut x, &mut [&mut va, &mut expr]);
        let l = mix.lambda;
        for i in 0..4 {
            let j = mix.perm[i] as f32;
            let want = l * i as f32 + (1.0 - l) * j;
            assert!(
                x[i * 6..(i + 1) * 6]
                    .iter()
                    .all(|v| (v - want).abs() < 1e-6)
            );
            assert!(
                va[i * 2..(i + 1) * 2]
                    .iter()
                    .all(|v| (v - 0.5 * want).abs() < 1e-6)
            );
            assert!(
                expr[i * 8..(i + 1) * 8]
                    .iter()
                    .all(|v| (v - 0.1 * want).abs() < 1e-6)
            );
        }
        // λ = 1 leaves the batch exactly as it was, whatever the permutation.
        let one = Mix {
            lambda: 1.0,
            perm: vec![3, 2, 1, 0],
        };
        let (mut x, mut y) = (rows(6, 0.3), rows(2, -0.7));
        mix_batch(&one, &mut x, &mut [&mut y]);
        assert_eq!((x, y), (rows(6, 0.3), rows(2, -0.7)));
    }

    /// Beta(α, α) draws: in [0, 1], mean 1/2, variance 1/(4(2α + 1)); for α = 0.2 most of the
    /// mass lies near 0 and 1.
    #[test]
    fn mixup_lambda_follows_beta() {
        for alpha in [0.2, 1.0, 4.0] {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let n = 20_000;
            let draws: Vec<f64> = (0..n).map(|_| beta_symmetric(&mut rng, alpha)).collect();
            assert!(draws.iter().all(|l| (0.0..=1.0).contains(l)));
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n as f64;
            let want = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "α {alpha}: mean {mean}");
            assert!(
                (var - want).abs() < 0.05 * want,
                "α {alpha}: var {var} vs {want}"
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let tiny: Vec<f64> = (0..100).map(|_| beta_symmetric(&mut rng, 1e-4)).collect();
        assert!(
            tiny.iter()
                .all(|l| l.is_finite() && (0.0..=1.0).contains(l))
        );
    }

    /// With every setting off the augmenter changes nothing and draws nothing; `flip` draws
    /// exactly what valar always drew.
    #[test]
    fn epoch_augmenter_draws_each_stream_only_when_on() {
        let streams = || AugStreams {
            geometry: ChaCha8Rng::seed_from_u64(1),
            jitter: ChaCha8Rng::seed_from_u64(2),
            erasing: ChaCha8Rng::seed_from_u64(3),
        };
        let mut c = TrainConfig::defaults("d".into());
        c.augment = Augment::None;
        c.jitter = 0.0;
        assert!(!EpochAugmenter::new(&c, streams()).is_active());
        c.augment = Augment::Flip;
        let mut aug = EpochAugmenter::new(&c, streams());
        let mut old = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let f = aug.draw(48);
            assert_eq!(f.geometry, AugParams::draw(&mut old, 48, Augment::Flip));
            assert_eq!((f.jitter, f.erase), (Jitter::NONE, None));
        }
        c.augment = Augment::None;
        c.jitter = 0.3;
        c.erasing = 0.5;
        let mut aug = EpochAugmenter::new(&c, streams());
        assert!(aug.is_active());
        let f = aug.draw(48);
        assert_eq!(f.geometry, AugParams::IDENTITY);
        assert_eq!(
            f.jitter,
            Jitter::draw(&mut ChaCha8Rng::seed_from_u64(2), 0.3)
        );
        assert_eq!(
            f.erase,
            EraseBox::draw(&mut ChaCha8Rng::seed_from_u64(3), 0.5, 48)
        );
    }
}
