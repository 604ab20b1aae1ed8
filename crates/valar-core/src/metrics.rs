//! Definitions follow EmoNet's, with population (1/N) statistics throughout.
//!
//! Beside the metrics lives the yardstick every model is held against: the mean-prediction
//! baseline, which predicts the training split's mean valence and arousal for every face.
//! A model that cannot beat it has learned nothing a constant does not already know.
use crate::{Dimension, ManifestRow, Split};
use serde::{Deserialize, Serialize};

/// |CCC| below this counts as "near zero": the model barely tracks the labels. 0.1 is
/// about one standard error of a CCC on 100 unrelated faces (1/√100), and a quarter of
/// what a small CNN reaches on real AffectNet faces (about 0.4), so a model under it is
/// indistinguishable from noise on a typical validation split.
pub const NEAR_ZERO_CCC: f64 = 0.1;

/// The four numbers papers report for one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DimMetrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Pearson correlation coefficient.
    pub pcc: f64,
    /// Concordance correlation coefficient.
    pub ccc: f64,
    /// Sign agreement: the share of samples where sign(y) = sign(ŷ).
    pub sagr: f64,
}

impl DimMetrics {
    /// All four metrics of predictions `pred` against truth `truth`.
    pub fn compute(truth: &[f32], pred: &[f32]) -> Self {
        DimMetrics {
            rmse: rmse(truth, pred),
            pcc: pcc(truth, pred),
            ccc: ccc(truth, pred),
            sagr: sagr(truth, pred),
        }
    }
}

/// The training split's mean labels: the constant the mean-prediction baseline predicts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingMean {
    /// Mean valence of the training rows.
    pub valence: f64,
    /// Mean arousal of the training rows.
    pub arousal: f64,
    /// How many training rows the means are over.
    pub rows: usize,
}

impl TrainingMean {
    /// The mean labels of the `train` rows of a manifest; `None` when it has none (a test
    /// set prepared with `--all`, say).
    pub fn of_train_rows(manifest: &[ManifestRow]) -> Option<Self> {
        let train: Vec<&ManifestRow> = manifest
            .iter()
            .filter(|r| r.split == Split::Train)
            .collect();
        if train.is_empty() {
            return None;
        }
        let n = train.len() as f64;
        let mean =
            |f: fn(&ManifestRow) -> f32| train.iter().map(|r| f64::from(f(r))).sum::<f64>() / n;
        Some(TrainingMean {
            valence: mean(|r| r.valence),
            arousal: mean(|r| r.arousal),
            rows: train.len(),
        })
    }

    /// The mean of one dimension.
    pub fn get(&self, dim: Dimension) -> f64 {
        match dim {
            Dimension::Valence => self.valence,
            Dimension::Arousal => self.arousal,
        }
    }
}

/// The metrics of predicting the constant `mean` for every face of `truth`: RMSE is the
/// root mean squared deviation from `mean`, PCC 0 (undefined for a constant, reported as
/// 0 like [`pcc`]), CCC 0 (1 only when every label equals `mean`), SAGR the share of
/// labels with `mean`'s sign.
pub fn mean_baseline(truth: &[f32], mean: f64) -> DimMetrics {
    // The same definitions as a model's, so the two can never disagree on what a metric is.
    let constant = vec![mean as f32; truth.len()];
    DimMetrics::compute(truth, &constant)
}

/// Plain sentences saying how a model's metrics on `what` (e.g. "test set") compare with
/// the mean baseline's for `dim`: one when its RMSE is worse than the baseline's, one when
/// its |CCC| is below [`NEAR_ZERO_CCC`]; empty when neither holds.
pub fn baseline_warnings(
    dim: Dimension,
    what: &str,
    model: &DimMetrics,
    baseline_rmse: Option<f64>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(base) = baseline_rmse
        && model.rmse > base
    {
        out.push(format!(
            "{dim} on the {what}: RMSE {:.3} is worse than predicting the training mean ({:.3}): \
             the model is worse than the mean.",
            model.rmse, base
        ));
    }
    if model.ccc.abs() < NEAR_ZERO_CCC {
        out.push(format!(
            "{dim} on the {what}: CCC {:.3} is near zero (|CCC| < {NEAR_ZERO_CCC}): \
             the model barely tracks {dim}.",
            model.ccc
        ));
    }
    out
}

