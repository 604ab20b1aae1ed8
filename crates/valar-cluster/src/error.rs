use std::path::PathBuf;

/// What can go wrong expanding, running or summarizing a sweep, or submitting to Slurm.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A sweep file or sweep folder is not what valar writes or expects.
    #[error("{path}: {reason}")]
    Format {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
    /// A training run or an evaluation failed.
    #[error(transparent)]
    Train(#[from] valar_train::TrainError),
    /// Drawing the figure failed.
    #[error(transparent)]
    Report(#[from] valar_report::ReportError),
    /// A shared file could not be written.
    #[error(transparent)]
    Core(#[from] valar_core::CoreError),
    /// Some local tasks failed.
    #[error("{failed} of {total} tasks failed:\n{details}")]
    TasksFailed {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
        /// One line per failure: the task, its exit status and its log.
        details: String,
    },
    /// sbatch refused a script or printed no job id.
    #[error("sbatch {script}: {reason}")]
    Sbatch {
        /// The script submitted.
        script: PathBuf,
        /// What sbatch said.
        reason: String,
    },
}

impl ClusterError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ClusterError::Io(valar_core::IoError { path, source })
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ClusterError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
