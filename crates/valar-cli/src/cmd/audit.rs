//! `valar audit`.

use crate::ui::Bars;
use crate::ui::outln;
use anyhow::Context;
use std::path::PathBuf;
use valar_audit::{AuditConfig, Target, Thresholds, audit};
use valar_prep::Input;

const DEFAULTS: Thresholds = Thresholds::DEFAULT;

/// Arguments of `valar audit`.
///
/// Every face is decoded once (as `valar prepare` decodes it) and measured at 64×64.
/// Findings go to `<out>/audit.csv` (source, row, path, kind, group, score, split,
/// expression, detail), counts to `audit.json`, and contact sheets of the faces, score
/// histograms and `report.md` to `<out>/pages`. `valar prepare --exclude <out>/audit.csv`
/// then drops the flagged rows, keeping the lowest row of each duplicate group.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["csv", "set", "prepared"])))]
pub struct AuditArgs {
    /// A source CSV: AffectNet's training.csv/validation.csv or a CSV with columns
    /// path, valence, arousal [, face_x, face_y, face_width, face_height, expression].
    #[arg(long, requires = "images")]
    pub csv: Option<PathBuf>,
    /// Folder the CSV's image paths are relative to.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// A `train_set` or `val_set` folder of AffectNet's newer release.
    #[arg(long)]
    pub set: Option<PathBuf>,
    /// A prepared folder (manifest.csv + faces.npy): also finds leaks between its splits.
    #[arg(long)]
    pub prepared: Option<PathBuf>,
    /// A prepared folder to look for leaks in (a held-out validation set); repeatable.
    #[arg(long)]
    pub against: Vec<PathBuf>,
    /// A training run folder: its predictions.csv's largest residuals become `residual` findings.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// How many of the run's largest residuals to list.
    #[arg(long, default_value_t = 50)]
    pub top_residuals: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output folder if it exists.
    #[arg(long)]
    pub force: bool,
    /// Context around a source's face box, as a share of its size (as `prepare --margin`).
    #[arg(long, default_value_t = 0.0)]
    pub margin: f32,
    /// Refuse images with more pixels than this (as `prepare --max-pixels`).
    #[arg(long, default_value_t = 89_478_485)]
    pub max_pixels: u64,
    /// near_duplicate: perceptual (DCT) hashes of the face, 63 bits, at most this many bits apart.
    #[arg(long, default_value_t = DEFAULTS.near_bits)]
    pub near_bits: u32,
    /// near_duplicate, also: colour layouts (4×4 cells of mean RGB, mean-removed) with a
    /// cosine of at least this, so faces that only share a pose and framing are not grouped.
    #[arg(long, default_value_t = DEFAULTS.near_layout)]
    pub near_layout: f64,
    /// same_face: 32×32 gray faces within this mean absolute difference (gray levels),
    /// different file bytes (re-encoded or resized copies). exact_duplicate: the same SHA-256.
    #[arg(long, default_value_t = DEFAULTS.same_face_mad)]
    pub same_face_mad: f64,
    /// dark: 99th-percentile perceived brightness / 255 below this (CleanVision's dark).
    #[arg(long, default_value_t = DEFAULTS.dark)]
    pub dark: f64,
    /// light: 1 − 5th-percentile perceived brightness / 255 below this (CleanVision's light).
    #[arg(long, default_value_t = DEFAULTS.light)]
    pub light: f64,
    /// blurry: 1 − exp(−σ/100) below this, σ the SD of the 3×3 edge filter on the
    /// 64×64 gray face with its 1st–99th percentile stretched to 0–255 (CleanVision's
    /// blurry score, after a contrast stretch so that dark faces are not called blurry).
    #[arg(long, default_value_t = DEFAULTS.blurry)]
    pub blurry: f64,
    /// low_information: gray-level entropy (bits) × 0.1 below this (CleanVision's low_information).
    #[arg(long, default_value_t = DEFAULTS.low_information)]
    pub low_information: f64,
    /// odd_aspect: face box min(w/h, h/w) below this (CleanVision's odd_aspect_ratio).
    #[arg(long, default_value_t = DEFAULTS.odd_aspect)]
    pub odd_aspect: f64,
    /// small_face: a face box whose shorter side is under this many pixels (set it to
    /// the size you prepare at: such faces are upscaled).
    #[arg(long, default_value_t = DEFAULTS.small_face)]
    pub small_face: u32,
    /// grayscale: no pixel's R, G, B differ by more than this (a source without colour).
    #[arg(long, default_value_t = DEFAULTS.grayscale_spread)]
    pub grayscale_spread: u8,
    /// label_conflict margin m: Happy with valence < −m; Sad, Fear, Disgust, Anger,
    /// Contempt with valence > m; Surprise or Fear with arousal < −m; Neutral with
    /// |valence| > 3m. label_out_of_range: a label outside [-1, 1] (−2 rows are skipped).
    #[arg(long, default_value_t = DEFAULTS.label_margin)]
    pub label_margin: f64,
    /// Faces drawn per contact-sheet section.
    #[arg(long, default_value_t = 36)]
    pub sheet_faces: usize,
    /// Duplicate groups drawn on the duplicates sheet.
    #[arg(long, default_value_t = 24)]
    pub sheet_groups: usize,
}

