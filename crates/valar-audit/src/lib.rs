//! `valar audit`: find the duplicate, leaking, unusable and mislabelled faces of a
//! source (AffectNet or a CSV, read as `valar prepare` reads it) or of prepared
//! folders, and write `audit.csv`, `audit.json` and pages of faces to judge them by.
//!
//! The flow is load (decode every face once) → measure → find duplicates, leaks,
//! flags and label problems → write. `valar prepare --exclude audit.csv` acts on it.

/// What to audit and the thresholds.
mod config;
/// Exact and near duplicate groups: SHA-256 buckets, a BK-tree over perceptual hashes, union-find.
mod dupes;
/// The error type.
mod error;
/// Per-face measures: perceptual hash, brightness, edge energy, entropy, colour.
mod features;
/// Quality flags and label checks, each against its documented threshold.
mod flags;
/// Reading faces: a source decoded through valar-face, or a prepared folder's faces.npy.
mod load;
/// Writing audit.csv, audit.json, the contact sheets, histograms and report.md.
mod output;
/// A trained run's largest residuals, as candidate label errors.
mod residuals;
/// The whole audit, phase by phase.
mod run;

pub use config::{AuditConfig, Target, Thresholds};
pub use error::AuditError;
pub use output::AuditSummary;
pub use run::audit;
