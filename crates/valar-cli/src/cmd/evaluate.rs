//! `valar evaluate`.

use std::path::PathBuf;
use valar_core::Targets;
use valar_train::{DeviceChoice, EvaluateOptions, SplitChoice};

/// Arguments of `valar evaluate`.
#[derive(Debug, clap::Args)]
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
    println!("{} faces, split {}", eval.rows, eval.split);
    println!(
        "{:<10} {:>7} {:>7} {:>7} {:>7}",
        "", "RMSE", "PCC", "CCC", "SAGR"
    );
    for (dim, m) in &eval.metrics {
        println!(
            "{:<10} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
            dim.name(),
            m.rmse,
            m.pcc,
            m.ccc,
            m.sagr
        );
    }
    eprintln!("predictions: {}", eval.predictions.display());
    Ok(())
}
