//! `valar train`: the epoch loop, validation, model selection, checkpoints and resume.

use crate::TrainError;
use crate::augment::{AugStreams, EpochAugmenter, Mix, mix_batch};
use crate::calibrate::Calibration;
use crate::checkpoint::{LoopState, Resumable, best_name, state_name};
use crate::config::{InputNorm, Keep, TrainConfig};
use crate::data::{Dataset, SplitChoice};
use crate::expression::ClassWeights;
use crate::model::{StepModel, build_trainer, host_loss};
use crate::model_card::write_model_card;
use crate::model_meta::with_calibration;
use crate::outputs::{
    EpochRecord, baseline_rmse, dim_metrics, into_label_range, write_metrics_csv,
    write_predictions_csv,
};
use crate::progress::{RunStart, TrainObserver};
use crate::schedule::LrSchedule;
use crate::tensorboard::EventWriter;
use crate::timings::RunTimings;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use valar_core::{
    Dimension, OutputDir, OutputLock, RunDir, output_dir_state, refuse_input_as_output,
    remove_replaced, write_atomic,
};
use valar_engine::{Batch, Device, InputAffine};

/// Faces per inference call during validation (eval mode is per-face, so any size gives the
/// same numbers).
const EVAL_BATCH: usize = 256;

/// Keys that separate the generators of the loop's random choices.
const SHUFFLE_KEY: u64 = 0x5348_5546_464c_4531; // "SHUFFLE1"
const AUGMENT_KEY: u64 = 0x4155_474d_454e_5431; // "AUGMENT1"
// Each later augmentation draws from its own stream, so turning one on leaves the shuffle,
// the flips and the other augmentations drawn as they were.
const JITTER_KEY: u64 = 0x4a49_5454_4552_3031; // "JITTER01"
const ERASING_KEY: u64 = 0x4552_4153_494e_4731; // "ERASING1"
const MIXUP_KEY: u64 = 0x4d49_5855_5030_3031; // "MIXUP001"

/// Why a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All configured epochs ran.
    Completed,
    /// Validation CCC stopped improving for `patience` epochs.
    EarlyStopped,
    /// `--resume` found a run that had already ended.
    AlreadyFinished,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Completed => "all epochs completed",
            StopReason::EarlyStopped => "stopped early: validation CCC no longer improved",
            StopReason::AlreadyFinished => "the run had already finished",
        })
    }
}

/// The outcome of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Epochs completed in total.
    pub epochs_done: usize,
    /// The best epoch by validation CCC (its row of `metrics.csv`).
    pub best: Option<EpochRecord>,
    /// Why training ended.
    pub stop: StopReason,
}

/// Trains a new run in `out` with `config`, writing `config.toml`, `checkpoint/`,
/// `metrics.csv`, `model.onnx` and `predictions.csv` there.
///
/// An existing non-empty `out` is an error unless `force` (which deletes it, only if it is a
/// run folder, and only once the data and the network have passed every check); a file at
/// `out` is always one. `<out>.lock` is held throughout.
pub fn train(
    config: &TrainConfig,
    out: &Path,
    force: bool,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    let mut config = config.clone();
    // Absolute, so `--resume` works from any directory.
    config.data = std::path::absolute(&config.data).map_err(TrainError::io(&config.data))?;
    // Held until the run ends, so a second run on `out` fails at once instead of mixing files.
    let _lock = OutputLock::acquire(out)?;
    refuse_input_as_output(out, &[&config.data])?;
    let replace = output_dir_state(out)? == OutputDir::NonEmpty;
    if replace {
        if !force {
            return Err(TrainError::checkpoint(
                out,
                format!(
                    "already exists and is not empty: pass --resume {} to continue that run, or --force to start over",
                    out.display()
                ),
            ));
        }
        // --force deletes a whole folder: only ever one that a run wrote.
        if !RunDir::new(out).config().is_file() {
            return Err(TrainError::checkpoint(
                out,
                "is not empty and not a valar run folder (no config.toml): refusing to delete it; choose another --out",
            ));
        }
    }
    // Every check that can fail (the data, the network for its faces) runs before the old
    // run is removed: a refused --force leaves it whole.
    let mut job = Job::load(&config)?;
    // What the run really does: settings the data cannot serve are off (`fit_to_data`).
    let config = job.config.clone();
    let mut model = job.trainer(&config)?;
    let text = config.to_toml()?;
    if replace {
        remove_replaced(out)?;
    }
    let run = RunDir::new(out);
    std::fs::create_dir_all(run.checkpoints()).map_err(TrainError::io(run.checkpoints()))?;
    write_atomic(&run.config(), |w| w.write_all(text.as_bytes()))?;

    job.record_device(&model);
    let start = job.start_info(&config, &model, 1);
    observer.run_started(&start);
    let summary = run_loop(
        &job,
        &mut model,
        &run,
        LoopState::fresh(config.patience),
        observer,
        None,
    )?;
    write_model_card(&run.root)?;
    Ok(summary)
}

