//! Per-op forward emitters that record a tape, and the backward ops the tape emits (reverse-mode autodiff).
//!
//! The op set forms a chain (every value has exactly one consumer), so the backward pass carries one
//! gradient from the loss to the input and never has to sum gradients from several consumers.

use crate::graph::{Attr, GraphBuilder};

/// A value in a training graph with its static shape (dimension 0 is the batch).
#[derive(Clone, Debug)]
pub(crate) struct Var {
    pub name: String,
    pub shape: Vec<usize>,
}

/// PyTorch's BatchNorm2d defaults.
pub(crate) const BN_EPS: f32 = 1e-5;
pub(crate) const BN_MOMENTUM: f32 = 0.1;

/// Names of one BatchNorm's tensors in a training graph.
pub(crate) struct BnNames<'a> {
    pub gamma: &'a str,
    pub beta: &'a str,
    pub running_mean: &'a str,
    pub running_var: &'a str,
    pub new_running_mean: &'a str,
    pub new_running_var: &'a str,
}

/// What one forward op saved for its backward.
enum Saved {
    Conv {
        x: Var,
        w: String,
        bname: String,
        cout: usize,
        need_dx: bool,
    },
    BatchNorm {
        x: Var,
        gamma: String,
        mean: String,
        invstd: String,
        gname: String,
        bname: String,
    },
    MaxPool {
        x: Var,
        indices: String,
    },
    Relu {
        y: String,
    },
    GlobalAvgPool {
        x: Var,
    },
    Flatten {
        x: Var,
    },
    Dropout {
        mask: String,
    },
    Linear {
        x: Var,
        w: String,
        bname: String,
        need_dx: bool,
    },
}

/// Records the forward pass of a training graph and emits its backward.
pub(crate) struct Tape {
    saved: Vec<Saved>,
    /// Use ScatterElements instead of MaxUnpool (which has no CUDA kernel).
    cuda: bool,
}

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

impl Tape {
    pub(crate) fn new(cuda: bool) -> Self {
        Self {
            saved: Vec::new(),
            cuda,
        }
    }

    /// 3×3 convolution, padding 1, stride 1. `need_dx` is false for the first layer (no input gradient).
    pub(crate) fn conv(
        &mut self,
        g: &mut GraphBuilder,
        x: &Var,
        w: &str,
        b: &str,
        cout: usize,
        need_dx: bool,
    ) -> Var {
        let y = conv_forward(g, &x.name, w, b);
        self.saved.push(Saved::Conv {
            x: x.clone(),
            w: w.into(),
            bname: b.into(),
            cout,
            need_dx,
        });
        Var {
            name: y,
            shape: vec![x.shape[0], cout, x.shape[2], x.shape[3]],
        }
    }

    /// BatchNorm2d in training mode: batch statistics, running-stat update written to the `new_*` names.
    pub(crate) fn batchnorm(&mut self, g: &mut GraphBuilder, x: &Var, p: &BnNames<'_>) -> Var {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let n = (b * h * w) as f32;
        // One pass each for E[x] and E[x²]; the variance is clamped at 0 against rounding.
        let mean = per_channel(g, "ReduceMean", &x.name, &x.shape, true);
        let ss = per_channel(g, "ReduceSumSquare", &x.name, &x.shape, true);
        let inv_n = g.scalar(1.0 / n);
        let ex2 = g.bin("Mul", &ss, &inv_n);
        let m2 = g.bin("Mul", &mean, &mean);
        let var = g.bin("Sub", &ex2, &m2);
        let zero = g.scalar(0.0);
        let var = g.bin("Max", &var, &zero);
        let mean_c = g.reshape(&mean, &[c as i64]);
        let var_c = g.reshape(&var, &[c as i64]);
        // The inference BatchNormalization op is a fused per-channel affine given the batch statistics.
        let y = g.node(
            "BatchNormalization",
            &[&x.name, p.gamma, p.beta, &mean_c, &var_c],
            vec![("epsilon", Attr::Float(BN_EPS))],
        );
        let eps = g.scalar(BN_EPS);
        let ve = g.bin("Add", &var, &eps);
        let sd = g.node("Sqrt", &[&ve], vec![]);
        let invstd = g.node("Reciprocal", &[&sd], vec![]);
        // Running statistics as PyTorch keeps them: the variance is unbiased.
        let keep = g.scalar(1.0 - BN_MOMENTUM);
        let mom = g.scalar(BN_MOMENTUM);
        let a = g.bin("Mul", p.running_mean, &keep);
        let bm = g.bin("Mul", &mean_c, &mom);
        g.node_to("Add", &[&a, &bm], &[p.new_running_mean], vec![]);
        let unbias = g.scalar(BN_MOMENTUM * n / (n - 1.0).max(1.0));
        let a = g.bin("Mul", p.running_var, &keep);
        let bv = g.bin("Mul", &var_c, &unbias);
        g.node_to("Add", &[&a, &bv], &[p.new_running_var], vec![]);
        self.saved.push(Saved::BatchNorm {
            x: x.clone(),
            gamma: p.gamma.into(),
            mean,
            invstd,
            gname: p.gamma.into(),
            bname: p.beta.into(),
        });
        Var {
            name: y,
            shape: x.shape.clone(),
        }
    }

