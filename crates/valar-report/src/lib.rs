//! valar report: PNG figures and a Markdown summary of a prepared dataset or a training run.
//!
//! [`report`] reads a prepared folder (`prep.json`, `manifest.csv`), a run folder
//! (`metrics.csv`, `predictions.csv`, `config.toml`), or both, and writes
//! publication-size PNGs (1800 × 1200 px, a 900 × 600 figure at twice the scale;
//! 1800 × 1000 for the two square-panel figures), drawn with an embedded DejaVu Sans
//! so no system font is needed, and a `report.md` that embeds them. The same inputs
//! give byte-identical files.

/// Audit pages: contact sheets of faces and score histograms, for `valar audit`.
mod audit_pages;
/// Figure size, embedded fonts, colours and PNG output shared by every figure.
mod canvas;
/// Figures of a prepared folder: label histograms, density, intervals, rejects.
mod data_charts;
/// The error type of this crate.
mod error;
/// Figures of a model's predictions: scatter, error by interval, residuals.
mod error_charts;
/// The expression head's confusion matrix.
mod expression_chart;
/// `report.md`: the figures, the key numbers and the run's configuration.
mod markdown;
/// The entry point: reads the inputs, draws what they allow, writes the summary.
mod report;
/// Reading a run folder: `metrics.csv`, `predictions.csv`, `config.toml`.
mod run_files;
/// The figure of a training sweep: metrics per group of cells, mean ± sd over seeds.
mod sweep_chart;
/// Figures of a training run: loss and validation CCC per epoch.
mod training_charts;
/// Figures of a video evaluation: per-video CCC, predictions over time.
mod video_charts;

pub use audit_pages::{
    ScoreHistogram, SheetSection, Tile, TilePlace, contact_sheet, score_histograms,
};
pub use error::ReportError;
pub use report::{REPORT_MARKER, ReportInputs, ReportSummary, report, write_report};
pub use sweep_chart::{SweepGroup, mean_sd, sweep_chart};
pub use valar_core::{METRICS_COLUMNS, PREDICTIONS_COLUMNS};
