use crate::ReportError;
use serde::Deserialize;
use std::path::Path;
use valar_core::{DimMetrics, Dimension, METRICS_COLUMNS, PREDICTIONS_COLUMNS};

/// One epoch of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Epoch {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub valence: Option<DimMetrics>,
    pub arousal: Option<DimMetrics>,
    /// Validation RMSE of predicting the training mean, per dimension (valence, arousal);
    /// `None` in tables written before valar recorded it.
    pub baseline_rmse: [Option<f64>; 2],
}

impl Epoch {
    /// The validation metrics of `dim`, if it was trained.
    pub fn dim(&self, dim: Dimension) -> Option<&DimMetrics> {
        match dim {
            Dimension::Valence => self.valence.as_ref(),
            Dimension::Arousal => self.arousal.as_ref(),
        }
    }

    /// The mean baseline's validation RMSE for `dim`, if recorded.
    pub fn baseline_rmse(&self, dim: Dimension) -> Option<f64> {
        match dim {
            Dimension::Valence => self.baseline_rmse[0],
            Dimension::Arousal => self.baseline_rmse[1],
        }
    }
}

/// The columns of `metrics.csv` as valar wrote it before the baseline columns: still read,
/// so runs trained by an older valar can be reported.
fn legacy_metrics_columns() -> Vec<&'static str> {
    METRICS_COLUMNS
        .into_iter()
        .filter(|c| !c.ends_with("_baseline_rmse"))
        .collect()
}

#[derive(Deserialize)]
struct RawEpoch {
    epoch: u32,
    train_loss: f64,
    val_loss: Option<f64>,
    valence_rmse: Option<f64>,
    valence_pcc: Option<f64>,
    valence_ccc: Option<f64>,
    valence_sagr: Option<f64>,
    #[serde(default)]
    valence_baseline_rmse: Option<f64>,
    arousal_rmse: Option<f64>,
    arousal_pcc: Option<f64>,
    arousal_ccc: Option<f64>,
    arousal_sagr: Option<f64>,
    #[serde(default)]
    arousal_baseline_rmse: Option<f64>,
    // Read so a malformed value is reported; the report does not plot them.
    #[allow(dead_code)]
    lr: Option<f64>,
    #[allow(dead_code)]
    seconds: Option<f64>,
}

/// All four metrics, none of them, or an error naming the dimension.
fn dim_metrics(dim: Dimension, cells: [Option<f64>; 4]) -> Result<Option<DimMetrics>, String> {
    match cells {
        [Some(rmse), Some(pcc), Some(ccc), Some(sagr)] => Ok(Some(DimMetrics {
            rmse,
            pcc,
            ccc,
            sagr,
        })),
        [None, None, None, None] => Ok(None),
        _ => Err(format!(
            "{dim} has some metrics but not all four (rmse, pcc, ccc, sagr)"
        )),
    }
}

/// Opens a CSV whose header must be one of `accepted` (the first is the current layout).
fn open_csv(
    path: &Path,
    accepted: &[&[&str]],
    what: &'static str,
) -> Result<csv::Reader<std::fs::File>, ReportError> {
    if !path.is_file() {
        return Err(ReportError::Missing {
            path: path.to_path_buf(),
            what,
        });
    }
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| ReportError::format(path, e.to_string()))?;
    let header = reader
        .headers()
        .map_err(|e| ReportError::format(path, e.to_string()))?;
    let found: Vec<&str> = header.iter().collect();
    if !accepted.iter().any(|a| found == *a) {
        return Err(ReportError::format(
            path,
            format!(
                "unexpected columns: found [{}], expected [{}]",
                found.join(", "),
                accepted.first().map_or(String::new(), |a| a.join(", "))
            ),
        ));
    }
    Ok(reader)
}

