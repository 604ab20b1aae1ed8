use serde::Serialize;
use std::path::PathBuf;
use valar_core::Dimension;
use valar_face::FaceSpec;

/// Where the samples come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// AffectNet's original release: `training.csv` or `validation.csv` (with or
    /// without a header row) and the folder its image paths are relative to.
    AffectNet {
        /// The CSV.
        csv: PathBuf,
        /// The image root (`Manually_Annotated_Images`).
        images: PathBuf,
    },
    /// AffectNet's newer release: a `train_set` or `val_set` folder holding
    /// `images/` and `annotations/`. Faces are already cropped: no box.
    AffectNetNewer {
        /// The set folder.
        dir: PathBuf,
    },
    /// A CSV with a header naming `path`, `valence`, `arousal`, and optionally
    /// `face_x`, `face_y`, `face_width`, `face_height` and `expression`.
    Generic {
        /// The CSV.
        csv: PathBuf,
        /// The folder image paths are relative to.
        images: PathBuf,
    },
    /// AFEW-VA: clip folders `001`…`600`, each with PNG frames and `NNN.json`.
    AfewVa {
        /// The folder holding the clip folders.
        dir: PathBuf,
    },
    /// Aff-Wild2's VA track: one annotation file per video, frames in a folder per video.
    AffWild2 {
        /// `VA_Estimation_Challenge` (with `Train_Set/`, `Validation_Set/`) or one set folder.
        annotations: PathBuf,
        /// The cropped or aligned frames: `<video>/<frame:05>.jpg`.
        frames: PathBuf,
    },
    /// A CSV of video frames with a header naming `video`, `frame`, `path`, `valence`,
    /// `arousal`, and optionally the four box columns, `split` and `subject`.
    VideoCsv {
        /// The CSV.
        csv: PathBuf,
        /// The folder frame paths are relative to.
        images: PathBuf,
    },
}

impl Input {
    /// A CSV input of any kind, told apart by its first line: a header with a
    /// `path` column is a generic CSV (a video CSV if it also names `video` and
    /// `frame`); anything else is AffectNet's file list (whose header may be missing).
    pub fn from_csv(csv: PathBuf, images: PathBuf) -> Result<Self, crate::PrepError> {
        use std::io::BufRead;
        valar_core::check_utf8_text(&csv)?;
        let file = std::fs::File::open(&csv).map_err(crate::PrepError::io(&csv))?;
        let mut first = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .map_err(crate::PrepError::io(&csv))?;
        // Excel's "CSV UTF-8" starts with a BOM; left on, it hid the `path` column and
        // a generic CSV was read as AffectNet's headerless list (every row malformed).
        let first = valar_core::strip_bom(&first);
        let generic = first
            .trim_end()
            .split(',')
            .any(|f| f.trim().trim_matches('"') == "path");
        let has = |name: &str| {
            first
                .trim_end()
                .split(',')
                .any(|f| f.trim().trim_matches('"') == name)
        };
        Ok(if generic && has("video") && has("frame") {
            Input::VideoCsv { csv, images }
        } else if generic {
            Input::Generic { csv, images }
        } else {
            Input::AffectNet { csv, images }
        })
    }

    /// The file or folder that row numbers in `rejects.csv` refer to.
    pub fn source(&self) -> &PathBuf {
        match self {
            Input::AffectNet { csv, .. } | Input::Generic { csv, .. } => csv,
            Input::AffectNetNewer { dir } => dir,
            Input::AfewVa { dir } => dir,
            Input::AffWild2 { annotations, .. } => annotations,
            Input::VideoCsv { csv, .. } => csv,
        }
    }
}

/// What the subset is balanced over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stratify {
    /// Equal intervals of one dimension.
    One(Dimension),
    /// A valence × arousal grid of equal cells.
    Grid,
}

impl Stratify {
    /// The name written to `prep.json`.
    pub fn name(self) -> &'static str {
        match self {
            Stratify::One(d) => d.name(),
            Stratify::Grid => "grid",
        }
    }
}

/// Everything `valar prepare` needs to know.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareConfig {
    /// The input.
    pub input: Input,
    /// The output folder (written as `<out>.partial`, renamed when complete).
    pub out: PathBuf,
    /// Replace an existing output folder.
    pub force: bool,
    /// What to balance over.
    pub stratify: Stratify,
    /// Intervals over [-1, 1] (per axis, for a grid).
    pub intervals: usize,
    /// Faces per interval (grid cell). Ignored with `keep_all`.
    pub quota: usize,
    /// Keep every valid row as a test set, without sampling or a validation split.
    pub keep_all: bool,
    /// Share of each interval held out for validation.
    pub val_fraction: f64,
    /// Seed for sampling and splitting.
    pub seed: u64,
    /// Face size, colour, margin and pixel limit.
    #[serde(skip)]
    pub face: FaceSpec,
    /// Also write every face as a PNG, in a folder per interval.
    pub png: bool,
    /// Which frames of a video input to use (ignored for images).
    pub frames: crate::FrameSampling,
    /// Preprocess only this shard's share of the plan (`valar prepare --shard K/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::Shard>,
    /// An `audit.csv` whose rows are dropped before stratification.
    pub exclude: Option<PathBuf>,
    /// Only these kinds of finding are acted on (all when empty).
    pub exclude_kinds: Vec<valar_core::AuditKind>,
}

/// The most intervals per dimension: 0.02 wide on [-1, 1], far finer than annotators
/// agree (RMSE about 0.34), and a grid of this many already has 10,000 cells, each
/// listed in prep.json.
pub const MAX_INTERVALS: usize = 100;

impl PrepareConfig {
    /// The classic recipe's settings for `input`: arousal in ten intervals of 1000
    /// faces, 48×48 gray, a 90/10 split.
    pub fn recipe(input: Input, out: PathBuf) -> Self {
        PrepareConfig {
            input,
            out,
            force: false,
            stratify: Stratify::One(Dimension::Arousal),
            intervals: 10,
            quota: 1000,
            keep_all: false,
            val_fraction: 0.1,
            seed: 0,
            face: FaceSpec::default(),
            png: false,
            frames: crate::FrameSampling::default(),
            shard: None,
            exclude: None,
            exclude_kinds: Vec::new(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::PrepError> {
        let bad = |m: &str| Err(crate::PrepError::Config(m.to_string()));
        if self.intervals == 0 {
            return bad("--intervals must be at least 1");
        }
        if self.intervals > MAX_INTERVALS {
            // Checked before anything is allocated: a grid holds intervals² cells.
            return Err(crate::PrepError::Config(format!(
                "--intervals {} is over the limit of {MAX_INTERVALS} ({MAX_INTERVALS} \
                 intervals are 0.02 wide on [-1, 1]; a grid of them has {} cells)",
                self.intervals,
                MAX_INTERVALS * MAX_INTERVALS
            )));
        }
        if !self.keep_all && self.quota == 0 {
            return bad("--quota must be at least 1");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("--val-fraction must be in [0, 1)");
        }
        // The same ranges predict and evaluate hold a model's metadata to.
        let (sizes, margins) = (valar_core::FACE_SIZES, valar_core::MARGINS);
        if !sizes.contains(&(self.face.size as usize)) {
            return bad(&format!(
                "--size must be between {} and {}",
                sizes.start(),
                sizes.end()
            ));
        }
        if !margins.contains(&self.face.margin) {
            return bad(&format!(
                "--margin must be between {} and {}",
                margins.start(),
                margins.end()
            ));
        }
        self.frames.validate()?;
        crate::shard::validate(self)?;
        Ok(())
    }
}
