//! valar train, evaluate and predict: the training loop, checkpoints and metrics on top of
//! valar-engine.
//!
//! The host feeds every network the fixed mapping `x / 127.5 − 1` ([`normalize_pixel`]) in
//! training, evaluation and prediction alike; a run that standardises its inputs folds the
//! training set's statistics into the graph, so an exported `model.onnx` needs nothing else.

/// Seeded horizontal flips, shifts and scales of training faces.
mod augment;
/// The affine map `--calibrate` fits on the validation predictions.
mod calibrate;
/// The run folder's layout and the loop's checkpoint.
mod checkpoint;
/// The resolved configuration, presets, and TOML/flag overrides.
mod config;
/// The prepared dataset and input normalization.
mod data;
/// The crate's error type.
mod error;
/// Scoring a saved model on a prepared dataset.
mod evaluate;
/// The expression head's class weights, targets and scores.
mod expression;
/// Label-distribution smoothing: face weights from the training labels' density.
mod lds;
/// The engine as the loop sees it.
mod model;
/// MODEL_CARD.md beside a run's model.onnx.
mod model_card;
/// The `valar.*` metadata keys of model.onnx.
mod model_meta;
/// `metrics.csv` and `predictions.csv`.
mod outputs;
/// Predictions for image files.
mod predict;
/// Progress reporting, for the CLI to display.
mod progress;
/// Learning-rate schedules and early stopping.
mod schedule;
/// TensorBoard event files of a run's per-epoch metrics.
mod tensorboard;
/// Where a training process spends its time: `timings.json`.
mod timings;
/// The epoch loop, checkpoints and resume.
mod train_loop;
/// Per-video CCC, P_VA and smoothing over frames, for video datasets.
mod video_eval;

pub use calibrate::{Calibration, DimCalibration};
pub use config::{
    Augment, InputNorm, Keep, OptimizerChoice, Recipe, ScheduleKind, TrainConfig, TrainOverrides,
};
pub use data::{SplitChoice, normalize_pixel};
pub use error::TrainError;
pub use evaluate::{Baseline, EvaluateOptions, Evaluation, evaluate};
pub use model_card::write_model_card;
pub use model_meta::{CropRule, EXPORT_KEYS, ModelInfo, output_name};
pub use outputs::EpochRecord;
pub use predict::{
    PREDICT_COLUMNS, PredictInput, PredictOptions, PredictRow, Predictions, input_files, predict,
    save_predict_csv, write_predict_csv,
};
pub use progress::{Quiet, RunStart, TrainObserver};
pub use train_loop::{StopReason, TrainSummary, resume, train};
pub use valar_core::ExpressionScore;
pub use valar_core::{METRICS_COLUMNS, PREDICTIONS_COLUMNS};
/// The engine's own enums are the settings' types: one enum per concept.
pub use valar_engine::{Device, LossKind, ModelKind};
pub use video_eval::{SMOOTHING_WINDOWS, Smoothing, SweepRow, VideoEvaluation, VideoScore};
