//! `valar train`.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::time::Duration;
use valar_core::{Dimension, Targets};
use valar_train::{
    DeviceChoice, EpochRecord, LossChoice, ModelChoice, OptimizerChoice, Recipe, RunStart,
    ScheduleKind, StopReason, TrainObserver, TrainOverrides,
};

/// Arguments of `valar train`.
///
/// Values come from, in increasing priority: valar's defaults (or `--recipe`), the `--config`
/// file, then these flags. The resolved values are saved as `config.toml` in the run folder.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A prepared dataset folder (from `valar prepare`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The run folder to create (e.g. runs/NAME).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint, with its saved configuration.
    #[arg(long, value_name = "RUN", conflicts_with_all = [
        "data", "out", "force", "config", "recipe", "model", "targets", "loss", "optimizer",
        "epochs", "batch_size", "lr", "schedule", "min_lr", "step_size", "gamma",
        "weight_decay", "momentum", "patience", "augment", "seed",
    ])]
    pub resume: Option<PathBuf>,
    /// Delete the run folder first if it exists.
    #[arg(long)]
    pub force: bool,
    /// A TOML file with any of config.toml's keys (flags override it).
    #[arg(long, value_name = "valar.toml")]
    pub config: Option<PathBuf>,
    /// A preset: `seed` is the original recipe (facecnn, MSE, AdamW lr 1e-4 constant, weight
    /// decay 0.01, batch 64, 20 epochs, no augmentation, no early stopping).
    #[arg(long)]
    pub recipe: Option<Recipe>,
    /// The network: facecnn | compact [default: compact].
    #[arg(long)]
    pub model: Option<ModelChoice>,
    /// The dimensions to predict: valence | arousal | both [default: both].
    #[arg(long)]
    pub targets: Option<Targets>,
    /// The loss: mse | ccc | mse+ccc [default: mse+ccc].
    #[arg(long)]
    pub loss: Option<LossChoice>,
    /// The optimizer: adamw | sgd [default: adamw].
    #[arg(long)]
    pub optimizer: Option<OptimizerChoice>,
    /// Passes over the training faces (an upper bound with early stopping) [default: 30].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Faces per step [default: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate [default: 1e-3].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule: cosine | step | constant [default: cosine].
    #[arg(long)]
    pub schedule: Option<ScheduleKind>,
    /// Final learning rate of the cosine schedule [default: 0].
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Epochs between decays of the step schedule [default: 10].
    #[arg(long)]
    pub step_size: Option<usize>,
    /// Decay factor of the step schedule [default: 0.1].
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Weight decay (decoupled for AdamW, L2 for SGD) [default: 1e-4].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// SGD momentum [default: 0.9].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Stop after this many epochs without a better validation CCC; 0 never stops [default: 5].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Randomly flip, shift (±10%) and scale (0.9–1.1) training faces.
    #[arg(long)]
    pub augment: bool,
    /// Where to run: cpu | cuda [default: cpu]. Allowed with --resume.
    #[arg(long)]
    pub device: Option<DeviceChoice>,
    /// Seeds weights, shuffling, dropout and augmentation [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
}

impl TrainArgs {
    fn overrides(&self) -> TrainOverrides {
        TrainOverrides {
            recipe: self.recipe,
            data: self.data.clone(),
            model: self.model,
            targets: self.targets,
            loss: self.loss,
            optimizer: self.optimizer,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            schedule: self.schedule,
            min_lr: self.min_lr,
            step_size: self.step_size,
            gamma: self.gamma,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            patience: self.patience,
            augment: self.augment.then_some(true),
            device: self.device,
            seed: self.seed,
        }
    }
}

/// Runs `valar train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let mut progress = TerminalProgress::default();
    let summary = if let Some(run_dir) = &args.resume {
        valar_train::resume(run_dir, args.device, &mut progress)
            .with_context(|| format!("resuming {}", run_dir.display()))?
    } else {
        let file = match &args.config {
            Some(path) => TrainOverrides::from_toml_file(path)?,
            None => TrainOverrides::default(),
        };
        let config = args.overrides().over(file).resolve()?;
        let out = args
            .out
            .as_deref()
            .context("--out is required (or --resume RUN)")?;
        valar_train::train(&config, out, args.force, &mut progress)?
    };
    if summary.stop == StopReason::AlreadyFinished {
        eprintln!(
            "{} had already finished after {} epochs; nothing to do",
            summary.run_dir.display(),
            summary.epochs_done
        );
    } else {
        eprintln!("{} after {} epochs", summary.stop, summary.epochs_done);
    }
    if let Some(best) = &summary.best {
        let cccs: Vec<String> = Dimension::ALL
            .iter()
            .filter_map(|&d| best.metrics(d).map(|m| format!("{d} CCC {:.3}", m.ccc)))
            .collect();
        eprintln!("best epoch {}: {}", best.epoch, cccs.join(", "));
    }
    eprintln!("model: {}", summary.run_dir.join("model.onnx").display());
    Ok(())
}

/// A progress bar per epoch (running loss, images/s, ETA) and a one-line validation summary
/// after each, on standard error. indicatif hides the bar when stderr is not a terminal.
#[derive(Debug, Default)]
pub(crate) struct TerminalProgress {
    bar: Option<ProgressBar>,
    loss_sum: f64,
    loss_images: usize,
}

impl TrainObserver for TerminalProgress {
    fn run_started(&mut self, s: &RunStart) {
        if let Some(reason) = &s.cuda_fallback {
            eprintln!("warning: CUDA not used ({reason}); training on the CPU");
        }
        let resumed = if s.first_epoch > 1 {
            format!(", resuming at epoch {}", s.first_epoch)
        } else {
            String::new()
        };
        eprintln!(
            "training on {}: {} parameters, {} train / {} val faces, {} steps per epoch, {} epochs{resumed}",
            s.device, s.parameters, s.train_rows, s.val_rows, s.steps_per_epoch, s.epochs
        );
    }

    fn epoch_started(&mut self, epoch: usize, epochs: usize, images: usize, _steps: usize) {
        let bar = ProgressBar::with_draw_target(Some(images as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.bold} [{bar:30.cyan/blue}] {pos}/{len} faces, loss {msg}, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
        self.loss_sum = 0.0;
        self.loss_images = 0;
    }

    fn step_done(&mut self, images: usize, loss: f32) {
        self.loss_sum += f64::from(loss) * images as f64;
        self.loss_images += images;
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{:.4}",
                self.loss_sum / self.loss_images.max(1) as f64
            ));
            bar.inc(images as u64);
        }
    }

    fn epoch_done(&mut self, r: &EpochRecord, best: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let mut line = format!(
            "epoch {:>3}: train loss {:.4}, val loss {:.4}",
            r.epoch, r.train_loss, r.val_loss
        );
        for dim in Dimension::ALL {
            if let Some(m) = r.metrics(dim) {
                line += &format!(
                    " | {dim} CCC {:.3} PCC {:.3} RMSE {:.3} SAGR {:.3}",
                    m.ccc, m.pcc, m.rmse, m.sagr
                );
            }
        }
        line += &format!(" | lr {:.2e}, {:.1} s", r.lr, r.seconds);
        if best {
            line += " (best)";
        }
        eprintln!("{line}");
    }
}
