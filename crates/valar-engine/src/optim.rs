//! Optimizer updates (AdamW, SGD with momentum) emitted as elementwise ONNX ops.

use crate::graph::GraphBuilder;
use crate::names;

/// An optimizer and its hyper-parameters (the learning rate is a per-step input).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// PyTorch's `AdamW`: decoupled weight decay, bias correction from the step number.
    AdamW {
        /// First-moment decay (PyTorch default 0.9).
        beta1: f32,
        /// Second-moment decay (PyTorch default 0.999).
        beta2: f32,
        /// Added to the denominator (PyTorch default 1e-8).
        eps: f32,
        /// Decoupled weight decay (PyTorch default 0.01).
        weight_decay: f32,
    },
    /// PyTorch's `SGD` with momentum (no dampening, no Nesterov) and L2 weight decay added to the gradient.
    Sgd {
        /// Momentum factor.
        momentum: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
    },
}

impl Default for OptimizerKind {
    /// AdamW with PyTorch's defaults.
    fn default() -> Self {
        Self::adamw_default()
    }
}

impl OptimizerKind {
    /// AdamW with PyTorch's defaults.
    pub fn adamw_default() -> Self {
        Self::adamw(0.01)
    }

    /// AdamW with PyTorch's betas and epsilon and the given decoupled weight decay: the one
    /// place those constants are written.
    pub fn adamw(weight_decay: f32) -> Self {
        Self::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    /// Names of the state tensors this optimizer keeps for parameter `param`.
    pub(crate) fn state_names(&self, param: &str) -> Vec<String> {
        match self {
            Self::AdamW { .. } => vec![format!("{param}.adamw_m"), format!("{param}.adamw_v")],
            Self::Sgd { .. } => vec![format!("{param}.sgd_momentum")],
        }
    }
}

/// The factor the training graph applies to the loss gradient before the backward pass, so the
/// gradients reaching [`emit_update`] are already scaled: AdamW's (1 − β₁) then costs no extra pass
/// over every parameter (backpropagation is linear in the seed).
pub(crate) fn grad_scale(kind: &OptimizerKind) -> f32 {
    match *kind {
        OptimizerKind::AdamW { beta1, .. } if (1.0 - beta1) >= 1e-6 => 1.0 - beta1,
        _ => 1.0,
    }
}

/// Emits one update step for every `(parameter, gradient)` pair, where each gradient is the true
/// gradient times `scale` (see [`grad_scale`]), writing [`names::new`] of every parameter and
/// optimizer state tensor. `lr` and `step` are scalar graph inputs; `step` is the 1-based
/// number of this step (PyTorch's `state["step"]` after increment). `after[i]` lists values
/// that must exist before parameter `i` is overwritten (the trainer updates in place; see
/// `Arch::update_waits`); the update's per-parameter scalar waits for them, with the same bits.
pub(crate) fn emit_update(
    g: &mut GraphBuilder,
    kind: &OptimizerKind,
    grads: &[(String, String)],
    after: &[Vec<String>],
    scale: f32,
    lr: &str,
    step: &str,
) {
    match *kind {
        OptimizerKind::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let sc = adam_scalars(g, [beta1, beta2, eps, weight_decay], scale, lr, step);
            emit_adamw(g, kind, &sc, grads, after);
        }
        OptimizerKind::Sgd {
            momentum,
            weight_decay,
        } => emit_sgd(g, kind, (momentum, weight_decay), grads, after, scale, lr),
    }
}

/// `scalar` itself, or, when `after` lists values, `scalar` + 0 computed after them (see
/// [`GraphBuilder::zero_after`]).
fn waiting(g: &mut GraphBuilder, scalar: &str, after: Option<&Vec<String>>) -> String {
    match after {
        Some(after) if !after.is_empty() => {
            let zero = g.zero_after(after);
            g.bin("Add", scalar, &zero)
        }
        _ => scalar.to_string(),
    }
}

/// AdamW's per-step scalars, computed once and shared by every parameter.
struct AdamScalars {
    b1: String,
    b2: String,
    /// k/s: the denominator's factor on √v'.
    k_over_s: String,
    /// ε/s: the denominator's constant.
    eps_over_s: String,
    /// 1 − lr·λ, the decoupled weight decay (none when λ = 0).
    decay: Option<String>,
    /// (1 − β₁)/scale, the factor on the scaled gradient (none when it is 1).
    cm: Option<String>,
    /// (1 − β₂)/scale², the factor on the squared scaled gradient.
    cv: String,
}

