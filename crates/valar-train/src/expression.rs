//! The expression head's side of training: class weights and the per-face targets the
//! engine's cross-entropy reads (scores are [`valar_core::ExpressionScore`]).

use crate::TrainError;
use crate::data::Dataset;
use valar_core::{EXPRESSIONS, class_of};

/// Number of expression classes (AffectNet's eight).
pub(crate) const CLASSES: usize = EXPRESSIONS.len();

/// Per-class weights of the cross-entropy, from the training rows' classes: `n / (k · n_c)`
/// for the `k` classes present (scikit-learn's "balanced" weights, which PyTorch users pass
/// as `CrossEntropyLoss(weight=…)`), so that a rare class counts as much in the loss as a
/// common one; 0 for an absent class.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClassWeights(pub [f32; CLASSES]);

impl ClassWeights {
    /// The weights of `rows`' classes. An error naming the data when no row has a class: the
    /// head would have nothing to learn from.
    pub(crate) fn of(data: &Dataset, rows: &[usize]) -> Result<Self, TrainError> {
        let mut counts = [0usize; CLASSES];
        for &r in rows {
            if let Some(c) = class_of(data.rows[r].expression) {
                counts[c] += 1;
            }
        }
        let n: usize = counts.iter().sum();
        let present = counts.iter().filter(|&&c| c > 0).count();
        if n == 0 {
            return Err(TrainError::data(
                &data.dir,
                "--expression-weight needs expression labels, but no face of the train split has \
                 one of AffectNet's codes 0–7 (the manifest's `expression` column): train without \
                 --expression-weight (or with 0)",
            ));
        }
        let mut w = [0.0f32; CLASSES];
        for (w, &c) in w.iter_mut().zip(&counts) {
            if c > 0 {
                *w = n as f32 / (present * c) as f32;
            }
        }
        Ok(ClassWeights(w))
    }

    /// The engine's targets for a batch, `rows × CLASSES`: each face's class weight at its
    /// class, a zero row for a face without a class (it adds nothing to the loss).
    pub(crate) fn targets(&self, data: &Dataset, rows: &[usize]) -> Vec<f32> {
        let mut t = vec![0.0; rows.len() * CLASSES];
        for (i, &r) in rows.iter().enumerate() {
            if let Some(c) = class_of(data.rows[r].expression) {
                t[i * CLASSES + c] = self.0[c];
            }
        }
        t
    }
}

/// Softmax probabilities of one row of logits.
pub(crate) fn softmax(row: &[f32]) -> Vec<f32> {
    let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - top).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Balanced weights n / (k · n_c) over the classes present, a zero row for a face without a
    /// class, and an error naming the folder when no training face has one.
    #[test]
    fn class_weights_balance_the_classes_present() {
        let dir = tempfile::tempdir().unwrap();
        crate::data::tests::write_dataset(dir.path(), 6, |_| (0.0, 0.0), |_| "train", |_, _| 0);
        let mut d = Dataset::load(dir.path()).unwrap();
        for (row, code) in [Some(1), Some(1), Some(1), Some(2), Some(9), None]
            .iter()
            .enumerate()
        {
            d.rows[row].expression = *code;
        }
        let w = ClassWeights::of(&d, &[0, 1, 2, 3, 4, 5]).unwrap();
        // Four faces with a class, two classes present: Happy 4/(2·3), Sad 4/(2·1).
        assert!((w.0[1] - 4.0 / 6.0).abs() < 1e-6 && (w.0[2] - 2.0).abs() < 1e-6);
        assert_eq!(w.0.iter().filter(|&&v| v == 0.0).count(), 6);
        let t = w.targets(&d, &[3, 4, 0]);
        assert_eq!(t.len(), 3 * CLASSES);
        assert_eq!(t[2], 2.0);
        assert!(t[CLASSES..2 * CLASSES].iter().all(|&v| v == 0.0));
        assert_eq!(t[2 * CLASSES + 1], w.0[1]);
        let err = ClassWeights::of(&d, &[4, 5]).unwrap_err().to_string();
        assert!(
            err.contains(&dir.path().display().to_string()) && err.contains("expression"),
            "{err}"
        );
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let p = softmax(&[1000.0, 999.0, -5.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1] && p[1] > p[2]);
    }
}
