//! vgg: the reference network with dropout in its head.

use super::blocks::{mlp_head, vgg_block};
use super::{ModelSpec, Net, Network};
use crate::ops::Var;

pub(super) const NETWORK: Network = Network {
    name: "vgg",
    about: "the reference network with dropout 0.5 before each hidden Linear layer",
    stride: 8,
    build,
};

fn build(n: &mut Net<'_>, x: &Var, spec: &ModelSpec) -> Var {
    let mut y = x.clone();
    for (i, width) in [64, 128, 256].into_iter().enumerate() {
        y = vgg_block(n, &y, i + 1, width);
    }
    mlp_head(n, &y, &[1024, 256], Some(0.5), spec.head_width())
}
