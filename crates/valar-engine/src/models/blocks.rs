//! Building blocks several networks share.

use super::Net;
use crate::ops::Var;
use crate::ops::conv2d::Conv2d;
use crate::ops::linear::Linear;
use crate::ops::maxpool::Pool;

/// `conv{i}` (3×3, padding 1, bias) → `bn{i}` → 2×2 max pooling → ReLU. Pooling before ReLU
/// gives the same forward as the recipe's conv → BN → ReLU → pool (both are monotone) with a 4×
/// smaller ReLU backward.
pub(super) fn vgg_block(n: &mut Net<'_>, x: &Var, i: usize, width: usize) -> Var {
    let y = n.conv2d(&format!("conv{i}"), x, Conv2d::new(width, 3).padding(1));
    let y = n.batch_norm(&format!("bn{i}"), &y);
    let y = n.max_pool(&y, Pool::new(2, 2));
    n.relu(&y)
}

/// Flatten, then `[Dropout →] Linear → ReLU` for each hidden width, then the output Linear
/// layer; the layers are named fc1, fc2, … in order.
pub(super) fn mlp_head(
    n: &mut Net<'_>,
    x: &Var,
    hidden: &[usize],
    dropout: Option<f32>,
    outputs: usize,
) -> Var {
    let mut y = n.flatten(x);
    for (i, &width) in hidden.iter().enumerate() {
        if let Some(p) = dropout {
            y = n.dropout(&y, p);
        }
        y = n.linear(&format!("fc{}", i + 1), &y, Linear::new(width));
        y = n.relu(&y);
    }
    n.linear(&format!("fc{}", hidden.len() + 1), &y, Linear::new(outputs))
}
