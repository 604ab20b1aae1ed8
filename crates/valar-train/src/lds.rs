//! Label-distribution smoothing (LDS; Yang et al., "Delving into Deep Imbalanced Regression",
//! ICML 2021): each training face's squared error is weighted by the inverse square root of
//! the smoothed density of its label, so that faces with rare labels (AffectNet has few with
//! arousal below −0.4) count more and the network stops pulling every prediction towards the
//! crowded middle.
//!
//! As the paper's reference code does: the training labels are counted in bins of width 0.1
//! over [−1, 1] (a grid of bins when both dimensions are trained), the counts are smoothed by a
//! Gaussian kernel of 5 bins with σ = 2 bins (scaled to a peak of 1, zero beyond the range),
//! a face's weight is 1/√(smoothed count of its bin), and the weights are scaled so that their
//! mean over the training faces is exactly 1 (the loss keeps its scale).

use crate::data::Dataset;
use valar_core::Targets;

/// Bins per dimension over [−1, 1].
const BINS: usize = 20;
/// Half the kernel window, in bins (the window is 2·HALF + 1 = 5 bins).
const HALF: usize = 2;
/// The kernel's standard deviation, in bins.
const SIGMA: f64 = 2.0;

/// The bin of a label in [−1, 1].
fn bin(v: f32) -> usize {
    let b = ((f64::from(v) + 1.0) / 2.0 * BINS as f64).floor();
    (b.max(0.0) as usize).min(BINS - 1)
}

/// The kernel window, scaled to a peak of 1.
fn kernel() -> [f64; 2 * HALF + 1] {
    let mut k = [0.0; 2 * HALF + 1];
    for (i, v) in k.iter_mut().enumerate() {
        let d = i as f64 - HALF as f64;
        *v = (-d * d / (2.0 * SIGMA * SIGMA)).exp();
    }
    k
}

/// `grid` (rows × cols, row-major) convolved with the kernel along one axis, zero outside.
fn smooth_axis(grid: &[f64], rows: usize, cols: usize, along_rows: bool) -> Vec<f64> {
    let k = kernel();
    let mut out = vec![0.0; grid.len()];
    for r in 0..rows {
        for c in 0..cols {
            let mut sum = 0.0;
            for (j, w) in k.iter().enumerate() {
                let off = j as isize - HALF as isize;
                let (rr, cc) = if along_rows {
                    (r as isize + off, c as isize)
                } else {
                    (r as isize, c as isize + off)
                };
                if (0..rows as isize).contains(&rr) && (0..cols as isize).contains(&cc) {
                    sum += w * grid[rr as usize * cols + cc as usize];
                }
            }
            out[r * cols + c] = sum;
        }
    }
    out
}

/// Each face's weight for `rows` of `data` (the training rows), in `rows`' order, for the
/// dimensions of `targets`.
pub(crate) fn weights(data: &Dataset, rows: &[usize], targets: Targets) -> Vec<f32> {
    let dims = targets.dimensions();
    let cell = |r: usize| -> usize {
        dims.iter()
            .fold(0, |acc, &d| acc * BINS + bin(data.label(r, d)))
    };
    let (n_rows, n_cols) = if dims.len() == 2 {
        (BINS, BINS)
    } else {
        (1, BINS)
    };
    let mut counts = vec![0.0f64; n_rows * n_cols];
    for &r in rows {
        counts[cell(r)] += 1.0;
    }
    let mut smooth = smooth_axis(&counts, n_rows, n_cols, false);
    if n_rows > 1 {
        smooth = smooth_axis(&smooth, n_rows, n_cols, true);
    }
    // A face's own bin always holds it, so its smoothed count is at least 1.
    let raw: Vec<f64> = rows.iter().map(|&r| 1.0 / smooth[cell(r)].sqrt()).collect();
    let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    raw.iter().map(|w| (w / mean) as f32).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::data::tests::write_dataset;

    fn dataset(labels: impl Fn(usize) -> (f32, f32), n: usize) -> (tempfile::TempDir, Dataset) {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), n, labels, |_| "train", |_, _| 0);
        let d = Dataset::load(dir.path()).unwrap();
        (dir, d)
    }

    /// The weights average exactly 1 over the training faces, and a face in a sparse region
    /// weighs more than one in a crowded region.
    #[test]
    fn weights_average_one_and_favour_rare_labels() {
        // 90 faces near arousal 0.3, 10 near −0.8.
        let (_dir, d) = dataset(
            |i| {
                let a = if i < 90 {
                    0.3 + (i % 3) as f32 * 0.01
                } else {
                    -0.8
                };
                (0.0, a)
            },
            100,
        );
        let rows: Vec<usize> = (0..100).collect();
        for targets in [Targets::Arousal, Targets::Both] {
            let w = weights(&d, &rows, targets);
            let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / w.len() as f64;
            assert!((mean - 1.0).abs() < 1e-6, "{targets:?}: mean {mean}");
            assert!(
                w[95] > 2.0 * w[0],
                "{targets:?}: rare {} vs common {}",
                w[95],
                w[0]
            );
            assert_eq!(w[0], w[3], "same bin, same weight");
        }
    }

    /// Labels spread evenly over the range (away from its edges, where the kernel is cut)
    /// weigh the same.
    #[test]
    fn even_labels_weigh_alike() {
        // Five faces in each of bins 4..=15 (labels −0.6 … 0.55).
        let (_dir, d) = dataset(|i| (0.0, -0.6 + (i / 5) as f32 * 0.1 + 0.05), 60);
        let rows: Vec<usize> = (0..60).collect();
        let w = weights(&d, &rows, Targets::Arousal);
        let inner = &w[10..50];
        let (lo, hi) = inner
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi - lo < 1e-5, "{lo} … {hi}");
    }

    #[test]
    fn bins_cover_the_range() {
        assert_eq!(bin(-1.0), 0);
        assert_eq!(bin(1.0), BINS - 1);
        assert_eq!(bin(0.0), BINS / 2);
        let k = kernel();
        assert_eq!(k[HALF], 1.0);
        assert!((k[0] - (-0.5f64).exp()).abs() < 1e-12);
    }
}