/// Continues the run in `run_dir` from its last checkpoint, with its saved configuration
/// (optionally on another device), so that it ends with the weights an uninterrupted run
/// would have had.
pub fn resume(
    run_dir: &Path,
    device: Option<Device>,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary, TrainError> {
    // First of all: a run being written now may not have its config.toml yet.
    let _lock = OutputLock::acquire(run_dir)?;
    let run = RunDir::new(run_dir);
    if !run.config().is_file() {
        return Err(TrainError::checkpoint(
            run_dir,
            "is not a valar run folder (no config.toml); start a run with `valar train --data … --out …`",
        ));
    }
    let mut config = TrainConfig::read(&run.config())?;
    if let Some(d) = device {
        config.device = d;
    }
    if !run.checkpoints().is_dir() {
        if run.metrics().is_file() {
            return Err(TrainError::checkpoint(
                run.checkpoints(),
                format!(
                    "is missing, but metrics.csv shows epochs done: the run cannot continue where it stopped; \
                     start it over with `valar train --force --out {0} --config {0}/config.toml`",
                    run_dir.display()
                ),
            ));
        }
        // Killed before its first epoch ended: nothing is lost by starting from the beginning.
        std::fs::create_dir_all(run.checkpoints()).map_err(TrainError::io(run.checkpoints()))?;
    }
    let state = LoopState::load(&run)?.unwrap_or_else(|| LoopState::fresh(config.patience));
    if state.finished.is_some() {
        return Ok(TrainSummary {
            run_dir: run.root.clone(),
            epochs_done: state.epochs_done,
            best: best_record(&state),
            stop: StopReason::AlreadyFinished,
        });
    }
    let mut job = Job::load(&config)?;
    let mut model = job.trainer(&config)?;
    job.record_device(&model);
    let start = job.start_info(&config, &model, state.epochs_done + 1);
    let summary = continue_run(&job, &mut model, &run, state, observer, Some(start), None)?;
    write_model_card(&run.root)?;
    Ok(summary)
}

/// Restores `model` from the checkpoint `state` names (if any) and runs the remaining epochs.
pub(crate) fn continue_run<M: StepModel>(
    job: &Job,
    model: &mut M,
    run: &RunDir,
    state: LoopState,
    observer: &mut dyn TrainObserver,
    start: Option<RunStart>,
    interrupt_after: Option<u64>,
) -> Result<TrainSummary, TrainError> {
    if let Some(saved) = &state.data_sha256
        && *saved != job.fingerprint
    {
        return Err(TrainError::checkpoint(
            run.loop_state(),
            format!(
                "{} is not the dataset this run started with (its faces or manifest changed); \
                 resume needs the same data, or start a new run",
                job.config.data.display()
            ),
        ));
    }
    if let Some(name) = &state.state_file {
        let file = run.checkpoint_file(name);
        restore(model, &file, job)?;
        if model.steps_taken() != state.global_step {
            return Err(TrainError::checkpoint(
                &file,
                format!(
                    "holds {} steps but loop.json expects {}: the checkpoint folder is inconsistent",
                    model.steps_taken(),
                    state.global_step
                ),
            ));
        }
    }
    if let Some(start) = start {
        observer.run_started(&start);
    }
    run_loop(job, model, run, state, observer, interrupt_after)
}

/// Loads a checkpoint into `model`, explaining a shape mismatch in terms of the data.
fn restore<M: StepModel>(model: &mut M, file: &Path, job: &Job) -> Result<(), TrainError> {
    model.load_state(file).map_err(|e| match e {
        TrainError::Engine(valar_engine::EngineError::StateMismatch(m)) => TrainError::checkpoint(
            file,
            format!(
                "does not fit a {} model on {}×{}×{} faces with {} output(s) (did the dataset change?): {m}",
                job.config.model,
                job.data.faces.channels,
                job.data.faces.size,
                job.data.faces.size,
                job.config.targets.dimensions().len()
            ),
        ),
        other => other,
    })
}

fn best_record(state: &LoopState) -> Option<EpochRecord> {
    let (_, epoch) = state.early.best?;
    state.history.iter().find(|r| r.epoch == epoch).cloned()
}

/// A configuration with its data loaded and checked.
pub(crate) struct Job {
    pub config: TrainConfig,
    pub data: Dataset,
    pub train_rows: Vec<usize>,
    pub val_rows: Vec<usize>,
    /// `Dataset::fingerprint` of `data`.
    pub fingerprint: String,
    /// How the network sees its inputs (`config.normalize`, with the training split's
    /// statistics where it standardises).
    pub input: InputAffine,
    /// How model.onnx is finished: output name, clip, metadata.
    pub export: valar_engine::ExportInfo,
    /// The expression head's class weights (from the training rows), when it has one.
    pub expression: Option<ClassWeights>,
    /// Each face's weight in the squared error, by row of the dataset (training rows only),
    /// with label-distribution smoothing.
    pub face_weights: Option<Vec<f32>>,
    /// Settings the data cannot serve, turned off (see [`fit_to_data`]), each with why.
    pub notes: Vec<String>,
}

/// Turns off, in `config`, the settings the data cannot serve, and says so: an expression head
/// when no training face has an expression class (AFEW-VA, Aff-Wild2, a CSV without them), and
/// calibration without validation faces. Both are in the default recipe, which must train on
/// any prepared folder; the run's config.toml then records what it really did.
fn fit_to_data(config: &mut TrainConfig, has_classes: bool, has_val: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if config.expression_weight > 0.0 && !has_classes {
        config.expression_weight = 0.0;
        notes.push(
            "no training face has an expression class (AffectNet's codes 0–7), so no expression head \
             is trained (expression_weight = 0 in config.toml)"
                .to_string(),
        );
    }
    if config.calibrate && !has_val {
        config.calibrate = false;
        notes.push(
            "the val split is empty, so model.onnx is not calibrated (calibration fits its map on \
             the validation predictions; prepare with --val-fraction above 0 to calibrate)"
                .to_string(),
        );
    }
    notes
}

impl Job {
    pub(crate) fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let data = Dataset::load(&config.data)?;
        let train_rows = data.split_indices(SplitChoice::Train);
        let val_rows = data.split_indices(SplitChoice::Val);
        if train_rows.len() < 2 {
            return Err(TrainError::data(
                &config.data,
                format!(
                    "the train split has {} face(s); training needs at least 2",
                    train_rows.len()
                ),
            ));
        }
        // Without validation faces a run can still keep its last epoch, as PyTorch scripts
        // that train on every face do; only choosing an epoch or stopping early needs them.
        if val_rows.is_empty() && (config.keep == Keep::Best || config.patience > 0) {
            return Err(TrainError::data(
                &config.data,
                "the val split is empty, and --keep best and --patience choose epochs by their validation score: \
                 train with --keep last --patience 0, or prepare with --val-fraction above 0",
            ));
        }
        let mut config = config.clone();
        let has_classes = train_rows
            .iter()
            .any(|&r| valar_core::class_of(data.rows[r].expression).is_some());
        let notes = fit_to_data(&mut config, has_classes, !val_rows.is_empty());
        let config = &config;
        data.check_labels(&train_rows, config.targets)?;
        data.check_labels(&val_rows, config.targets)?;
        let input = match config.normalize {
            InputNorm::Fixed => InputAffine::IDENTITY,
            InputNorm::Standardize => data.standardizer(&train_rows)?,
        };
        let export = crate::model_meta::export_info(
            config,
            &config.data,
            data.faces.size,
            data.faces.channels,
        )?;
        let expression = (config.expression_weight > 0.0)
            .then(|| ClassWeights::of(&data, &train_rows))
            .transpose()?;
        let face_weights = config.lds.then(|| {
            let mut by_row = vec![1.0; data.rows.len()];
            for (&r, w) in
                train_rows
                    .iter()
                    .zip(crate::lds::weights(&data, &train_rows, config.targets))
            {
                by_row[r] = w;
            }
            by_row
        });
        Ok(Job {
            expression,
            face_weights,
            notes,
            config: config.clone(),
            input,
            export,
            fingerprint: data.fingerprint()?,
            data,
            train_rows,
            val_rows,
        })
    }

    /// The batches of an epoch, as row indices: the training rows shuffled by a generator keyed
    /// by (seed, epoch), cut into batches; a last batch of one face is dropped (BatchNorm cannot
    /// normalize a single face).
    pub(crate) fn epoch_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut order = self.train_rows.clone();
        order.shuffle(&mut epoch_rng(self.config.seed, SHUFFLE_KEY, epoch));
        order
            .chunks(self.config.batch_size)
            .filter(|c| c.len() >= 2)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Records in model.onnx's metadata the device `model` trains on (for the model card).
    fn record_device(&mut self, model: &valar_engine::Trainer) {
        self.export
            .metadata
            .push(("valar.device".into(), model.device().to_string()));
    }

    /// The training targets of `rows`: labels (`rows × dimensions`), expression targets
    /// (`rows × classes`, empty without the head) and face weights (empty without LDS).
    fn targets(&self, rows: &[usize]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let y = self.data.labels(rows, self.config.targets);
        let e = match &self.expression {
            Some(w) => w.targets(&self.data, rows),
            None => Vec::new(),
        };
        let w = match &self.face_weights {
            Some(by_row) => rows.iter().map(|&r| by_row[r]).collect(),
            None => Vec::new(),
        };
        (y, e, w)
    }

    /// A fresh engine trainer for this job's data.
    fn trainer(&self, config: &TrainConfig) -> Result<valar_engine::Trainer, TrainError> {
        let f = &self.data.faces;
        build_trainer(config, f.size, f.channels, self.input)
    }

    fn steps_per_epoch(&self) -> usize {
        let (n, b) = (self.train_rows.len(), self.config.batch_size);
        n / b + usize::from(n % b >= 2)
    }

    fn start_info(
        &self,
        config: &TrainConfig,
        model: &valar_engine::Trainer,
        first_epoch: usize,
    ) -> RunStart {
        let cuda_fallback =
            (config.device == Device::Cuda && model.device() != Device::Cuda).then(|| {
                valar_engine::cuda_unavailable_reason().unwrap_or_else(|| "unknown reason".into())
            });
        RunStart {
            notes: self.notes.clone(),
            device: model.device().to_string(),
            cuda_fallback,
            parameters: model.parameter_count(),
            train_rows: self.train_rows.len(),
            val_rows: self.val_rows.len(),
            steps_per_epoch: self.steps_per_epoch(),
            first_epoch,
            epochs: config.epochs,
        }
    }
}

