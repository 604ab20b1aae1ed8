//! Light, seeded augmentation of training faces: horizontal flip, small shift and scale.

use crate::config::Augment;
use crate::data::normalize_pixel;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Largest shift, as a fraction of the face side.
const MAX_SHIFT: f32 = 0.1;
/// Scale range, around 1.
const MAX_SCALE_CHANGE: f32 = 0.1;

/// The random choices for one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AugParams {
    pub flip: bool,
    /// Shift in pixels, right and down.
    pub dx: f32,
    pub dy: f32,
    /// Zoom factor (> 1 enlarges the face).
    pub scale: f32,
}

impl AugParams {
    /// No change at all.
    #[cfg(test)]
    pub(crate) const IDENTITY: AugParams = AugParams {
        flip: false,
        dx: 0.0,
        dy: 0.0,
        scale: 1.0,
    };

    /// Draws the choices for one face of side `size`, always taking four values from `rng`
    /// so the stream stays aligned whatever is drawn. `Augment::Flip` keeps only the flip
    /// (an exact pixel mirror, no resampling); `Augment::None` changes nothing.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, size: usize, kind: Augment) -> Self {
        let side = size as f32;
        let flip = rng.random::<f32>() < 0.5;
        let dx = (rng.random::<f32>() * 2.0 - 1.0) * MAX_SHIFT * side;
        let dy = (rng.random::<f32>() * 2.0 - 1.0) * MAX_SHIFT * side;
        let scale = 1.0 + (rng.random::<f32>() * 2.0 - 1.0) * MAX_SCALE_CHANGE;
        match kind {
            Augment::Full => AugParams {
                flip,
                dx,
                dy,
                scale,
            },
            Augment::Flip => AugParams {
                flip,
                dx: 0.0,
                dy: 0.0,
                scale: 1.0,
            },
            Augment::None => AugParams {
                flip: false,
                dx: 0.0,
                dy: 0.0,
                scale: 1.0,
            },
        }
    }
}

/// Appends the normalized, transformed face (`channels × size × size`) to `out`. Each output
/// pixel samples the source bilinearly at the inverse-mapped position, clamped to the edge.
pub(crate) fn augment_into(
    src: &[u8],
    channels: usize,
    size: usize,
    p: &AugParams,
    out: &mut Vec<f32>,
) {
    let c = (size as f32 - 1.0) / 2.0;
    let last = size as f32 - 1.0;
    for ch in 0..channels {
        let plane = &src[ch * size * size..(ch + 1) * size * size];
        let at = |x: usize, y: usize| f32::from(plane[y * size + x]);
        for y in 0..size {
            let v = ((y as f32 - c - p.dy) / p.scale + c).clamp(0.0, last);
            for x in 0..size {
                let xo = if p.flip { last - x as f32 } else { x as f32 };
                let u = ((xo - c - p.dx) / p.scale + c).clamp(0.0, last);
                let (x0, y0) = (u.floor() as usize, v.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
                let (fx, fy) = (u - x0 as f32, v - y0 as f32);
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                let value = top * (1.0 - fy) + bottom * fy;
                // Round back to a byte value so augmented and plain inputs share one mapping.
                out.push(normalize_pixel(value.round().clamp(0.0, 255.0) as u8));
            }
        }
    }
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
}
