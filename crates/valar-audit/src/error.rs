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
    /// A setting's value makes no sense. `key` is the setting's name (`near_bits`); each
    /// front end words it its own way ([`AuditError::setting_message`]).
    #[error("invalid setting: {key} {reason}")]
    InvalidSetting {
        /// The setting, named as its field in [`crate::Thresholds`] or [`crate::AuditConfig`].
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A summary could not be serialized.
    #[error("invalid setting: {0}")]
    Config(String),
}

impl AuditError {
    /// A setting error worded with `name` giving the setting's name in the front end's
    /// terms (`--near-bits`); `None` for any other error.
    pub fn setting_message(&self, name: &dyn Fn(&str) -> String) -> Option<String> {
        match self {
            AuditError::InvalidSetting { key, reason } => Some(format!("{} {reason}", name(key))),
            AuditError::Source(e) => e.setting_message(name),
            _ => None,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AuditError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
