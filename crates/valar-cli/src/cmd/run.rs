//! `valar run`.

use crate::cmd::train::TerminalProgress;
use crate::ui::Bars;
use crate::ui::outln;
use std::path::PathBuf;
use valar_core::{RunDir, baseline_warnings};
use valar_pipeline::{Hooks, PipelineConfig, StageOutcome, run as run_pipeline};

/// Arguments of `valar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A valar.toml with [data], [prepare] and [train] sections. Without it (or
    /// without [data]) the pipeline runs on synthetic faces.
    #[arg(long, value_name = "valar.toml")]
    pub config: Option<PathBuf>,
    /// Folder for every stage's output.
    #[arg(long, default_value = "runs/pipeline")]
    pub out: PathBuf,
    /// Rerun every stage, even those whose inputs have not changed, replacing stage
    /// folders under --out that `valar run` did not make.
    #[arg(long)]
    pub force: bool,
}

/// Runs `valar run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(path) => PipelineConfig::read(path)?,
        None => PipelineConfig::default(),
    };
    if cfg.is_synthetic() {
        eprintln!("no [data] given: running the pipeline on valar's synthetic faces");
    }
    // Held to the end: two pipelines in one folder would rerun and replace each other's stages.
    let _lock = valar_core::OutputLock::acquire(&args.out)?;
    let bars = Bars::default();
    let mut train_progress = TerminalProgress::default();
    let mut on_stage = |name: &str, outcome: Option<StageOutcome>| match outcome {
        None => eprintln!("==> {name}"),
        Some(StageOutcome::Reused) => eprintln!("==> {name}: up to date, reused"),
        Some(StageOutcome::Ran(s)) => eprintln!("    {name} done in {s:.1} s"),
    };
    let mut hooks = Hooks {
        progress: &bars,
        train: &mut train_progress,
        stage: &mut on_stage,
    };
    let summary = run_pipeline(&cfg, &args.out, args.force, &mut hooks)?;
    let e = &summary.evaluation;
    outln!("Evaluation on {} faces ({} split):", e.rows, e.split.name());
    outln!(
        "  {:<8} {:>7} {:>7} {:>7} {:>7}   {:>9}",
        "",
        "RMSE",
        "PCC",
        "CCC",
        "SAGR",
        "base RMSE"
    );
    let mut warnings = Vec::new();
    for (dim, m) in &e.metrics {
        let base = e
            .baseline
            .as_ref()
            .and_then(|b| b.get(*dim))
            .map(|b| b.rmse);
        outln!(
            "  {:<8} {:>7.3} {:>7.3} {:>7.3} {:>7.3}   {:>9}",
            dim.name(),
            m.rmse,
            m.pcc,
            m.ccc,
            m.sagr,
            base.map_or_else(|| "\u{2014}".to_string(), |b| format!("{b:.3}"))
        );
        warnings.extend(baseline_warnings(
            *dim,
            &format!("{} split", e.split.name()),
            m,
            base,
        ));
    }
    outln!("  (base: predicting the training split's mean for every face)");
    for w in warnings {
        outln!("warning: {w}");
    }
    if let Some(videos) = &e.videos {
        crate::cmd::evaluate::print_videos(videos, e.split, true);
    }
    if cfg.is_synthetic() {
        // The demo's faces are easy on purpose (they show the pipeline works); say what its
        // figures do not mean, so nobody takes them for what a model reaches on real faces.
        outln!(
            "note: these are easy synthetic faces; on real AffectNet faces a small CNN reaches \
             test CCC of about 0.4 (see README, \"Judging a recipe\"); judge recipes with \
             `just bench-quality` or `valar synth --difficulty hard`"
        );
    }
    outln!("Prepared data: {}", summary.prepared.display());
    outln!("Model: {}", RunDir::new(&summary.run).model().display());
    outln!("Report: {}", summary.report.display());
    Ok(())
}
