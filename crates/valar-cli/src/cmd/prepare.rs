//! `valar prepare`.

use crate::ui::Bars;
use crate::ui::outln;
use anyhow::Context;
use std::path::PathBuf;
use valar_core::{ColorMode, Dimension};
use valar_face::FaceSpec;
use valar_prep::{Input, PrepareConfig, Stratify, plan_only, prepare};

/// Arguments of `valar prepare`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["csv", "set", "afew_va", "aff_wild2"])))]
pub struct PrepareArgs {
    /// AffectNet's `training.csv`/`validation.csv` (header optional), or a CSV with
    /// columns path, valence, arousal [, face_x, face_y, face_width, face_height, expression],
    /// or a video CSV: video, frame, path, valence, arousal [, box, split, subject].
    #[arg(long, requires = "images")]
    pub csv: Option<PathBuf>,
    /// Folder the CSV's image paths are relative to (AffectNet: Manually_Annotated_Images).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// A `train_set` or `val_set` folder of AffectNet's newer release (images/ + annotations/).
    #[arg(long)]
    pub set: Option<PathBuf>,
    /// Output folder.
    #[arg(long, required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,
    /// Replace the output folder if it exists.
    #[arg(long)]
    pub force: bool,
    /// What to balance over.
    #[arg(long, value_enum, default_value_t = StratifyArg::Arousal)]
    pub stratify: StratifyArg,
    /// Equal intervals over [-1, 1] (per axis for the grid).
    #[arg(long, default_value_t = 10)]
    pub intervals: usize,
    /// Faces drawn per interval (grid cell).
    #[arg(long, default_value_t = 1000)]
    pub quota: usize,
    /// Keep every usable row as a test set: no sampling, no validation split.
    #[arg(long)]
    pub all: bool,
    /// Share of each interval held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Seed for sampling and splitting.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Face side length in pixels.
    #[arg(long, default_value_t = 48)]
    pub size: u32,
    /// Keep colour (3 channels) instead of converting to gray.
    #[arg(long)]
    pub rgb: bool,
    /// Context added around the box on each side, as a share of its size.
    #[arg(long, default_value_t = 0.0)]
    pub margin: f32,
    /// Refuse images with more pixels than this (a decompression-bomb guard; Pillow's default).
    #[arg(long, default_value_t = 89_478_485)]
    pub max_pixels: u64,
    /// Decode JPEGs at full size. By default each is decoded at the smallest DCT scale
    /// (1/8 to 1) that keeps the face at least --size pixels across, as Pillow's
    /// `draft` does: several times faster, and within a gray level or so on average.
    #[arg(long)]
    pub full_scale: bool,
    /// Also write every face as a PNG, in a folder per interval.
    #[arg(long)]
    pub png: bool,
    /// Read, exclude and stratify, print the counts, and stop before opening any image.
    #[arg(long)]
    pub dry_run: bool,
    /// AFEW-VA: the folder of clip folders (001 … 600, each with PNG frames and NNN.json).
    #[arg(long)]
    pub afew_va: Option<PathBuf>,
    /// Aff-Wild2's VA annotations: VA_Estimation_Challenge (Train_Set/, Validation_Set/)
    /// or one folder of <video>.txt files.
    #[arg(long, requires = "frames")]
    pub aff_wild2: Option<PathBuf>,
    /// Aff-Wild2's cropped or aligned frames: <video>/<frame:05>.jpg.
    #[arg(long)]
    pub frames: Option<PathBuf>,
    /// Video inputs: use every k-th frame of each video.
    #[arg(long, default_value_t = 1)]
    pub frame_step: usize,
    /// Video inputs: then at most N frames per video, a seeded draw.
    #[arg(long)]
    pub frames_per_video: Option<usize>,
    /// Preprocess only shard K of N (0-based) of the same seeded plan into --out;
    /// `valar merge` combines the N shard folders.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<valar_prep::Shard>,
    /// Drop the rows a `valar audit` of this input found (its audit.csv) before
    /// stratifying, each with a rejects.csv row; of each duplicate group the lowest row stays.
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// Act only on these kinds of finding (repeatable; default: all), e.g. exact_duplicate.
    #[arg(long, requires = "exclude", value_parser = parse_kind)]
    pub exclude_kind: Vec<valar_core::AuditKind>,
}