/// Reads `metrics.csv`: one row per epoch, in increasing epoch order.
pub(crate) fn read_metrics(path: &Path) -> Result<Vec<Epoch>, ReportError> {
    let legacy = legacy_metrics_columns();
    let mut reader = open_csv(path, &[&METRICS_COLUMNS, &legacy], "the run's metrics.csv")?;
    let mut epochs: Vec<Epoch> = Vec::new();
    for (i, record) in reader.deserialize::<RawEpoch>().enumerate() {
        let row = i + 1;
        let at = |reason: String| ReportError::format(path, format!("row {row}: {reason}"));
        let raw = record.map_err(|e| at(e.to_string()))?;
        let valence = dim_metrics(
            Dimension::Valence,
            [
                raw.valence_rmse,
                raw.valence_pcc,
                raw.valence_ccc,
                raw.valence_sagr,
            ],
        )
        .map_err(at)?;
        let arousal = dim_metrics(
            Dimension::Arousal,
            [
                raw.arousal_rmse,
                raw.arousal_pcc,
                raw.arousal_ccc,
                raw.arousal_sagr,
            ],
        )
        .map_err(at)?;
        if let Some(prev) = epochs.last()
            && raw.epoch <= prev.epoch
        {
            return Err(at(format!(
                "epoch {} does not follow epoch {}",
                raw.epoch, prev.epoch
            )));
        }
        epochs.push(Epoch {
            epoch: raw.epoch,
            train_loss: raw.train_loss,
            val_loss: raw.val_loss,
            valence,
            arousal,
            baseline_rmse: [raw.valence_baseline_rmse, raw.arousal_baseline_rmse],
        });
    }
    if epochs.is_empty() {
        return Err(ReportError::format(
            path,
            "no epochs: the file has only a header",
        ));
    }
    Ok(epochs)
}

/// Truth and prediction of the trained dimensions, from `predictions.csv`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Predictions {
    /// `(dimension, truth, prediction)` for each dimension the model predicts.
    pub dims: Vec<(Dimension, Vec<f32>, Vec<f32>)>,
    /// Rows read.
    pub rows: usize,
}

impl Predictions {
    /// Truth and predictions of `dim`, if the model predicts it.
    #[cfg(test)]
    pub fn get(&self, dim: Dimension) -> Option<(&[f32], &[f32])> {
        self.dims
            .iter()
            .find(|(d, _, _)| *d == dim)
            .map(|(_, t, p)| (t.as_slice(), p.as_slice()))
    }
}

#[derive(Deserialize)]
struct RawPrediction {
    #[allow(dead_code)]
    index: usize,
    #[allow(dead_code)]
    path: String,
    valence_true: Option<f32>,
    valence_pred: Option<f32>,
    arousal_true: Option<f32>,
    arousal_pred: Option<f32>,
}

