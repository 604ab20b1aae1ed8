//! Definitions follow EmoNet's, with population (1/N) statistics throughout.
use serde::{Deserialize, Serialize};

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
    fn empty_input_is_nan() {
        assert!(rmse(&[], &[]).is_nan() && pcc(&[], &[]).is_nan() && ccc(&[], &[]).is_nan());
    }
}
