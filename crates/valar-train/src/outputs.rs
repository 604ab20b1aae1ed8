//! The run's tables: `metrics.csv` (one row per epoch) and `predictions.csv` (one row per face).

use crate::TrainError;
use crate::data::Dataset;
use serde::{Deserialize, Serialize};
use std::path::Path;
use valar_core::IoError;
use valar_core::{
    DimMetrics, Dimension, METRICS_COLUMNS, ManifestRow, PREDICTIONS_COLUMNS, Targets,
    mean_baseline, write_atomic,
};

/// The label range: valence and arousal are annotated in [−1, 1].
const LABEL_RANGE: (f32, f32) = (-1.0, 1.0);

/// A model's raw outputs as predictions: clipped to the label range, since nothing outside
/// it can be a label and a prediction beyond it only adds error. Every path a prediction
/// leaves the model by (validation, `evaluate`, `predict`) goes through here. NaN stays NaN,
/// so a diverged model is still caught.
pub(crate) fn into_label_range(mut raw: Vec<f32>) -> Vec<f32> {
    for v in &mut raw {
        *v = v.clamp(LABEL_RANGE.0, LABEL_RANGE.1);
    }
    raw
}

/// The validation RMSE of the mean-prediction baseline, per trained dimension (valence,
/// arousal): predicting the mean label of `train_rows` for every one of `val_rows`.
pub(crate) fn baseline_rmse(
    data: &Dataset,
    train_rows: &[usize],
    val_rows: &[usize],
    targets: Targets,
) -> (Option<f64>, Option<f64>) {
    let of = |dim: Dimension| {
        if !targets.dimensions().contains(&dim) || train_rows.is_empty() {
            return None;
        }
        let mean = train_rows
            .iter()
            .map(|&r| f64::from(data.label(r, dim)))
            .sum::<f64>()
            / train_rows.len() as f64;
        let truth: Vec<f32> = val_rows.iter().map(|&r| data.label(r, dim)).collect();
        Some(mean_baseline(&truth, mean).rmse)
    };
    (of(Dimension::Valence), of(Dimension::Arousal))
}

/// What one epoch did: one row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's faces (training mode, before each update).
    pub train_loss: f64,
    /// The training loss over the whole validation split, in eval mode; `None` when the run
    /// has no validation faces (a folder prepared with `--val-fraction 0`).
    pub val_loss: Option<f64>,
    /// Validation metrics for valence, if trained.
    pub valence: Option<DimMetrics>,
    /// Validation metrics for arousal, if trained.
    pub arousal: Option<DimMetrics>,
    /// Validation RMSE of predicting the training split's mean valence, if trained (absent
    /// from checkpoints written before valar recorded it).
    #[serde(default)]
    pub valence_baseline_rmse: Option<f64>,
    /// Likewise for arousal.
    #[serde(default)]
    pub arousal_baseline_rmse: Option<f64>,
    /// Learning rate at the epoch's first step.
    pub lr: f64,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
}

impl EpochRecord {
    /// Metrics of one dimension.
    pub fn metrics(&self, dim: Dimension) -> Option<&DimMetrics> {
        match dim {
            Dimension::Valence => self.valence.as_ref(),
            Dimension::Arousal => self.arousal.as_ref(),
        }
    }

    /// The model-selection score: mean validation CCC of the trained dimensions.
    pub fn score(&self) -> f64 {
        let cccs: Vec<f64> = [&self.valence, &self.arousal]
            .into_iter()
            .flatten()
            .map(|m| m.ccc)
            .collect();
        if cccs.is_empty() {
            f64::NAN
        } else {
            cccs.iter().sum::<f64>() / cccs.len() as f64
        }
    }
}

/// Per-dimension metrics of `pred` against `truth` (both `rows × dims` in the order of
/// `targets`), for the dimensions `targets` holds.
pub(crate) fn dim_metrics(
    targets: Targets,
    truth: &[f32],
    pred: &[f32],
) -> Vec<(Dimension, DimMetrics)> {
    let dims = targets.dimensions();
    dims.iter()
        .enumerate()
        .map(|(d, &dim)| {
            let t: Vec<f32> = truth.iter().skip(d).step_by(dims.len()).copied().collect();
            let p: Vec<f32> = pred.iter().skip(d).step_by(dims.len()).copied().collect();
            (dim, DimMetrics::compute(&t, &p))
        })
        .collect()
}

fn metric_cells(m: Option<&DimMetrics>) -> [String; 4] {
    match m {
        Some(m) => [m.rmse, m.pcc, m.ccc, m.sagr].map(|v| v.to_string()),
        None => Default::default(),
    }
}

