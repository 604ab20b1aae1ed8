//! `valar evaluate`: a saved model's metrics on a prepared dataset.

use crate::TrainError;
use crate::config::TrainConfig;
use crate::data::{Dataset, SplitChoice};
use crate::model_card::write_model_card_tested;
use crate::model_meta::{CropRule, ModelInfo};
use crate::outputs::{dim_metrics, into_label_range, write_predictions_csv};
use crate::video_eval::{
    Scored, Smoothing, ValSet, VideoEvaluation, score_videos, video_files, video_groups,
    write_video_files,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use valar_core::IoError;
use valar_core::{
    CoreError, DimMetrics, Dimension, EvaluationRecord, ExpressionScore, FACE_SIZES, OutputLock,
    PreparedDir, RunDir, Split, Targets, TrainingMean, mean_baseline, read_manifest, sha256_file,
};
use valar_engine::Device;
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
    pub device: Device,
    /// How a video dataset's predictions are smoothed for its per-video scores.
    pub smoothing: Smoothing,
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
    /// The mean-prediction baseline on the same rows; `None` when neither the run's training
    /// data nor the scored folder has `train` rows to take a mean from.
    pub baseline: Option<Baseline>,
    /// CCC per video and pooled, P_VA and the smoothing sweep, for a video dataset.
    pub videos: Option<VideoEvaluation>,
    /// Accuracy, balanced accuracy and the confusion matrix of the model's expression head,
    /// on the scored faces with an expression class (a model with the head only).
    pub expression: Option<ExpressionScore>,
    /// The prepared folder scored.
    pub data: PathBuf,
    /// Where the model's own description and the options or data disagree, or could not be
    /// checked (a flag overriding the model, a model without metadata).
    pub notes: Vec<String>,
}

/// The mean-prediction baseline an evaluation is held against: the training split's mean
/// valence and arousal predicted for every scored face.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The `manifest.csv` whose `train` rows gave the mean: the prepared folder named by the
    /// `data` key of the run's `config.toml` (beside the model), else the scored folder's own.
    pub source: PathBuf,
    /// The means, and how many training rows they are over.
    pub mean: TrainingMean,
    /// The baseline's metrics on the scored rows, per dimension predicted (CCC 0, PCC 0).
    pub metrics: Vec<(Dimension, DimMetrics)>,
}

impl Baseline {
    /// The baseline's metrics for `dim`, if the model predicts it.
    pub fn get(&self, dim: Dimension) -> Option<&DimMetrics> {
        self.metrics.iter().find(|(d, _)| *d == dim).map(|(_, m)| m)
    }
}

/// The training mean for a model: from the training rows of the data its run trained on
/// (the run's `config.toml`, as written or relative to the run folder), which is what the
/// model could have learned as a constant; else from the scored folder's own `train` rows.
fn training_mean(model: &Path, scored: &Dataset) -> Option<(PathBuf, TrainingMean)> {
    let from_run = || {
        let run = model.parent()?;
        let config = TrainConfig::read(&RunDir::new(run).config()).ok()?;
        [config.data.clone(), run.join(&config.data)]
            .into_iter()
            .map(|d| PreparedDir::new(&d).manifest())
            .filter(|m| m.is_file())
            .find_map(|m| {
                let rows = read_manifest(&m).ok()?;
                TrainingMean::of_train_rows(&rows).map(|mean| (m, mean))
            })
    };
    from_run().or_else(|| {
        TrainingMean::of_train_rows(&scored.rows)
            .map(|m| (PreparedDir::new(&scored.dir).manifest(), m))
    })
}

/// The baseline's metrics on `truth` (`rows × dims` in the order of `targets`).
fn baseline_of(source: PathBuf, mean: TrainingMean, targets: Targets, truth: &[f32]) -> Baseline {
    let dims = targets.dimensions();
    let metrics = dims
        .iter()
        .enumerate()
        .map(|(d, &dim)| {
            let t: Vec<f32> = truth.iter().skip(d).step_by(dims.len()).copied().collect();
            (dim, mean_baseline(&t, mean.get(dim)))
        })
        .collect();
    Baseline {
        source,
        mean,
        metrics,
    }
}