    /// 2×2 max pooling, stride 2; keeps the argmax indices for the backward.
    pub(crate) fn maxpool(&mut self, g: &mut GraphBuilder, x: &Var) -> Var {
        let y = g.fresh("pool");
        let idx = g.fresh("poolidx");
        g.node_to(
            "MaxPool",
            &[&x.name],
            &[&y, &idx],
            vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
        );
        self.saved.push(Saved::MaxPool {
            x: x.clone(),
            indices: idx,
        });
        Var {
            name: y,
            shape: vec![x.shape[0], x.shape[1], x.shape[2] / 2, x.shape[3] / 2],
        }
    }

    pub(crate) fn relu(&mut self, g: &mut GraphBuilder, x: &Var) -> Var {
        let y = g.node("Relu", &[&x.name], vec![]);
        self.saved.push(Saved::Relu { y: y.clone() });
        Var {
            name: y,
            shape: x.shape.clone(),
        }
    }

    pub(crate) fn global_avg_pool(&mut self, g: &mut GraphBuilder, x: &Var) -> Var {
        let y = g.node("GlobalAveragePool", &[&x.name], vec![]);
        self.saved.push(Saved::GlobalAvgPool { x: x.clone() });
        Var {
            name: y,
            shape: vec![x.shape[0], x.shape[1], 1, 1],
        }
    }

    pub(crate) fn flatten(&mut self, g: &mut GraphBuilder, x: &Var) -> Var {
        let y = g.node("Flatten", &[&x.name], vec![("axis", Attr::Int(1))]);
        self.saved.push(Saved::Flatten { x: x.clone() });
        let rest = x.shape[1..].iter().product();
        Var {
            name: y,
            shape: vec![x.shape[0], rest],
        }
    }

    /// Inverted dropout; `noise` is a graph input of uniform [0, 1) numbers with the shape of `x`.
    pub(crate) fn dropout(&mut self, g: &mut GraphBuilder, x: &Var, noise: &str, p: f32) -> Var {
        let pc = g.scalar(p);
        let keep = g.bin("GreaterOrEqual", noise, &pc);
        let scale = g.scalar(1.0 / (1.0 - p));
        let zero = g.scalar(0.0);
        let mask = g.node("Where", &[&keep, &scale, &zero], vec![]);
        let y = g.bin("Mul", &x.name, &mask);
        self.saved.push(Saved::Dropout { mask });
        Var {
            name: y,
            shape: x.shape.clone(),
        }
    }

    /// `y = x Wᵀ + b` with W stored `[out, in]` as in PyTorch.
    pub(crate) fn linear(
        &mut self,
        g: &mut GraphBuilder,
        x: &Var,
        w: &str,
        b: &str,
        fout: usize,
        need_dx: bool,
    ) -> Var {
        let y = g.node("Gemm", &[&x.name, w, b], vec![("transB", Attr::Int(1))]);
        self.saved.push(Saved::Linear {
            x: x.clone(),
            w: w.into(),
            bname: b.into(),
            need_dx,
        });
        Var {
            name: y,
            shape: vec![x.shape[0], fout],
        }
    }

