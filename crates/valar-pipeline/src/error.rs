use std::path::PathBuf;

/// Why `valar run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// `valar.toml` is unreadable or wrong.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of the pipeline's own could not be read or written.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
    /// The synthesis stage failed.
    #[error("synth: {0}")]
    Synth(#[from] valar_synth::SynthError),
    /// The prepare stage failed.
    #[error("prepare: {0}")]
    Prepare(#[from] valar_prep::PrepError),
    /// The train or evaluate stage failed.
    #[error("train: {0}")]
    Train(#[from] valar_train::TrainError),
    /// The report stage failed.
    #[error("report: {0}")]
    Report(#[from] valar_report::ReportError),
    /// Writing a stage record failed.
    #[error(transparent)]
    Output(#[from] valar_core::CoreError),
}
