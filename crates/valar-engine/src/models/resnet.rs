//! resnet: a ResNet-18-style network at half width for 48–112 px faces.
//!
//! torchvision's `resnet18` with two changes for small faces: the stem is one 3×3 convolution
//! at stride 1 without max pooling (a 7×7 stride-2 stem and a pool would leave a 48 px face
//! 12 px wide before the first block), and the stages are 32-64-128-256 channels wide. Names
//! follow torchvision's (`layer2.0.downsample.0.weight`), so its weights map one to one.

use super::net::Activation;
use super::{ModelSpec, Net, Network};
use crate::ops::Var;
use crate::ops::conv2d::Conv2d;
use crate::ops::linear::Linear;

pub(super) const NETWORK: Network = Network {
    name: "resnet",
    about: "ResNet-18-style: a 3x3 stem, 4 stages of 2 basic blocks (32-64-128-256, stride-2 downsampling), global average pooling (2.8M parameters)",
    stride: 8,
    build,
};

/// Stage widths and the stride of each stage's first block.
const STAGES: [(usize, usize); 4] = [(32, 1), (64, 2), (128, 2), (256, 2)];
/// Basic blocks per stage (ResNet-18).
const BLOCKS: usize = 2;

fn build(n: &mut Net<'_>, x: &Var, spec: &ModelSpec) -> Var {
    resnet(n, x, spec, Activation::Relu)
}

/// The network with activation `act` (ReLU as registered; the gradient test also builds it
/// with SiLU, see `models::tests`).
pub(super) fn resnet(n: &mut Net<'_>, x: &Var, spec: &ModelSpec, act: Activation) -> Var {
    let y = n.conv2d("conv1", x, Conv2d::new(STAGES[0].0, 3).padding(1).bias(false));
    let y = n.batch_norm("bn1", &y);
    let mut y = n.act(&y, act);
    for (i, (width, stride)) in STAGES.into_iter().enumerate() {
        for j in 0..BLOCKS {
            let s = if j == 0 { stride } else { 1 };
            y = n.scope(&format!("layer{}", i + 1), |n| {
                n.scope(&j.to_string(), |n| basic_block(n, &y, width, s, act))
            });
        }
    }
    let y = n.global_avg_pool(&y);
    let y = n.flatten(&y);
    n.linear("fc", &y, Linear::new(spec.head_width()))
}

/// conv 3×3 (stride `stride`) → BN → ReLU → conv 3×3 → BN, plus the input (through a 1×1
/// strided convolution and BN where the shape changes), then ReLU (`act`).
pub(super) fn basic_block(
    n: &mut Net<'_>,
    x: &Var,
    width: usize,
    stride: usize,
    act: Activation,
) -> Var {
    let conv3 = Conv2d::new(width, 3).padding(1).bias(false);
    let y = n.conv2d("conv1", x, conv3.stride(stride));
    let y = n.batch_norm("bn1", &y);
    let y = n.act(&y, act);
    let y = n.conv2d("conv2", &y, conv3);
    let y = n.batch_norm("bn2", &y);
    let shortcut = if stride != 1 || x.shape[1] != width {
        n.scope("downsample", |n| {
            let s = n.conv2d("0", x, Conv2d::new(width, 1).stride(stride).bias(false));
            n.batch_norm("1", &s)
        })
    } else {
        x.clone()
    };
    let y = n.add(&y, &shortcut);
    n.act(&y, act)
}