/// Scores `opts.model` on a split of `opts.data` and writes its predictions (same columns as a
/// run's `predictions.csv`), the evaluation record beside them (which model, its metrics and
/// the baseline's), and for a test split of a run's own model.onnx, the run's MODEL_CARD.md.
///
/// The model is never written. A model in a run folder (config.toml beside it) is evaluated
/// under the run's lock, the one train holds, so it cannot change while it is scored and two
/// evaluations of it cannot mix their files; no output may be one of the run's own files.
/// An output that cannot be written after scoring gives [`TrainError::Unwritten`], which
/// keeps the scores.
pub fn evaluate(opts: &EvaluateOptions) -> Result<Evaluation, TrainError> {
    let run = run_of(&opts.model);
    // First of all, as train does: every run file read below is then the one train left.
    let _run_lock = run.as_ref().map(claim_run).transpose()?;
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
    let out = opts.out.clone().unwrap_or_else(|| {
        let dir = opts.model.parent().unwrap_or(Path::new("."));
        dir.join(format!("predictions-{split}.csv"))
    });
    let _out_lock = claim_outputs(run.as_ref(), &out)?;
    let mut model = load_model(&opts.model, opts.device)?;
    let (targets, mut notes) = model_targets(&opts.model, &model, opts.targets)?;
    notes.extend(check_data_fits(&opts.model, &model, &opts.data, &data)?);
    data.check_labels(&rows, targets)?;

    let (pred, logits) = predict_rows(&mut model, &data, &rows)?;
    check_finite_predictions(&opts.model, &pred)?;
    let codes: Vec<Option<i32>> = rows.iter().map(|&r| data.rows[r].expression).collect();
    let expression = ExpressionScore::of(&codes, &logits);
    let truth = data.labels(&rows, targets);
    let metrics = dim_metrics(targets, &truth, &pred);
    check_finite_metrics(&opts.model, &metrics)?;
    let baseline = training_mean(&opts.model, &data)
        .map(|(source, mean)| baseline_of(source, mean, targets, &truth));
    let mut evaluation = Evaluation {
        split,
        rows: rows.len(),
        targets,
        metrics,
        predictions: out.clone(),
        baseline,
        videos: None,
        expression,
        data: opts.data.clone(),
        notes,
    };
    let scored = Scored {
        manifest: &data.rows,
        rows: &rows,
        truth: &truth,
        pred: &pred,
        targets,
        predictions: &out,
    };
    let videos = score_split_videos(opts, &data, &mut model, &scored, split)?;
    evaluation.videos = videos;
    write_results(opts, run.as_ref(), &scored, evaluation)
}

/// The run folder a model is in (canonical, so that its lock is the one train takes on the
/// folder's real path): the model's folder, when it has a config.toml.
fn run_of(model: &Path) -> Option<RunDir> {
    let dir = match model.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(RunDir::new(&dir)).filter(|r| r.config().is_file())
}

/// Refuses a prepared folder the model cannot score: faces of another size or colour, or cut
/// otherwise. Returns notes on what could not be checked.
fn check_data_fits(
    model_path: &Path,
    model: &InferenceModel,
    dir: &Path,
    data: &Dataset,
) -> Result<Vec<String>, TrainError> {
    check_fits(model_path, model, dir, data.faces.size, data.faces.channels)?;
    let info = ModelInfo::read(model_path, model.metadata())?;
    Ok(match (&info.crop, CropRule::of_prepared(dir)?) {
        (Some(m), Some((d, _))) => {
            check_crop(model_path, m, dir, &d)?;
            Vec::new()
        }
        (None, _) => vec![format!(
            "{} records no preprocessing (a model from before valar wrote it): its faces are assumed to be cut like {}'s",
            model_path.display(),
            dir.display()
        )],
        (Some(_), None) => vec![format!(
            "{} has no prep.json: cannot check that its faces are cut as {} expects",
            dir.display(),
            model_path.display()
        )],
    })
}

