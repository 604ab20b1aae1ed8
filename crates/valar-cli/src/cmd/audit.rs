//! `valar audit`.

use crate::cmd::prepare::flag;
use crate::ui::Bars;
use crate::ui::outln;
use anyhow::Context;
use std::path::PathBuf;
use valar_audit::{AuditConfig, AuditError, Target, Thresholds, audit};
use valar_face::FaceSpec;
use valar_prep::SourceArgs;

/// Arguments of `valar audit`.
///
/// Every face is decoded once (as `valar prepare` decodes it) and measured at 64×64.
/// Findings go to `<out>/audit.csv` (source, row, path, kind, group, score, split,
/// expression, detail), counts to `audit.json`, and contact sheets of the faces, score
/// histograms and `report.md` to `<out>/pages`. `valar prepare --exclude <out>/audit.csv`
/// then drops the flagged rows, keeping the lowest row of each duplicate group.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["csv", "set", "afew_va", "aff_wild2", "prepared"])))]
pub struct AuditArgs {
    /// A source, read exactly as `valar prepare` reads it.
    #[command(flatten)]
    pub source: SourceArgs,
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
    #[arg(long, default_value_t = AuditConfig::TOP_RESIDUALS)]
    pub top_residuals: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output folder if it exists.
    #[arg(long)]
    pub force: bool,
    /// Context around a source's face box, as a share of its size (as `prepare --margin`).
    #[arg(long, default_value_t = FaceSpec::DEFAULT.margin)]
    pub margin: f32,
    /// Refuse images with more pixels than this (as `prepare --max-pixels`).
    #[arg(long, default_value_t = FaceSpec::DEFAULT.max_pixels)]
    pub max_pixels: u64,
    /// The thresholds of the checks.
    #[command(flatten)]
    pub thresholds: Thresholds,
    /// Faces drawn per contact-sheet section.
    #[arg(long, default_value_t = AuditConfig::SHEET_FACES)]
    pub sheet_faces: usize,
    /// Duplicate groups drawn on the duplicates sheet.
    #[arg(long, default_value_t = AuditConfig::SHEET_GROUPS)]
    pub sheet_groups: usize,
}

impl AuditArgs {
    /// The library configuration these arguments ask for, checked.
    pub fn config(&self) -> anyhow::Result<AuditConfig> {
        let words = |e: AuditError| match e.setting_message(&flag) {
            Some(message) => anyhow::anyhow!(message),
            None => e.into(),
        };
        let target = match (self.source.input(), &self.prepared) {
            (Ok(None), Some(dir)) => Target::Prepared(dir.clone()),
            (Ok(Some(input)), None) => Target::Source(input),
            (Err(e), _) => return Err(words(e.into())),
            _ => anyhow::bail!(
                "give --csv with --images, --set, --afew-va, --aff-wild2 with --frames, or --prepared"
            ),
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
        cfg.thresholds = self.thresholds.clone();
        cfg.validate().map_err(words)?;
        Ok(cfg)
    }
}

/// Runs `valar audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let mut inputs: Vec<&std::path::Path> = args
        .source
        .paths()
        .into_iter()
        .chain([args.prepared.as_deref(), args.run.as_deref()])
        .flatten()
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