fn parse_kind(name: &str) -> Result<valar_core::AuditKind, String> {
    valar_core::AuditKind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = valar_core::AuditKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        format!("unknown kind; one of {}", names.join(", "))
    })
}

/// What to stratify.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StratifyArg {
    /// Equal intervals of arousal (the classic recipe).
    Arousal,
    /// Equal intervals of valence.
    Valence,
    /// A valence × arousal grid.
    Grid,
}

impl PrepareArgs {
    /// The library configuration these arguments ask for.
    pub fn config(&self) -> anyhow::Result<PrepareConfig> {
        let input = match (&self.csv, &self.images, &self.set) {
            (Some(csv), Some(images), _) => Input::from_csv(csv.clone(), images.clone())?,
            (_, _, Some(dir)) => Input::AffectNetNewer { dir: dir.clone() },
            _ => match (&self.afew_va, &self.aff_wild2, &self.frames) {
                (Some(dir), _, _) => Input::AfewVa { dir: dir.clone() },
                (_, Some(annotations), Some(frames)) => Input::AffWild2 {
                    annotations: annotations.clone(),
                    frames: frames.clone(),
                },
                _ => anyhow::bail!(
                    "give --csv with --images, --set, --afew-va, or --aff-wild2 with --frames"
                ),
            },
        };
        Ok(PrepareConfig {
            input,
            out: self.out.clone().unwrap_or_default(),
            force: self.force,
            stratify: match self.stratify {
                StratifyArg::Arousal => Stratify::One(Dimension::Arousal),
                StratifyArg::Valence => Stratify::One(Dimension::Valence),
                StratifyArg::Grid => Stratify::Grid,
            },
            intervals: self.intervals,
            quota: self.quota,
            keep_all: self.all,
            val_fraction: self.val_fraction,
            seed: self.seed,
            face: FaceSpec {
                size: self.size,
                color: if self.rgb {
                    ColorMode::Rgb
                } else {
                    ColorMode::Gray
                },
                margin: self.margin,
                max_pixels: self.max_pixels,
                full_scale: self.full_scale,
            },
            png: self.png,
            frames: valar_prep::FrameSampling {
                step: self.frame_step,
                per_video: self.frames_per_video,
            },
            shard: self.shard,
            exclude: self.exclude.clone(),
            exclude_kinds: self.exclude_kind.clone(),
        })
    }
}

/// Runs `valar prepare`.
pub fn run(args: PrepareArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    if args.dry_run {
        let plan = plan_only(&cfg)?;
        outln!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let inputs: Vec<&std::path::Path> = [
        &args.csv,
        &args.images,
        &args.set,
        &args.afew_va,
        &args.aff_wild2,
        &args.frames,
        &args.exclude,
    ]
    .into_iter()
    .filter_map(Option::as_deref)
    .collect();
    valar_core::refuse_input_as_output(&cfg.out, &inputs)?;
    let prepared = prepare(&cfg, &Bars::default())
        .with_context(|| format!("preparing {}", cfg.input.source().display()))?;
    let info = &prepared.info;
    outln!(
        "Prepared {} faces from {} rows in {:.1} s → {}",
        info.faces,
        info.rows_read,
        info.timings_s.get("total").copied().unwrap_or_default(),
        prepared.out.display()
    );
    let splits: Vec<String> = info
        .splits
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    outln!("  splits: {}", splits.join(", "));
    let counts: Vec<String> = info
        .intervals
        .iter()
        .map(|c| c.selected.to_string())
        .collect();
    outln!("  faces per interval: {}", counts.join(" "));
    if !info.short_intervals.is_empty() {
        outln!(
            "  short of the quota of {}: intervals {:?} (see prep.json)",
            cfg.quota,
            info.short_intervals
        );
    }
    let rejected: usize = info.rejects_by_reason.values().sum();
    if rejected > 0 {
        let reasons: Vec<String> = info
            .rejects_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        outln!(
            "  rejected {rejected} rows (rejects.csv): {}",
            reasons.join(", ")
        );
    }
    Ok(())
}