/// Reads `predictions.csv`. A dimension is present when its cells are filled on every
/// row; a dimension filled on some rows only is an error naming the first bad row.
pub(crate) fn read_predictions(path: &Path) -> Result<Predictions, ReportError> {
    let mut reader = open_csv(path, &[&PREDICTIONS_COLUMNS], "a predictions table")?;
    // Per dimension: None until the first row decides whether it was predicted.
    let mut present: [Option<bool>; 2] = [None, None];
    let mut values: [(Vec<f32>, Vec<f32>); 2] = Default::default();
    let mut rows = 0;
    for (i, record) in reader.deserialize::<RawPrediction>().enumerate() {
        let row = i + 1;
        let at = |reason: String| ReportError::format(path, format!("row {row}: {reason}"));
        let raw = record.map_err(|e| at(e.to_string()))?;
        let cells = [
            (raw.valence_true, raw.valence_pred),
            (raw.arousal_true, raw.arousal_pred),
        ];
        for (d, (truth, pred)) in cells.into_iter().enumerate() {
            let name = Dimension::ALL[d];
            let here = match (truth, pred) {
                (Some(t), Some(p)) => {
                    if !t.is_finite() || !p.is_finite() {
                        return Err(at(format!("{name} is not a finite number")));
                    }
                    values[d].0.push(t);
                    values[d].1.push(p);
                    true
                }
                (None, None) => false,
                _ => {
                    return Err(at(format!(
                        "{name} has a truth without a prediction or the reverse"
                    )));
                }
            };
            match present[d] {
                None => present[d] = Some(here),
                Some(before) if before != here => {
                    return Err(at(format!(
                        "{name} is {} here but {} on earlier rows",
                        if here { "filled" } else { "empty" },
                        if before { "filled" } else { "empty" }
                    )));
                }
                Some(_) => {}
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(ReportError::format(
            path,
            "no predictions: the file has only a header",
        ));
    }
    let mut dims = Vec::new();
    for (d, (truth, pred)) in values.into_iter().enumerate() {
        if present[d] == Some(true) {
            dims.push((Dimension::ALL[d], truth, pred));
        }
    }
    if dims.is_empty() {
        return Err(ReportError::format(path, "every prediction cell is empty"));
    }
    Ok(Predictions { dims, rows })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use valar_core::RunDir;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn metrics_with_one_untrained_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            RunDir::METRICS,
            &format!(
                "{}\n1,0.5,0.6,,,,,,0.4,0.3,0.2,0.7,0.45,0.001,2.5\n2,0.4,0.5,,,,,,0.35,0.4,0.3,0.75,0.45,0.001,2.4\n",
                METRICS_COLUMNS.join(",")
            ),
        );
        let epochs = read_metrics(&path).unwrap();
        assert_eq!(epochs.len(), 2);
        assert!(epochs[0].valence.is_none());
        assert_eq!(epochs[1].arousal.unwrap().ccc, 0.3);
        assert_eq!(epochs[1].val_loss, Some(0.5));
        assert_eq!(epochs[1].baseline_rmse(Dimension::Arousal), Some(0.45));
        assert_eq!(epochs[1].baseline_rmse(Dimension::Valence), None);
    }

    #[test]
    fn metrics_from_before_the_baseline_columns_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            RunDir::METRICS,
            &format!(
                "{}\n1,0.5,0.6,,,,,0.4,0.3,0.2,0.7,0.001,2.5\n",
                legacy_metrics_columns().join(",")
            ),
        );
        let epochs = read_metrics(&path).unwrap();
        assert_eq!(epochs[0].arousal.unwrap().ccc, 0.2);
        assert_eq!(epochs[0].baseline_rmse, [None, None]);
    }

    #[test]
    fn metrics_errors_name_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let header = METRICS_COLUMNS.join(",");
        let partial = write(
            dir.path(),
            "a.csv",
            &format!("{header}\n1,0.5,0.6,0.1,0.2,,,,,,,,,0.1,1\n"),
        );
        let err = read_metrics(&partial).unwrap_err().to_string();
        assert!(err.contains("row 1") && err.contains("valence"), "{err}");

        let bad = write(
            dir.path(),
            "b.csv",
            &format!("{header}\n1,0.5,,,,,,,,,,,,0.1,1\n2,oops,,,,,,,,,,,,0.1,1\n"),
        );
        let err = read_metrics(&bad).unwrap_err().to_string();
        assert!(err.contains("b.csv") && err.contains("row 2"), "{err}");

        let order = write(
            dir.path(),
            "c.csv",
            &format!("{header}\n2,0.5,,,,,,,,,,,,0.1,1\n1,0.4,,,,,,,,,,,,0.1,1\n"),
        );
        let err = read_metrics(&order).unwrap_err().to_string();
        assert!(
            err.contains("row 2") && err.contains("does not follow"),
            "{err}"
        );

        let columns = write(dir.path(), "d.csv", "epoch,loss\n1,0.5\n");
        let err = read_metrics(&columns).unwrap_err().to_string();
        assert!(err.contains("found [epoch, loss]"), "{err}");

        let err = read_metrics(&dir.path().join("none.csv")).unwrap_err();
        assert!(matches!(err, ReportError::Missing { .. }), "{err}");
    }

    #[test]
    fn predictions_keep_only_filled_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            RunDir::PREDICTIONS,
            &format!(
                "{}\n0,a.jpg,0.5,0.25,,\n1,b.jpg,-0.5,-0.25,,\n",
                PREDICTIONS_COLUMNS.join(",")
            ),
        );
        let p = read_predictions(&path).unwrap();
        assert_eq!(p.rows, 2);
        assert_eq!(p.get(Dimension::Valence).unwrap().1, &[0.25, -0.25]);
        assert!(p.get(Dimension::Arousal).is_none());
    }

    #[test]
    fn predictions_reject_mixed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let header = PREDICTIONS_COLUMNS.join(",");
        let mixed = write(
            dir.path(),
            "a.csv",
            &format!("{header}\n0,a.jpg,0.5,0.25,0.1,0.2\n1,b.jpg,-0.5,-0.25,,\n"),
        );
        let err = read_predictions(&mixed).unwrap_err().to_string();
        assert!(err.contains("row 2") && err.contains("arousal"), "{err}");

        let half = write(dir.path(), "b.csv", &format!("{header}\n0,a.jpg,0.5,,,\n"));
        let err = read_predictions(&half).unwrap_err().to_string();
        assert!(err.contains("row 1") && err.contains("valence"), "{err}");
    }
}
