//! valar's training engine: forward, backward and optimizer as one ONNX graph, run by ONNX Runtime.
//!
//! A [`Trainer`] builds the whole training step of a network (forward pass, reverse-mode gradients,
//! optimizer update) as one graph of standard ONNX operators, so one session run is one step.
//! [`Trainer::export_onnx`] writes a plain inference model that [`InferenceModel`] (or any ONNX
//! runtime) can load.

mod error;
mod graph;
mod inference;
mod models;
mod ops;
mod optim;
mod proto;
mod runtime;
mod state;
mod trainer;

pub use error::EngineError;
pub use inference::InferenceModel;
pub use models::{LossKind, ModelKind, ModelSpec};
pub use optim::OptimizerKind;
pub use runtime::{Device, cuda_unavailable_reason, ort_library};
pub use state::{NamedTensor, TrainState};
pub use trainer::{StepOutput, Trainer};
