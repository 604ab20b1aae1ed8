use std::path::PathBuf;

/// An I/O error with the file or folder it happened on: the one shape every valar crate's
/// errors wrap (`#[error(transparent)] Io(#[from] IoError)`), so a front end matches on one type.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct IoError {
    /// The file or folder.
    pub path: PathBuf,
    /// The underlying error.
    pub source: std::io::Error,
}

impl IoError {
    /// Wraps an I/O error with `path`: `fs::read(p).map_err(IoError::at(p))`.
    pub fn at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| IoError { path, source }
    }
}

/// What can go wrong reading or writing valar's shared file formats.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// An I/O error, with the file it happened on.
    #[error(transparent)]
    Io(#[from] IoError),
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
        move |source| CoreError::Io(IoError { path, source })
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        CoreError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
