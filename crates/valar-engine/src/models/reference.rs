//! reference: the PyTorch reference recipe's network (`scripts/quality_torch.py`).

use super::blocks::{mlp_head, vgg_block};
use super::{ModelSpec, Net, Network};
use crate::ops::Var;

pub(super) const NETWORK: Network = Network {
    name: "reference",
    about: "scripts/quality_torch.py's network: conv blocks 64-128-256, then a 1024-256 MLP head (10.1M parameters at 48 px)",
    stride: 8,
    build,
};

fn build(n: &mut Net<'_>, x: &Var, spec: &ModelSpec) -> Var {
    let mut y = x.clone();
    for (i, width) in [64, 128, 256].into_iter().enumerate() {
        y = vgg_block(n, &y, i + 1, width);
    }
    mlp_head(n, &y, &[1024, 256], None, spec.head_width())
}
