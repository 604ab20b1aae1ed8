//! The crate's error type.

use std::path::PathBuf;

/// Everything that can stop [`crate::synthesize`].
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The output folder exists and holds files; we never overwrite a dataset.
    #[error("output folder {0} already exists and is not empty; choose another path or remove it")]
    OutputExists(PathBuf),
    /// A configuration value is out of range.
    #[error("invalid synth configuration: {0}")]
    Config(String),
    /// Reading or writing a file or folder failed.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
    /// The output folder could not be claimed (another run holds it, or a `.partial` folder
    /// beside it was not left by valar).
    #[error(transparent)]
    Output(#[from] valar_core::CoreError),
    /// Encoding an image as JPEG failed.
    #[error("could not encode JPEG {path}: {source}")]
    Encode {
        /// The image being written.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
}

impl SynthError {
    /// Wraps an I/O error with the path it happened at.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SynthError::Io(valar_core::IoError {
            path: path.into(),
            source,
        })
    }
}
