//! Output calibration (`valar train --calibrate`): a per-dimension affine map, chosen on the
//! validation split and folded into model.onnx before its clip, that raises CCC without
//! pushing RMSE above the mean-prediction baseline's.
//!
//! Why: a network whose predictions spread too far (seen on real faces for arousal) can have
//! a higher CCC than predicting the training mean and yet a worse RMSE. Only the spread and
//! the centre of the predictions are changed here; their ranking (and so their correlation
//! with the labels) stays the network's.
//!
//! The map, for dimension d: with the training split's label mean μy and standard deviation
//! σy, and on the validation split the raw (unclipped) predictions' mean μp and standard
//! deviation σp (population statistics) and their Pearson correlation r with the labels,
//!
//! ```text
//! p' = μy + k·σy·(p − μp)/σp,   i.e.   p' = a·p + b,   a = k·σy/σp,   b = μy − a·μp.
//! ```
//!
//! With p' in that form (and validation labels distributed as the training ones),
//!
//! ```text
//! RMSE² = σy²·(1 − 2kr + k²) + (bias terms),    CCC = 2kr / (1 + k²),
//! ```
//!
//! so RMSE equals the mean's at k = 2r and is below it for 0 < k < 2r, while CCC is highest at
//! k = 1. The choice is **k = min(1, 1.6·r)**: 0.8 of the way to the bound 2r, a margin for
//! the sampling error of r (about 0.06 on 225 validation faces), and never past the CCC
//! optimum. k = 0, predicting the training mean, when r ≤ 0 or σp = 0: a network that does
//! not correlate with the labels has nothing better to offer. From r ≥ 0.625 on, k = 1: the
//! map only moves the predictions to the training labels' mean and spread.
//!
//! The fit is a pure function of the predictions and labels (f64 sums in row order), so a
//! resumed run fits the same map and writes the same model.onnx. metrics.csv keeps the raw
//! network's figures (what the epoch trained to); the map, and the validation CCC and RMSE
//! before and after it, are in model.onnx's `valar.calibration` metadata and the model card.

use crate::outputs::into_label_range;
use serde::{Deserialize, Serialize};
use valar_core::{DimMetrics, Dimension, Targets, mean_baseline, pcc};

/// How far k goes towards the RMSE bound 2r.
pub(crate) const SHARE_OF_BOUND: f64 = 0.8;

/// One dimension's map, as [`fit`] chooses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    /// Pearson correlation of the raw predictions with the labels (0 when either side is
    /// constant).
    pub r: f64,
    /// The share of the training labels' spread the calibrated predictions get.
    pub k: f64,
    /// `a`: what the raw prediction is multiplied by (as model.onnx holds it, f32).
    pub scale: f32,
    /// `b`: what is added after.
    pub shift: f32,
}

impl Affine {
    /// `a·p + b`, in f32 as model.onnx computes it (Mul, then Add).
    pub(crate) fn apply(&self, p: f32) -> f32 {
        p * self.scale + self.shift
    }
}

/// Population mean and standard deviation, in f64.
fn mean_sd(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// The map of one dimension (see the module doc): `train_labels` are the training split's
/// labels, `val_labels` and `val_raw` the validation split's labels and raw predictions.
pub(crate) fn fit(train_labels: &[f32], val_labels: &[f32], val_raw: &[f32]) -> Affine {
    let (mu_y, sd_y) = mean_sd(train_labels);
    let (mu_p, sd_p) = mean_sd(val_raw);
    let r = pcc(val_labels, val_raw);
    let r = if r.is_finite() { r } else { 0.0 };
    let k = if r > 0.0 && sd_p > 0.0 {
        (2.0 * SHARE_OF_BOUND * r).min(1.0)
    } else {
        0.0
    };
    let a = if k > 0.0 { k * sd_y / sd_p } else { 0.0 };
    Affine {
        r,
        k,
        scale: a as f32,
        shift: (mu_y - a * mu_p) as f32,
    }
}

/// A finite number, or `None` (JSON has no NaN).
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// One dimension's calibration with the validation figures before and after it: an entry of
/// model.onnx's `valar.calibration` metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimCalibration {
    /// The dimension.
    pub dimension: Dimension,
    /// Pearson correlation of the raw validation predictions with the labels.
    pub r: f64,
    /// The chosen k = min(1, 1.6·r), or 0.
    pub k: f64,
    /// `a` of `a·p + b`.
    pub scale: f32,
    /// `b` of `a·p + b`.
    pub shift: f32,
    /// Validation CCC of the raw predictions, clipped (metrics.csv's figure).
    pub ccc_before: Option<f64>,
    /// Validation CCC of the calibrated predictions, clipped (model.onnx's).
    pub ccc_after: Option<f64>,
    /// Validation RMSE of the raw predictions, clipped.
    pub rmse_before: Option<f64>,
    /// Validation RMSE of the calibrated predictions, clipped.
    pub rmse_after: Option<f64>,
    /// Validation RMSE of predicting the training split's mean label.
    pub mean_rmse: Option<f64>,
}

