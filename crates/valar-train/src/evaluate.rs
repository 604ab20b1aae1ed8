//! `valar evaluate`: a saved model's metrics on a prepared dataset.

use crate::TrainError;
use crate::config::{DeviceChoice, TrainConfig};
use crate::data::{Dataset, SplitChoice};
use crate::outputs::{dim_metrics, write_predictions_csv};
use std::path::{Path, PathBuf};
use valar_core::{DimMetrics, Dimension, Split, Targets};
use valar_engine::InferenceModel;

/// Faces per inference call.
const BATCH: usize = 256;

/// What to evaluate and where to write the predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateOptions {
    /// An inference model (`model.onnx` of a run).
    pub model: PathBuf,
    /// A prepared dataset folder.
    pub data: PathBuf,
    /// The rows to score; `None`: `test` if the manifest has test rows, else `val`.
    pub split: Option<SplitChoice>,
    /// Where to write `predictions.csv`; `None`: `predictions-<split>.csv` beside the model.
    pub out: Option<PathBuf>,
    /// The dimensions the model predicts; `None`: from the run's `config.toml` beside the
    /// model, else both for a two-output model.
    pub targets: Option<Targets>,
    /// Where the model runs.
    pub device: DeviceChoice,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The rows scored.
    pub split: SplitChoice,
    /// How many.
    pub rows: usize,
    /// The dimensions predicted.
    pub targets: Targets,
    /// RMSE, PCC, CCC and SAGR per dimension.
    pub metrics: Vec<(Dimension, DimMetrics)>,
    /// The predictions file written.
    pub predictions: PathBuf,
}

/// Scores `opts.model` on a split of `opts.data` and writes its predictions (same columns as a
/// run's `predictions.csv`).
pub fn evaluate(opts: &EvaluateOptions) -> Result<Evaluation, TrainError> {
    let data = Dataset::load(&opts.data)?;
    let split = opts.split.unwrap_or_else(|| {
        if data.rows.iter().any(|r| r.split == Split::Test) {
            SplitChoice::Test
        } else {
            SplitChoice::Val
        }
    });
    let rows = data.split_indices(split);
    if rows.is_empty() {
        return Err(TrainError::data(
            &opts.data,
            format!("the {split} split is empty (choose another with --split)"),
        ));
    }
    let mut model = load_model(&opts.model, opts.device)?;
    let targets = model_targets(&opts.model, model.outputs(), opts.targets)?;
    check_fits(
        &opts.model,
        &model,
        &opts.data,
        data.faces.size,
        data.faces.channels,
    )?;
    data.check_labels(&rows, targets)?;

    let mut pred = Vec::with_capacity(rows.len() * model.outputs());
    let mut x = Vec::new();
    for chunk in rows.chunks(BATCH) {
        data.inputs(chunk, &mut x);
        pred.extend(model.predict(&x, chunk.len())?);
    }
    let truth = data.labels(&rows, targets);
    let metrics = dim_metrics(targets, &truth, &pred);
    let out = opts.out.clone().unwrap_or_else(|| {
        let dir = opts.model.parent().unwrap_or(Path::new("."));
        dir.join(format!("predictions-{split}.csv"))
    });
    write_predictions_csv(&out, &data.rows, &rows, &pred, targets)?;
    Ok(Evaluation {
        split,
        rows: rows.len(),
        targets,
        metrics,
        predictions: out,
    })
}

/// Loads an inference model, saying which file when it is not one.
pub(crate) fn load_model(path: &Path, device: DeviceChoice) -> Result<InferenceModel, TrainError> {
    if !path.is_file() {
        return Err(TrainError::data(
            path,
            "no such model file (a run writes model.onnx in its folder)",
        ));
    }
    Ok(InferenceModel::load(path, device.engine())?)
}

/// The dimensions a model with `outputs` outputs predicts: as given, else as its run's
/// `config.toml` says, else both for two outputs.
pub(crate) fn model_targets(
    model: &Path,
    outputs: usize,
    given: Option<Targets>,
) -> Result<Targets, TrainError> {
    let from_run = || {
        let dir = model.parent()?;
        TrainConfig::read(&dir.join("config.toml"))
            .ok()
            .map(|c| c.targets)
    };
    let targets = match given.or_else(from_run) {
        Some(t) => t,
        None if outputs == 2 => Targets::Both,
        None => {
            return Err(TrainError::data(
                model,
                format!(
                    "has {outputs} output(s) and no config.toml beside it: say which with --targets valence|arousal"
                ),
            ));
        }
    };
    if targets.dimensions().len() != outputs {
        return Err(TrainError::data(
            model,
            format!(
                "has {outputs} output(s) but targets `{}` need {}",
                match targets {
                    Targets::Valence => "valence",
                    Targets::Arousal => "arousal",
                    Targets::Both => "both",
                },
                targets.dimensions().len()
            ),
        ));
    }
    Ok(targets)
}

/// Checks that the model takes faces of the dataset's size and channels.
fn check_fits(
    model_path: &Path,
    model: &InferenceModel,
    data: &Path,
    size: usize,
    channels: usize,
) -> Result<(), TrainError> {
    if model.input_size() != size || model.channels() != channels {
        return Err(TrainError::data(
            data,
            format!(
                "faces are {channels}×{size}×{size} but {} takes {}×{}×{} (prepare the data with the model's --size and colour mode)",
                model_path.display(),
                model.channels(),
                model.input_size(),
                model.input_size()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_flag_then_run_config_then_output_count() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.onnx");
        assert_eq!(model_targets(&model, 2, None).unwrap(), Targets::Both);
        let err = model_targets(&model, 1, None).unwrap_err().to_string();
        assert!(err.contains("--targets"), "{err}");
        assert_eq!(
            model_targets(&model, 1, Some(Targets::Arousal)).unwrap(),
            Targets::Arousal
        );
        let err = model_targets(&model, 1, Some(Targets::Both))
            .unwrap_err()
            .to_string();
        assert!(err.contains("need 2"), "{err}");

        let mut c = TrainConfig::defaults("d".into());
        c.targets = Targets::Valence;
        std::fs::write(dir.path().join("config.toml"), c.to_toml().unwrap()).unwrap();
        assert_eq!(model_targets(&model, 1, None).unwrap(), Targets::Valence);
    }
}
