use crate::{ClusterError, SweepDir};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use valar_core::{DimMetrics, RunDir, write_atomic};
use valar_train::{EvaluateOptions, SplitChoice, TrainConfig, TrainObserver};

/// A cell's scores, as written to its `metrics.json`: the kept model (`model.onnx`) on the
/// validation split of its training data, and on the sweep's test set when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellMetrics {
    /// Validation metrics per dimension name.
    pub val: BTreeMap<String, DimMetrics>,
    /// Test metrics per dimension name; `None` when the sweep names no test set.
    pub test: Option<BTreeMap<String, DimMetrics>>,
}

impl CellMetrics {
    /// Reads a cell's `metrics.json`.
    pub fn read(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(ClusterError::io(path))?;
        serde_json::from_str(&text).map_err(|e| ClusterError::format(path, e.to_string()))
    }
}

/// Trains cell `index` of a sweep (or resumes its run where it stopped), then scores its
/// model. A cell already scored is left alone and its scores returned.
pub fn run_cell(
    dir: &SweepDir,
    index: usize,
    observer: &mut dyn TrainObserver,
) -> Result<CellMetrics, ClusterError> {
    let cell = dir.cell(index)?;
    let metrics_path = dir.metrics_path(cell);
    if metrics_path.is_file() {
        return CellMetrics::read(&metrics_path);
    }
    let run = dir.run_dir(cell);
    let config_path = RunDir::new(&run).config();
    if config_path.is_file() {
        valar_train::resume(&run, None, observer)?;
    } else {
        // A run folder without config.toml holds nothing to resume.
        let config = cell.overrides.clone().resolve()?;
        valar_train::train(&config, &run, true, observer)?;
    }
    let config = TrainConfig::read(&config_path)?;
    let score = |data: &Path, split: Option<SplitChoice>, name: &str| {
        let eval = valar_train::evaluate(&EvaluateOptions {
            model: RunDir::new(&run).model(),
            data: data.to_path_buf(),
            split,
            out: Some(dir.cell_dir(cell).join(format!("predictions-{name}.csv"))),
            targets: None,
            device: config.device,
            smoothing: valar_train::Smoothing::Auto,
        })?;
        Ok::<_, ClusterError>(
            eval.metrics
                .into_iter()
                .map(|(d, m)| (d.name().to_string(), m))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let metrics = CellMetrics {
        val: score(&config.data, Some(SplitChoice::Val), "val")?,
        test: match &dir.sweep.test {
            Some(test) => Some(score(test, None, "test")?),
            None => None,
        },
    };
    write_atomic(&metrics_path, |w| {
        serde_json::to_writer_pretty(&mut *w, &metrics).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    Ok(metrics)
}