/// A generator for one purpose and one epoch: a fixed function of (seed, purpose, epoch), so
/// a resumed run regenerates exactly the draws of an uninterrupted one.
fn epoch_rng(seed: u64, key: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ key);
    rng.set_stream(epoch as u64);
    rng
}

/// Predictions of `model` (eval mode) for `rows`, `rows × outputs`, as the network gives
/// them: unclipped (calibration is fitted on these; `into_label_range` makes them predictions).
pub(crate) fn predict_rows<M: StepModel>(
    model: &mut M,
    data: &Dataset,
    rows: &[usize],
) -> Result<Vec<f32>, TrainError> {
    let mut out = Vec::new();
    let mut x = Vec::new();
    for chunk in rows.chunks(EVAL_BATCH) {
        data.inputs(chunk, &mut x);
        out.extend(model.predict(&x, chunk.len())?);
    }
    Ok(out)
}

/// Runs epochs from `state.epochs_done` until the configured count or early stopping, with a
/// checkpoint after each. `interrupt_after` (tests only) fails once that many steps have run,
/// like a kill between two steps.
pub(crate) fn run_loop<M: StepModel>(
    job: &Job,
    model: &mut M,
    run: &RunDir,
    mut state: LoopState,
    observer: &mut dyn TrainObserver,
    interrupt_after: Option<u64>,
) -> Result<TrainSummary, TrainError> {
    let config = &job.config;
    let mut epochs = EpochLoop {
        job,
        model,
        run,
        schedule: LrSchedule::new(config, job.steps_per_epoch()),
        val_truth: job.data.labels(&job.val_rows, config.targets),
        baseline_rmse: baseline_rmse(&job.data, &job.train_rows, &job.val_rows, config.targets),
        interrupt_after,
        x: Vec::new(),
        times: RunTimings::default(),
    };
    let loop_started = Instant::now();
    let mut stop = StopReason::Completed;
    state.data_sha256 = Some(job.fingerprint.clone());
    // A process killed after writing an epoch's events but before committing it left them in
    // its event file; this run writes that epoch again, into its own.
    crate::tensorboard::drop_uncommitted(&run.root, state.epochs_done)?;
    let mut events = EventWriter::create(&run.root)?;

    for epoch in state.epochs_done..config.epochs {
        let started = Instant::now();
        let train_loss = epochs.train_epoch(epoch, &mut state, observer)?;
        let validating = Instant::now();
        let (mut record, raw) = epochs.validate(epoch, train_loss, &state)?;
        epochs
            .times
            .add(|t| &mut t.validation, validating.elapsed());
        let saving = Instant::now();
        let best = epochs.save_epoch(epoch, &mut state, &record, &raw)?;
        epochs.times.add(|t| &mut t.saving, saving.elapsed());
        record.seconds = started.elapsed().as_secs_f64();
        let recording = Instant::now();
        state.history.push(record.clone());
        write_metrics_csv(&run.metrics(), &state.history)?;
        events.epoch(&record)?;
        state.commit(run)?;
        epochs.times.add(|t| &mut t.records, recording.elapsed());
        epochs.times.epochs += 1;
        observer.epoch_done(&record, best);
        if state.early.should_stop() {
            stop = StopReason::EarlyStopped;
            break;
        }
    }

    if !run.model().is_file() {
        // No epoch ever scored (every CCC undefined): ship the last weights rather than nothing.
        let raw = predict_rows(epochs.model, &job.data, &job.val_rows)?;
        epochs.export_kept(state.epochs_done, &raw)?;
    }
    state.finished = Some(stop.to_string());
    state.commit(run)?;
    epochs.times.total = loop_started.elapsed().as_secs_f64();
    epochs.times.write(run)?;
    Ok(TrainSummary {
        run_dir: run.root.clone(),
        epochs_done: state.epochs_done,
        best: best_record(&state),
        stop,
    })
}

