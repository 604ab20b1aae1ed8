//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ONNX Runtime library could not be found; the message says how to get it.
    #[error("{0}")]
    OrtNotFound(String),
    /// ONNX Runtime could not be loaded or initialised.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// An ONNX Runtime call failed.
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
    /// A model specification that valar cannot build.
    #[error("invalid model spec: {0}")]
    InvalidSpec(String),
    /// Input data of the wrong size or a bad argument.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A training state whose tensors do not match the model.
    #[error("training state does not match the model: {0}")]
    StateMismatch(String),
    /// A checkpoint file that is damaged or not a checkpoint.
    #[error("corrupt checkpoint {path}: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An ONNX model valar cannot use for inference.
    #[error("unusable model {path}: {reason}")]
    InvalidModel {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
}
