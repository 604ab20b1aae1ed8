//! AffectNet's expression classes, and how well an expression head's predicted classes match
//! the labelled ones.

use serde::{Deserialize, Serialize};

/// AffectNet's eight expression classes, indexed by their code (0–7). Codes 8–10 (None,
/// Uncertain, Non-Face) and faces from datasets without expressions have no class.
pub const EXPRESSIONS: [&str; 8] = [
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
];

/// Number of expression classes.
const CLASSES: usize = EXPRESSIONS.len();

/// The class of a manifest's expression code: AffectNet's 0–7; None, Uncertain, Non-Face
/// (8–10) and faces without a code have none.
pub fn class_of(code: Option<i32>) -> Option<usize> {
    code.and_then(|c| usize::try_from(c).ok())
        .filter(|&c| c < CLASSES)
}

/// How well predicted classes match the labelled ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpressionScore {
    /// Faces with a class that were scored.
    pub faces: usize,
    /// Share of them predicted right.
    pub accuracy: f64,
    /// Mean over the classes present of each class's recall (the field's usual figure for
    /// AffectNet, whose validation set is balanced).
    pub balanced_accuracy: f64,
    /// `confusion[true][predicted]` face counts.
    pub confusion: Vec<Vec<usize>>,
}

impl ExpressionScore {
    /// Scores `logits` (`faces × CLASSES`) against each face's code; faces without a class are
    /// left out. `None` when no face has a class.
    pub fn of(codes: &[Option<i32>], logits: &[f32]) -> Option<Self> {
        let mut confusion = [[0usize; CLASSES]; CLASSES];
        for (code, row) in codes.iter().zip(logits.chunks_exact(CLASSES)) {
            if let Some(truth) = class_of(*code) {
                confusion[truth][argmax(row)] += 1;
            }
        }
        let faces: usize = confusion.iter().flatten().sum();
        if faces == 0 {
            return None;
        }
        let right: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
        let recalls: Vec<f64> = (0..CLASSES)
            .filter_map(|c| {
                let n: usize = confusion[c].iter().sum();
                (n > 0).then(|| confusion[c][c] as f64 / n as f64)
            })
            .collect();
        Some(ExpressionScore {
            faces,
            accuracy: right as f64 / faces as f64,
            balanced_accuracy: recalls.iter().sum::<f64>() / recalls.len() as f64,
            confusion: confusion.iter().map(|r| r.to_vec()).collect(),
        })
    }
}

/// The index of a row's largest logit (the first of equal ones).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_8_to_10_and_missing_have_no_class() {
        assert_eq!(class_of(Some(0)), Some(0));
        assert_eq!(class_of(Some(7)), Some(7));
        for c in [Some(8), Some(9), Some(10), Some(-1), None] {
            assert_eq!(class_of(c), None);
        }
    }

    #[test]
    fn score_counts_accuracy_balanced_accuracy_and_confusion() {
        // Four Happy faces (three right), two Sad (one right), one without a class.
        let codes = [
            Some(1),
            Some(1),
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            Some(9),
        ];
        let mut logits = vec![0.0f32; codes.len() * CLASSES];
        for (i, predicted) in [1, 1, 1, 0, 2, 1, 3].into_iter().enumerate() {
            logits[i * CLASSES + predicted] = 5.0;
        }
        let s = ExpressionScore::of(&codes, &logits).unwrap();
        assert_eq!(s.faces, 6);
        assert!((s.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((s.balanced_accuracy - (0.75 + 0.5) / 2.0).abs() < 1e-12);
        assert_eq!(s.confusion[1][1], 3);
        assert_eq!(s.confusion[1][0], 1);
        assert_eq!(s.confusion[2][1], 1);
        assert_eq!(s.confusion.iter().flatten().sum::<usize>(), 6);
        assert_eq!(ExpressionScore::of(&[None, Some(8)], &[0.0; 16]), None);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_logits() {
        assert_eq!(argmax(&[0.1, 0.3, 0.3]), 1);
    }
}