/// CCC per video and the smoothing window, for a video dataset; `None` for images.
fn score_split_videos(
    opts: &EvaluateOptions,
    data: &Dataset,
    model: &mut InferenceModel,
    scored: &Scored,
    split: SplitChoice,
) -> Result<Option<VideoEvaluation>, TrainError> {
    // Only a video dataset has a window to choose; for images, looking for one would load the
    // run's whole training set (window_split) to find no videos in it.
    let is_video = scored.rows.iter().any(|&r| data.rows[r].video.is_some());
    let val = match opts.smoothing {
        Smoothing::Window(_) => None,
        Smoothing::Auto if !is_video => None,
        Smoothing::Auto if split == SplitChoice::Val => Some(ValSet {
            groups: video_groups(&data.rows, scored.rows),
            truth: scored.truth.to_vec(),
            pred: scored.pred.to_vec(),
            source: data.dir.clone(),
        }),
        Smoothing::Auto => window_split(&opts.model, data, model, scored.targets)?,
    };
    score_videos(scored, opts.smoothing, val)
}

/// Writes an evaluation's files: predictions, the video files, the record, and the run's
/// card for a test evaluation of its model.onnx. A failure names the file and keeps the
/// scores ([`TrainError::Unwritten`]).
fn write_results(
    opts: &EvaluateOptions,
    run: Option<&RunDir>,
    scored: &Scored,
    evaluation: Evaluation,
) -> Result<Evaluation, TrainError> {
    let unwritten = |path: &Path, error: TrainError, evaluation: &Evaluation| {
        let mut kept = evaluation.clone();
        kept.videos = None;
        TrainError::Unwritten {
            path: path.to_path_buf(),
            reason: io_reason(&error),
            evaluation: Box::new(kept),
        }
    };
    let out = evaluation.predictions.clone();
    write_predictions_csv(
        &out,
        scored.manifest,
        scored.rows,
        scored.pred,
        scored.targets,
    )
    .map_err(|e| unwritten(&out, e, &evaluation))?;
    if let Some(v) = &evaluation.videos {
        write_video_files(v, scored).map_err(|(path, e)| unwritten(&path, e, &evaluation))?;
    }
    let record = evaluation_record(&opts.model, &evaluation)?;
    let record_path = EvaluationRecord::path_for(&out);
    record
        .write(&out)
        .map_err(|e| unwritten(&record_path, e.into(), &evaluation))?;
    // The card of a run shows the test figures just recorded, when it is the run's own model.
    // A run folder that cannot take it (read-only) loses nothing: the figures are in the
    // record, which is said.
    let mut evaluation = evaluation;
    if let Some(run) = run
        && evaluation.split == SplitChoice::Test
        && opts.model.file_name() == run.model().file_name()
        && let Err(e) = write_model_card_tested(&run.root, Some(&record))
    {
        evaluation.notes.push(format!(
            "{} was not updated with this evaluation ({}); its figures are in {}",
            run.model_card().display(),
            io_reason(&e),
            record_path.display()
        ));
    }
    Ok(evaluation)
}

/// Why a write failed, without the name of the temporary file it was writing.
fn io_reason(e: &TrainError) -> String {
    match e {
        TrainError::Io(IoError { source, .. })
        | TrainError::Core(CoreError::Io(IoError { source, .. }))
            if source.kind() != std::io::ErrorKind::Other =>
        {
            source.kind().to_string()
        }
        other => other.to_string(),
    }
}

