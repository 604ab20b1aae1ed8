//! `valar report`.

use crate::ui::outln;
use anyhow::Context;
use std::path::PathBuf;
use valar_report::{ReportInputs, write_report};

/// Arguments of `valar report`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["data", "run"])))]
pub struct ReportArgs {
    /// A prepared folder (from `valar prepare`): label histograms, density, intervals, rejects.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A run folder (from `valar train`): loss, CCC and error figures. Without --data,
    /// the prepared folder named in the run's config.toml is used too.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// A test-set evaluation to show beside the validation results: the predictions CSV
    /// `valar evaluate` wrote [default: RUN/predictions-test.csv when it exists].
    #[arg(long, value_name = "PREDICTIONS.csv")]
    pub evaluation: Option<PathBuf>,
    /// Output folder [default: RUN/report, else DATA/report].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a non-empty --out folder (an earlier report of valar's, holding nothing
    /// else, is redrawn without it).
    #[arg(long)]
    pub force: bool,
}

impl ReportArgs {
    /// The output folder: --out, else `report` inside the run folder, else inside the data folder.
    fn out(&self) -> Option<PathBuf> {
        self.out.clone().or_else(|| {
            self.run
                .as_ref()
                .or(self.data.as_ref())
                .map(|dir| dir.join("report"))
        })
    }
}

/// Runs `valar report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args
        .out()
        .context("give --data, --run or both (and optionally --out)")?;
    let inputs = ReportInputs {
        prepared: args.data.clone(),
        run: args.run.clone(),
        evaluation: args.evaluation.clone(),
    };
    let summary = write_report(&inputs, &out, args.force)
        .with_context(|| format!("writing the report to {}", out.display()))?;
    outln!(
        "Wrote {} figures and {} → {}",
        summary.pngs.len(),
        summary.markdown.file_name().map_or_else(
            || summary.markdown.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        ),
        out.display()
    );
    for png in &summary.pngs {
        outln!("  {}", png.display());
    }
    if args.data.is_none()
        && let Some(prepared) = &summary.prepared
    {
        outln!(
            "  data figures from {} (the run's config.toml)",
            prepared.display()
        );
    }
    for note in &summary.notes {
        eprintln!("warning: {note}");
    }
    Ok(())
}
