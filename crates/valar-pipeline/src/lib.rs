//! `valar run`: the whole pipeline in one call. With no data it synthesizes a dataset;
//! with AffectNet it runs the classic recipe. Each stage's output is reused while the
//! stage's inputs and parameters are unchanged.

/// `valar.toml`: the data source and each stage's settings.
mod config;
/// The error type.
mod error;
/// Stage fingerprints: when a stage's earlier output can be reused.
mod fingerprint;
/// The stages, in order.
mod pipeline;

pub use config::{DataSource, PipelineConfig, PrepareSection};
pub use error::PipelineError;
pub use pipeline::{Hooks, PipelineSummary, StageOutcome, run};
