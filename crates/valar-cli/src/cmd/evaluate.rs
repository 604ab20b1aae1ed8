//! `valar evaluate`.

use crate::ui::outln;
use std::path::PathBuf;
use valar_core::{EXPRESSIONS, ExpressionScore, PreparedDir, Targets, baseline_warnings};
use valar_train::{
    Device, EvaluateOptions, Evaluation, Smoothing, SplitChoice, TrainError, VideoEvaluation,
};

/// Arguments of `valar evaluate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Beside the model's metrics, evaluate prints the mean-prediction baseline's: \
the training split's mean valence and arousal predicted for every face. The mean comes from the \
train rows of the data the model was trained on (the `data` folder in the config.toml beside the \
model), else from --data's own train rows. A warning follows when the model's RMSE is worse \
than the baseline's or its |CCC| is below 0.1. Predictions are clipped to [-1, 1]; a model that \
gives NaN is an error. The model is never modified: the metrics and the baseline's are recorded in \
PREDICTIONS.model.json beside the predictions (with the model's SHA-256), and a test-split \
evaluation of a run's model.onnx also fills the run's MODEL_CARD.md. Evaluating a run's model \
holds the run's lock (as train does): it fails at once while the run trains or is evaluated, and \
--out may not be one of the run's files. The metrics are printed even when an output cannot be \
written after scoring (then evaluate exits 1 naming that file)."
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
    /// Override what the model predicts: valence | arousal | both [default: as model.onnx
    /// says; for an older model, its run's config.toml, else both for two outputs].
    #[arg(long)]
    pub targets: Option<Targets>,
    /// Where to run: cpu | cuda.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Video datasets: smooth predictions over a centred window of frames within each
    /// video before the per-video scores: auto (the window with the best score on the
    /// validation split, from a sweep) | none | an odd number of frames.
    #[arg(long, default_value = "auto")]
    pub smooth: Smoothing,
}

/// Runs `valar evaluate`.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        let prepared = PreparedDir::new(&args.data);
        crate::cmd::claim_output_file(
            out,
            &[
                &args.model,
                &args.data,
                &prepared.manifest(),
                &prepared.faces(),
                &prepared.prep_json(),
            ],
        )?;
    }
    let auto = args.smooth == Smoothing::Auto;
    let result = valar_train::evaluate(&EvaluateOptions {
        model: args.model,
        data: args.data,
        split: args.split,
        out: args.out,
        targets: args.targets,
        device: args.device,
        smoothing: args.smooth,
    });
    match result {
        Ok(eval) => {
            show(&eval, auto);
            eprintln!("predictions: {}", eval.predictions.display());
            Ok(())
        }
        // Scored but not all written (a full disk): the figures are still worth seeing.
        Err(TrainError::Unwritten {
            path,
            reason,
            evaluation,
        }) => {
            show(&evaluation, auto);
            anyhow::bail!(
                "{}: not written ({reason}); the metrics above were computed, but make room or choose another --out and run again to keep them",
                path.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The notes, the metrics table and, for videos, the per-video scores.
fn show(eval: &Evaluation, auto: bool) {
    for note in &eval.notes {
        eprintln!("note: {note}");
    }
    outln!("{} faces, split {}", eval.rows, eval.split);
    print_table(eval);
    if let Some(e) = &eval.expression {
        print_expression(e);
    }
    if let Some(videos) = &eval.videos {
        print_videos(videos, eval.split, auto);
    }
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

/// The expression head's accuracy, balanced accuracy and confusion matrix (rows: the labelled
/// class, columns: the predicted one).
fn print_expression(e: &ExpressionScore) {
    outln!(
        "expression: accuracy {:.4}, balanced accuracy {:.4} over {} faces with a class",
        e.accuracy,
        e.balanced_accuracy,
        e.faces
    );
    let short = |n: &str| n.chars().take(8).collect::<String>();
    let header: String = EXPRESSIONS
        .iter()
        .map(|n| format!(" {:>8}", short(n)))
        .collect();
    outln!("{:<10}{header}   (rows: labelled, columns: predicted)", "");
    for (name, row) in EXPRESSIONS.iter().zip(&e.confusion) {
        let cells: String = row.iter().map(|c| format!(" {c:>8}")).collect();
        outln!("{:<10}{cells}", short(name));
    }
}

/// The video scores: the smoothing sweep, pooled CCC and P_VA raw and smoothed, and the
/// spread of per-video CCC.
pub(crate) fn print_videos(v: &VideoEvaluation, split: SplitChoice, auto: bool) {
    let names: Vec<&str> = v.dims.iter().map(|d| d.name()).collect();
    let score = if v.dims.len() == 2 { "P_VA" } else { "CCC" };
    if !v.sweep.is_empty() {
        outln!("smoothing sweep on the val split (centred mean over a window of frames):");
    } else if auto {
        outln!("no val split of videos to choose a smoothing window on (give one with --smooth N)");
    }
    if !v.sweep.is_empty() {
        let mut head = format!("{:>7}", "window");
        for n in &names {
            head.push_str(&format!(" {:>12}", format!("{n} CCC")));
        }
        outln!("{head} {score:>7}");
        for r in &v.sweep {
            let mut line = format!("{:>7}", r.window);
            for c in &r.ccc {
                line.push_str(&format!(" {c:>12.4}"));
            }
            let mark = if r.window == v.window {
                "  <- chosen"
            } else {
                ""
            };
            outln!("{line} {:>7.4}{mark}", r.score);
        }
    }
    let how = match (v.window, &v.chosen_on) {
        (1, None) => "no smoothing".to_string(),
        (w, Some(on)) => format!("window {w}, chosen on the val split of {}", on.display()),
        (w, None) => format!("window {w}"),
    };
    outln!("{} videos of the {split} split, {how}:", v.videos.len());
    for (i, n) in names.iter().enumerate() {
        let mut per: Vec<f64> = v.videos.iter().map(|x| x.smoothed[i]).collect();
        per.sort_by(f64::total_cmp);
        let median = per.get(per.len() / 2).copied().unwrap_or(f64::NAN);
        outln!(
            "  {n:<8} pooled CCC {:.4} (raw {:.4}); per video median {:.4}, min {:.4}, max {:.4}",
            v.pooled[i],
            v.pooled_raw[i],
            median,
            per.first().copied().unwrap_or(f64::NAN),
            per.last().copied().unwrap_or(f64::NAN),
        );
    }
    if let (Some(p), Some(raw)) = (v.p_va(), v.p_va_raw()) {
        outln!("  P_VA {p:.4} (raw {raw:.4})");
    }
    eprintln!("per video: {}", v.videos_csv.display());
    eprintln!("per frame: {}", v.frames_csv.display());
    if !v.sweep.is_empty() {
        eprintln!("sweep: {}", v.sweep_csv.display());
    }
}
