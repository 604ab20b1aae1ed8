//! `valar train`.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::time::Duration;
use valar_core::{Dimension, RunDir};
use valar_train::{EpochRecord, RunStart, StopReason, TrainConfig, TrainObserver, TrainOverrides};

/// Arguments of `valar train`.
///
/// Values come from, in increasing priority: valar's defaults (or `--recipe`), the `--config`
/// file, then these flags. The resolved values are saved as `config.toml` in the run folder.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The run folder to create (e.g. runs/NAME).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint, with its saved configuration.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["out", "force", "config"])]
    pub resume: Option<PathBuf>,
    /// Delete the run folder first if it exists.
    #[arg(long)]
    pub force: bool,
    /// A TOML file with any of config.toml's keys (flags override it).
    #[arg(long, value_name = "valar.toml")]
    pub config: Option<PathBuf>,
    /// Every training setting, declared once in valar-train.
    #[command(flatten)]
    pub settings: TrainOverrides,
}

/// `--help` for `--model`: every network the engine registers, what it is and which face sizes
/// it takes, read from the engine so that a new network shows up by itself.
fn document_models(cmd: clap::Command) -> clap::Command {
    if cmd.get_arguments().all(|a| a.get_id() != "model") {
        return cmd;
    }
    let list: Vec<String> = valar_engine::ModelKind::ALL
        .iter()
        .map(|k| {
            let m = k.input_multiple();
            format!(
                "  {}: {}; faces of any side that is a multiple of {m} ({}, {}, {}, …)",
                k.name(),
                k.about(),
                48usize.div_ceil(m) * m,
                48usize.div_ceil(m) * m + m,
                48usize.div_ceil(m) * m + 2 * m
            )
        })
        .collect();
    cmd.mut_arg("model", |a| {
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        a.long_help(format!("{help}\n{}", list.join("\n")))
    })
}

/// Appends `[default: …]` to the help of every training setting, read from valar's defaults
/// themselves so that the help cannot drift from them, and lists the networks under `--model`.
pub fn document_defaults(cmd: clap::Command) -> clap::Command {
    let defaults = match toml::Value::try_from(TrainConfig::defaults(PathBuf::new())) {
        Ok(toml::Value::Table(t)) => t,
        _ => return document_models(cmd),
    };
    let cmd = defaults.into_iter().fold(cmd, |cmd, (key, value)| {
        let shown = match &value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if key == "data" || cmd.get_arguments().all(|a| a.get_id() != key.as_str()) {
            return cmd;
        }
        cmd.mut_arg(key.as_str(), |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.help(format!("{help} [default: {shown}]"))
        })
    });
    document_models(cmd)
}

/// Runs `valar train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let mut progress = TerminalProgress::default();
    let summary = if let Some(run_dir) = &args.resume {
        let given: Vec<String> = args
            .settings
            .given()
            .into_iter()
            .filter(|k| k != "device")
            .collect();
        if !given.is_empty() {
            anyhow::bail!(
                "--resume continues {} with the settings in its config.toml; drop {} (only --device may change)",
                run_dir.display(),
                given
                    .iter()
                    .map(|k| format!("--{}", k.replace('_', "-")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        valar_train::resume(run_dir, args.settings.device, &mut progress)
            .with_context(|| format!("resuming {}", run_dir.display()))?
    } else {
        let file = match &args.config {
            Some(path) => TrainOverrides::from_toml_file(path)?,
            None => TrainOverrides::default(),
        };
        let config = args.settings.clone().over(file).resolve()?;
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
    eprintln!("model: {}", RunDir::new(&summary.run_dir).model().display());
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
        for note in &s.notes {
            eprintln!("note: {note}");
        }
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
        let mut line = format!("epoch {:>3}: train loss {:.4}", r.epoch, r.train_loss);
        if let Some(v) = r.val_loss {
            line += &format!(", val loss {v:.4}");
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use valar_train::Augment;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn parse(args: &[&str]) -> TrainArgs {
        Cli::try_parse_from(std::iter::once("train").chain(args.iter().copied()))
            .unwrap()
            .train
    }

    /// A file's `augment = true` is turned back off from the command line, and `--augment`
    /// alone still means the full augmentation.
    #[test]
    fn augment_flag_overrides_a_file_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("valar.toml");
        std::fs::write(&file, "data = \"d\"\naugment = true\n").unwrap();
        let from_file = TrainOverrides::from_toml_file(&file).unwrap();
        let off = parse(&["--out", "r", "--augment=none"]).settings;
        assert_eq!(
            off.over(from_file.clone()).resolve().unwrap().augment,
            Augment::None
        );
        let flip = parse(&["--out", "r", "--augment=flip"]).settings;
        assert_eq!(
            flip.over(from_file.clone()).resolve().unwrap().augment,
            Augment::Flip
        );
        assert_eq!(
            parse(&["--out", "r", "--augment"]).settings.augment,
            Some(Augment::Full)
        );
        let unset = parse(&["--out", "r"]).settings;
        assert_eq!(
            unset.over(from_file).resolve().unwrap().augment,
            Augment::Full
        );
    }

    /// The help shows each setting's default, read from valar's defaults.
    #[test]
    fn help_shows_the_defaults() {
        let mut cmd = document_defaults(Cli::command());
        let help = cmd.render_long_help().to_string();
        for shown in [
            "resnet: ResNet-18-style",
            "a multiple of 16 (48, 64, 80, …)",
            "[default: reference]",
            "[default: 64]",
            "[default: mse+ccc]",
            "[default: cosine-epoch]",
            "[default: 0.999]",
        ] {
            assert!(help.contains(shown), "{shown} missing from:\n{help}");
        }
    }
}
