//! compact: the small default network.

use super::blocks::vgg_block;
use super::{ModelSpec, Net, Network};
use crate::ops::Var;
use crate::ops::linear::Linear;

pub(super) const NETWORK: Network = Network {
    name: "compact",
    about: "a small network: conv blocks 32-64-128, global average pooling and a 64-unit head (0.1M parameters)",
    stride: 8,
    build,
};

fn build(n: &mut Net<'_>, x: &Var, spec: &ModelSpec) -> Var {
    let mut y = x.clone();
    for (i, width) in [32, 64, 128].into_iter().enumerate() {
        y = vgg_block(n, &y, i + 1, width);
    }
    let y = n.global_avg_pool(&y);
    let y = n.flatten(&y);
    let y = n.linear("fc1", &y, Linear::new(64));
    let y = n.relu(&y);
    let y = n.dropout(&y, 0.2);
    n.linear("fc2", &y, Linear::new(spec.head_width()))
}
