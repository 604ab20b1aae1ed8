use valar_core::FaceBox;

/// Why a face could not be produced from an image.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// The file does not exist.
    #[error("file not found")]
    Missing,
    /// The file exists but could not be read.
    #[error("cannot read file: {0}")]
    Unreadable(std::io::Error),
    /// The path is not a regular file (after following links): a FIFO, a device, a folder.
    #[error("{0}")]
    NotRegular(String),
    /// The file is larger than an image within the pixel limit can be.
    #[error("{0}")]
    TooLarge(String),
    /// The bytes are not a decodable image (corrupt, truncated or an unknown format).
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    /// The image is larger than the pixel limit, which guards against decompression bombs.
    #[error("image is {width}×{height} = {} pixels, over the limit of {limit}", u64::from(*width) * u64::from(*height))]
    TooManyPixels {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// The configured limit.
        limit: u64,
    },
    /// The box has a zero or negative width or height.
    #[error("face box has no area ({0})")]
    EmptyBox(FaceBox),
    /// The box does not overlap the image at all.
    #[error("face box {face_box} lies outside the {width}×{height} image")]
    BoxOutsideImage {
        /// The box as given.
        face_box: FaceBox,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// Faces are aligned and this one has no landmarks that place its eyes.
    #[error("no landmarks place this face's eyes, and faces are aligned by them (--align)")]
    NoLandmarks,
    /// The path leaves the image root (`..`, or an absolute path).
    #[error("path escapes the image root")]
    EscapesRoot,
}

impl FaceError {
    /// A short, stable code for `rejects.csv` and summaries.
    pub fn reason(&self) -> &'static str {
        match self {
            FaceError::Missing => "missing_file",
            FaceError::Unreadable(_) => "unreadable_file",
            FaceError::NotRegular(_) => "not_a_regular_file",
            FaceError::TooLarge(_) => "file_too_large",
            FaceError::Corrupt(_) => "corrupt_image",
            FaceError::TooManyPixels { .. } => "too_many_pixels",
            FaceError::EmptyBox(_) => "bad_box",
            FaceError::BoxOutsideImage { .. } => "box_outside_image",
            FaceError::NoLandmarks => "no_landmarks",
            FaceError::EscapesRoot => "path_escapes_root",
        }
    }
}
