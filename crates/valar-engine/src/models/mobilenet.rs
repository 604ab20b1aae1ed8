//! mobilenet: a MobileNet-v1-style depthwise-separable network.

use super::net::Activation;
use super::{ModelSpec, Net, Network};
use crate::ops::Var;
use crate::ops::conv2d::Conv2d;
use crate::ops::linear::Linear;

pub(super) const NETWORK: Network = Network {
    name: "mobilenet",
    about: "MobileNet-style: a stride-2 stem, then 7 depthwise-separable blocks (64 to 512 channels, 3 more stride-2), SiLU, global average pooling (0.54M parameters)",
    stride: 16,
    build,
};

/// The activation after every BatchNorm.
const ACT: Activation = Activation::Silu;

/// Output channels and stride of each depthwise-separable block.
const BLOCKS: [(usize, usize); 7] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
];

fn build(n: &mut Net<'_>, x: &Var, spec: &ModelSpec) -> Var {
    let y = n.conv2d("conv1", x, Conv2d::new(32, 3).stride(2).padding(1).bias(false));
    let y = n.batch_norm("bn1", &y);
    let mut y = n.act(&y, ACT);
    for (i, (width, stride)) in BLOCKS.into_iter().enumerate() {
        y = n.scope(&format!("blocks.{i}"), |n| separable(n, &y, width, stride));
    }
    let y = n.global_avg_pool(&y);
    let y = n.flatten(&y);
    let y = n.dropout(&y, 0.2);
    n.linear("fc", &y, Linear::new(spec.head_width()))
}

/// A 3×3 depthwise convolution (one filter per channel, stride `stride`) → BN → SiLU, then a
/// 1×1 pointwise convolution to `width` channels → BN → SiLU. SiLU rather than v1's ReLU, as
/// later MobileNets and EfficientNet do: it keeps a gradient for negative pre-activations.
fn separable(n: &mut Net<'_>, x: &Var, width: usize, stride: usize) -> Var {
    let c = x.shape[1];
    let dw = Conv2d::new(c, 3).stride(stride).padding(1).groups(c).bias(false);
    let y = n.conv2d("dw", x, dw);
    let y = n.batch_norm("dw_bn", &y);
    let y = n.act(&y, ACT);
    let y = n.conv2d("pw", &y, Conv2d::new(width, 1).bias(false));
    let y = n.batch_norm("pw_bn", &y);
    n.act(&y, ACT)
}
