//! Shared types, file formats and metrics for valar: the bottom of the dependency graph.
//!
//! Every stage talks to the others through the files described here, never through
//! each other's code.

/// Writing outputs atomically: temporary names renamed when complete.
mod atomic;
/// `audit.csv`: one row per finding of `valar audit`, read back by `valar prepare --exclude`.
mod audit_table;
/// The error type of this crate.
mod error;
/// `<predictions>.model.json`: which model file a `valar evaluate` scored.
mod evaluation_record;
/// AffectNet's expression classes and expression-head scores.
mod expression;
/// Labels, dimensions, splits, boxes and colour modes.
mod label;
/// `<output>.lock`: one writer per output, released when the holder exits.
mod lock;
/// `manifest.csv`: one row per prepared face.
mod manifest;
/// The field's metrics: RMSE, PCC, CCC and SAGR.
mod metrics;
/// `faces.npy`: the packed uint8 face tensor.
mod npy;
/// `prep.json`: what `valar prepare` did, for humans and for `valar report`.
mod prep_info;
/// A prepared folder's file names.
mod prepared_dir;
/// Progress reporting from the libraries to whatever front end drives them.
mod progress;
/// Reading inputs that must be regular files, with a size limit.
mod regular;
/// A training run's folder: its file names, loop state and configuration summary.
mod run_dir;
/// The column layouts of a training run's `metrics.csv` and `predictions.csv`.
mod run_tables;
/// Text encodings of input files: UTF-8 with or without a BOM, UTF-16 refused.
mod text;

pub use atomic::{
    OutputDir, PARTIAL_MARKER, PartialDir, move_aside, normalize_path, output_dir_state,
    refuse_input_as_output, remove_replaced, write_atomic,
};
pub use audit_table::{AUDIT_COLUMNS, AuditKind, AuditRow, read_audit, write_audit};
pub use error::{CoreError, IoError};
pub use evaluation_record::{EvaluationRecord, sha256_file};
pub use expression::{EXPRESSIONS, ExpressionScore, argmax, class_of};
pub use label::{ColorMode, Dimension, FaceBox, Split, Targets};
pub use lock::OutputLock;
pub use manifest::{MANIFEST_COLUMNS, ManifestRow, read_manifest};
pub use metrics::{
    DimMetrics, NEAR_ZERO_CCC, TrainingMean, baseline_warnings, ccc, mean_baseline, pcc, rmse, sagr,
};
pub use npy::{
    Faces, FacesWriter, NpyScalar, npy_string_scalar, parse_npy_numbers, parse_npy_scalar,
    parse_npy_string_scalar, read_faces, read_npy_numbers, read_npy_scalar, read_npy_string_scalar,
    write_faces,
};
pub use prep_info::{
    FACE_SIZES, InputParams, IntervalCount, MARGINS, PrepInfo, PrepParams, SourceHistograms,
};
pub use prepared_dir::PreparedDir;
pub use progress::{NoProgress, Progress};
pub use regular::{ReadError, read_regular_file};
pub use run_dir::{LoopState, RunConfigSummary, RunDir};
pub use run_tables::{METRICS_COLUMNS, PREDICTIONS_COLUMNS};
pub use text::{UTF8_BOM, check_utf8_text, strip_bom};

/// valar's version, recorded in every output that says how it was made.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
