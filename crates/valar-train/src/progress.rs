//! What a training run reports as it goes, and a terminal display of it (indicatif).

use crate::outputs::EpochRecord;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;
use valar_core::Dimension;

/// Facts about a run, reported once when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// The device the engine runs on (after any CUDA fallback).
    pub device: String,
    /// Why CUDA was not used, when it was asked for and not used.
    pub cuda_fallback: Option<String>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training faces.
    pub train_rows: usize,
    /// Validation faces.
    pub val_rows: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// The epoch training starts at (1-based; above 1 when resumed).
    pub first_epoch: usize,
    /// The last epoch training may run.
    pub epochs: usize,
}

/// Receives a run's progress; every method has a do-nothing default.
pub trait TrainObserver {
    /// The run starts (or resumes).
    fn run_started(&mut self, _start: &RunStart) {}
    /// An epoch starts: `images` training faces in `steps` steps.
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _images: usize, _steps: usize) {}
    /// A step ended with batch loss `loss` on `images` faces.
    fn step_done(&mut self, _images: usize, _loss: f32) {}
    /// An epoch ended; `best` says whether it is the best so far.
    fn epoch_done(&mut self, _record: &EpochRecord, _best: bool) {}
}

/// An observer that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl TrainObserver for Quiet {}

/// A progress bar per epoch (loss, images/s, ETA) and a one-line validation summary after
/// each, on standard error.
#[derive(Debug, Default)]
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
    loss_sum: f64,
    loss_images: usize,
}

impl TerminalProgress {
    /// A display on standard error (hidden when it is not a terminal; summaries still print).
    pub fn new() -> Self {
        TerminalProgress::default()
    }
}

impl TrainObserver for TerminalProgress {
    fn run_started(&mut self, s: &RunStart) {
        if let Some(reason) = &s.cuda_fallback {
            eprintln!("note: CUDA not used: {reason}; training on the CPU");
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
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} faces · loss {msg} · {per_sec} · ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
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
            line += " *best*";
        }
        eprintln!("{line}");
    }
}
