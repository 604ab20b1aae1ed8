use std::path::PathBuf;

/// Why `valar audit` could not run. (Unreadable images are counted, not errors.)
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading the source failed, as `valar prepare` would have.
    #[error(transparent)]
    Source(#[from] valar_prep::PrepError),
    /// A shared valar file (manifest.csv, faces.npy, an output) could not be read or written.
    #[error(transparent)]
    Core(#[from] valar_core::CoreError),
    /// Drawing a page failed.
    #[error(transparent)]
    Report(#[from] valar_report::ReportError),
    /// A file is not what valar writes.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the row where there is one.
        reason: String,
    },
    /// A setting makes no sense.
    #[error("invalid setting: {0}")]
    Config(String),
}

impl AuditError {
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AuditError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
