//! valar's training engine: forward, backward and optimizer as one ONNX graph, run by ONNX Runtime.
//!
//! A [`Trainer`] builds the whole training step of a network (forward pass, reverse-mode gradients,
//! optimizer update) as one graph of standard ONNX operators (opset 18, no `com.microsoft` ops), so
//! one session run is one step. [`Trainer::export_onnx`] writes a plain inference model that
//! [`InferenceModel`] (or any ONNX runtime) can load.
//!
//! Design notes:
//! - **Networks** are one file each under `models/`, written once against a layer API; the
//!   training graph, the inference graph and the parameter list all come from that definition.
//!   [`ModelKind::ALL`] lists them, with each one's input multiple (its total stride).
//! - **Autodiff** runs over a graph, not a chain: a value may feed several ops and the gradients
//!   reaching it are summed. Each op (`ops/`, one file each) holds one forward (it records
//!   itself on the tape when the graph trains), a backward rule whose gradient count is fixed by
//!   its type, and a finite-difference test. The graph builder knows the device it emits for.
//! - **Graph names** (the image, targets, learning rate, noise inputs, loss, predictions, ...)
//!   are each spelled once, in `names.rs`.
//! - **One graph per step.** Inputs: the batch, targets, dropout noise, learning rate, step number
//!   and every state tensor; outputs: loss, predictions and `new.<name>` for every state tensor.
//!   The host keeps two sets of state buffers and two `IoBinding`s per session (set 0 → set 1 and
//!   back), so parameters never pass through host copies between steps.
//! - **Dropout** noise is drawn on the host from `ChaCha8Rng` (seed, stream 1 + step) and fed as an
//!   input, so a run resumed from a checkpoint reproduces the uninterrupted run bit for bit.
//! - **Library**: ONNX Runtime 1.31.1 is loaded at run time (see [`ort_library`]), once per process.
//! - **CUDA** ([`Device::Cuda`]) needs the NVIDIA driver and the CUDA build of ONNX Runtime; without
//!   them the engine runs on the CPU and [`cuda_unavailable_reason`] says why.
//! - **Profiling**: with `VALAR_ORT_PROFILE=<prefix>` every session writes ONNX Runtime's per-node
//!   timings to `<prefix>_<date>.json` when it is dropped.

/// Implements `name`, `Display` and `FromStr` for a unit enum from one table of names, so the
/// command line, the TOML files and error messages all spell its values the same way. Exported
/// for valar-train's own settings; names are matched exactly.
#[macro_export]
macro_rules! named_enum {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// The name used on the command line and in `config.toml`.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " `{}`: expected {}"),
                        other,
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

mod error;
mod graph;
mod inference;
mod metadata;
mod models;
mod names;
mod ops;
mod optim;
mod proto;
mod runtime;
mod state;
mod trainer;

pub use error::EngineError;
pub use inference::InferenceModel;
pub use metadata::{ExportInfo, read_metadata, update_metadata};
pub use models::{ExpressionHead, InputAffine, LossKind, ModelKind, ModelSpec};
pub use optim::OptimizerKind;
pub use runtime::{Device, cuda_unavailable_reason, ort_library};
pub use state::{NamedTensor, TrainState};
pub use trainer::{Batch, StepOutput, Trainer};