/// The calibration of a model: one map per predicted dimension, in output order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The epoch (1-based) whose validation predictions it was fitted on.
    pub epoch: usize,
    /// The maps, in the order of the model's output columns.
    pub dimensions: Vec<DimCalibration>,
}

/// Column `d` of a `rows × dims` row-major table.
fn column(table: &[f32], d: usize, dims: usize) -> Vec<f32> {
    table.iter().skip(d).step_by(dims).copied().collect()
}

impl Calibration {
    /// The metadata key that holds it, as JSON.
    pub const KEY: &'static str = "valar.calibration";

    /// Fits every dimension of `targets` ([`fit`]); the tables are `rows × dims` in the order
    /// of `targets`: the training split's labels, the validation split's labels and its raw
    /// predictions after `epoch`.
    pub(crate) fn fit(
        epoch: usize,
        targets: Targets,
        train_truth: &[f32],
        val_truth: &[f32],
        val_raw: &[f32],
    ) -> Self {
        let dims = targets.dimensions();
        let n = dims.len();
        let dimensions = dims
            .iter()
            .enumerate()
            .map(|(d, &dimension)| {
                let train = column(train_truth, d, n);
                let truth = column(val_truth, d, n);
                let raw = column(val_raw, d, n);
                let map = fit(&train, &truth, &raw);
                let calibrated: Vec<f32> = raw.iter().map(|&p| map.apply(p)).collect();
                let before = DimMetrics::compute(&truth, &into_label_range(raw));
                let after = DimMetrics::compute(&truth, &into_label_range(calibrated));
                let (mu_y, _) = mean_sd(&train);
                DimCalibration {
                    dimension,
                    r: map.r,
                    k: map.k,
                    scale: map.scale,
                    shift: map.shift,
                    ccc_before: finite(before.ccc),
                    ccc_after: finite(after.ccc),
                    rmse_before: finite(before.rmse),
                    rmse_after: finite(after.rmse),
                    mean_rmse: finite(mean_baseline(&truth, mu_y).rmse),
                }
            })
            .collect();
        Calibration { epoch, dimensions }
    }

    /// `(scale, shift)` per output column, for the export.
    pub(crate) fn pairs(&self) -> Vec<(f32, f32)> {
        self.dimensions.iter().map(|d| (d.scale, d.shift)).collect()
    }

