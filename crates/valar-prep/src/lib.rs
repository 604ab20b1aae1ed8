//! `valar prepare`: turn AffectNet (either release) or a generic CSV into a balanced,
//! preprocessed, packed dataset: `faces.npy`, `manifest.csv`, `rejects.csv`, `prep.json`.
//!
//! The flow is read → exclude → stratify → preprocess faces → write, each step in
//! its own module. Tables are polars DataFrames until the chosen rows go to the
//! parallel face pipeline.

/// Dropping the rows an `audit.csv` names (`--exclude`), one member of each duplicate group kept.
mod audit_exclude;
/// What to prepare and how: inputs, stratification, face size, seed.
mod config;
/// The error type.
mod error;
/// Label rules that exclude rows (−2 labels, expressions 8–10, out of range).
mod exclude;
/// Parallel face preprocessing of the chosen rows, with replacement of failed images.
mod faces;
/// Input readers: AffectNet's original CSV, its newer release, a generic CSV.
mod input;
/// Combining shard folders into the single-process output.
mod merge;
/// The whole run, phase by phase.
mod pipeline;
/// `--dry-run`: prepare's read, exclude and stratify phases alone, and their counts.
mod plan;
/// Rows that were dropped, and why.
mod rejects;
/// One shard's share of a seeded plan, and `shard.json`.
mod shard;
/// Inputs read into plain rows, for stages that must see what `prepare` sees.
mod source_rows;
/// Intervals, seeded sampling and the stratified train/validation split.
mod stratify;
/// Video inputs: frame sampling and splits that keep each video on one side.
mod video;
/// Writing the output folder.
mod write;

pub use config::{
    Input, MAX_INTERVALS, PrepareConfig, PrepareOverrides, PrepareSettings, Stratify,
};
pub use error::PrepError;
pub use input::{SOURCE_KEYS, SourceArgs, SourceKind};
pub use merge::merge;
pub use pipeline::{Prepared, prepare};
pub use plan::{Plan, plan_only};
pub use rejects::Reject;
pub use shard::{MAX_SHARDS, SHARD_FILE, Shard, ShardInfo};
pub use source_rows::{SourceRow, SourceRows, read_source};
pub use video::FrameSampling;