    /// Emits the backward pass from `dy` (the loss gradient of the last recorded output) and returns
    /// `(parameter, gradient)` pairs, and the gradient of the first op's input unless that op was told
    /// it needs none.
    pub(crate) fn backward(
        self,
        g: &mut GraphBuilder,
        dy: String,
    ) -> (Vec<(String, String)>, Option<String>) {
        let mut grads = Vec::new();
        let mut dy = dy;
        for s in self.saved.into_iter().rev() {
            dy = match s {
                Saved::Conv {
                    x,
                    w,
                    bname,
                    cout,
                    need_dx,
                } => {
                    let yshape = [x.shape[0], cout, x.shape[2], x.shape[3]];
                    let db = per_channel(g, "ReduceSum", &dy, &yshape, false);
                    let dw = conv_weight_grad(g, &x, &dy, cout);
                    grads.push((w.clone(), dw));
                    grads.push((bname, db));
                    if !need_dx {
                        return (grads, None);
                    }
                    // dX is a convolution of dY with the transposed, spatially flipped kernel
                    // (faster than ConvTranspose in ONNX Runtime).
                    let wt = g.transpose(&w, &[1, 0, 2, 3]);
                    let starts = g.const_i64(&[-1, -1]);
                    let ends = g.const_i64(&[i64::MIN, i64::MIN]);
                    let axes = g.const_i64(&[2, 3]);
                    let steps = g.const_i64(&[-1, -1]);
                    let wf = g.node("Slice", &[&wt, &starts, &ends, &axes, &steps], vec![]);
                    g.node(
                        "Conv",
                        &[&dy, &wf],
                        vec![
                            ("kernel_shape", ints(&[3, 3])),
                            ("pads", ints(&[1, 1, 1, 1])),
                        ],
                    )
                }
                Saved::BatchNorm {
                    x,
                    gamma,
                    mean,
                    invstd,
                    gname,
                    bname,
                } => {
                    let c = x.shape[1] as i64;
                    let n = (x.shape[0] * x.shape[2] * x.shape[3]) as f32;
                    let sdy = per_channel(g, "ReduceSum", &dy, &x.shape, true);
                    let dyx = g.bin("Mul", &dy, &x.name);
                    let sdyx = per_channel(g, "ReduceSum", &dyx, &x.shape, true);
                    // dγ = Σ dy·x̂ = invstd·(Σ dy·x − mean·Σ dy); dβ = Σ dy.
                    let ms = g.bin("Mul", &mean, &sdy);
                    let t = g.bin("Sub", &sdyx, &ms);
                    let dgamma4 = g.bin("Mul", &t, &invstd);
                    let dgamma = g.reshape(&dgamma4, &[c]);
                    let dbeta = g.reshape(&sdy, &[c]);
                    grads.push((gname, dgamma));
                    grads.push((bname, dbeta));
                    // dx = k·(dy − Σdy/n − x̂·dγ/n) with k = γ·invstd, rearranged to dy·k + (x·s + c)
                    // so that the big tensors take four passes.
                    let g4 = g.reshape(&gamma, &[1, c, 1, 1]);
                    let k = g.bin("Mul", &g4, &invstd);
                    let dgi = g.bin("Mul", &dgamma4, &invstd);
                    let kdgi = g.bin("Mul", &k, &dgi);
                    let neg_inv_n = g.scalar(-1.0 / n);
                    let s = g.bin("Mul", &kdgi, &neg_inv_n);
                    let dgim = g.bin("Mul", &dgi, &mean);
                    let u = g.bin("Sub", &dgim, &sdy);
                    let ku = g.bin("Mul", &k, &u);
                    let inv_n = g.scalar(1.0 / n);
                    let cc = g.bin("Mul", &ku, &inv_n);
                    let s_c = g.reshape(&s, &[c]);
                    let c_c = g.reshape(&cc, &[c]);
                    // x·s + c as one pass: the inference BatchNormalization op with mean 0 and
                    // var + epsilon = 1 (epsilon stays at 1e-5 because cuDNN clamps it there).
                    let zeros = g.const_f32(&[c as usize], &vec![0.0; c as usize]);
                    let ones = g.const_f32(&[c as usize], &vec![1.0 - BN_EPS; c as usize]);
                    let xs = g.node(
                        "BatchNormalization",
                        &[&x.name, &s_c, &c_c, &zeros, &ones],
                        vec![("epsilon", Attr::Float(BN_EPS))],
                    );
                    let dyk = g.bin("Mul", &dy, &k);
                    g.bin("Add", &dyk, &xs)
                }
                Saved::MaxPool { x, indices } => {
                    if self.cuda {
                        let total: usize = x.shape.iter().product();
                        let shape = g.const_i64(&[total as i64]);
                        let zeros = g.node("ConstantOfShape", &[&shape], vec![]);
                        let idx = g.reshape(&indices, &[-1]);
                        let upd = g.reshape(&dy, &[-1]);
                        let sc = g.node(
                            "ScatterElements",
                            &[&zeros, &idx, &upd],
                            vec![("axis", Attr::Int(0))],
                        );
                        let shp: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
                        g.reshape(&sc, &shp)
                    } else {
                        g.node(
                            "MaxUnpool",
                            &[&dy, &indices],
                            vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
                        )
                    }
                }
                Saved::Relu { y } => {
                    let zero = g.scalar(0.0);
                    let pos = g.bin("Greater", &y, &zero);
                    g.node("Where", &[&pos, &dy, &zero], vec![])
                }
                Saved::GlobalAvgPool { x } => {
                    let k = g.scalar(1.0 / (x.shape[2] * x.shape[3]) as f32);
                    let scaled = g.bin("Mul", &dy, &k);
                    let shp: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
                    let s = g.const_i64(&shp);
                    g.node("Expand", &[&scaled, &s], vec![])
                }
                Saved::Flatten { x } => {
                    let shp: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
                    g.reshape(&dy, &shp)
                }
                Saved::Dropout { mask } => g.bin("Mul", &dy, &mask),
                Saved::Linear {
                    x,
                    w,
                    bname,
                    need_dx,
                } => {
                    let dw = g.node("Gemm", &[&dy, &x.name], vec![("transA", Attr::Int(1))]);
                    let db = g.reduce("ReduceSum", &dy, &[0], false);
                    grads.push((w.clone(), dw));
                    grads.push((bname, db));
                    if !need_dx {
                        return (grads, None);
                    }
                    g.bin("MatMul", &dy, &w)
                }
            };
        }
        (grads, Some(dy))
    }
}