/// PyTorch's AdamW rearranged to 12 elementwise passes per parameter (from 14):
/// m' = β₁m + g̃ (g̃ = (1 − β₁)g), v' = β₂v + c·g̃², p' = (1 − lr·λ)p − m'/(√v'·k/s + ε/s) with
/// k = 1/√(1 − β₂ᵗ), s = lr/(1 − β₁ᵗ). m and v are PyTorch's `exp_avg` and `exp_avg_sq`.
fn emit_adamw(
    g: &mut GraphBuilder,
    kind: &OptimizerKind,
    sc: &AdamScalars,
    grads: &[(String, String)],
    after: &[Vec<String>],
) {
    for (i, (p, grad)) in grads.iter().enumerate() {
        let state = kind.state_names(p);
        let (m, v) = (&state[0], &state[1]);
        let mb = g.bin("Mul", m, &sc.b1);
        let gm = match &sc.cm {
            Some(c) => g.bin("Mul", grad, c),
            None => grad.clone(),
        };
        let new_m = names::new(m);
        g.node_to("Add", &[&mb, &gm], &[&new_m], vec![]);
        let vb = g.bin("Mul", v, &sc.b2);
        let gc = g.bin("Mul", grad, &sc.cv);
        let gg = g.bin("Mul", &gc, grad);
        let new_v = names::new(v);
        g.node_to("Add", &[&vb, &gg], &[&new_v], vec![]);
        let sv = g.node("Sqrt", &[&new_v], vec![]);
        let k_over_s = waiting(g, &sc.k_over_s, after.get(i));
        let svk = g.bin("Mul", &sv, &k_over_s);
        let denom = g.bin("Add", &svk, &sc.eps_over_s);
        let upd = g.bin("Div", &new_m, &denom);
        let base = match &sc.decay {
            Some(d) => g.bin("Mul", p, d),
            None => p.clone(),
        };
        g.node_to("Sub", &[&base, &upd], &[&names::new(p)], vec![]);
    }
}

/// Emits AdamW's per-step scalars from its `[β₁, β₂, ε, λ]`.
fn adam_scalars(
    g: &mut GraphBuilder,
    [beta1, beta2, eps, weight_decay]: [f32; 4],
    scale: f32,
    lr: &str,
    step: &str,
) -> AdamScalars {
    let one = g.scalar(1.0);
    let b1 = g.scalar(beta1);
    let b2 = g.scalar(beta2);
    let p1 = g.bin("Pow", &b1, step);
    let bc1 = g.bin("Sub", &one, &p1);
    let p2 = g.bin("Pow", &b2, step);
    let bc2 = g.bin("Sub", &one, &p2);
    // s = lr/bc1 and k = 1/sqrt(bc2) fold into the denominator's two scalars. A learning rate
    // of 0 is raised to 1e-30 so that they stay finite (the update is then ~1e-30·m/√v).
    let tiny = g.scalar(1e-30);
    let lr_pos = g.bin("Max", lr, &tiny);
    let s = g.bin("Div", &lr_pos, &bc1);
    let sq = g.node("Sqrt", &[&bc2], vec![]);
    let ks = g.bin("Mul", &sq, &s);
    let k_over_s = g.node("Reciprocal", &[&ks], vec![]);
    let epsc = g.scalar(eps);
    let eps_over_s = g.bin("Div", &epsc, &s);
    let decay = (weight_decay != 0.0).then(|| {
        let wd = g.scalar(weight_decay);
        let lw = g.bin("Mul", lr, &wd);
        g.bin("Sub", &one, &lw)
    });
    let cm = (1.0 - beta1) / scale;
    let cm = ((cm - 1.0).abs() > 1e-7).then(|| g.scalar(cm));
    let cv = g.scalar((1.0 - beta2) / (scale * scale));
    AdamScalars {
        b1,
        b2,
        k_over_s,
        eps_over_s,
        decay,
        cm,
        cv,
    }
}

