//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while training, evaluating or predicting.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A shared file format (faces.npy, manifest.csv) could not be read or written.
    #[error(transparent)]
    Core(#[from] valar_core::CoreError),
    /// The training engine or ONNX Runtime failed.
    #[error(transparent)]
    Engine(#[from] valar_engine::EngineError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
    /// A configuration value or combination that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The prepared dataset cannot be used as asked (empty split, wrong face size, …).
    #[error("{path}: {reason}")]
    Data {
        /// The dataset folder or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A run folder or checkpoint that cannot be used or resumed.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The run folder or checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The training loss (or a validation prediction) stopped being a finite number.
    #[error(
        "training diverged in epoch {epoch}, step {step}: the {what} is {value}; the last good checkpoint \
         (after epoch {last_good_epoch}) is kept; try a lower learning rate"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch (0 for validation).
        step: usize,
        /// What was not finite.
        what: &'static str,
        /// The value.
        value: f32,
        /// Epochs completed in the last checkpoint (0: none).
        last_good_epoch: usize,
    },
    /// `valar evaluate` scored the model but could not write one of its outputs (a full disk,
    /// say). The scores are kept, so that they can still be shown.
    #[error("{path}: not written: {reason}")]
    Unwritten {
        /// The output that could not be written.
        path: PathBuf,
        /// Why (the operating system's reason, without the temporary file's name).
        reason: String,
        /// What was scored (its `videos` are `None` when they were not written either).
        evaluation: Box<crate::Evaluation>,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TrainError::Io(valar_core::IoError { path, source })
    }

    pub(crate) fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TrainError::Data {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