impl AuditArgs {
    /// The library configuration these arguments ask for.
    pub fn config(&self) -> anyhow::Result<AuditConfig> {
        let target = match (&self.csv, &self.images, &self.set, &self.prepared) {
            (Some(csv), Some(images), _, _) => {
                Target::Source(Input::from_csv(csv.clone(), images.clone())?)
            }
            (_, _, Some(dir), _) => Target::Source(Input::AffectNetNewer { dir: dir.clone() }),
            (_, _, _, Some(dir)) => Target::Prepared(dir.clone()),
            _ => anyhow::bail!("give --csv with --images, --set, or --prepared"),
        };
        let mut cfg = AuditConfig::new(target, self.out.clone());
        cfg.against = self.against.clone();
        cfg.run = self.run.clone();
        cfg.top_residuals = self.top_residuals;
        cfg.force = self.force;
        cfg.margin = self.margin;
        cfg.max_pixels = self.max_pixels;
        cfg.sheet_faces = self.sheet_faces;
        cfg.sheet_groups = self.sheet_groups;
        cfg.thresholds = Thresholds {
            near_bits: self.near_bits,
            near_layout: self.near_layout,
            same_face_mad: self.same_face_mad,
            dark: self.dark,
            light: self.light,
            blurry: self.blurry,
            low_information: self.low_information,
            odd_aspect: self.odd_aspect,
            small_face: self.small_face,
            grayscale_spread: self.grayscale_spread,
            label_margin: self.label_margin,
        };
        Ok(cfg)
    }
}

/// Runs `valar audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let mut inputs: Vec<&std::path::Path> = [
        &args.csv,
        &args.images,
        &args.set,
        &args.prepared,
        &args.run,
    ]
    .into_iter()
    .filter_map(Option::as_deref)
    .collect();
    inputs.extend(args.against.iter().map(PathBuf::as_path));
    valar_core::refuse_input_as_output(&args.out, &inputs)?;
    let s = audit(&cfg, &Bars::default()).context("auditing")?;
    outln!(
        "Audited {} faces in {:.1} s ({:.0} faces/s) → {}",
        s.faces,
        s.seconds,
        s.faces_per_second,
        s.out.display()
    );
    outln!(
        "  {} duplicate groups, {} leak groups; {} unreadable, {} with unusable labels skipped",
        s.duplicate_groups,
        s.leak_groups,
        s.unreadable,
        s.skipped_labels
    );
    let counts: Vec<String> = s.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if counts.is_empty() {
        outln!("  nothing found");
    } else {
        outln!("  findings (audit.csv): {}", counts.join(", "));
    }
    if let (Some(v), Some(a)) = (s.label_noise.valence_rmse, s.label_noise.arousal_rmse) {
        outln!("  copies of one image disagree by RMSE {v:.3} valence, {a:.3} arousal");
    }
    outln!("  pages: {}", s.out.join("report.md").display());
    Ok(())
}