/// PyTorch's SGD with momentum: buf' = momentum·buf + (g + λ·p), p' = p − lr·buf'.
fn emit_sgd(
    g: &mut GraphBuilder,
    kind: &OptimizerKind,
    (momentum, weight_decay): (f32, f32),
    grads: &[(String, String)],
    after: &[Vec<String>],
    scale: f32,
    lr: &str,
) {
    let mom = g.scalar(momentum);
    let wd = g.scalar(weight_decay);
    let unscale = g.scalar(1.0 / scale);
    for (i, (p, grad)) in grads.iter().enumerate() {
        let buf = &kind.state_names(p)[0];
        let grad = &if scale != 1.0 {
            g.bin("Mul", grad, &unscale)
        } else {
            grad.clone()
        };
        let d = if weight_decay != 0.0 {
            let pw = g.bin("Mul", p, &wd);
            g.bin("Add", grad, &pw)
        } else {
            grad.clone()
        };
        // buf starts at zero, so momentum·0 + g reproduces PyTorch's first-step buf = g.
        let bm = g.bin("Mul", buf, &mom);
        let new_buf = names::new(buf);
        g.node_to("Add", &[&bm, &d], &[&new_buf], vec![]);
        let lr = waiting(g, lr, after.get(i));
        let upd = g.bin("Mul", &new_buf, &lr);
        g.node_to("Sub", &[p, &upd], &[&names::new(p)], vec![]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::fixed;
    use crate::ops::tests::{In, run, session};

    /// Runs `steps` updates of parameter `p` with fixed gradients, feeding the state back each step.
    fn run_steps(kind: OptimizerKind, p: &[f32], grads: &[Vec<f32>], lr: f32) -> Vec<f32> {
        let n = p.len();
        let mut g = GraphBuilder::new();
        let state = kind.state_names("p");
        for name in ["p", "g"]
            .into_iter()
            .chain(state.iter().map(String::as_str))
        {
            g.input(name, &fixed(&[n]));
        }
        g.input("lr", &[]);
        g.input("step", &[]);
        let scale = grad_scale(&kind);
        emit_update(
            &mut g,
            &kind,
            &[("p".into(), "g".into())],
            &[],
            scale,
            "lr",
            "step",
        );
        let outs: Vec<String> = ["p".to_string()]
            .into_iter()
            .chain(state.iter().cloned())
            .map(|s| names::new(&s))
            .collect();
        for o in &outs {
            g.output(o, &fixed(&[n]));
        }
        let mut s = session(g);
        let mut values: Vec<Vec<f32>> = vec![p.to_vec()];
        values.extend(state.iter().map(|_| vec![0.0; n]));
        for (t, grad) in grads.iter().enumerate() {
            let mut ins = vec![
                In {
                    name: "p".into(),
                    shape: vec![n],
                    data: values[0].clone(),
                    check: false,
                },
                In {
                    name: "g".into(),
                    shape: vec![n],
                    data: grad.iter().map(|v| v * scale).collect(),
                    check: false,
                },
                In {
                    name: "lr".into(),
                    shape: vec![],
                    data: vec![lr],
                    check: false,
                },
                In {
                    name: "step".into(),
                    shape: vec![],
                    data: vec![(t + 1) as f32],
                    check: false,
                },
            ];
            for (k, name) in state.iter().enumerate() {
                ins.push(In {
                    name: name.clone(),
                    shape: vec![n],
                    data: values[k + 1].clone(),
                    check: false,
                });
            }
            let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
            values = run(&mut s, &ins, &refs);
        }
        values.swap_remove(0)
    }

    fn grads() -> Vec<Vec<f32>> {
        vec![
            vec![0.5, -1.0, 2.0e-3],
            vec![0.25, 3.0, -1.0e-3],
            vec![-0.75, 0.1, 0.0],
        ]
    }

    #[test]
    fn adamw_matches_pytorch_by_hand() {
        let (b1, b2, eps, wd, lr) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64, 0.1f64);
        let p0 = [1.0f32, -2.0, 0.5];
        let kind = OptimizerKind::AdamW {
            beta1: b1 as f32,
            beta2: b2 as f32,
            eps: eps as f32,
            weight_decay: wd as f32,
        };
        let got = run_steps(kind, &p0, &grads(), lr as f32);
        for i in 0..3 {
            let (mut p, mut m, mut v) = (f64::from(p0[i]), 0.0, 0.0);
            for (t, g) in grads().iter().enumerate() {
                let g = f64::from(g[i]);
                let t = (t + 1) as i32;
                p *= 1.0 - lr * wd;
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                let denom = (v / (1.0 - b2.powi(t))).sqrt() + eps;
                p -= lr / (1.0 - b1.powi(t)) * m / denom;
            }
            assert!(
                (f64::from(got[i]) - p).abs() < 1e-5 * p.abs().max(1.0),
                "[{i}] {} vs {p}",
                got[i]
            );
        }
    }

    #[test]
    fn adamw_with_zero_learning_rate_keeps_parameters() {
        let p0 = [1.0f32, -2.0, 0.5];
        let got = run_steps(OptimizerKind::adamw_default(), &p0, &grads(), 0.0);
        for (a, b) in got.iter().zip(&p0) {
            assert!(a.is_finite() && (a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn sgd_momentum_matches_pytorch_by_hand() {
        let (mom, wd, lr) = (0.9f64, 0.05f64, 0.2f64);
        let p0 = [1.0f32, -2.0, 0.5];
        let kind = OptimizerKind::Sgd {
            momentum: mom as f32,
            weight_decay: wd as f32,
        };
        let got = run_steps(kind, &p0, &grads(), lr as f32);
        for i in 0..3 {
            let (mut p, mut buf) = (f64::from(p0[i]), None::<f64>);
            for g in grads() {
                let d = f64::from(g[i]) + wd * p;
                let b = buf.map_or(d, |b| mom * b + d);
                buf = Some(b);
                p -= lr * b;
            }
            assert!(
                (f64::from(got[i]) - p).abs() < 1e-5 * p.abs().max(1.0),
                "[{i}] {} vs {p}",
                got[i]
            );
        }
    }
}
