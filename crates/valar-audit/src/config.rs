use serde::Serialize;
use std::path::PathBuf;
use valar_prep::Input;

/// What is audited.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A source, read exactly as `valar prepare` reads it.
    Source(Input),
    /// A prepared folder (`manifest.csv` + `faces.npy`); leaks are looked for across its splits.
    Prepared(PathBuf),
}

/// The thresholds of every check. Defaults are CleanVision's where one applies,
/// restated for valar's measures (see each field).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// Near duplicates: perceptual hashes (63 bits) at most this many bits apart…
    pub near_bits: u32,
    /// …and colour layouts (4×4 cells of mean RGB, mean-removed) at least this
    /// similar (cosine). The hash alone cannot tell apart faces that share a pose and
    /// framing (synthetic faces, or a cropped dataset's); the layout adds skin,
    /// hair and background colour while staying blind to brightness.
    pub near_layout: f64,
    /// Same face: 32×32 gray faces differing by at most this many gray levels on
    /// average (mean absolute difference), with different file bytes.
    pub same_face_mad: f64,
    /// Dark: the 99th percentile of perceived brightness, as a share of 255, below
    /// this (CleanVision's `dark` score and threshold, 0.32).
    pub dark: f64,
    /// Light: one minus the 5th percentile of perceived brightness below this
    /// (CleanVision's `light`, 0.05).
    pub light: f64,
    /// Blurry: 1 − exp(−σ/100), σ the standard deviation of the 3×3 edge filter
    /// (PIL's FIND_EDGES) on the 64×64 gray face with its 1st–99th percentile stretched
    /// to 0–255, below this: CleanVision's `blurry` score after a contrast stretch, so
    /// that a sharp face that is dark or flat-lit is not blurry (CleanVision's own
    /// threshold, on the unstretched score, is 0.29).
    pub blurry: f64,
    /// Low information: gray-level entropy in bits, times 0.1, below this
    /// (CleanVision's `low_information`, 0.3).
    pub low_information: f64,
    /// Odd aspect: min(w/h, h/w) of the face box below this (CleanVision's `odd_aspect_ratio`, 0.35).
    pub odd_aspect: f64,
    /// Small face: a face box whose shorter side is under this many pixels (the
    /// prepared face size: such a face is upscaled).
    pub small_face: u32,
    /// Grayscale: the largest channel spread (max − min of R, G, B) of any pixel at
    /// most this (CleanVision flags images with equal channels; 2 allows JPEG chroma noise).
    pub grayscale_spread: u8,
    /// Label conflict: how far (in label units) a valence or arousal must lie on the
    /// wrong side of an expression's rule (see `valar audit --help`).
    pub label_margin: f64,
}

impl Thresholds {
    /// The defaults, as a constant so that the command line can show them.
    pub const DEFAULT: Thresholds = Thresholds {
        near_bits: 16,
        near_layout: 0.99,
        same_face_mad: 3.0,
        dark: 0.32,
        light: 0.05,
        blurry: 0.2,
        low_information: 0.3,
        odd_aspect: 0.35,
        small_face: 48,
        grayscale_spread: 2,
        label_margin: 0.25,
    };
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

/// Everything `valar audit` needs to know.
#[derive(Debug, Clone, Serialize)]
pub struct AuditConfig {
    /// What to audit.
    pub target: Target,
    /// Prepared folders to look for leaks in (a held-out validation set, say).
    pub against: Vec<PathBuf>,
    /// A training run folder whose `predictions.csv` gives residuals.
    pub run: Option<PathBuf>,
    /// How many of the largest residuals to list.
    pub top_residuals: usize,
    /// The output folder (written as `<out>.partial`, renamed when complete).
    pub out: PathBuf,
    /// Replace an existing output folder.
    pub force: bool,
    /// Context added around a source's face box, as `prepare --margin`.
    pub margin: f32,
    /// Refuse images with more pixels than this, as `prepare --max-pixels`.
    pub max_pixels: u64,
    /// The thresholds.
    pub thresholds: Thresholds,
    /// Faces per contact sheet section (a flag's worst, or a duplicate group's members).
    pub sheet_faces: usize,
    /// Duplicate groups drawn on the duplicates sheet.
    pub sheet_groups: usize,
}

impl AuditConfig {
    /// An audit of `target` into `out` with the default thresholds.
    pub fn new(target: Target, out: PathBuf) -> Self {
        AuditConfig {
            target,
            against: Vec::new(),
            run: None,
            top_residuals: 50,
            out,
            force: false,
            margin: 0.0,
            max_pixels: 89_478_485,
            thresholds: Thresholds::default(),
            sheet_faces: 36,
            sheet_groups: 24,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::AuditError> {
        let t = &self.thresholds;
        let bad = |m: &str| Err(crate::AuditError::Config(m.to_string()));
        if t.near_bits > 32 {
            return bad("--near-bits must be at most 32 of the hash's 63 bits");
        }
        if !(0.0..=1.0).contains(&self.margin) {
            return bad("--margin must be between 0 and 1");
        }
        for (name, v) in [
            ("--dark", t.dark),
            ("--light", t.light),
            ("--blurry", t.blurry),
            ("--low-information", t.low_information),
            ("--odd-aspect", t.odd_aspect),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(crate::AuditError::Config(format!(
                    "{name} must be between 0 and 1"
                )));
            }
        }
        Ok(())
    }
}