/// Reduces an NCHW tensor to one value per channel, `[1, C, 1, 1]` (`keep`) or `[C]`.
///
/// ONNX Runtime reduces over axes (0, 2, 3) on a slow general path; reducing the contiguous H·W axis
/// first, then the batch axis, takes the fast paths (and sums in a better order). `op` is
/// ReduceMean, ReduceSum or ReduceSumSquare; the second stage is a mean or a plain sum.
fn per_channel(g: &mut GraphBuilder, op: &str, x: &str, shape: &[usize], keep: bool) -> String {
    let (b, c, hw) = (
        shape[0] as i64,
        shape[1] as i64,
        (shape[2] * shape[3]) as i64,
    );
    let flat = g.reshape(x, &[b, c, hw]);
    let first = g.reduce(op, &flat, &[2], false);
    let second = if op == "ReduceMean" {
        "ReduceMean"
    } else {
        "ReduceSum"
    };
    let per = g.reduce(second, &first, &[0], false);
    if keep {
        g.reshape(&per, &[1, c, 1, 1])
    } else {
        per
    }
}

/// The forward convolution shared by training and inference graphs.
pub(crate) fn conv_forward(g: &mut GraphBuilder, x: &str, w: &str, b: &str) -> String {
    g.node(
        "Conv",
        &[x, w, b],
        vec![
            ("kernel_shape", ints(&[3, 3])),
            ("pads", ints(&[1, 1, 1, 1])),
        ],
    )
}

/// dW of a 3×3 pad-1 convolution.
fn conv_weight_grad(g: &mut GraphBuilder, x: &Var, dy: &str, cout: usize) -> String {
    let (b, cin, h, w) = (
        x.shape[0] as i64,
        x.shape[1] as i64,
        x.shape[2] as i64,
        x.shape[3] as i64,
    );
    let cout = cout as i64;
    if cin == 1 {
        // A convolution with the batch as channels: input X as [1, B, H, W], kernel dYᵀ as [Cout, B, H, W].
        let xr = g.reshape(&x.name, &[1, b, h, w]);
        let dyt = g.transpose(dy, &[1, 0, 2, 3]);
        let gw = g.node("Conv", &[&xr, &dyt], vec![("pads", ints(&[1, 1, 1, 1]))]);
        return g.reshape(&gw, &[cout, 1, 3, 3]);
    }
    // Nine shifted windows of the padded NHWC input, each one GEMM with dYᵀ: dW[:, :, kh, kw].
    let xn = g.transpose(&x.name, &[0, 2, 3, 1]);
    let pads = g.const_i64(&[0, 1, 1, 0, 0, 1, 1, 0]);
    let xp = g.node("Pad", &[&xn, &pads], vec![]);
    let dyt = g.transpose(dy, &[1, 0, 2, 3]);
    let dym = g.reshape(&dyt, &[cout, b * h * w]);
    let axes = g.const_i64(&[1, 2]);
    let unsq_axes = g.const_i64(&[2]);
    let mut taps = Vec::with_capacity(9);
    for kh in 0..3 {
        for kw in 0..3 {
            let starts = g.const_i64(&[kh, kw]);
            let ends = g.const_i64(&[kh + h, kw + w]);
            let s = g.node("Slice", &[&xp, &starts, &ends, &axes], vec![]);
            let sm = g.reshape(&s, &[b * h * w, cin]);
            let tap = g.bin("MatMul", &dym, &sm);
            taps.push(g.node("Unsqueeze", &[&tap, &unsq_axes], vec![]));
        }
    }
    let refs: Vec<&str> = taps.iter().map(String::as_str).collect();
    let cat = g.node("Concat", &refs, vec![("axis", Attr::Int(2))]);
    g.reshape(&cat, &[cout, cin, 3, 3])
}

/// The loss functions; each returns `(loss, dloss/dpred)`.
pub(crate) fn loss(
    g: &mut GraphBuilder,
    pred: &Var,
    y: &str,
    kind: crate::LossKind,
) -> (String, String) {
    match kind {
        crate::LossKind::Mse => mse(g, pred, y),
        crate::LossKind::Ccc => ccc(g, pred, y),
        crate::LossKind::MseCcc => {
            let (l1, g1) = mse(g, pred, y);
            let (l2, g2) = ccc(g, pred, y);
            (g.bin("Add", &l1, &l2), g.bin("Add", &g1, &g2))
        }
    }
}

/// Mean squared error over every element, as PyTorch's `MSELoss()`.
fn mse(g: &mut GraphBuilder, pred: &Var, y: &str) -> (String, String) {
    let count = pred.shape.iter().product::<usize>() as f32;
    let diff = g.bin("Sub", &pred.name, y);
    let sq = g.bin("Mul", &diff, &diff);
    let loss = g.node("ReduceMean", &[&sq], vec![("keepdims", Attr::Int(0))]);
    let k = g.scalar(2.0 / count);
    (loss, g.bin("Mul", &diff, &k))
}

/// Added to the CCC denominator so a batch with constant targets and predictions stays finite.
const CCC_EPS: f32 = 1e-8;

