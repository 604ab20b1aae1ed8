//! What the loop needs from a network, implemented by the engine's `Trainer`, and how a
//! configuration becomes one.

use crate::TrainError;
use crate::config::{OptimizerChoice, TrainConfig};
use std::path::Path;
use valar_engine::{
    Batch, ExportInfo, ExpressionHead, InputAffine, LossKind, ModelSpec, OptimizerKind, TrainState,
    Trainer,
};

/// One trainable network, as the training loop sees it. Kept small so the loop's bookkeeping
/// (schedule, early stopping, checkpoints, resume) can be tested with a pure-Rust model.
pub(crate) trait StepModel {
    /// One optimizer step; returns the batch loss before the update.
    fn step(&mut self, batch: &Batch<'_>, lr: f32) -> Result<f32, TrainError>;
    /// Eval-mode outputs, `batch × outputs`.
    fn predict(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>, TrainError>;
    /// Writes the whole training state to a checksummed file, atomically.
    fn save_state(&self, path: &Path) -> Result<(), TrainError>;
    /// Replaces the training state with one written by `save_state`.
    fn load_state(&mut self, path: &Path) -> Result<(), TrainError>;
    /// Writes the inference model (`model.onnx`) finished as `info` says, atomically.
    fn export(&self, path: &Path, info: &ExportInfo) -> Result<(), TrainError>;
    /// Optimizer steps taken so far.
    fn steps_taken(&self) -> u64;
}

impl StepModel for Trainer {
    fn step(&mut self, batch: &Batch<'_>, lr: f32) -> Result<f32, TrainError> {
        Ok(Trainer::step_with(self, batch, lr)?.loss)
    }

    fn predict(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>, TrainError> {
        Ok(Trainer::predict(self, x, batch)?)
    }

    fn save_state(&self, path: &Path) -> Result<(), TrainError> {
        Ok(self.try_state()?.save(path)?)
    }

    fn load_state(&mut self, path: &Path) -> Result<(), TrainError> {
        let state = TrainState::load(path)?;
        Ok(Trainer::load_state(self, state)?)
    }

    fn export(&self, path: &Path, info: &ExportInfo) -> Result<(), TrainError> {
        Ok(self.export_onnx_with(path, info)?)
    }

    fn steps_taken(&self) -> u64 {
        self.step_count()
    }
}

/// The engine's description of the network `config` asks for, on faces of `size` × `size`
/// with `channels` channels, seeing its inputs through `input`.
pub(crate) fn model_spec(
    config: &TrainConfig,
    size: usize,
    channels: usize,
    input: InputAffine,
) -> ModelSpec {
    ModelSpec {
        kind: config.model,
        input_size: size,
        channels,
        outputs: config.targets.dimensions().len(),
        input,
        flip_average: config.tta,
        ema: (config.ema > 0.0).then_some(config.ema as f32),
        expression: (config.expression_weight > 0.0).then_some(ExpressionHead {
            classes: crate::expression::CLASSES,
            weight: config.expression_weight as f32,
        }),
    }
}

/// The engine's optimizer.
pub(crate) fn optimizer(config: &TrainConfig) -> OptimizerKind {
    match config.optimizer {
        OptimizerChoice::AdamW => OptimizerKind::adamw(config.weight_decay as f32),
        OptimizerChoice::Sgd => OptimizerKind::Sgd {
            momentum: config.momentum as f32,
            weight_decay: config.weight_decay as f32,
        },
    }
}

/// A fresh engine trainer for `config` on faces of the given shape.
pub(crate) fn build_trainer(
    config: &TrainConfig,
    size: usize,
    channels: usize,
    input: InputAffine,
) -> Result<Trainer, TrainError> {
    let spec = model_spec(config, size, channels, input);
    let multiple = spec.kind.input_multiple();
    if size == 0 || !size.is_multiple_of(multiple) {
        let examples: Vec<String> = (1..)
            .map(|k| k * multiple)
            .filter(|&s| s >= 48)
            .take(3)
            .map(|s| s.to_string())
            .collect();
        return Err(TrainError::data(
            &config.data,
            format!(
                "faces are {size}×{size}, but the {} model needs a side that is a multiple of {multiple} (prepare with --size {}, …)",
                config.model,
                examples.join(", ")
            ),
        ));
    }
    Ok(Trainer::new(
        &spec,
        config.loss,
        optimizer(config),
        config.device,
        config.seed,
    )?)
}

/// The loss the engine trains on, computed on the host over a whole set (for `val_loss`):
/// MSE over all outputs, the mean over dimensions of 1 − CCC, or their sum.
pub(crate) fn host_loss(loss: LossKind, truth: &[f32], pred: &[f32], dims: usize) -> f64 {
    let mse = valar_core::rmse(truth, pred).powi(2);
    let one_minus_ccc = || {
        (0..dims)
            .map(|d| {
                let t: Vec<f32> = truth.iter().skip(d).step_by(dims).copied().collect();
                let p: Vec<f32> = pred.iter().skip(d).step_by(dims).copied().collect();
                1.0 - valar_core::ccc(&t, &p)
            })
            .sum::<f64>()
            / dims as f64
    };
    match loss {
        LossKind::Mse => mse,
        LossKind::Ccc => one_minus_ccc(),
        LossKind::MseCcc => mse + one_minus_ccc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_loss_matches_its_definition() {
        // Two dimensions; the second predicted perfectly, the first off by 0.5 everywhere.
        let truth = [0.0, 0.1, 1.0, 0.2, -1.0, 0.3];
        let pred = [0.5, 0.1, 1.5, 0.2, -0.5, 0.3];
        let mse = (3.0 * 0.25) / 6.0;
        assert!((host_loss(LossKind::Mse, &truth, &pred, 2) - mse).abs() < 1e-6);
        // Dim 0: var_y = var_p = 2/3, cov = 2/3, bias 0.5 → CCC = (4/3) / (4/3 + 0.25).
        let ccc0 = (4.0 / 3.0) / (4.0 / 3.0 + 0.25);
        let expect = ((1.0 - ccc0) + 0.0) / 2.0;
        assert!((host_loss(LossKind::Ccc, &truth, &pred, 2) - expect).abs() < 1e-6);
        assert!((host_loss(LossKind::MseCcc, &truth, &pred, 2) - (mse + expect)).abs() < 1e-6);
    }
}
