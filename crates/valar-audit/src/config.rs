use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use valar_face::FaceSpec;
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

/// The thresholds of every check, each named by the finding (`kind` in audit.csv) it
/// raises. Defaults are CleanVision's where one applies, restated for valar's measures.
/// Each is declared once here: its doc is `valar audit --help`'s text for the flag of
/// the same name (`--near-bits`), and its default is [`Thresholds::DEFAULT`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// near_duplicate: perceptual (DCT) hashes of the face, 63 bits, at most this many
    /// bits apart (and colour layouts as alike as --near-layout).
    #[arg(long, default_value_t = Thresholds::DEFAULT.near_bits)]
    pub near_bits: u32,
    /// near_duplicate, also: colour layouts (4×4 cells of mean RGB, mean-removed) with a
    /// cosine of at least this, so faces that only share a pose and framing are not grouped.
    /// (The hash alone cannot tell apart faces that share a pose and framing, as synthetic
    /// faces or a cropped dataset's do; the layout adds skin, hair and background colour
    /// while staying blind to brightness.)
    #[arg(long, default_value_t = Thresholds::DEFAULT.near_layout)]
    pub near_layout: f64,
    /// same_face: 32×32 gray faces within this mean absolute difference (gray levels),
    /// different file bytes (re-encoded or resized copies). exact_duplicate: the same SHA-256.
    #[arg(long, default_value_t = Thresholds::DEFAULT.same_face_mad)]
    pub same_face_mad: f64,
    /// dark: 99th-percentile perceived brightness / 255 below this (CleanVision's dark
    /// score and threshold).
    #[arg(long, default_value_t = Thresholds::DEFAULT.dark)]
    pub dark: f64,
    /// light: 1 − 5th-percentile perceived brightness / 255 below this (CleanVision's light).
    #[arg(long, default_value_t = Thresholds::DEFAULT.light)]
    pub light: f64,
    /// blurry: 1 − exp(−σ/100) below this, σ the SD of the 3×3 edge filter (PIL's
    /// FIND_EDGES) on the 64×64 gray face with its 1st–99th percentile stretched to 0–255
    /// (CleanVision's blurry score, after a contrast stretch so that dark or flat-lit faces
    /// are not called blurry; CleanVision's own threshold, unstretched, is 0.29).
    #[arg(long, default_value_t = Thresholds::DEFAULT.blurry)]
    pub blurry: f64,
    /// low_information: gray-level entropy (bits) × 0.1 below this (CleanVision's low_information).
    #[arg(long, default_value_t = Thresholds::DEFAULT.low_information)]
    pub low_information: f64,
    /// odd_aspect: face box min(w/h, h/w) below this (CleanVision's odd_aspect_ratio).
    #[arg(long, default_value_t = Thresholds::DEFAULT.odd_aspect)]
    pub odd_aspect: f64,
    /// small_face: a face box whose shorter side is under this many pixels (set it to
    /// the size you prepare at: such faces are upscaled).
    #[arg(long, default_value_t = Thresholds::DEFAULT.small_face)]
    pub small_face: u32,
    /// grayscale: no pixel's R, G, B differ by more than this (a source without colour;
    /// CleanVision flags equal channels, and 2 allows JPEG chroma noise).
    #[arg(long, default_value_t = Thresholds::DEFAULT.grayscale_spread)]
    pub grayscale_spread: u8,
    /// label_conflict margin m: Happy with valence < −m; Sad, Fear, Disgust, Anger,
    /// Contempt with valence > m; Surprise or Fear with arousal < −m; Neutral with
    /// |valence| > 3m. label_out_of_range: a label outside [-1, 1] (−2 rows are skipped).
    #[arg(long, default_value_t = Thresholds::DEFAULT.label_margin)]
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
        // The prepared face size: a smaller face is upscaled.
        small_face: FaceSpec::DEFAULT.size,
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
            top_residuals: AuditConfig::TOP_RESIDUALS,
            out,
            force: false,
            // As `valar prepare` crops and guards by default.
            margin: FaceSpec::DEFAULT.margin,
            max_pixels: FaceSpec::DEFAULT.max_pixels,
            thresholds: Thresholds::default(),
            sheet_faces: AuditConfig::SHEET_FACES,
            sheet_groups: AuditConfig::SHEET_GROUPS,
        }
    }

    /// How many of a run's largest residuals are listed, by default.
    pub const TOP_RESIDUALS: usize = 50;
    /// Faces per contact-sheet section, by default.
    pub const SHEET_FACES: usize = 36;
    /// Duplicate groups on the duplicates sheet, by default.
    pub const SHEET_GROUPS: usize = 24;

    /// Refuses values no check can use, naming the setting (`near_bits`).
    pub fn validate(&self) -> Result<(), crate::AuditError> {
        let t = &self.thresholds;
        let bad = |key: &'static str, reason: &str| {
            Err(crate::AuditError::InvalidSetting {
                key,
                reason: reason.to_string(),
            })
        };
        if t.near_bits > 32 {
            return bad("near_bits", "must be at most 32 of the hash's 63 bits");
        }
        if !(0.0..=1.0).contains(&self.margin) {
            return bad("margin", "must be between 0 and 1");
        }
        for (key, v) in [
            ("dark", t.dark),
            ("light", t.light),
            ("blurry", t.blurry),
            ("low_information", t.low_information),
            ("odd_aspect", t.odd_aspect),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, "must be between 0 and 1");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_and_errors_name_the_setting() {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            t: Thresholds,
        }
        let parsed = Flags::try_parse_from(["x"]).unwrap();
        assert_eq!(parsed.t, Thresholds::DEFAULT);
        let parsed = Flags::try_parse_from(["x", "--near-bits", "40"]).unwrap();
        assert_eq!(parsed.t.near_bits, 40);
        let mut cfg = AuditConfig::new(Target::Prepared("p".into()), "o".into());
        cfg.thresholds = parsed.t;
        match cfg.validate() {
            Err(crate::AuditError::InvalidSetting { key, .. }) => assert_eq!(key, "near_bits"),
            other => panic!("{other:?}"),
        }
        let toml: Thresholds = serde_json::from_str(r#"{"dark": 0.5}"#).unwrap();
        assert_eq!(toml.dark, 0.5);
        assert_eq!(toml.light, Thresholds::DEFAULT.light);
        assert!(serde_json::from_str::<Thresholds>(r#"{"darkk": 0.5}"#).is_err());
    }
}