/// Mean over output columns of 1 − CCC, with population (1/N) statistics.
///
/// With D = σ²ŷ + σ²y + (μŷ − μy)² and C = 2·cov/D, dC/dŷᵢ = 2/(N·D)·((yᵢ − μy) − C·(ŷᵢ − μy)).
fn ccc(g: &mut GraphBuilder, pred: &Var, y: &str) -> (String, String) {
    let (n, cols) = (pred.shape[0] as f32, pred.shape[1] as f32);
    let mp = g.reduce("ReduceMean", &pred.name, &[0], true);
    let my = g.reduce("ReduceMean", y, &[0], true);
    let dp = g.bin("Sub", &pred.name, &mp);
    let dy = g.bin("Sub", y, &my);
    let dp2 = g.bin("Mul", &dp, &dp);
    let vp = g.reduce("ReduceMean", &dp2, &[0], true);
    let dy2 = g.bin("Mul", &dy, &dy);
    let vy = g.reduce("ReduceMean", &dy2, &[0], true);
    let dpy = g.bin("Mul", &dp, &dy);
    let cov = g.reduce("ReduceMean", &dpy, &[0], true);
    let dm = g.bin("Sub", &mp, &my);
    let dm2 = g.bin("Mul", &dm, &dm);
    let d = g.bin("Add", &vp, &vy);
    let d = g.bin("Add", &d, &dm2);
    let eps = g.scalar(CCC_EPS);
    let d = g.bin("Add", &d, &eps);
    let two = g.scalar(2.0);
    let cov2 = g.bin("Mul", &cov, &two);
    let c = g.bin("Div", &cov2, &d);
    let mc = g.node("ReduceMean", &[&c], vec![("keepdims", Attr::Int(0))]);
    let one = g.scalar(1.0);
    let loss = g.bin("Sub", &one, &mc);
    // dL/dŷ = −(1/cols)·dC/dŷ.
    let pmy = g.bin("Sub", &pred.name, &my);
    let cp = g.bin("Mul", &c, &pmy);
    let num = g.bin("Sub", &dy, &cp);
    let k = g.scalar(-2.0 / (n * cols));
    let kd = g.bin("Div", &k, &d);
    (loss, g.bin("Mul", &num, &kd))
}

#[cfg(test)]
pub(crate) mod tests {
    //! Every op's backward against central finite differences.
    //!
    //! The graphs compute in f32, so the finite differences are taken of L = Σ y·r accumulated in f64
    //! on the host (r fixed and random): each y carries a rounding error of about 6e-8·|y|, so L is
    //! off by ~1e-6 for these sizes, which divided by 2·eps (1e-2) is ~1e-4. The ops are linear or
    //! smooth (inputs keep ReLU and max-pool away from their kinks), so truncation error is O(eps²).
    //! A tolerance of 1e-3 absolute plus 1e-2 relative is thus well above the noise and far below
    //! any real mistake (a wrong sign, index or scale factor).
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::fixed;
    use crate::runtime::{self, Device};
    use ort::session::Session;
    use ort::value::Tensor;
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    use rand_chacha::ChaCha8Rng;

    pub(crate) struct In {
        pub name: String,
        pub shape: Vec<usize>,
        pub data: Vec<f32>,
        /// Whether to check this input's gradient.
        pub check: bool,
    }

