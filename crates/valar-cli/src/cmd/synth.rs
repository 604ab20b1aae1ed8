//! `valar synth`.

use crate::ui::Bars;
use crate::ui::outln;
use std::path::PathBuf;
use valar_core::Progress;
use valar_synth::{
    DatasetLayout, Difficulty, SynthConfig, VideoLayout, VideoSynthConfig, synthesize,
    synthesize_video,
};

/// Arguments of `valar synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output folder (must not exist yet, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Training images.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Validation images [default: a tenth of --n].
    #[arg(long)]
    pub val_n: Option<usize>,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Which AffectNet release to imitate.
    #[arg(long, value_enum, default_value_t = DatasetLayout::Original)]
    pub layout: DatasetLayout,
    /// Share of rows with AffectNet's unusable labels (−2, expressions 8–10).
    #[arg(long, default_value_t = 0.03)]
    pub invalid_fraction: f64,
    /// How hard the faces are: `easy` for demos and plumbing tests, `hard` for
    /// judging training recipes (noisy labels, AffectNet's label distribution,
    /// nuisance that dominates a subtle affect cue).
    #[arg(long, value_enum, default_value_t = Difficulty::Easy)]
    pub difficulty: Difficulty,
    /// Video layouts: clips (videos) to write.
    #[arg(long, default_value_t = 20)]
    pub clips: usize,
    /// Video layouts: frames per clip.
    #[arg(long, default_value_t = 60)]
    pub frames: usize,
    /// Aff-Wild2: share of annotated frames whose image is left out.
    #[arg(long, default_value_t = 0.02)]
    pub missing_fraction: f64,
}

/// Runs `valar synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let layout = match args.layout.image_or_video() {
        Ok(layout) => layout,
        Err(video) => return run_video(&args, video),
    };
    let cfg = SynthConfig {
        n: args.n,
        val_n: args.val_n.unwrap_or(args.n / 10),
        seed: args.seed,
        layout,
        invalid_fraction: args.invalid_fraction,
        difficulty: args.difficulty,
        ..SynthConfig::default()
    };
    let bars = Bars::default();
    bars.start("synthesizing", (cfg.n + cfg.val_n) as u64);
    let summary = synthesize(&args.out, &cfg, &|| bars.advance(1))?;
    bars.finish();
    outln!(
        "Wrote {} images ({} with unusable labels) to {}",
        summary.images,
        summary.invalid_rows,
        summary.root.display()
    );
    if let Some(csv) = &summary.train_csv {
        outln!("  training list: {}", csv.display());
    }
    if let Some(csv) = &summary.val_csv {
        outln!("  validation list: {}", csv.display());
    }
    outln!("  images: {}", summary.image_root.display());
    Ok(())
}

/// `valar synth --layout afew-va|aff-wild2`.
fn run_video(args: &SynthArgs, layout: VideoLayout) -> anyhow::Result<()> {
    let cfg = VideoSynthConfig {
        layout,
        clips: args.clips,
        frames: args.frames,
        seed: args.seed,
        invalid_fraction: args.invalid_fraction,
        missing_fraction: args.missing_fraction,
    };
    let bars = Bars::default();
    bars.start("synthesizing", (cfg.clips * cfg.frames) as u64);
    let summary = synthesize_video(&args.out, &cfg, &|| bars.advance(1))?;
    bars.finish();
    outln!(
        "Wrote {} clips, {} annotated frames ({} marked -5, {} not on disk) to {}",
        summary.clips,
        summary.annotated,
        summary.invalid,
        summary.missing,
        summary.root.display()
    );
    outln!("  annotations: {}", summary.annotations.display());
    outln!("  frames: {}", summary.frames.display());
    Ok(())
}