/// Claims the run folder holding the model being evaluated: its lock, which train holds
/// while it writes the run. A run folder whose parent cannot hold a lock file (a read-only
/// place) cannot be trained into either, so it is read without one.
fn claim_run(run: &RunDir) -> Result<Option<OutputLock>, TrainError> {
    match OutputLock::acquire(&run.root) {
        Ok(lock) => Ok(Some(lock)),
        Err(CoreError::Io(IoError { source, .. }))
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses outputs that are files of the model's run (which evaluate reads and train
/// writes), then claims `out`: its lock, so that two evaluations never write one file.
fn claim_outputs(run: Option<&RunDir>, out: &Path) -> Result<OutputLock, TrainError> {
    let [videos, sweep, frames] = video_files(out);
    if let Some(run) = run {
        for path in [
            out,
            &EvaluationRecord::path_for(out),
            &videos,
            &sweep,
            &frames,
        ] {
            if run.owns(path) {
                return Err(TrainError::data(
                    path,
                    format!(
                        "is a file of the run {} (which evaluate reads and train writes): refusing to overwrite it; choose another --out",
                        run.root.display()
                    ),
                ));
            }
        }
    }
    OutputLock::acquire(out).map_err(|e| match e {
        CoreError::Io(IoError { source, .. }) => TrainError::data(
            out,
            format!(
                "cannot be written: its lock file cannot be created beside it ({source}); choose another --out"
            ),
        ),
        other => other.into(),
    })
}

/// The evaluation record: which model file (its SHA-256, of the bytes scored: the run's lock
/// keeps train from replacing them meanwhile), the data and the figures.
fn evaluation_record(model: &Path, e: &Evaluation) -> Result<EvaluationRecord, TrainError> {
    let by_name = |m: &[(Dimension, DimMetrics)]| {
        m.iter()
            .map(|(d, x)| (d.name().to_string(), *x))
            .collect::<BTreeMap<_, _>>()
    };
    Ok(EvaluationRecord {
        model: std::path::absolute(model).unwrap_or_else(|_| model.to_path_buf()),
        model_sha256: sha256_file(model)?,
        data: std::path::absolute(&e.data).unwrap_or_else(|_| e.data.clone()),
        split: e.split.to_string(),
        rows: e.rows,
        valar: valar_core::VERSION.to_string(),
        metrics: by_name(&e.metrics),
        baseline: e
            .baseline
            .as_ref()
            .map(|b| by_name(&b.metrics))
            .unwrap_or_default(),
        baseline_source: e.baseline.as_ref().map(|b| b.source.clone()),
        expression: e.expression.clone(),
    })
}

/// Fails when the model produced a NaN: ONNX's Clip keeps NaN, and a NaN has no place in a
/// metric or a predictions file (a model with damaged weights gives them).
pub(crate) fn check_finite_predictions(model: &Path, pred: &[f32]) -> Result<(), TrainError> {
    let bad = pred.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        return Err(TrainError::data(
            model,
            format!(
                "gave {bad} non-finite prediction(s) out of {}: the model is damaged or diverged (retrain it, or export it again)",
                pred.len()
            ),
        ));
    }
    Ok(())
}

fn check_finite_metrics(
    model: &Path,
    metrics: &[(Dimension, DimMetrics)],
) -> Result<(), TrainError> {
    for (dim, m) in metrics {
        if ![m.rmse, m.pcc, m.ccc, m.sagr].iter().all(|v| v.is_finite()) {
            return Err(TrainError::data(
                model,
                format!(
                    "{} metrics are not finite (RMSE {}, PCC {}, CCC {}, SAGR {})",
                    dim.name(),
                    m.rmse,
                    m.pcc,
                    m.ccc,
                    m.sagr
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a prepared folder whose faces were cut otherwise than the model's training faces.
fn check_crop(model: &Path, m: &CropRule, data: &Path, d: &CropRule) -> Result<(), TrainError> {
    let mut diffs = Vec::new();
    if (m.margin - d.margin).abs() > 1e-6 {
        diffs.push(format!(
            "margin {} (model) vs {} (data)",
            m.margin, d.margin
        ));
    }
    if m.box_source != d.box_source {
        diffs.push(format!(
            "box source {} (model) vs {} (data)",
            m.box_source, d.box_source
        ));
    }
    if m.scale_rule != d.scale_rule {
        diffs.push(format!(
            "decode rule {} (model) vs {} (data)",
            m.scale_rule, d.scale_rule
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(TrainError::data(
        data,
        format!(
            "faces are not cut as {} expects: {} (prepare the data as the model's was)",
            model.display(),
            diffs.join(", ")
        ),
    ))
}

/// The validation split to choose a smoothing window on when another split is scored: the
/// scored folder's own, else that of the data the model's run trained on (its
/// `config.toml`), which is where a test folder prepared with `--all` has its window
/// chosen. `None` when neither has validation rows of videos the model can read.
fn window_split(
    model_path: &Path,
    scored: &Dataset,
    model: &mut InferenceModel,
    targets: Targets,
) -> Result<Option<ValSet>, TrainError> {
    let video_val = |d: &Dataset| {
        let rows = d.split_indices(SplitChoice::Val);
        let fits = model.input_size() == d.faces.size && model.channels() == d.faces.channels;
        (fits && rows.iter().any(|&r| d.rows[r].video.is_some())).then_some(rows)
    };
    let from_run = || -> Option<Dataset> {
        let run = model_path.parent()?;
        let config = TrainConfig::read(&RunDir::new(run).config()).ok()?;
        [config.data.clone(), run.join(&config.data)]
            .into_iter()
            .filter(|d| PreparedDir::new(d).manifest().is_file())
            .find_map(|d| Dataset::load(&d).ok())
    };
    let (data, rows) = match video_val(scored) {
        Some(rows) => (None, rows),
        None => match from_run().and_then(|d| video_val(&d).map(|rows| (d, rows))) {
            Some((d, rows)) => (Some(d), rows),
            None => return Ok(None),
        },
    };
    let data = data.as_ref().unwrap_or(scored);
    Ok(Some(ValSet {
        groups: video_groups(&data.rows, &rows),
        truth: data.labels(&rows, targets),
        pred: predict_rows(model, data, &rows)?.0,
        source: data.dir.clone(),
    }))
}

/// The model's predictions for `rows`, clipped to the label range, and its expression logits
/// (`rows × classes`; empty for a model without an expression head).
fn predict_rows(
    model: &mut InferenceModel,
    data: &Dataset,
    rows: &[usize],
) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
    let mut pred = Vec::with_capacity(rows.len() * model.outputs());
    let mut logits = Vec::with_capacity(rows.len() * model.expression_classes());
    let mut x = Vec::new();
    for chunk in rows.chunks(BATCH) {
        data.inputs(chunk, &mut x);
        let (va, e) = model.predict_with_expression(&x, chunk.len())?;
        pred.extend(into_label_range(va));
        logits.extend(e);
    }
    Ok((pred, logits))
}

/// Loads an inference model, saying which file when it is not one.
pub(crate) fn load_model(path: &Path, device: Device) -> Result<InferenceModel, TrainError> {
    if !path.is_file() {
        return Err(TrainError::data(
            path,
            "no such model file (a run writes model.onnx in its folder)",
        ));
    }
    let model = InferenceModel::load(path, device)?;
    // Checked before any face is made for it: a foreign model's input of 100000 × 100000
    // would have predict allocate tens of gigabytes for one image.
    let size = model.input_size();
    if !FACE_SIZES.contains(&size) {
        return Err(TrainError::data(
            path,
            format!(
                "takes faces of {size}×{size} pixels; valar makes faces of {} to {} pixels across (as `valar prepare --size` does), so it cannot feed this model",
                FACE_SIZES.start(),
                FACE_SIZES.end()
            ),
        ));
    }
    if ![1, 3].contains(&model.channels()) {
        return Err(TrainError::data(
            path,
            format!(
                "takes {} input channels; valar models take 1 (gray) or 3 (RGB)",
                model.channels()
            ),
        ));
    }
    Ok(model)
}

/// The dimensions a model predicts: as given, else as its metadata says, else as its run's
/// `config.toml` says, else both for two outputs. A given value that contradicts the model's
/// metadata is used, with a note saying so.
pub(crate) fn model_targets(
    path: &Path,
    model: &InferenceModel,
    given: Option<Targets>,
) -> Result<(Targets, Vec<String>), TrainError> {
    let recorded = ModelInfo::read(path, model.metadata())?.targets;
    let mut notes = Vec::new();
    if let (Some(g), Some(r)) = (given, recorded)
        && g != r
    {
        notes.push(format!(
            "--targets {} overrides {}, which says it predicts {}",
            targets_name(g),
            path.display(),
            targets_name(r)
        ));
    }
    let targets = resolve_targets(path, model.outputs(), given.or(recorded))?;
    Ok((targets, notes))
}

fn targets_name(t: Targets) -> &'static str {
    match t {
        Targets::Valence => "valence",
        Targets::Arousal => "arousal",
        Targets::Both => "both",
    }
}

/// The dimensions a model with `outputs` outputs predicts: as given, else as its run's
/// `config.toml` says, else both for two outputs.
fn resolve_targets(
    model: &Path,
    outputs: usize,
    given: Option<Targets>,
) -> Result<Targets, TrainError> {
    let from_run = || {
        let dir = model.parent()?;
        TrainConfig::read(&RunDir::new(dir).config())
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
                targets_name(targets),
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

    use crate::data::tests::write_dataset;

    #[test]
    fn training_mean_comes_from_the_run_data_then_the_scored_folder() {
        let dir = tempfile::tempdir().unwrap();
        // The run's training data: train valence 0.5 and −0.1 (mean 0.2), arousal 0.4, 0.
        let trained = dir.path().join("trained");
        let v = [0.5, -0.1, 0.9];
        let a = [0.4, 0.0, 0.9];
        write_dataset(
            &trained,
            3,
            |i| (v[i], a[i]),
            |i| if i < 2 { "train" } else { "val" },
            |_, _| 0,
        );
        // A scored folder with its own train rows (mean valence −0.5) and test rows.
        let scored = dir.path().join("scored");
        write_dataset(
            &scored,
            2,
            |i| (-0.5, 0.1 * i as f32),
            |i| if i == 0 { "train" } else { "test" },
            |_, _| 0,
        );
        let scored = Dataset::load(&scored).unwrap();

        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let model = RunDir::new(&run).model();
        // No config.toml: the scored folder's train rows.
        let (src, m) = training_mean(&model, &scored).unwrap();
        assert_eq!(src, PreparedDir::new(&scored.dir).manifest());
        assert!((m.valence + 0.5).abs() < 1e-9 && m.rows == 1);
        // A run that names its data: that folder's train rows, not the scored folder's.
        let c = TrainConfig::defaults(trained.clone());
        std::fs::write(RunDir::new(&run).config(), c.to_toml().unwrap()).unwrap();
        let (src, m) = training_mean(&model, &scored).unwrap();
        assert_eq!(src, PreparedDir::new(&trained).manifest());
        assert!(
            (m.valence - 0.2).abs() < 1e-6 && (m.arousal - 0.2).abs() < 1e-6,
            "{m:?}"
        );
        assert_eq!(m.rows, 2);

        // The baseline scores the constant mean: truth 0.2 ± 0.3 around a mean of 0.2.
        let b = baseline_of(src, m, Targets::Valence, &[-0.1, 0.5]);
        let bm = b.get(Dimension::Valence).unwrap();
        assert!(
            (bm.rmse - 0.3).abs() < 1e-6 && bm.ccc == 0.0 && bm.pcc == 0.0,
            "{bm:?}"
        );
        assert!(b.get(Dimension::Arousal).is_none());
    }

    #[test]
    fn targets_come_from_flag_then_run_config_then_output_count() {
        let dir = tempfile::tempdir().unwrap();
        let model = RunDir::new(dir.path()).model();
        assert_eq!(resolve_targets(&model, 2, None).unwrap(), Targets::Both);
        let err = resolve_targets(&model, 1, None).unwrap_err().to_string();
        assert!(err.contains("--targets"), "{err}");
        assert_eq!(
            resolve_targets(&model, 1, Some(Targets::Arousal)).unwrap(),
            Targets::Arousal
        );
        let err = resolve_targets(&model, 1, Some(Targets::Both))
            .unwrap_err()
            .to_string();
        assert!(err.contains("need 2"), "{err}");

        let mut c = TrainConfig::defaults("d".into());
        c.targets = Targets::Valence;
        std::fs::write(RunDir::new(dir.path()).config(), c.to_toml().unwrap()).unwrap();
        assert_eq!(resolve_targets(&model, 1, None).unwrap(), Targets::Valence);
    }
}