/// Writes `metrics.csv` for every epoch so far, atomically.
pub(crate) fn write_metrics_csv(path: &Path, history: &[EpochRecord]) -> Result<(), TrainError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| {
        TrainError::from(IoError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
    };
    w.write_record(METRICS_COLUMNS).map_err(csv_err)?;
    for r in history {
        let mut row = vec![
            r.epoch.to_string(),
            r.train_loss.to_string(),
            r.val_loss.map(|v| v.to_string()).unwrap_or_default(),
        ];
        let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        row.extend(metric_cells(r.valence.as_ref()));
        row.push(cell(r.valence_baseline_rmse));
        row.extend(metric_cells(r.arousal.as_ref()));
        row.push(cell(r.arousal_baseline_rmse));
        row.push(r.lr.to_string());
        row.push(format!("{:.3}", r.seconds));
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| {
        TrainError::from(IoError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    })?;
    Ok(write_atomic(path, |out| out.write_all(&bytes))?)
}

/// Writes `predictions.csv` for manifest rows `rows` with predictions `pred`
/// (`rows × dims` in the order of `targets`), atomically. An untrained dimension's cells are
/// left empty, truth included.
pub(crate) fn write_predictions_csv(
    path: &Path,
    manifest: &[ManifestRow],
    rows: &[usize],
    pred: &[f32],
    targets: Targets,
) -> Result<(), TrainError> {
    let dims = targets.dimensions();
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| {
        TrainError::from(IoError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
    };
    w.write_record(PREDICTIONS_COLUMNS).map_err(csv_err)?;
    for (k, &r) in rows.iter().enumerate() {
        let row = &manifest[r];
        let mut rec = vec![row.index.to_string(), row.path.clone()];
        for dim in Dimension::ALL {
            match dims.iter().position(|&d| d == dim) {
                Some(d) => {
                    let truth = match dim {
                        Dimension::Valence => row.valence,
                        Dimension::Arousal => row.arousal,
                    };
                    rec.push(truth.to_string());
                    rec.push(pred[k * dims.len() + d].to_string());
                }
                None => rec.extend([String::new(), String::new()]),
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| {
        TrainError::from(IoError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    })?;
    Ok(write_atomic(path, |out| out.write_all(&bytes))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use valar_core::{RunDir, Split};

    fn manifest_row(index: usize, v: f32, a: f32) -> ManifestRow {
        ManifestRow {
            index,
            path: format!("d/{index}.jpg"),
            valence: v,
            arousal: a,
            expression: None,
            interval: 0,
            split: Split::Val,
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
    fn metrics_csv_leaves_untrained_dimension_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::new(dir.path()).metrics();
        let m = DimMetrics {
            rmse: 0.5,
            pcc: 0.25,
            ccc: 0.125,
            sagr: 1.0,
        };
        let rec = EpochRecord {
            epoch: 1,
            train_loss: 1.5,
            val_loss: Some(2.0),
            valence: None,
            arousal: Some(m),
            valence_baseline_rmse: None,
            arousal_baseline_rmse: Some(0.75),
            lr: 0.001,
            seconds: 3.25,
        };
        assert_eq!(rec.score(), 0.125);
        write_metrics_csv(&path, &[rec]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], METRICS_COLUMNS.join(","));
        assert_eq!(lines[1], "1,1.5,2,,,,,,0.5,0.25,0.125,1,0.75,0.001,3.250");
    }

    #[test]
    fn predictions_csv_has_the_agreed_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::new(dir.path()).predictions();
        let manifest = vec![manifest_row(0, 0.5, -0.5), manifest_row(1, 0.25, 0.75)];
        write_predictions_csv(&path, &manifest, &[1], &[0.125], Targets::Valence).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "index,path,valence_true,valence_pred,arousal_true,arousal_pred\n1,d/1.jpg,0.25,0.125,,\n"
        );
        write_predictions_csv(
            &path,
            &manifest,
            &[0, 1],
            &[0.1, 0.2, 0.3, 0.4],
            Targets::Both,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with("0,d/0.jpg,0.5,0.1,-0.5,0.2\n1,d/1.jpg,0.25,0.3,0.75,0.4\n"),
            "{text}"
        );
    }

    #[test]
    fn epoch_records_from_before_the_baseline_still_load() {
        // loop.json of a run checkpointed by an older valar: --resume must still read it.
        let old = r#"{"epoch":1,"train_loss":1.0,"val_loss":1.0,"valence":null,"arousal":null,"lr":0.1,"seconds":1.0}"#;
        let rec: EpochRecord = serde_json::from_str(old).unwrap();
        assert_eq!(rec.valence_baseline_rmse, None);
        assert_eq!(rec.arousal_baseline_rmse, None);
    }

    #[test]
    fn predictions_are_clipped_to_the_label_range() {
        let out = into_label_range(vec![1.6, -3.0, 0.25, 1.0, -1.0, f32::NAN]);
        assert_eq!(&out[..5], &[1.0, -1.0, 0.25, 1.0, -1.0]);
        assert!(out[5].is_nan(), "a diverged model must stay detectable");
    }

    #[test]
    fn baseline_rmse_predicts_the_training_mean_on_validation_rows() {
        let dir = tempfile::tempdir().unwrap();
        let prep = dir.path().join("prep");
        // Train valence 0, 0.5, 1 (mean 0.5), val −0.5, 0.5: errors 1 and 0 → RMSE √0.5.
        let v = [0.0, 0.5, 1.0, -0.5, 0.5];
        crate::data::tests::write_dataset(
            &prep,
            5,
            |i| (v[i], 0.0),
            |i| if i < 3 { "train" } else { "val" },
            |_, _| 0,
        );
        let data = Dataset::load(&prep).unwrap();
        let (val, aro) = baseline_rmse(&data, &[0, 1, 2], &[3, 4], Targets::Valence);
        assert!((val.unwrap() - 0.5f64.sqrt()).abs() < 1e-9, "{val:?}");
        assert_eq!(aro, None);
        let (_, aro) = baseline_rmse(&data, &[0, 1, 2], &[3, 4], Targets::Both);
        assert_eq!(aro, Some(0.0));
    }

    #[test]
    fn dim_metrics_splits_interleaved_columns() {
        let truth = [0.5, -0.5, -0.5, 0.5];
        let pred = [0.5, 0.5, -0.5, -0.5];
        let m = dim_metrics(Targets::Both, &truth, &pred);
        assert_eq!(m[0].0, Dimension::Valence);
        assert_eq!(m[0].1.ccc, 1.0);
        assert_eq!(m[1].1.ccc, -1.0);
    }
}
