use crate::{CoreError, DimMetrics, ExpressionScore, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Which model made a predictions file of `valar evaluate`, and what it scored: written beside
/// it as `<stem>.model.json`, so that `valar report` can tell test predictions of the run's
/// current model from those of a model it has since replaced (after `--resume`, say), and so
/// that the figures live beside the predictions rather than in the model (evaluate never
/// modifies its input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// The model file as given to `valar evaluate`.
    pub model: PathBuf,
    /// SHA-256 of the model file's bytes, lowercase hex.
    pub model_sha256: String,
    /// The prepared folder scored.
    pub data: PathBuf,
    /// The split scored.
    pub split: String,
    /// Faces scored.
    pub rows: usize,
    /// The valar that wrote it.
    pub valar: String,
    /// The model's metrics per dimension name (`valence`, `arousal`); empty in records written
    /// before valar kept them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, DimMetrics>,
    /// The mean baseline's metrics on the same rows, per dimension name; empty when there was
    /// no training mean to take.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baseline: BTreeMap<String, DimMetrics>,
    /// The `manifest.csv` whose `train` rows gave the baseline's mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_source: Option<PathBuf>,
    /// How the model's expression head classified the faces with a class (a model with the
    /// head, on faces with AffectNet's codes 0–7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<ExpressionScore>,
}

impl EvaluationRecord {
    /// The record beside a predictions file: `predictions-test.csv` → `predictions-test.model.json`.
    pub fn path_for(predictions: &Path) -> PathBuf {
        let stem = predictions.file_stem().map_or_else(
            || "predictions".into(),
            |s| s.to_string_lossy().into_owned(),
        );
        predictions.with_file_name(format!("{stem}.model.json"))
    }

    /// Writes the record beside `predictions`.
    pub fn write(&self, predictions: &Path) -> Result<(), CoreError> {
        let path = Self::path_for(predictions);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CoreError::format(&path, e.to_string()))?;
        write_atomic(&path, |w| w.write_all(text.as_bytes()))
    }

    /// Reads the record beside `predictions`; `None` when there is none (an evaluation
    /// written before valar recorded its model).
    pub fn read(predictions: &Path) -> Result<Option<Self>, CoreError> {
        let path = Self::path_for(predictions);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(CoreError::io(&path))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CoreError::format(&path, format!("not an evaluation record: {e}")))
    }
}

/// SHA-256 of a file's bytes, lowercase hex, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String, CoreError> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).map_err(CoreError::io(path))?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut block).map_err(CoreError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_beside_its_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.onnx");
        std::fs::write(&model, b"abc").unwrap();
        let preds = dir.path().join("predictions-test.csv");
        let rec = EvaluationRecord {
            model: model.clone(),
            model_sha256: sha256_file(&model).unwrap(),
            data: dir.path().join("d"),
            split: "test".into(),
            rows: 3,
            valar: crate::VERSION.into(),
            metrics: BTreeMap::from([(
                "valence".to_string(),
                DimMetrics {
                    rmse: 0.5,
                    pcc: 0.25,
                    ccc: 0.125,
                    sagr: 1.0,
                },
            )]),
            baseline: BTreeMap::new(),
            baseline_source: None,
            expression: None,
        };
        assert_eq!(
            rec.model_sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(EvaluationRecord::read(&preds).unwrap(), None);
        rec.write(&preds).unwrap();
        assert!(dir.path().join("predictions-test.model.json").is_file());
        assert_eq!(EvaluationRecord::read(&preds).unwrap(), Some(rec));
        // A record written before valar kept the figures still reads.
        let old = r#"{"model":"m","model_sha256":"ab","data":"d","split":"test","rows":3,"valar":"0.1.0"}"#;
        std::fs::write(dir.path().join("predictions-test.model.json"), old).unwrap();
        let read = EvaluationRecord::read(&preds).unwrap().unwrap();
        assert!(read.metrics.is_empty() && read.baseline_source.is_none());
    }
}