    /// The calibrated predictions of the raw `rows × dims` table `raw`, clipped to the label
    /// range: what model.onnx outputs for the same faces.
    pub(crate) fn apply(&self, raw: &[f32]) -> Vec<f32> {
        let n = self.dimensions.len().max(1);
        let out = raw
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let d = &self.dimensions[i % n];
                p * d.scale + d.shift
            })
            .collect();
        into_label_range(out)
    }

    /// The metadata value.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the metadata value; `None` when it is not one valar wrote.
    pub(crate) fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use valar_core::{ccc, rmse};

    /// `n` labels spread over about ±0.45 and raw predictions that correlate with them by
    /// about `target_r`, spread `spread` times as far and shifted by 0.3: the trap.
    fn sample(n: usize, target_r: f64, spread: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut y = Vec::new();
        let mut p = Vec::new();
        let noise = (1.0 - target_r * target_r).sqrt() as f32;
        for _ in 0..n {
            let z: f32 = rng.random::<f32>() * 2.0 - 1.0;
            let e: f32 = rng.random::<f32>() * 2.0 - 1.0;
            y.push(0.45 * z);
            p.push(spread * 0.45 * (target_r as f32 * z + noise * e) + 0.3);
        }
        (y, p)
    }

    /// On in the defaults; off in both presets and in a config.toml written before the setting.
    #[test]
    fn the_setting_is_on_by_default_only() {
        use crate::config::{Recipe, TrainConfig};
        let data = std::path::PathBuf::from("d");
        assert!(TrainConfig::defaults(data.clone()).calibrate);
        assert!(!TrainConfig::recipe(Recipe::Seed, data.clone()).calibrate);
        assert!(!TrainConfig::recipe(Recipe::Reference, data).calibrate);
        let old: TrainConfig = toml::from_str("data = \"d\"\nepochs = 3\n").unwrap();
        assert!(!old.calibrate);
        let on: TrainConfig = toml::from_str("data = \"d\"\ncalibrate = true\n").unwrap();
        assert!(on.calibrate);
    }

    #[test]
    fn k_is_min_of_one_and_1_6_r() {
        for (target_r, seed) in [(0.2, 1), (0.4, 2), (0.55, 3), (0.9, 4)] {
            let (y, p) = sample(2000, target_r, 3.0, seed);
            let m = fit(&y, &y, &p);
            let r = pcc(&y, &p);
            assert!((m.r - r).abs() < 1e-12);
            assert!((m.k - (1.6 * r).min(1.0)).abs() < 1e-12, "{m:?}");
            assert!(m.k > 0.0 && m.k < 2.0 * r);
        }
    }

    /// On the validation data itself (training labels = validation labels), the map gives
    /// CCC = 2kr/(1 + k²), and RMSE = σy·√(1 − 2kr + k²), below the mean's σy.
    #[test]
    fn the_map_gives_the_promised_ccc_and_beats_the_mean() {
        for (target_r, spread, seed) in [(0.25, 3.0, 5), (0.45, 2.0, 6), (0.8, 0.5, 7)] {
            let (y, p) = sample(1000, target_r, spread, seed);
            let m = fit(&y, &y, &p);
            let q: Vec<f32> = p.iter().map(|&v| m.apply(v)).collect();
            let (mu, sd) = mean_sd(&y);
            let (k, r) = (m.k, m.r);
            let want_ccc = 2.0 * k * r / (1.0 + k * k);
            assert!((ccc(&y, &q) - want_ccc).abs() < 1e-5, "{m:?}");
            let want_rmse = sd * (1.0 - 2.0 * k * r + k * k).sqrt();
            assert!((rmse(&y, &q) - want_rmse).abs() < 1e-5, "{m:?}");
            let mean_rmse = mean_baseline(&y, mu).rmse;
            assert!(rmse(&y, &q) < mean_rmse, "{m:?}");
            // The raw predictions were in the trap: a worse RMSE than the mean's.
            if spread > 1.0 {
                assert!(rmse(&y, &p) > mean_rmse);
            }
        }
    }

    /// With training labels drawn apart from the validation ones (same distribution), a
    /// correlated network still ends under the mean's RMSE, and above its raw CCC when it
    /// spread too far.
    #[test]
    fn on_held_out_labels_rmse_stays_under_the_mean() {
        let (train, _) = sample(3000, 0.5, 1.0, 8);
        let (y, p) = sample(400, 0.4, 3.0, 9);
        let cal = Calibration::fit(3, Targets::Arousal, &train, &y, &p);
        let d = &cal.dimensions[0];
        assert_eq!((d.dimension, cal.epoch), (Dimension::Arousal, 3));
        assert!(d.rmse_after.unwrap() < d.mean_rmse.unwrap(), "{d:?}");
        assert!(d.rmse_before.unwrap() > d.mean_rmse.unwrap(), "{d:?}");
        assert!(d.ccc_after.unwrap() > d.ccc_before.unwrap(), "{d:?}");
    }

    #[test]
    fn uncorrelated_or_constant_predictions_give_the_training_mean() {
        let train = [0.1f32, 0.3, 0.5];
        let y = [0.0f32, 0.5, -0.5, 0.25];
        for p in [[0.2f32; 4], [0.5, 0.0, 1.0, 0.25], [0.0, -0.5, 0.5, -0.25]] {
            let m = fit(&train, &y, &p);
            assert_eq!((m.k, m.scale), (0.0, 0.0), "{p:?}: {m:?}");
            assert!((m.shift - 0.3).abs() < 1e-7);
            assert!(m.r <= 0.0);
        }
        // Constant validation labels: r is undefined (0), so again the mean.
        let m = fit(&train, &[0.2; 4], &[0.1, 0.2, 0.3, 0.4]);
        assert_eq!((m.r, m.k, m.scale), (0.0, 0.0, 0.0));
    }

    #[test]
    fn both_dimensions_apply_per_column_clip_and_read_back() {
        let (yv, pv) = sample(300, 0.6, 2.0, 10);
        let (ya, pa) = sample(300, 0.3, 4.0, 11);
        let inter = |a: &[f32], b: &[f32]| -> Vec<f32> {
            a.iter().zip(b).flat_map(|(x, y)| [*x, *y]).collect()
        };
        let (truth, raw) = (inter(&yv, &ya), inter(&pv, &pa));
        let cal = Calibration::fit(2, Targets::Both, &truth, &truth, &raw);
        let names: Vec<_> = cal.dimensions.iter().map(|d| d.dimension).collect();
        assert_eq!(names, [Dimension::Valence, Dimension::Arousal]);
        assert_eq!(cal.dimensions[0], {
            let one = Calibration::fit(2, Targets::Valence, &yv, &yv, &pv);
            one.dimensions[0].clone()
        });
        let out = cal.apply(&raw);
        for (i, (&o, &p)) in out.iter().zip(&raw).enumerate() {
            let d = &cal.dimensions[i % 2];
            assert_eq!(o, (p * d.scale + d.shift).clamp(-1.0, 1.0));
        }
        // serde_json reads f64s to within an ULP (its exact parser is a feature valar does not
        // turn on); the f32 map itself reads back exactly.
        let back = Calibration::from_json(&cal.to_json()).unwrap();
        assert_eq!((back.epoch, back.pairs()), (cal.epoch, cal.pairs()));
        for (b, c) in back.dimensions.iter().zip(&cal.dimensions) {
            assert_eq!(b.dimension, c.dimension);
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12;
            assert!(close(b.r, c.r) && close(b.k, c.k), "{b:?} vs {c:?}");
            assert!(close(b.ccc_after.unwrap(), c.ccc_after.unwrap()));
            assert!(close(b.rmse_before.unwrap(), c.rmse_before.unwrap()));
        }
        assert_eq!(
            cal.pairs()[1],
            (cal.dimensions[1].scale, cal.dimensions[1].shift)
        );
        assert!(Calibration::from_json("{\"epoch\": 1}").is_none());
    }
}
