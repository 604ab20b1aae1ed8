//! facecnn: the original recipe's network.

use super::blocks::vgg_block;
use super::{ModelSpec, Net, Network};
use crate::ops::Var;
use crate::ops::linear::Linear;

pub(super) const NETWORK: Network = Network {
    name: "facecnn",
    about: "the original recipe's network: conv blocks 64-128-256, then a 4096-1024-256 MLP head with dropout (42.6M parameters at 48 px)",
    stride: 8,
    build,
};

fn build(n: &mut Net<'_>, x: &Var, spec: &ModelSpec) -> Var {
    let mut y = x.clone();
    for (i, width) in [64, 128, 256].into_iter().enumerate() {
        y = vgg_block(n, &y, i + 1, width);
    }
    let y = n.flatten(&y);
    let y = n.dropout(&y, 0.2);
    let y = n.linear("fc1", &y, Linear::new(4096));
    let y = n.relu(&y);
    let y = n.dropout(&y, 0.5);
    let y = n.linear("fc2", &y, Linear::new(1024));
    let y = n.relu(&y);
    let y = n.linear("fc3", &y, Linear::new(256));
    let y = n.relu(&y);
    n.linear("fc4", &y, Linear::new(spec.head_width()))
}
