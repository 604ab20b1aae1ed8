use std::path::PathBuf;

/// What can go wrong reading or writing valar's shared file formats.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// An I/O error, with the file it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An input could not be read: not a regular file, too large, unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::ReadError,
    },
    /// A file exists but its content is not what valar wrote.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl CoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CoreError::Io { path, source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        CoreError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
