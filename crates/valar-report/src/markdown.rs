use crate::data_charts::Prepared;
use crate::error_charts::fixed;
use crate::run_files::{Epoch, Predictions};
use crate::training_charts::best_epoch;
use std::fmt::Write;
use std::path::Path;
use valar_core::RunConfigSummary;
use valar_core::{
    DimMetrics, Dimension, NEAR_ZERO_CCC, TrainingMean, baseline_warnings, mean_baseline,
};

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
    /// A test-set evaluation: its predictions file and contents.
    pub evaluation: Option<(&'a Path, &'a Predictions)>,
    /// The training mean the baseline predicts, and the manifest it came from.
    pub mean: Option<(&'a Path, &'a TrainingMean)>,
    pub config: Option<&'a RunConfigSummary>,
    pub data_figures: &'a [Figure],
    pub training_figures: &'a [Figure],
    pub error_figures: &'a [Figure],
    pub test_figures: &'a [Figure],
    pub notes: &'a [String],
    /// Whether the run finished, in a sentence; `None` without a run.
    pub run_status: Option<&'a str>,
    /// What a reader must know before trusting the numbers (an unfinished run, test
    /// predictions of another model), shown at the top.
    pub warnings: &'a [String],
}

pub(crate) fn figures(md: &mut String, figures: &[Figure]) {
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

/// The mean baseline's row: PCC of a constant is undefined, so it shows a dash.
fn baseline_row(md: &mut String, dim: Dimension, what: &str, m: &DimMetrics) {
    let _ = writeln!(
        md,
        "| {dim} | {what} | {} | \u{2014} | {} | {} |",
        fixed(m.rmse, 4),
        fixed(m.ccc, 4),
        fixed(m.sagr, 4)
    );
}

/// One set of scores the summary judges: where they are from, and per dimension the model's
/// metrics and the mean baseline's RMSE on the same rows.
struct Scored {
    what: String,
    dims: Vec<(Dimension, DimMetrics, Option<f64>)>,
}

/// Scores of a predictions table, with the baseline from the training mean.
fn scored(what: &str, p: &Predictions, mean: Option<&TrainingMean>) -> Scored {
    Scored {
        what: what.to_string(),
        dims: p
            .dims
            .iter()
            .map(|(dim, truth, pred)| {
                let base = mean.map(|m| mean_baseline(truth, m.get(*dim)).rmse);
                (*dim, DimMetrics::compute(truth, pred), base)
            })
            .collect(),
    }
}

/// The summary: for the test evaluation and the best validation epoch, a plain sentence for
/// every dimension whose RMSE is worse than the mean baseline's or whose CCC is near zero,
/// or one line saying the model beats the baseline.
fn summary(md: &mut String, c: &Contents<'_>) {
    let mean = c.mean.map(|(_, m)| m);
    let mut sets = Vec::new();
    if let Some((_, p)) = c.evaluation {
        sets.push(scored("test set", p, mean));
    }
    if let Some(best) = best_epoch(c.epochs) {
        let what = format!("validation split (best epoch {})", best.epoch.epoch);
        // The baseline RMSE recorded by training, else recomputed from the validation
        // predictions (the best epoch's rows) for tables written before it was recorded.
        let from_predictions = c.predictions.map(|p| scored(&what, p, mean));
        let dims: Vec<_> = Dimension::ALL
            .into_iter()
            .filter_map(|dim| {
                let m = best.epoch.dim(dim)?;
                let base = best.epoch.baseline_rmse(dim).or_else(|| {
                    from_predictions
                        .as_ref()?
                        .dims
                        .iter()
                        .find(|(d, _, _)| *d == dim)?
                        .2
                });
                Some((dim, *m, base))
            })
            .collect();
        if !dims.is_empty() {
            sets.push(Scored { what, dims });
        }
    } else if let Some(p) = c.predictions {
        sets.push(scored("validation split", p, mean));
    }
    if sets.is_empty() {
        return;
    }
    md.push_str("## Summary\n\n");
    let _ = writeln!(
        md,
        "Judged against the mean baseline, which predicts the training split's mean for every \
         face: a model should have a lower RMSE than it, and a CCC well away from 0 (here: \
         |CCC| ≥ {NEAR_ZERO_CCC}).\n"
    );
    for set in &sets {
        let warnings: Vec<String> = set
            .dims
            .iter()
            .flat_map(|(dim, m, base)| baseline_warnings(*dim, &set.what, m, *base))
            .collect();
        if warnings.is_empty() {
            let parts: Vec<String> = set
                .dims
                .iter()
                .map(|(dim, m, base)| match base {
                    Some(b) => format!(
                        "{dim} RMSE {} (mean baseline {}), CCC {}",
                        fixed(m.rmse, 3),
                        fixed(*b, 3),
                        fixed(m.ccc, 3)
                    ),
                    None => format!("{dim} CCC {}", fixed(m.ccc, 3)),
                })
                .collect();
            let beats = if set.dims.iter().all(|(_, _, b)| b.is_some()) {
                "the model beats the mean baseline"
            } else {
                "no mean baseline to compare with; the CCC is not near zero"
            };
            let _ = writeln!(md, "- On the {}, {beats}: {}.", set.what, parts.join("; "));
        } else {
            for w in warnings {
                let _ = writeln!(md, "- **{w}**");
            }
        }
    }
    md.push('\n');
}

/// The metrics of a predictions table, each dimension's model row followed by the mean
/// baseline's on the same faces.
fn errors_table(md: &mut String, p: &Predictions, mean: Option<&TrainingMean>) {
    md.push_str(
        "| Dimension | Predictor | Faces | RMSE | PCC | CCC | SAGR |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for (dim, truth, pred) in &p.dims {
        let n = truth.len();
        let m = DimMetrics::compute(truth, pred);
        metrics_row(md, *dim, &format!("model | {n}"), &m);
        if let Some(mean) = mean {
            let b = mean_baseline(truth, mean.get(*dim));
            baseline_row(md, *dim, &format!("mean baseline | {n}"), &b);
        }
    }
    md.push('\n');
}

/// Renders `report.md`.
pub(crate) fn render(c: &Contents<'_>) -> String {
    let mut md = String::from("# valar report\n\n");
    header(&mut md, c);
    summary(&mut md, c);
    if let Some(p) = c.prepared {
        data_section(&mut md, p, c.data_figures);
    }
    training_section(&mut md, c);
    let mean = c.mean.map(|(_, m)| m);
    if let Some(p) = c.predictions {
        md.push_str("## Errors\n\n");
        let _ = writeln!(
            md,
            "Validation split, from the run's `predictions.csv` ({} faces), recomputed here.\n",
            p.rows
        );
        errors_table(&mut md, p, mean);
        figures(&mut md, c.error_figures);
    }
    if let Some((path, p)) = c.evaluation {
        md.push_str("## Test evaluation\n\n");
        let _ = writeln!(
            md,
            "From `{}` ({} faces), recomputed here.\n",
            path.display(),
            p.rows
        );
        errors_table(&mut md, p, mean);
        figures(&mut md, c.test_figures);
    }
    if let Some(config) = c.config {
        config_section(&mut md, config);
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

/// The version, the inputs and the mean baseline reported on, then the warnings.
fn header(md: &mut String, c: &Contents<'_>) {
    let _ = writeln!(md, "Written by valar {}.\n", valar_core::VERSION);
    if let Some(p) = c.prepared {
        let _ = writeln!(md, "- Prepared data: `{}`", p.dir.display());
    }
    if let Some(run) = c.run {
        let _ = writeln!(md, "- Run: `{}`", run.display());
    }
    if let Some((path, _)) = c.evaluation {
        let _ = writeln!(md, "- Test evaluation: `{}`", path.display());
    }
    if let Some((path, m)) = c.mean {
        let _ = writeln!(
            md,
            "- Mean baseline: valence {}, arousal {}, the mean of the {} `train` rows of `{}`",
            fixed(m.valence, 4),
            fixed(m.arousal, 4),
            m.rows,
            path.display()
        );
    }
    md.push('\n');
    for w in c.warnings {
        let _ = writeln!(md, "**Warning:** {w}\n");
    }
}

/// The prepared folder's counts, stratification and rejects, then its figures.
fn data_section(md: &mut String, p: &Prepared, data_figures: &[Figure]) {
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
    figures(md, data_figures);
}

/// The epochs run, the final and best losses, the validation metrics table and the
/// training figures; nothing without epochs.
fn training_section(md: &mut String, c: &Contents<'_>) {
    let (Some(first), Some(last)) = (c.epochs.first(), c.epochs.last()) else {
        return;
    };
    md.push_str("## Training\n\n");
    if let Some(status) = c.run_status {
        let _ = writeln!(md, "{status}\n");
    }
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
    if let Some(b) = &best {
        let _ = writeln!(
            md,
            "Best epoch ({}): {}, validation loss {}.",
            b.rule,
            b.epoch.epoch,
            b.epoch.val_loss.map_or("n/a".to_string(), |v| fixed(v, 4))
        );
    }
    md.push('\n');
    validation_table(md, c.epochs, last, best.map(|b| b.epoch));
    figures(md, c.training_figures);
}

/// The final and best epochs' validation metrics and the mean baseline's, per dimension
/// that any epoch scored; nothing when none did.
fn validation_table(md: &mut String, epochs: &[Epoch], last: &Epoch, best: Option<&Epoch>) {
    let dims: Vec<Dimension> = Dimension::ALL
        .into_iter()
        .filter(|&d| epochs.iter().any(|e| e.dim(d).is_some()))
        .collect();
    if dims.is_empty() {
        return;
    }
    md.push_str("Validation metrics:\n\n| Dimension | Epoch | RMSE | PCC | CCC | SAGR |\n|---|---|---:|---:|---:|---:|\n");
    for &dim in &dims {
        if let Some(m) = last.dim(dim) {
            metrics_row(md, dim, &format!("final ({})", last.epoch), m);
        }
        if let Some((b, m)) = best.and_then(|b| b.dim(dim).map(|m| (b, m))) {
            metrics_row(md, dim, &format!("best ({})", b.epoch), m);
        }
        // The same on every epoch: the validation rows and the training mean are fixed.
        if let Some(rmse) = last.baseline_rmse(dim) {
            let _ = writeln!(
                md,
                "| {dim} | mean baseline | {} | \u{2014} | {} | \u{2014} |",
                fixed(rmse, 4),
                fixed(0.0, 4)
            );
        }
    }
    md.push('\n');
}

/// The run's `config.toml`, verbatim in a code block.
fn config_section(md: &mut String, config: &RunConfigSummary) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn epoch(n: u32, m: DimMetrics, baseline: f64) -> Epoch {
        Epoch {
            epoch: n,
            train_loss: 1.0,
            val_loss: Some(1.0),
            valence: Some(m),
            arousal: None,
            baseline_rmse: [Some(baseline), None],
        }
    }

    fn contents<'a>(
        epochs: &'a [Epoch],
        evaluation: Option<(&'a Path, &'a Predictions)>,
        mean: Option<(&'a Path, &'a TrainingMean)>,
    ) -> Contents<'a> {
        Contents {
            prepared: None,
            run: Some(Path::new("run")),
            epochs,
            predictions: None,
            evaluation,
            mean,
            config: None,
            data_figures: &[],
            training_figures: &[],
            error_figures: &[],
            test_figures: &[],
            notes: &[],
            run_status: None,
            warnings: &[],
        }
    }

    const WEAK: DimMetrics = DimMetrics {
        rmse: 0.485,
        pcc: 0.05,
        ccc: 0.039,
        sagr: 0.55,
    };
    const GOOD: DimMetrics = DimMetrics {
        rmse: 0.3,
        pcc: 0.8,
        ccc: 0.72,
        sagr: 0.85,
    };

    #[test]
    fn a_model_worse_than_the_mean_is_called_so() {
        let epochs = [epoch(1, WEAK, 0.469)];
        let md = render(&contents(&epochs, None, None));
        let summary = &md[md.find("## Summary").unwrap()..md.find("## Training").unwrap()];
        assert!(
            summary.contains(
                "valence on the validation split (best epoch 1): RMSE 0.485 is worse than \
                 predicting the training mean (0.469): the model is worse than the mean."
            ),
            "{summary}"
        );
        assert!(summary.contains("CCC 0.039 is near zero"), "{summary}");
        assert!(!summary.contains("beats"), "{summary}");
        // The training table holds the baseline beside the model.
        assert!(
            md.contains("| valence | mean baseline | 0.4690 | \u{2014} | 0.0000 | \u{2014} |"),
            "{md}"
        );
    }

    #[test]
    fn a_good_model_is_not_called_worse() {
        let epochs = [epoch(1, WEAK, 0.469), epoch(2, GOOD, 0.469)];
        let md = render(&contents(&epochs, None, None));
        assert!(!md.contains("worse than the mean"), "{md}");
        assert!(!md.contains("near zero"), "{md}");
        assert!(
            md.contains(
                "- On the validation split (best epoch 2), the model beats the mean baseline: \
                 valence RMSE 0.300 (mean baseline 0.469), CCC 0.720."
            ),
            "{md}"
        );
    }

    #[test]
    fn the_test_evaluation_is_judged_and_tabled_with_its_baseline() {
        // Truth 0, 0.5, 1 against a training mean of 0.5: baseline RMSE √(0.5/3). The model
        // predicts −1 for everything: errors 1, 1.5, 2, RMSE √(7.25/3) ≈ 1.555.
        let truth = vec![0.0f32, 0.5, 1.0];
        let preds = Predictions {
            dims: vec![(Dimension::Arousal, truth, vec![-1.0; 3])],
            rows: 3,
        };
        let mean = TrainingMean {
            valence: 0.0,
            arousal: 0.5,
            rows: 10,
        };
        let epochs = [epoch(1, GOOD, 0.469)];
        let md = render(&contents(
            &epochs,
            Some((Path::new("eval/predictions.csv"), &preds)),
            Some((Path::new("prep/manifest.csv"), &mean)),
        ));
        let base = fixed((0.5f64 / 3.0).sqrt(), 4);
        assert!(md.contains("## Test evaluation"), "{md}");
        assert!(
            md.contains(&format!(
                "| arousal | mean baseline | 3 | {base} | \u{2014} | 0.0000 | 0.6667 |"
            )),
            "{md}"
        );
        assert!(
            md.contains("**arousal on the test set: RMSE 1.555 is worse than predicting the training mean (0.408)"),
            "{md}"
        );
        // The validation split of the same run did beat it.
        assert!(
            md.contains("On the validation split (best epoch 1), the model beats"),
            "{md}"
        );
        assert!(
            md.contains("the mean of the 10 `train` rows of `prep/manifest.csv`"),
            "{md}"
        );
    }
}