/// What every epoch of a run works with.
struct EpochLoop<'a, M> {
    job: &'a Job,
    model: &'a mut M,
    run: &'a RunDir,
    schedule: LrSchedule,
    /// The validation rows' labels.
    val_truth: Vec<f32>,
    /// The mean baseline's RMSE on the validation rows: (valence, arousal).
    baseline_rmse: (Option<f64>, Option<f64>),
    /// Tests only: fail before this global step, like a kill.
    interrupt_after: Option<u64>,
    /// A batch's inputs, reused from step to step.
    x: Vec<f32>,
    /// Where this process's time went.
    times: RunTimings,
}

impl<M: StepModel> EpochLoop<'_, M> {
    /// Trains one epoch (0-based `epoch`), counting its steps in `state`; returns the mean
    /// training loss per face.
    fn train_epoch(
        &mut self,
        epoch: usize,
        state: &mut LoopState,
        observer: &mut dyn TrainObserver,
    ) -> Result<f64, TrainError> {
        let config = &self.job.config;
        let faces = &self.job.data.faces;
        let batches = self.job.epoch_batches(epoch);
        let images: usize = batches.iter().map(Vec::len).sum();
        observer.epoch_started(epoch + 1, config.epochs, images, batches.len());
        let stream = |key| epoch_rng(config.seed, key, epoch);
        let mut aug = EpochAugmenter::new(
            config,
            AugStreams {
                geometry: stream(AUGMENT_KEY),
                jitter: stream(JITTER_KEY),
                erasing: stream(ERASING_KEY),
            },
        );
        let mut mix_rng = stream(MIXUP_KEY);
        let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
        for (k, rows) in batches.iter().enumerate() {
            if self.interrupt_after == Some(state.global_step) {
                return Err(TrainError::Config("interrupted (test)".into()));
            }
            let assembling = Instant::now();
            if aug.is_active() {
                self.x.clear();
                for &r in rows {
                    aug.face_into(faces.face(r), faces.channels, faces.size, &mut self.x);
                }
            } else {
                self.job.data.inputs(rows, &mut self.x);
            }
            let (mut y, mut e, mut w) = self.job.targets(rows);
            if config.mixup > 0.0 {
                let mix = Mix::draw(&mut mix_rng, config.mixup, rows.len());
                // Expression targets and face weights are mixed as the labels are.
                let mut targets: Vec<&mut [f32]> = vec![&mut y];
                targets.extend(
                    [&mut e, &mut w]
                        .into_iter()
                        .filter(|t| !t.is_empty())
                        .map(|t| t.as_mut_slice()),
                );
                mix_batch(&mix, &mut self.x, &mut targets);
            }
            let lr = self.schedule.at(epoch, k) as f32;
            let batch = Batch {
                expression: &e,
                weights: &w,
                ..Batch::new(&self.x, &y, rows.len())
            };
            self.times.add(|t| &mut t.batches, assembling.elapsed());
            let stepping = Instant::now();
            let loss = self.model.step(&batch, lr)?;
            self.times.add(|t| &mut t.steps, stepping.elapsed());
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    step: k + 1,
                    what: "training loss",
                    value: loss,
                    last_good_epoch: state.epochs_done,
                });
            }
            state.global_step += 1;
            loss_sum += f64::from(loss) * rows.len() as f64;
            loss_n += rows.len();
            observer.step_done(rows.len(), loss);
        }
        Ok(loss_sum / loss_n.max(1) as f64)
    }

    /// Scores the model on the validation rows after `epoch`: its record (without the time
    /// taken) and its raw predictions (unclipped). The record is the raw network's, clipped
    /// to the label range, also with `calibrate`: metrics.csv shows what the epoch trained to,
    /// and the calibration's before and after figures go to model.onnx and the model card.
    fn validate(
        &mut self,
        epoch: usize,
        train_loss: f64,
        state: &LoopState,
    ) -> Result<(EpochRecord, Vec<f32>), TrainError> {
        let job = self.job;
        let targets = job.config.targets;
        if job.val_rows.is_empty() {
            return Ok((self.unvalidated(epoch, train_loss), Vec::new()));
        }
        let raw = predict_rows(self.model, &job.data, &job.val_rows)?;
        let pred = into_label_range(raw.clone());
        if let Some(bad) = pred.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::Diverged {
                epoch: epoch + 1,
                step: 0,
                what: "validation prediction",
                value: *bad,
                last_good_epoch: state.epochs_done,
            });
        }
        let metrics = dim_metrics(targets, &self.val_truth, &pred);
        let find = |d: Dimension| metrics.iter().find(|(m, _)| *m == d).map(|(_, m)| *m);
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss,
            val_loss: Some(host_loss(
                job.config.loss,
                &self.val_truth,
                &pred,
                targets.dimensions().len(),
            )),
            valence: find(Dimension::Valence),
            arousal: find(Dimension::Arousal),
            valence_baseline_rmse: self.baseline_rmse.0,
            arousal_baseline_rmse: self.baseline_rmse.1,
            lr: self.schedule.at(epoch, 0),
            seconds: 0.0,
        };
        Ok((record, raw))
    }

    /// The record of an epoch of a run without validation faces: its training loss alone.
    fn unvalidated(&self, epoch: usize, train_loss: f64) -> EpochRecord {
        EpochRecord {
            epoch: epoch + 1,
            train_loss,
            val_loss: None,
            valence: None,
            arousal: None,
            valence_baseline_rmse: None,
            arousal_baseline_rmse: None,
            lr: self.schedule.at(epoch, 0),
            seconds: 0.0,
        }
    }

    /// Saves what `epoch` leaves behind: its checkpoint, and model.onnx with its predictions
    /// when it is the epoch to keep (`raw`: its unclipped validation predictions). With
    /// `keep = best` that is each new best, whose checkpoint is kept too; with `keep = last`
    /// it is every epoch (a killed run still has a model to evaluate), and no best checkpoint
    /// is written, since nothing would ever load it. Returns whether it is the best so far.
    fn save_epoch(
        &mut self,
        epoch: usize,
        state: &mut LoopState,
        record: &EpochRecord,
        raw: &[f32],
    ) -> Result<bool, TrainError> {
        let run = self.run;
        let best = state.early.record(epoch + 1, record.score());
        match self.job.config.keep {
            Keep::Best if best => {
                let name = best_name(epoch + 1);
                self.model.save_state(&run.checkpoint_file(&name))?;
                state.best_file = Some(name);
                self.export_kept(epoch + 1, raw)?;
            }
            Keep::Best => {}
            Keep::Last => self.export_kept(epoch + 1, raw)?,
        }
        let name = state_name(epoch + 1);
        self.model.save_state(&run.checkpoint_file(&name))?;
        state.state_file = Some(name);
        state.epochs_done = epoch + 1;
        Ok(best)
    }

    /// Exports model.onnx and writes predictions.csv from `raw`, the unclipped validation
    /// predictions of the 1-based `epoch` being kept. With `calibrate`, the map fitted on them
    /// is folded into model.onnx and applied to predictions.csv, so the two agree.
    fn export_kept(&mut self, epoch: usize, raw: &[f32]) -> Result<(), TrainError> {
        let job = self.job;
        let targets = job.config.targets;
        let (export, pred) = if job.config.calibrate {
            let train_truth = job.data.labels(&job.train_rows, targets);
            let cal = Calibration::fit(epoch, targets, &train_truth, &self.val_truth, raw);
            let pred = cal.apply(raw);
            (Cow::Owned(with_calibration(&job.export, &cal)), pred)
        } else {
            (Cow::Borrowed(&job.export), into_label_range(raw.to_vec()))
        };
        self.model.export(&self.run.model(), &export)?;
        // A run without validation faces has no predictions to write (the report then
        // leaves out the validation figures).
        if !job.val_rows.is_empty() {
            self.write_predictions(&pred)?;
        }
        Ok(())
    }

    /// Writes the validation predictions `pred` to the run's predictions.csv.
    fn write_predictions(&self, pred: &[f32]) -> Result<(), TrainError> {
        let job = self.job;
        write_predictions_csv(
            &self.run.predictions(),
            &job.data.rows,
            &job.val_rows,
            pred,
            job.config.targets,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Augment;
    use crate::data::tests::write_dataset;
    use crate::progress::Quiet;
    use valar_core::PreparedDir;
    use valar_engine::{NamedTensor, TrainState};

    /// A pure-Rust stand-in for the engine: per output, `w · mean(x) + b`, trained by SGD on
    /// MSE. It logs every learning rate and first row it sees, so tests can check the order.
    struct FakeModel {
        outputs: usize,
        w: Vec<f32>,
        b: Vec<f32>,
        steps: u64,
        frozen: bool,
        nan_at_step: Option<u64>,
        lrs: Vec<f32>,
        /// Per step, each face's mean input and its label row.
        seen: Vec<(Vec<f32>, Vec<f32>)>,
    }

    impl FakeModel {
        fn new(outputs: usize) -> Self {
            FakeModel {
                outputs,
                w: vec![0.1; outputs],
                b: vec![0.0; outputs],
                steps: 0,
                frozen: false,
                nan_at_step: None,
                lrs: Vec::new(),
                seen: Vec::new(),
            }
        }

        fn means(x: &[f32], batch: usize) -> Vec<f32> {
            let per = x.len() / batch;
            x.chunks(per)
                .map(|c| c.iter().sum::<f32>() / per as f32)
                .collect()
        }

        fn state(&self) -> TrainState {
            TrainState {
                step: self.steps,
                tensors: vec![
                    NamedTensor {
                        name: "w".into(),
                        shape: vec![self.outputs],
                        data: self.w.clone(),
                    },
                    NamedTensor {
                        name: "b".into(),
                        shape: vec![self.outputs],
                        data: self.b.clone(),
                    },
                ],
            }
        }
    }

    impl StepModel for FakeModel {
        fn step(&mut self, b: &Batch<'_>, lr: f32) -> Result<f32, TrainError> {
            let (x, y, batch) = (b.x, b.y, b.size);
            self.lrs.push(lr);
            self.seen.push((Self::means(x, batch), y.to_vec()));
            if self.nan_at_step == Some(self.steps) {
                self.steps += 1;
                return Ok(f32::NAN);
            }
            let m = Self::means(x, batch);
            let mut loss = 0.0;
            let (mut gw, mut gb) = (vec![0.0; self.outputs], vec![0.0; self.outputs]);
            for (i, mi) in m.iter().enumerate() {
                for d in 0..self.outputs {
                    let err = self.w[d] * mi + self.b[d] - y[i * self.outputs + d];
                    loss += err * err;
                    gw[d] += 2.0 * err * mi / batch as f32;
                    gb[d] += 2.0 * err / batch as f32;
                }
            }
            if !self.frozen {
                for d in 0..self.outputs {
                    self.w[d] -= lr * gw[d];
                    self.b[d] -= lr * gb[d];
                }
            }
            self.steps += 1;
            Ok(loss / (batch * self.outputs) as f32)
        }

        fn predict(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>, TrainError> {
            Ok(Self::means(x, batch)
                .iter()
                .flat_map(|m| (0..self.outputs).map(move |d| (d, *m)))
                .map(|(d, m)| self.w[d] * m + self.b[d])
                .collect())
        }

        fn save_state(&self, path: &Path) -> Result<(), TrainError> {
            Ok(self.state().save(path)?)
        }

        fn load_state(&mut self, path: &Path) -> Result<(), TrainError> {
            let s = TrainState::load(path)?;
            for t in &s.tensors {
                if t.shape != vec![self.outputs] {
                    return Err(
                        valar_engine::EngineError::StateMismatch(format!("`{}`", t.name)).into(),
                    );
                }
            }
            self.steps = s.step;
            self.w = s.tensors[0].data.clone();
            self.b = s.tensors[1].data.clone();
            Ok(())
        }

        /// The state, and the calibration's (scale, shift) pairs when there is one.
        fn export(&self, path: &Path, info: &valar_engine::ExportInfo) -> Result<(), TrainError> {
            let mut state = self.state();
            if let Some(cal) = &info.calibration {
                state.tensors.push(NamedTensor {
                    name: "calibration".into(),
                    shape: vec![cal.len(), 2],
                    data: cal.iter().flat_map(|&(a, b)| [a, b]).collect(),
                });
            }
            Ok(state.save(path)?)
        }

        fn steps_taken(&self) -> u64 {
            self.steps
        }
    }

    /// 40 faces whose brightness encodes valence (arousal = −valence); 30 train, 10 val.
    fn job(dir: &Path, epochs: usize, patience: usize) -> Job {
        let data = dir.join("prep");
        let label = |i: usize| ((i * 37 % 40) as f32 / 20.0 - 1.0, 0.0);
        write_dataset(
            &data,
            40,
            |i| (label(i).0, -label(i).0),
            |i| if i % 4 == 3 { "val" } else { "train" },
            move |i, _| ((label(i).0 + 1.0) * 127.5).round() as u8,
        );
        let mut c = TrainConfig::defaults(data);
        c.epochs = epochs;
        c.patience = patience;
        c.batch_size = 8;
        c.lr = 0.5;
        c.augment = Augment::Full;
        // The loop's bookkeeping is tested on plain faces and outputs: the tests that want
        // jitter, an expression head or calibration turn them on.
        c.jitter = 0.0;
        c.expression_weight = 0.0;
        c.calibrate = false;
        c.validate().unwrap();
        Job::load(&c).unwrap()
    }

    fn fresh_run(dir: &Path) -> RunDir {
        let run = RunDir::new(dir);
        std::fs::create_dir_all(run.checkpoints()).unwrap();
        run
    }

    /// A run stopped after 5 steps, as a kill would leave it, and its saved loop state.
    fn interrupted_run(dir: &Path) -> (Job, RunDir, LoopState) {
        let j = job(dir, 3, 0);
        let run = fresh_run(&dir.join("run"));
        let mut model = FakeModel::new(2);
        let stopped = run_loop(
            &j,
            &mut model,
            &run,
            LoopState::fresh(0),
            &mut Quiet,
            Some(5),
        );
        assert!(stopped.is_err());
        let state = LoopState::load(&run).unwrap().unwrap();
        (j, run, state)
    }

    fn without_seconds(history: &[EpochRecord]) -> Vec<EpochRecord> {
        history
            .iter()
            .map(|r| EpochRecord {
                seconds: 0.0,
                ..r.clone()
            })
            .collect()
    }

    #[test]
    fn batches_are_seeded_per_epoch_and_drop_a_single_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), 3, 0);
        // 30 training rows in batches of 8: 8, 8, 8, 6.
        let b0 = j.epoch_batches(0);
        assert_eq!(
            b0.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![8, 8, 8, 6]
        );
        assert_eq!(b0, j.epoch_batches(0));
        assert_ne!(b0, j.epoch_batches(1));
        let mut all: Vec<usize> = b0.concat();
        all.sort_unstable();
        assert_eq!(all, j.train_rows);
        // 30 rows in batches of 29: one face left over, dropped.
        j.config.batch_size = 29;
        assert_eq!(j.epoch_batches(0).len(), 1);
        assert_eq!(j.steps_per_epoch(), 1);
    }

    #[test]
    fn loop_learns_writes_outputs_and_follows_the_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let j = job(dir.path(), 6, 0);
        let run = fresh_run(&dir.path().join("run"));
        let mut model = FakeModel::new(2);
        let summary =
            run_loop(&j, &mut model, &run, LoopState::fresh(0), &mut Quiet, None).unwrap();
        assert_eq!(summary.stop, StopReason::Completed);
        assert_eq!(summary.epochs_done, 6);
        let best = summary.best.unwrap();
        assert!(best.valence.unwrap().ccc > 0.9, "{best:?}");

        // Learning rates are the cosine schedule's, step by step.
        let s = LrSchedule::new(&j.config, 4);
        let expected: Vec<f32> = (0..6)
            .flat_map(|e| (0..4).map(move |k| (e, k)))
            .map(|(e, k)| s.at(e, k) as f32)
            .collect();
        assert_eq!(model.lrs, expected);

        let metrics = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(metrics.lines().count(), 7);
        let predictions = std::fs::read_to_string(run.predictions()).unwrap();
        assert_eq!(predictions.lines().count(), 11);
        assert!(run.model().is_file());
        let state = LoopState::load(&run).unwrap().unwrap();
        assert!(state.finished.is_some());
        assert_eq!(state.global_step, 24);
        // Only the last and the best engine states remain.
        let ckpts = std::fs::read_dir(run.checkpoints()).unwrap().filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".ckpt")
        });
        assert!(ckpts.count() <= 2);

        // timings.json: every epoch of this process, phases that fit inside the whole loop.
        let t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.timings()).unwrap()).unwrap();
        assert_eq!(t["epochs"], 6, "{t}");
        let phases = ["batches", "steps", "validation", "saving", "records"];
        let sum: f64 = phases.iter().map(|p| t[p].as_f64().unwrap()).sum();
        assert!(phases.iter().all(|p| t[p].as_f64().unwrap() > 0.0), "{t}");
        assert!(sum <= t["total"].as_f64().unwrap(), "{t}");
        assert!(run.owns(&run.timings()));
    }

    /// Mixup reaches the model with each face's labels mixed as its pixels: the job's faces
    /// are as bright as their valence (arousal = −valence), so every mixed face's mean input
    /// still matches its mixed valence, and some labels are new values between the faces'.
    #[test]
    fn mixup_mixes_each_batch_s_labels_with_its_faces() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), 2, 0);
        j.config.augment = Augment::None;
        j.config.mixup = 0.4;
        let run = fresh_run(&dir.path().join("run"));
        let mut model = FakeModel::new(2);
        run_loop(&j, &mut model, &run, LoopState::fresh(0), &mut Quiet, None).unwrap();
        let own: Vec<f32> = j.data.labels(&j.train_rows, j.config.targets);
        let mut mixed = 0;
        for (means, y) in &model.seen {
            for (m, row) in means.iter().zip(y.chunks(2)) {
                assert!((m - row[0]).abs() < 0.01, "input {m} vs valence {}", row[0]);
                assert!((row[0] + row[1]).abs() < 1e-6, "{row:?}");
                mixed += usize::from(own.iter().all(|v| (v - row[0]).abs() > 1e-4));
            }
        }
        assert!(mixed > 20, "{mixed} mixed labels");
    }

    /// With every augmentation and warm-up on, a run stopped mid-epoch and resumed draws the
    /// same faces, mixes and rates as one that ran through.
    #[test]
    fn resumed_run_with_every_augmentation_matches_an_uninterrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), 3, 0);
        j.config.augment = Augment::Affine;
        j.config.jitter = 0.2;
        j.config.erasing = 0.5;
        j.config.mixup = 0.2;
        j.config.warmup = 1;
        let full = fresh_run(&dir.path().join("full"));
        let mut a = FakeModel::new(2);
        run_loop(&j, &mut a, &full, LoopState::fresh(0), &mut Quiet, None).unwrap();
        assert_eq!(a.lrs[0], (j.config.lr / 4.0) as f32, "warm-up's first step");
        let broken = fresh_run(&dir.path().join("broken"));
        let mut b = FakeModel::new(2);
        let stopped = run_loop(
            &j,
            &mut b,
            &broken,
            LoopState::fresh(0),
            &mut Quiet,
            Some(6),
        );
        assert!(stopped.is_err());
        let state = LoopState::load(&broken).unwrap().unwrap();
        let mut c = FakeModel::new(2);
        continue_run(&j, &mut c, &broken, state, &mut Quiet, None, None).unwrap();
        assert_eq!((&c.w, &c.b, c.steps), (&a.w, &a.b, a.steps));
        assert_eq!(c.seen[..], a.seen[4..]);
    }

    #[test]
    fn interrupted_and_resumed_run_matches_an_uninterrupted_one() {
        for calibrate in [false, true] {
            resumed_run_matches_an_uninterrupted_one(calibrate);
        }
    }

    /// With or without calibration (whose map is then in the exported file).
    fn resumed_run_matches_an_uninterrupted_one(calibrate: bool) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), 4, 0);
        j.config.calibrate = calibrate;
        let full = fresh_run(&dir.path().join("full"));
        let mut a = FakeModel::new(2);
        run_loop(&j, &mut a, &full, LoopState::fresh(0), &mut Quiet, None).unwrap();

        for interrupt in [0, 3, 4, 6, 15] {
            let broken = fresh_run(&dir.path().join(format!("broken{interrupt}")));
            let mut b = FakeModel::new(2);
            let err = run_loop(
                &j,
                &mut b,
                &broken,
                LoopState::fresh(0),
                &mut Quiet,
                Some(interrupt),
            );
            assert!(err.is_err());
            // A new process: a fresh model, then whatever the checkpoint says.
            let state = LoopState::load(&broken)
                .unwrap()
                .unwrap_or_else(|| LoopState::fresh(0));
            assert_eq!(state.epochs_done, interrupt as usize / 4);
            let mut c = FakeModel::new(2);
            continue_run(&j, &mut c, &broken, state, &mut Quiet, None, None).unwrap();
            assert_eq!(
                (c.w.clone(), c.b.clone(), c.steps),
                (a.w.clone(), a.b.clone(), a.steps)
            );
            let (sa, sb) = (
                LoopState::load(&full).unwrap().unwrap(),
                LoopState::load(&broken).unwrap().unwrap(),
            );
            assert_eq!(without_seconds(&sa.history), without_seconds(&sb.history));
            assert_eq!(sa.early, sb.early);
            for f in [RunDir::PREDICTIONS, RunDir::MODEL] {
                assert_eq!(
                    std::fs::read(full.root.join(f)).unwrap(),
                    std::fs::read(broken.root.join(f)).unwrap()
                );
            }
        }
        let exported = TrainState::load(&full.model()).unwrap();
        let has_map = exported.tensors.iter().any(|t| t.name == "calibration");
        assert_eq!(has_map, calibrate);
    }

    /// The predicted columns of a predictions.csv, in row order (valence, arousal).
    fn predicted(path: &Path) -> Vec<f32> {
        let mut r = csv::Reader::from_path(path).unwrap();
        r.records()
            .flat_map(|rec| {
                let rec = rec.unwrap();
                [3, 5].map(|i| rec[i].parse::<f32>().unwrap())
            })
            .collect()
    }

    /// With `calibrate`, the kept epoch's map (fitted on its raw validation predictions and
    /// the training labels) is what the export gets, predictions.csv holds the calibrated and
    /// clipped predictions, and metrics.csv the raw network's.
    #[test]
    fn calibration_is_fitted_on_the_kept_epoch_and_matches_predictions_csv() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), 3, 0);
        j.config.calibrate = true;
        j.config.lr = 0.05; // still learning at the end: a spread worth calibrating
        let run = fresh_run(&dir.path().join("run"));
        let mut model = FakeModel::new(2);
        let summary =
            run_loop(&j, &mut model, &run, LoopState::fresh(0), &mut Quiet, None).unwrap();
        let raw = predict_rows(&mut model, &j.data, &j.val_rows).unwrap();
        let train_truth = j.data.labels(&j.train_rows, j.config.targets);
        let val_truth = j.data.labels(&j.val_rows, j.config.targets);
        let cal = Calibration::fit(3, j.config.targets, &train_truth, &val_truth, &raw);
        let exported = TrainState::load(&run.model()).unwrap();
        let map = exported.tensors.iter().find(|t| t.name == "calibration");
        let pairs: Vec<f32> = cal.pairs().iter().flat_map(|&(a, b)| [a, b]).collect();
        assert_eq!(map.unwrap().data, pairs);
        assert!(
            cal.dimensions.iter().all(|d| d.k > 0.0 && d.scale != 1.0),
            "{cal:?}"
        );
        assert_eq!(predicted(&run.predictions()), cal.apply(&raw));
        let raw_metrics = dim_metrics(j.config.targets, &val_truth, &into_label_range(raw));
        assert_eq!(summary.epochs_done, 3);
        let history = LoopState::load(&run).unwrap().unwrap().history;
        assert_eq!(history[2].valence.unwrap(), raw_metrics[0].1);
        assert_eq!(cal.dimensions[0].ccc_before, Some(raw_metrics[0].1.ccc));
    }

    /// Calibration needs validation faces and the expression head needs classes: a folder
    /// without them trains without each (the job's config says so) and a note says why.
    #[test]
    fn settings_the_data_cannot_serve_are_turned_off_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("prep");
        write_dataset(
            &data,
            12,
            |i| (i as f32 / 12.0, 0.0),
            |_| "train",
            |i, _| i as u8,
        );
        let mut c = TrainConfig::defaults(data);
        c.calibrate = true;
        c.expression_weight = 0.5;
        // write_dataset gives every face class 1 (Happy): the head stays, calibration goes.
        let job = Job::load(&c).unwrap();
        assert!(!job.config.calibrate && job.config.expression_weight == 0.5);
        assert_eq!(job.notes.len(), 1);
        assert!(
            job.notes[0].contains("val split is empty"),
            "{:?}",
            job.notes
        );
        let mut off = c.clone();
        let notes = fit_to_data(&mut off, false, true);
        assert!(off.calibrate && off.expression_weight == 0.0);
        assert!(notes[0].contains("expression class"), "{notes:?}");
        let mut kept = c.clone();
        assert!(fit_to_data(&mut kept, true, true).is_empty());
        assert_eq!(kept, c);
    }

    #[test]
    fn resume_refuses_a_changed_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let (j, run, state) = interrupted_run(dir.path());
        assert_eq!(state.data_sha256.as_ref(), Some(&j.fingerprint));
        // Relabel one face: same shape, different data.
        let manifest = PreparedDir::new(&j.config.data).manifest();
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replacen(",train,", ",val,", 1)).unwrap();
        let changed = Job::load(&j.config).unwrap();
        let err = continue_run(
            &changed,
            &mut FakeModel::new(2),
            &run,
            state,
            &mut Quiet,
            None,
            None,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("not the dataset this run started with"),
            "{err}"
        );
    }

    #[test]
    fn early_stopping_ends_the_run_after_patience_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let j = job(dir.path(), 10, 2);
        let run = fresh_run(&dir.path().join("run"));
        let mut model = FakeModel::new(2);
        model.frozen = true;
        let summary =
            run_loop(&j, &mut model, &run, LoopState::fresh(2), &mut Quiet, None).unwrap();
        assert_eq!(summary.stop, StopReason::EarlyStopped);
        assert_eq!(summary.epochs_done, 3);
        assert_eq!(summary.best.unwrap().epoch, 1);
        // A finished run is not continued.
        let state = LoopState::load(&run).unwrap().unwrap();
        assert!(state.finished.unwrap().contains("early"));
    }

    #[test]
    fn nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let j = job(dir.path(), 4, 0);
        let run = fresh_run(&dir.path().join("run"));
        let mut model = FakeModel::new(2);
        model.nan_at_step = Some(9); // epoch 3, step 2
        let err =
            run_loop(&j, &mut model, &run, LoopState::fresh(0), &mut Quiet, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("epoch 3, step 2")
                && text.contains("NaN")
                && text.contains("after epoch 2"),
            "{text}"
        );
        let state = LoopState::load(&run).unwrap().unwrap();
        assert_eq!(state.epochs_done, 2);
        assert!(state.finished.is_none());
        let mut fresh = FakeModel::new(2);
        fresh
            .load_state(&run.checkpoint_file(state.state_file.as_deref().unwrap()))
            .unwrap();
        assert_eq!(fresh.steps, 8);
        assert_eq!(
            std::fs::read_to_string(run.metrics())
                .unwrap()
                .lines()
                .count(),
            3
        );
    }

    #[test]
    fn corrupt_or_mismatched_checkpoint_is_refused_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let (j, run, state) = interrupted_run(dir.path());
        let file = run.checkpoint_file(state.state_file.as_deref().unwrap());
        let good = std::fs::read(&file).unwrap();

        let mut one_output = FakeModel::new(1);
        let err = continue_run(
            &j,
            &mut one_output,
            &run,
            state.clone(),
            &mut Quiet,
            None,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");

        let mut bytes = good.clone();
        bytes[12] ^= 0x40;
        std::fs::write(&file, &bytes).unwrap();
        let err = continue_run(
            &j,
            &mut FakeModel::new(2),
            &run,
            state.clone(),
            &mut Quiet,
            None,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("corrupt checkpoint"), "{err}");

        std::fs::remove_file(&file).unwrap();
        let err = LoopState::load(&run).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
