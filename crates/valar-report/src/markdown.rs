use crate::data_charts::Prepared;
use crate::error_charts::fixed;
use crate::run_files::{Epoch, Predictions, RunConfig};
use crate::training_charts::best_epoch;
use std::fmt::Write;
use std::path::Path;
use valar_core::{DimMetrics, Dimension};

/// A figure written to the report folder, in the order it appears.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// File name inside the report folder.
    pub file: &'static str,
    /// What it shows, for the alt text and caption.
    pub caption: String,
}

/// Everything `report.md` describes.
pub(crate) struct Contents<'a> {
    pub prepared: Option<&'a Prepared>,
    pub run: Option<&'a Path>,
    pub epochs: &'a [Epoch],
    pub predictions: Option<&'a Predictions>,
    pub config: Option<&'a RunConfig>,
    pub data_figures: &'a [Figure],
    pub training_figures: &'a [Figure],
    pub error_figures: &'a [Figure],
    pub notes: &'a [String],
}

fn figures(md: &mut String, figures: &[Figure]) {
    for f in figures {
        // Angle brackets keep the link intact whatever the file name holds.
        let _ = writeln!(md, "![{0}](<{1}>)\n\n*{0}.*\n", f.caption, f.file);
    }
}

fn metrics_row(md: &mut String, dim: Dimension, what: &str, m: &DimMetrics) {
    let _ = writeln!(
        md,
        "| {dim} | {what} | {} | {} | {} | {} |",
        fixed(m.rmse, 4),
        fixed(m.pcc, 4),
        fixed(m.ccc, 4),
        fixed(m.sagr, 4)
    );
}

/// Renders `report.md`.
pub(crate) fn render(c: &Contents<'_>) -> String {
    let mut md = String::from("# valar report\n\n");
    let _ = writeln!(md, "Written by valar {}.\n", valar_core::VERSION);
    if let Some(p) = c.prepared {
        let _ = writeln!(md, "- Prepared data: `{}`", p.dir.display());
    }
    if let Some(run) = c.run {
        let _ = writeln!(md, "- Run: `{}`", run.display());
    }
    md.push('\n');

    if let Some(p) = c.prepared {
        let info = &p.info;
        md.push_str("## Data\n\n| | |\n|---|---:|\n");
        let _ = writeln!(md, "| Source rows read | {} |", info.rows_read);
        let _ = writeln!(md, "| Faces written | {} |", info.faces);
        for (split, n) in &info.splits {
            let _ = writeln!(md, "| Faces in `{split}` | {n} |");
        }
        let _ = writeln!(
            md,
            "| Stratified by | {} ({} intervals) |",
            info.stratify,
            info.intervals.len()
        );
        let quotas: Vec<usize> = info.intervals.iter().filter_map(|i| i.quota).collect();
        if let (Some(lo), Some(hi)) = (quotas.iter().min(), quotas.iter().max()) {
            let q = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}–{hi}")
            };
            let _ = writeln!(md, "| Quota per interval | {q} |");
        }
        let short = if info.short_intervals.is_empty() {
            "none".to_string()
        } else {
            info.short_intervals
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(md, "| Short intervals | {short} |");
        let rejected: usize = info.rejects_by_reason.values().sum();
        let _ = writeln!(md, "| Rows rejected | {rejected} |");
        for (reason, n) in &info.rejects_by_reason {
            let _ = writeln!(md, "| &nbsp;&nbsp;{reason} | {n} |");
        }
        let _ = writeln!(md, "| Seed | {} |\n", info.seed);
        figures(&mut md, c.data_figures);
    }

    if let (Some(first), Some(last)) = (c.epochs.first(), c.epochs.last()) {
        md.push_str("## Training\n\n");
        let best = best_epoch(c.epochs);
        let _ = writeln!(
            md,
            "{} epochs ({}–{}). Final training loss {}, validation loss {}.",
            c.epochs.len(),
            first.epoch,
            last.epoch,
            fixed(last.train_loss, 4),
            last.val_loss.map_or("n/a".to_string(), |v| fixed(v, 4)),
        );
        if let Some(b) = best {
            let _ = writeln!(
                md,
                "Best epoch ({}): {}, validation loss {}.",
                b.rule,
                b.epoch.epoch,
                b.epoch.val_loss.map_or("n/a".to_string(), |v| fixed(v, 4))
            );
        }
        md.push('\n');
        let dims: Vec<Dimension> = Dimension::ALL
            .into_iter()
            .filter(|&d| c.epochs.iter().any(|e| e.dim(d).is_some()))
            .collect();
        if !dims.is_empty() {
            md.push_str("Validation metrics:\n\n| Dimension | Epoch | RMSE | PCC | CCC | SAGR |\n|---|---|---:|---:|---:|---:|\n");
            for &dim in &dims {
                if let Some(m) = last.dim(dim) {
                    metrics_row(&mut md, dim, &format!("final ({})", last.epoch), m);
                }
                if let Some((b, m)) = best.and_then(|b| b.epoch.dim(dim).map(|m| (b.epoch, m))) {
                    metrics_row(&mut md, dim, &format!("best ({})", b.epoch), m);
                }
            }
            md.push('\n');
        }
        figures(&mut md, c.training_figures);
    }

    if let Some(p) = c.predictions {
        md.push_str("## Errors\n\n");
        let _ = writeln!(
            md,
            "From `predictions.csv` ({} faces), recomputed here.\n\n| Dimension | Faces | RMSE | PCC | CCC | SAGR |\n|---|---:|---:|---:|---:|---:|",
            p.rows
        );
        for (dim, truth, pred) in &p.dims {
            let m = DimMetrics::compute(truth, pred);
            metrics_row(&mut md, *dim, &truth.len().to_string(), &m);
        }
        md.push('\n');
        figures(&mut md, c.error_figures);
    }

    if let Some(config) = c.config {
        md.push_str("## Configuration\n\n`config.toml` of the run:\n\n");
        // A fence longer than any backtick run inside keeps the block closed.
        let longest = config
            .text
            .split(|ch| ch != '`')
            .map(str::len)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let _ = writeln!(md, "{fence}toml\n{}\n{fence}\n", config.text.trim_end());
    }

    if !c.notes.is_empty() {
        md.push_str("## Notes\n\n");
        for n in c.notes {
            let _ = writeln!(md, "- {n}");
        }
        md.push('\n');
    }
    md
}
