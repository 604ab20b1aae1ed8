use std::path::PathBuf;

/// What can go wrong drawing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Neither a prepared folder nor a run folder was given.
    #[error("nothing to report: give a prepared folder, a run folder, or both")]
    NoInputs,
    /// An input file or folder that the report needs does not exist.
    #[error("{path}: not found ({what})")]
    Missing {
        /// The file or folder.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
    },
    /// A shared valar file (`prep.json`, `manifest.csv`) could not be read.
    #[error(transparent)]
    Core(#[from] valar_core::CoreError),
    /// A file exists but its content is not what valar writes.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the row where there is one.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
    /// plotters could not draw a figure.
    #[error("drawing {figure}: {message}")]
    Draw {
        /// The figure's file name.
        figure: String,
        /// plotters' message.
        message: String,
    },
    /// The embedded font could not be loaded (a broken build, never a user's input).
    #[error("the embedded font {0} could not be loaded")]
    Font(&'static str),
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ReportError::Io(valar_core::IoError { path, source })
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ReportError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