struct Moments {
    mean_y: f64,
    mean_p: f64,
    var_y: f64,
    var_p: f64,
    cov: f64,
}

fn moments(truth: &[f32], pred: &[f32]) -> Option<Moments> {
    assert_eq!(
        truth.len(),
        pred.len(),
        "truth and predictions differ in length"
    );
    if truth.is_empty() {
        return None;
    }
    let n = truth.len() as f64;
    let mean_y = truth.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mean_p = pred.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut var_y, mut var_p, mut cov) = (0.0, 0.0, 0.0);
    for (&y, &p) in truth.iter().zip(pred) {
        let dy = f64::from(y) - mean_y;
        let dp = f64::from(p) - mean_p;
        var_y += dy * dy;
        var_p += dp * dp;
        cov += dy * dp;
    }
    Some(Moments {
        mean_y,
        mean_p,
        var_y: var_y / n,
        var_p: var_p / n,
        cov: cov / n,
    })
}

/// Root mean squared error; NaN for no samples.
pub fn rmse(truth: &[f32], pred: &[f32]) -> f64 {
    assert_eq!(
        truth.len(),
        pred.len(),
        "truth and predictions differ in length"
    );
    if truth.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = truth
        .iter()
        .zip(pred)
        .map(|(&y, &p)| (f64::from(y) - f64::from(p)).powi(2))
        .sum();
    (sum / truth.len() as f64).sqrt()
}

/// Pearson correlation. When either side is constant the correlation is undefined;
/// it is reported as 0, the value that says "no linear relation was shown".
pub fn pcc(truth: &[f32], pred: &[f32]) -> f64 {
    let Some(m) = moments(truth, pred) else {
        return f64::NAN;
    };
    let denom = (m.var_y * m.var_p).sqrt();
    if denom == 0.0 { 0.0 } else { m.cov / denom }
}

/// Concordance correlation: 2·cov / (σ²_y + σ²_ŷ + (μ_y − μ_ŷ)²).
/// Defined as 1 when both sides are the same constant, 0 for other zero denominators.
pub fn ccc(truth: &[f32], pred: &[f32]) -> f64 {
    let Some(m) = moments(truth, pred) else {
        return f64::NAN;
    };
    let denom = m.var_y + m.var_p + (m.mean_y - m.mean_p).powi(2);
    if denom == 0.0 {
        1.0
    } else {
        2.0 * m.cov / denom
    }
}

