//! Optimizer updates (AdamW, SGD with momentum) emitted as elementwise ONNX ops.

use crate::graph::GraphBuilder;

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

impl OptimizerKind {
    /// AdamW with PyTorch's defaults.
    pub fn adamw_default() -> Self {
        Self::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
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

/// The output name carrying the updated value of state tensor `name`.
pub(crate) fn new_name(name: &str) -> String {
    format!("new.{name}")
}

/// Emits one update step for every `(parameter, gradient)` pair. `lr` and `step` are scalar graph
/// inputs; `step` is the 1-based number of this step (PyTorch's `state["step"]` after increment).
pub(crate) fn emit_update(
    g: &mut GraphBuilder,
    kind: &OptimizerKind,
    grads: &[(String, String)],
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
            // Per-step scalars, computed once and shared by every parameter.
            let one = g.scalar(1.0);
            let b1 = g.scalar(beta1);
            let b2 = g.scalar(beta2);
            let p1 = g.bin("Pow", &b1, step);
            let bc1 = g.bin("Sub", &one, &p1);
            let p2 = g.bin("Pow", &b2, step);
            let bc2 = g.bin("Sub", &one, &p2);
            // step_size = lr / bc1; denominator = sqrt(v)/sqrt(bc2) + eps, as torch.optim.AdamW.
            let step_size = g.bin("Div", lr, &bc1);
            let sq = g.node("Sqrt", &[&bc2], vec![]);
            let inv_sqrt_bc2 = g.node("Reciprocal", &[&sq], vec![]);
            let decay = if weight_decay != 0.0 {
                let wd = g.scalar(weight_decay);
                let lw = g.bin("Mul", lr, &wd);
                Some(g.bin("Sub", &one, &lw))
            } else {
                None
            };
            let one_m_b1 = g.scalar(1.0 - beta1);
            let one_m_b2 = g.scalar(1.0 - beta2);
            let epsc = g.scalar(eps);
            for (p, grad) in grads {
                let names = kind.state_names(p);
                let (m, v) = (&names[0], &names[1]);
                let mb = g.bin("Mul", m, &b1);
                let gb = g.bin("Mul", grad, &one_m_b1);
                let new_m = new_name(m);
                g.node_to("Add", &[&mb, &gb], &[&new_m], vec![]);
                let vb = g.bin("Mul", v, &b2);
                let gg = g.bin("Mul", grad, grad);
                let ggb = g.bin("Mul", &gg, &one_m_b2);
                let new_v = new_name(v);
                g.node_to("Add", &[&vb, &ggb], &[&new_v], vec![]);
                let sv = g.node("Sqrt", &[&new_v], vec![]);
                let svk = g.bin("Mul", &sv, &inv_sqrt_bc2);
                let denom = g.bin("Add", &svk, &epsc);
                let ratio = g.bin("Div", &new_m, &denom);
                let upd = g.bin("Mul", &ratio, &step_size);
                let base = match &decay {
                    Some(d) => g.bin("Mul", p, d),
                    None => p.clone(),
                };
                g.node_to("Sub", &[&base, &upd], &[&new_name(p)], vec![]);
            }
        }
        OptimizerKind::Sgd {
            momentum,
            weight_decay,
        } => {
            let mom = g.scalar(momentum);
            let wd = g.scalar(weight_decay);
            for (p, grad) in grads {
                let buf = &kind.state_names(p)[0];
                let d = if weight_decay != 0.0 {
                    let pw = g.bin("Mul", p, &wd);
                    g.bin("Add", grad, &pw)
                } else {
                    grad.clone()
                };
                // buf starts at zero, so momentum·0 + g reproduces PyTorch's first-step buf = g.
                let bm = g.bin("Mul", buf, &mom);
                let new_buf = new_name(buf);
                g.node_to("Add", &[&bm, &d], &[&new_buf], vec![]);
                let upd = g.bin("Mul", &new_buf, lr);
                g.node_to("Sub", &[p, &upd], &[&new_name(p)], vec![]);
            }
        }
    }
}