    pub(crate) fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect()
    }

    /// Distinct values in (−1, 1), at least 2/n apart and at least 1/n from zero: no ties, no kinks
    /// within a perturbation smaller than 1/n.
    pub(crate) fn spread(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n)
            .map(|k| ((k as f32 + 0.5) / n as f32) * 2.0 - 1.0)
            .collect();
        v.shuffle(rng);
        v
    }

    pub(crate) fn run(session: &mut Session, inputs: &[In], outputs: &[&str]) -> Vec<Vec<f32>> {
        let values: Vec<(String, Tensor<f32>)> = inputs
            .iter()
            .map(|i| {
                let shape: Vec<i64> = i.shape.iter().map(|&d| d as i64).collect();
                (
                    i.name.to_string(),
                    Tensor::from_array((shape, i.data.clone().into_boxed_slice())).unwrap(),
                )
            })
            .collect();
        let out = session.run(values).unwrap();
        outputs
            .iter()
            .map(|o| out[*o].try_extract_tensor::<f32>().unwrap().1.to_vec())
            .collect()
    }

    /// Compares analytic gradients (graph outputs `grad.<name>`) of every checked input with central
    /// differences of `objective(outputs)`, at up to `per_tensor` coordinates per input.
    pub(crate) fn compare(
        session: &mut Session,
        mut inputs: Vec<In>,
        value_outputs: &[&str],
        objective: &dyn Fn(&[Vec<f32>]) -> f64,
        eps: f32,
        per_tensor: usize,
        tol: (f64, f64),
    ) {
        let grad_names: Vec<String> = inputs
            .iter()
            .filter(|i| i.check)
            .map(|i| format!("grad.{}", i.name))
            .collect();
        let refs: Vec<&str> = grad_names.iter().map(String::as_str).collect();
        let analytic = run(session, &inputs, &refs);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut gi = 0;
        for k in 0..inputs.len() {
            if !inputs[k].check {
                continue;
            }
            let n = inputs[k].data.len();
            let mut coords: Vec<usize> = (0..n).collect();
            coords.shuffle(&mut rng);
            coords.truncate(per_tensor);
            for &c in &coords {
                let orig = inputs[k].data[c];
                inputs[k].data[c] = orig + eps;
                let lp = objective(&run(session, &inputs, value_outputs));
                inputs[k].data[c] = orig - eps;
                let lm = objective(&run(session, &inputs, value_outputs));
                inputs[k].data[c] = orig;
                let fd = (lp - lm) / (2.0 * f64::from(eps));
                let an = f64::from(analytic[gi][c]);
                assert!(
                    (an - fd).abs() <= tol.0 + tol.1 * fd.abs(),
                    "d/d{}[{c}]: analytic {an}, finite difference {fd}",
                    inputs[k].name
                );
            }
            gi += 1;
        }
    }

    pub(crate) fn session(g: GraphBuilder) -> Session {
        use prost::Message;
        runtime::session(&g.finish("test").encode_to_vec(), Device::Cpu)
            .unwrap()
            .0
    }

    /// Checks the backward of `forward` applied to `inputs` (the first is `x`).
    fn check_op(
        inputs: Vec<In>,
        cuda: bool,
        eps: f32,
        forward: &dyn Fn(&mut GraphBuilder, &mut Tape, &[Var]) -> Var,
    ) {
        let mut g = GraphBuilder::new();
        let vars: Vec<Var> = inputs
            .iter()
            .map(|i| {
                g.input(&i.name, &fixed(&i.shape));
                Var {
                    name: i.name.clone(),
                    shape: i.shape.clone(),
                }
            })
            .collect();
        let mut tape = Tape::new(cuda);
        let y = forward(&mut g, &mut tape, &vars);
        g.input("r", &fixed(&y.shape));
        let (grads, dx) = tape.backward(&mut g, "r".into());
        g.rename(&y.name, "y");
        g.output("y", &fixed(&y.shape));
        for i in inputs.iter().filter(|i| i.check) {
            let grad = if i.name == "x" {
                dx.clone().unwrap()
            } else {
                grads.iter().find(|(p, _)| *p == i.name).unwrap().1.clone()
            };
            g.rename(&grad, &format!("grad.{}", i.name));
            g.output(&format!("grad.{}", i.name), &fixed(&i.shape));
        }
        let mut s = session(g);
        let n: usize = y.shape.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let r: Vec<f64> = random(&mut rng, n, 1.0)
            .into_iter()
            .map(f64::from)
            .collect();
        let mut all = inputs;
        all.push(In {
            name: "r".into(),
            shape: y.shape.clone(),
            data: r.iter().map(|&v| v as f32).collect(),
            check: false,
        });
        let objective = |o: &[Vec<f32>]| {
            o[0].iter()
                .zip(&r)
                .map(|(&a, b)| f64::from(a) * b)
                .sum::<f64>()
        };
        compare(&mut s, all, &["y"], &objective, eps, 12, (1e-3, 1e-2));
    }

    fn x_in(shape: &[usize], data: Vec<f32>, check: bool) -> In {
        In {
            name: "x".into(),
            shape: shape.to_vec(),
            data,
            check,
        }
    }

    #[test]
    fn conv_single_channel_weight_grad() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let inputs = vec![
            x_in(&[2, 1, 4, 4], random(&mut rng, 32, 1.0), false),
            In {
                name: "w".into(),
                shape: vec![3, 1, 3, 3],
                data: random(&mut rng, 27, 0.5),
                check: true,
            },
            In {
                name: "b".into(),
                shape: vec![3],
                data: random(&mut rng, 3, 0.5),
                check: true,
            },
        ];
        check_op(inputs, false, 1e-2, &|g, t, v| {
            t.conv(g, &v[0], "w", "b", 3, false)
        });
    }

    #[test]
    fn conv_multi_channel_all_grads() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let inputs = vec![
            x_in(&[2, 3, 4, 4], random(&mut rng, 96, 1.0), true),
            In {
                name: "w".into(),
                shape: vec![4, 3, 3, 3],
                data: random(&mut rng, 108, 0.5),
                check: true,
            },
            In {
                name: "b".into(),
                shape: vec![4],
                data: random(&mut rng, 4, 0.5),
                check: true,
            },
        ];
        check_op(inputs, false, 1e-2, &|g, t, v| {
            t.conv(g, &v[0], "w", "b", 4, true)
        });
    }

    #[test]
    fn conv_single_channel_input_grad() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let inputs = vec![
            x_in(&[1, 1, 6, 6], random(&mut rng, 36, 1.0), true),
            In {
                name: "w".into(),
                shape: vec![2, 1, 3, 3],
                data: random(&mut rng, 18, 0.5),
                check: false,
            },
            In {
                name: "b".into(),
                shape: vec![2],
                data: random(&mut rng, 2, 0.5),
                check: false,
            },
        ];
        check_op(inputs, false, 1e-2, &|g, t, v| {
            t.conv(g, &v[0], "w", "b", 2, true)
        });
    }

    #[test]
    fn batchnorm_grads_and_running_stats() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (b, c, h, w) = (3, 2, 3, 3);
        let x: Vec<f32> = random(&mut rng, b * c * h * w, 1.0)
            .iter()
            .map(|v| v * 2.0 + 0.5)
            .collect();
        let inputs = vec![
            x_in(&[b, c, h, w], x.clone(), true),
            In {
                name: "gamma".into(),
                shape: vec![c],
                data: vec![1.3, 0.7],
                check: true,
            },
            In {
                name: "beta".into(),
                shape: vec![c],
                data: vec![0.2, -0.4],
                check: true,
            },
            In {
                name: "rm".into(),
                shape: vec![c],
                data: vec![0.1, -0.2],
                check: false,
            },
            In {
                name: "rv".into(),
                shape: vec![c],
                data: vec![1.5, 0.5],
                check: false,
            },
        ];
        let forward = |g: &mut GraphBuilder, t: &mut Tape, v: &[Var]| {
            let names = BnNames {
                gamma: "gamma",
                beta: "beta",
                running_mean: "rm",
                running_var: "rv",
                new_running_mean: "new_rm",
                new_running_var: "new_rv",
            };
            g.output("new_rm", &fixed(&[2]));
            g.output("new_rv", &fixed(&[2]));
            t.batchnorm(g, &v[0], &names)
        };
        check_op(inputs, false, 1e-2, &forward);

        // The running statistics follow PyTorch: momentum 0.1, unbiased variance.
        let mut g = GraphBuilder::new();
        for (name, shape) in [
            ("x", vec![b, c, h, w]),
            ("gamma", vec![c]),
            ("beta", vec![c]),
            ("rm", vec![c]),
            ("rv", vec![c]),
        ] {
            g.input(name, &fixed(&shape));
        }
        let y = forward(
            &mut g,
            &mut Tape::new(false),
            &[Var {
                name: "x".into(),
                shape: vec![b, c, h, w],
            }],
        );
        g.rename(&y.name, "y");
        g.output("y", &fixed(&[b, c, h, w]));
        let mut s = session(g);
        let ins = vec![
            x_in(&[b, c, h, w], x.clone(), false),
            In {
                name: "gamma".into(),
                shape: vec![c],
                data: vec![1.3, 0.7],
                check: false,
            },
            In {
                name: "beta".into(),
                shape: vec![c],
                data: vec![0.2, -0.4],
                check: false,
            },
            In {
                name: "rm".into(),
                shape: vec![c],
                data: vec![0.1, -0.2],
                check: false,
            },
            In {
                name: "rv".into(),
                shape: vec![c],
                data: vec![1.5, 0.5],
                check: false,
            },
        ];
        let out = run(&mut s, &ins, &["new_rm", "new_rv", "y"]);
        for ch in 0..c {
            let vals: Vec<f64> = (0..b)
                .flat_map(|n| (0..h * w).map(move |k| (n * c + ch) * h * w + k))
                .map(|i| f64::from(x[i]))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
            let unbiased = var * vals.len() as f64 / (vals.len() - 1) as f64;
            let rm0 = [0.1, -0.2][ch];
            let rv0 = [1.5, 0.5][ch];
            assert!((f64::from(out[0][ch]) - (0.9 * rm0 + 0.1 * m)).abs() < 1e-5);
            assert!((f64::from(out[1][ch]) - (0.9 * rv0 + 0.1 * unbiased)).abs() < 1e-5);
            // And the forward normalises with the biased variance.
            let i0 = ch * h * w;
            let expect =
                (f64::from(x[i0]) - m) / (var + 1e-5).sqrt() * [1.3, 0.7][ch] + [0.2, -0.4][ch];
            assert!((f64::from(out[2][i0]) - expect).abs() < 1e-4);
        }
    }

    #[test]
    fn maxpool_relu_cpu_and_scatter_paths() {
        for cuda in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(6);
            let inputs = vec![x_in(&[2, 2, 4, 4], spread(&mut rng, 64), true)];
            check_op(inputs, cuda, 5e-3, &|g, t, v| {
                let p = t.maxpool(g, &v[0]);
                t.relu(g, &p)
            });
        }
    }

    #[test]
    fn global_pool_flatten_dropout_linear() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let inputs = vec![
            x_in(&[3, 4, 2, 2], random(&mut rng, 48, 1.0), true),
            In {
                name: "noise".into(),
                shape: vec![3, 4],
                data: (0..12).map(|_| rng.random::<f32>()).collect(),
                check: false,
            },
            In {
                name: "w".into(),
                shape: vec![5, 4],
                data: random(&mut rng, 20, 0.5),
                check: true,
            },
            In {
                name: "b".into(),
                shape: vec![5],
                data: random(&mut rng, 5, 0.5),
                check: true,
            },
        ];
        check_op(inputs, false, 1e-2, &|g, t, v| {
            let p = t.global_avg_pool(g, &v[0]);
            let f = t.flatten(g, &p);
            let d = t.dropout(g, &f, "noise", 0.4);
            t.linear(g, &d, "w", "b", 5, true)
        });
    }

    #[test]
    fn flatten_of_spatial_maps() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let inputs = vec![
            x_in(&[2, 2, 2, 2], random(&mut rng, 16, 1.0), true),
            In {
                name: "w".into(),
                shape: vec![3, 8],
                data: random(&mut rng, 24, 0.5),
                check: false,
            },
            In {
                name: "b".into(),
                shape: vec![3],
                data: random(&mut rng, 3, 0.5),
                check: false,
            },
        ];
        check_op(inputs, false, 1e-2, &|g, t, v| {
            let f = t.flatten(g, &v[0]);
            t.linear(g, &f, "w", "b", 3, true)
        });
    }

    #[test]
    fn dropout_masks_and_scales() {
        let mut g = GraphBuilder::new();
        g.input("x", &fixed(&[1, 4]));
        g.input("noise", &fixed(&[1, 4]));
        let y = Tape::new(false).dropout(
            &mut g,
            &Var {
                name: "x".into(),
                shape: vec![1, 4],
            },
            "noise",
            0.5,
        );
        g.rename(&y.name, "y");
        g.output("y", &fixed(&[1, 4]));
        let mut s = session(g);
        let ins = vec![
            x_in(&[1, 4], vec![1.0, 2.0, 3.0, 4.0], false),
            In {
                name: "noise".into(),
                shape: vec![1, 4],
                data: vec![0.1, 0.5, 0.9, 0.49],
                check: false,
            },
        ];
        assert_eq!(run(&mut s, &ins, &["y"])[0], vec![0.0, 4.0, 6.0, 0.0]);
    }

    fn check_loss(kind: crate::LossKind) -> f64 {
        let (n, o) = (6, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let pred = random(&mut rng, n * o, 0.8);
        let y = random(&mut rng, n * o, 0.8);
        let mut g = GraphBuilder::new();
        g.input("p", &fixed(&[n, o]));
        g.input("y", &fixed(&[n, o]));
        let (l, dp) = loss(
            &mut g,
            &Var {
                name: "p".into(),
                shape: vec![n, o],
            },
            "y",
            kind,
        );
        g.rename(&l, "loss");
        g.rename(&dp, "grad.p");
        g.output("loss", &[]);
        g.output("grad.p", &fixed(&[n, o]));
        let mut s = session(g);
        let ins = vec![
            In {
                name: "p".into(),
                shape: vec![n, o],
                data: pred.clone(),
                check: true,
            },
            In {
                name: "y".into(),
                shape: vec![n, o],
                data: y.clone(),
                check: false,
            },
        ];
        let value = f64::from(run(&mut s, &ins, &["loss"])[0][0]);
        compare(
            &mut s,
            ins,
            &["loss"],
            &|o| f64::from(o[0][0]),
            1e-2,
            12,
            (1e-3, 1e-2),
        );
        // The value against a host computation in f64.
        let col = |v: &[f32], j: usize| {
            (0..n)
                .map(|i| f64::from(v[i * o + j]))
                .collect::<Vec<f64>>()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mut mse = 0.0;
        let mut one_minus_ccc = 0.0;
        for j in 0..o {
            let (p, t) = (col(&pred, j), col(&y, j));
            let (mp, mt) = (mean(&p), mean(&t));
            let vp = mean(&p.iter().map(|a| (a - mp).powi(2)).collect::<Vec<_>>());
            let vt = mean(&t.iter().map(|a| (a - mt).powi(2)).collect::<Vec<_>>());
            let cov = mean(
                &p.iter()
                    .zip(&t)
                    .map(|(a, b)| (a - mp) * (b - mt))
                    .collect::<Vec<_>>(),
            );
            one_minus_ccc += (1.0 - 2.0 * cov / (vp + vt + (mp - mt).powi(2))) / o as f64;
            mse += p.iter().zip(&t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / (n * o) as f64;
        }
        let expect = match kind {
            crate::LossKind::Mse => mse,
            crate::LossKind::Ccc => one_minus_ccc,
            crate::LossKind::MseCcc => mse + one_minus_ccc,
        };
        assert!(
            (value - expect).abs() < 1e-5,
            "{kind:?}: {value} vs {expect}"
        );
        value
    }

    #[test]
    fn losses_values_and_grads() {
        let mse = check_loss(crate::LossKind::Mse);
        let ccc = check_loss(crate::LossKind::Ccc);
        let both = check_loss(crate::LossKind::MseCcc);
        assert!((both - mse - ccc).abs() < 1e-5);
    }
}