/// Sign agreement, with numpy's sign (0 has sign 0, so 0 agrees only with 0).
pub fn sagr(truth: &[f32], pred: &[f32]) -> f64 {
    assert_eq!(
        truth.len(),
        pred.len(),
        "truth and predictions differ in length"
    );
    if truth.is_empty() {
        return f64::NAN;
    }
    let sign = |v: f32| {
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    };
    let agree = truth
        .iter()
        .zip(pred)
        .filter(|&(&y, &p)| sign(y) == sign(p))
        .count();
    agree as f64 / truth.len() as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    const Y: [f32; 4] = [-1.0, -0.5, 0.5, 1.0];

    #[test]
    fn perfect_predictions() {
        let m = DimMetrics::compute(&Y, &Y);
        assert!(close(m.rmse, 0.0) && close(m.pcc, 1.0) && close(m.ccc, 1.0) && close(m.sagr, 1.0));
    }

    #[test]
    fn negated_signal() {
        let neg: Vec<f32> = Y.iter().map(|v| -v).collect();
        let m = DimMetrics::compute(&Y, &neg);
        // Errors are 2, 1, 1, 2: mean square (4 + 1 + 1 + 4) / 4 = 2.5.
        assert!(close(m.rmse, 2.5f64.sqrt()));
        assert!(close(m.pcc, -1.0));
        // Means are both 0 and variances equal, so CCC = 2·(−σ²) / 2σ² = −1.
        assert!(close(m.ccc, -1.0));
        assert!(close(m.sagr, 0.0));
    }

    #[test]
    fn constant_predictions() {
        let flat = [0.25f32; 4];
        let m = DimMetrics::compute(&Y, &flat);
        // Squared errors 1.5625, 0.5625, 0.0625, 0.5625 → mean 0.6875.
        assert!(close(m.rmse, 0.6875f64.sqrt()));
        assert!(close(m.pcc, 0.0));
        assert!(close(m.ccc, 0.0));
        // Signs of truth: −,−,+,+; prediction always +: two agree.
        assert!(close(m.sagr, 0.5));
    }

    #[test]
    fn hand_computed_ccc_with_bias_and_scale() {
        // ŷ = y/2 + 0.5 over y = (−1, −0.5, 0.5, 1): μ_y = 0, σ²_y = (1 + .25 + .25 + 1)/4 = 0.625,
        // μ_ŷ = 0.5, σ²_ŷ = 0.625/4 = 0.15625, cov = 0.625/2 = 0.3125.
        // CCC = 0.625 / (0.625 + 0.15625 + 0.25) = 0.625 / 1.03125.
        let pred: Vec<f32> = Y.iter().map(|v| v / 2.0 + 0.5).collect();
        assert!(close(ccc(&Y, &pred), 0.625 / 1.03125));
        assert!(close(pcc(&Y, &pred), 1.0));
        // Signs: −1→0 (0 ≠ −), −0.5→0.25 (+), 0.5→0.75, 1→1: two of four agree.
        assert!(close(sagr(&Y, &pred), 0.5));
    }

    #[test]
    fn mean_baseline_is_the_deviation_from_the_training_mean() {
        // Truth −1, −0.5, 0.5, 1 against a training mean of 0.25: squared deviations
        // 1.5625, 0.5625, 0.0625, 0.5625, mean 0.6875; two labels share its sign.
        let m = mean_baseline(&Y, 0.25);
        assert!(close(m.rmse, 0.6875f64.sqrt()));
        assert!(close(m.pcc, 0.0) && close(m.ccc, 0.0) && close(m.sagr, 0.5));
        // With the scored rows' own mean (0) the RMSE is their population SD.
        let sd = (Y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 4.0).sqrt();
        assert!(close(mean_baseline(&Y, 0.0).rmse, sd));
    }

    fn row(split: Split, valence: f32, arousal: f32) -> ManifestRow {
        ManifestRow {
            index: 0,
            path: String::new(),
            valence,
            arousal,
            expression: None,
            interval: 0,
            split,
            face_x: 0,
            face_y: 0,
            face_width: 1,
            face_height: 1,
            sha256: String::new(),
            video: None,
            frame: None,
        }
    }

    #[test]
    fn training_mean_uses_train_rows_only() {
        let rows = [
            row(Split::Train, 0.5, -0.25),
            row(Split::Val, 1.0, 1.0),
            row(Split::Train, -0.25, 0.75),
            row(Split::Test, -1.0, -1.0),
        ];
        let m = TrainingMean::of_train_rows(&rows).unwrap();
        assert!(close(m.valence, 0.125) && close(m.arousal, 0.25));
        assert_eq!(m.rows, 2);
        assert!(close(m.get(Dimension::Arousal), 0.25));
        assert!(TrainingMean::of_train_rows(&rows[1..2]).is_none());
    }

    #[test]
    fn warnings_name_a_model_worse_than_the_mean_and_a_near_zero_ccc() {
        let weak = DimMetrics {
            rmse: 0.485,
            pcc: 0.1,
            ccc: 0.039,
            sagr: 0.6,
        };
        let w = baseline_warnings(Dimension::Valence, "test set", &weak, Some(0.469));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("worse than the mean")
                && w[0].contains("0.485")
                && w[0].contains("0.469")
        );
        assert!(w[1].contains("near zero") && w[1].contains("0.039"));
        let good = DimMetrics {
            rmse: 0.3,
            pcc: 0.8,
            ccc: 0.7,
            sagr: 0.9,
        };
        assert!(baseline_warnings(Dimension::Arousal, "test set", &good, Some(0.469)).is_empty());
        // A negative CCC far from zero is not "near zero"; without a baseline RMSE only CCC is judged.
        let anti = DimMetrics { ccc: -0.5, ..good };
        assert!(baseline_warnings(Dimension::Arousal, "x", &anti, None).is_empty());
    }

    #[test]
    fn empty_input_is_nan() {
        assert!(rmse(&[], &[]).is_nan() && pcc(&[], &[]).is_nan() && ccc(&[], &[]).is_nan());
    }
}
