//! The names of the training and inference graphs' inputs and outputs, each spelled once: the
//! graphs are built with them and the trainer binds its buffers by them.

/// The input image batch, `[batch, channels, size, size]` (both graphs).
pub(crate) const IMAGE: &str = "x";
/// The training targets, `[batch, outputs]`.
pub(crate) const TARGETS: &str = "y";
/// The learning rate of this step (a scalar).
pub(crate) const LR: &str = "lr";
/// The 1-based number of this step (a scalar; AdamW's bias correction).
pub(crate) const STEP: &str = "step";
/// This step's weight-average decay (a scalar; only with a moving average).
pub(crate) const EMA_DECAY: &str = "ema_decay";
/// The batch loss before the update (a scalar).
pub(crate) const LOSS: &str = "loss";
/// The network's outputs, `[batch, outputs]` (both graphs).
pub(crate) const PREDICTIONS: &str = "predictions";
/// Per-face weights of the squared-error term, `[batch, 1]` (ones unless the run reweights
/// faces, as label-distribution smoothing does).
pub(crate) const SAMPLE_WEIGHTS: &str = "sample_weights";
/// The expression targets of a training batch, `[batch, classes]`: each face's class weight
/// at its class (only with an expression head).
pub(crate) const EXPRESSION_TARGETS: &str = "expression_targets";
/// The inference graph's expression logits, `[batch, classes]` (only with an expression head).
pub(crate) const EXPRESSION: &str = "expression";
/// The training graph's own name.
pub(crate) const TRAIN_GRAPH: &str = "valar_train_step";
/// The inference graph's own name.
pub(crate) const INFERENCE_GRAPH: &str = "valar_inference";

/// The uniform noise input of dropout layer `slot` (in definition order).
pub(crate) fn noise(slot: usize) -> String {
    format!("noise{slot}")
}

/// The output carrying the updated value of state tensor `name`.
pub(crate) fn new(name: &str) -> String {
    format!("new.{name}")
}

/// The output carrying the gradient of parameter `name` (graphs built without an optimizer).
pub(crate) fn grad(name: &str) -> String {
    format!("grad.{name}")
}

/// The state tensor holding the moving average of tensor `name`.
pub(crate) fn ema(name: &str) -> String {
    format!("{name}.ema")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are part of the saved state and of exported models: they must not drift.
    #[test]
    fn names_are_stable() {
        assert_eq!(
            [IMAGE, TARGETS, LR, STEP, EMA_DECAY, LOSS, PREDICTIONS],
            ["x", "y", "lr", "step", "ema_decay", "loss", "predictions"]
        );
        assert_eq!(
            [EXPRESSION_TARGETS, EXPRESSION, SAMPLE_WEIGHTS],
            ["expression_targets", "expression", "sample_weights"]
        );
        assert_eq!(noise(2), "noise2");
        assert_eq!(new("fc.bias"), "new.fc.bias");
        assert_eq!(grad("fc.bias"), "grad.fc.bias");
        assert_eq!(ema("bn1.running_var"), "bn1.running_var.ema");
    }
}
