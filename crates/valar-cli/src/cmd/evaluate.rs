//! `valar evaluate`.

use crate::ui::outln;
use std::path::PathBuf;
use valar_core::{Targets, baseline_warnings};
use valar_train::{DeviceChoice, EvaluateOptions, Evaluation, SplitChoice};

/// Arguments of `valar evaluate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Beside the model's metrics, evaluate prints the mean-prediction baseline's: \
the training split's mean valence and arousal predicted for every face. The mean comes from the \
train rows of the data the model was trained on (the `data` folder in the config.toml beside the \
model), else from --data's own train rows. A warning follows when the model's RMSE is worse \
than the baseline's or its |CCC| is below 0.1. Predictions are clipped to [-1, 1]."
)]
pub struct EvaluateArgs {
    /// The model (a run's model.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// A prepared dataset folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Rows to score: train | val | test | all [default: test if the manifest has test rows, else val].
    #[arg(long)]
    pub split: Option<SplitChoice>,
    /// Where to write the predictions [default: predictions-SPLIT.csv beside the model].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What the model predicts: valence | arousal | both [default: from the run's config.toml,
    /// else both for a two-output model].
    #[arg(long)]
    pub targets: Option<Targets>,
    /// Where to run: cpu | cuda.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
}

/// Runs `valar evaluate`.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let eval = valar_train::evaluate(&EvaluateOptions {
        model: args.model,
        data: args.data,
        split: args.split,
        out: args.out,
        targets: args.targets,
        device: args.device,
    })?;
    outln!("{} faces, split {}", eval.rows, eval.split);
    print_table(&eval);
    eprintln!("predictions: {}", eval.predictions.display());
    Ok(())
}

/// A metric for the table; PCC of a constant is undefined, so the baseline shows a dash.
fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "\u{2014}".to_string(), |v| format!("{v:.4}"))
}

/// The model's metrics beside the mean-prediction baseline's, then a plain warning for each
/// dimension where the model is worse than the mean or its CCC is near zero.
fn print_table(eval: &Evaluation) {
    match &eval.baseline {
        Some(b) => outln!(
            "mean baseline: predicting the training mean (valence {:.4}, arousal {:.4}) of the {} train rows of {}",
            b.mean.valence,
            b.mean.arousal,
            b.mean.rows,
            b.source.display()
        ),
        None => outln!(
            "mean baseline: not available (no train rows in the run's training data or in the scored folder)"
        ),
    }
    outln!(
        "{:<10} {:>7} {:>7} {:>7} {:>7}   {:>9} {:>9} {:>9} {:>9}",
        "",
        "RMSE",
        "PCC",
        "CCC",
        "SAGR",
        "base RMSE",
        "base PCC",
        "base CCC",
        "base SAGR"
    );
    let mut warnings = Vec::new();
    for (dim, m) in &eval.metrics {
        let base = eval.baseline.as_ref().and_then(|b| b.get(*dim));
        outln!(
            "{:<10} {:>7.4} {:>7.4} {:>7.4} {:>7.4}   {:>9} {:>9} {:>9} {:>9}",
            dim.name(),
            m.rmse,
            m.pcc,
            m.ccc,
            m.sagr,
            cell(base.map(|b| b.rmse)),
            // A constant has no correlation to report.
            cell(None),
            cell(base.map(|b| b.ccc)),
            cell(base.map(|b| b.sagr)),
        );
        let what = format!("{} split", eval.split);
        warnings.extend(baseline_warnings(*dim, &what, m, base.map(|b| b.rmse)));
    }
    for w in warnings {
        outln!("warning: {w}");
    }
}
