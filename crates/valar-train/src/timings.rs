//! Where a training process spends its time (`timings.json` in the run folder): the steps
//! themselves, and everything around them, so that what is not the step can be seen and made
//! small (README, "Where a run's time goes").

use crate::TrainError;
use std::time::Duration;
use valar_core::{RunDir, write_atomic};

/// Seconds spent by one `valar train` (or `--resume`) process, phase by phase. A resumed run
/// writes its own process's figures over the previous ones.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct RunTimings {
    /// Epochs this process trained.
    pub epochs: usize,
    /// Assembling batches: copying faces, augmentation, targets, mixup.
    pub batches: f64,
    /// The training steps (forward, backward and update in ONNX Runtime).
    pub steps: f64,
    /// Scoring the validation split after each epoch (test-time flips included).
    pub validation: f64,
    /// Checkpoints, model.onnx and predictions.csv.
    pub saving: f64,
    /// metrics.csv, TensorBoard events and the loop state.
    pub records: f64,
    /// The whole loop, these and whatever falls between them.
    pub total: f64,
}

impl RunTimings {
    /// Adds `d` to the phase `at` picks.
    pub fn add(&mut self, at: fn(&mut Self) -> &mut f64, d: Duration) {
        *at(self) += d.as_secs_f64();
    }

    /// Writes `timings.json` into `run`.
    pub fn write(&self, run: &RunDir) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(&run.timings(), |w| writeln!(w, "{text}"))?;
        Ok(())
    }
}
