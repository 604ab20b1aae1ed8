//! A fully connected layer, `y = x Wᵀ + b`, with W stored `[out, in]` as in PyTorch.

use super::{Backward, Fwd, Var};
use crate::graph::{Attr, GraphBuilder};

/// A linear layer's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Linear {
    /// Output features.
    pub out: usize,
    /// Whether the layer adds a bias.
    pub bias: bool,
}

impl Linear {
    /// A layer to `out` features, with bias.
    pub(crate) const fn new(out: usize) -> Self {
        Self { out, bias: true }
    }
}

/// `x Wᵀ + b` for a `[batch, features]` input `x`, weight `w` and bias `b` (when `l.bias`).
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var, w: &str, b: Option<&str>, l: &Linear) -> Var {
    let y = match b {
        Some(b) => {
            f.g.node("Gemm", &[&x.name, w, b], vec![("transB", Attr::Int(1))])
        }
        None => {
            f.g.node("Gemm", &[&x.name, w], vec![("transB", Attr::Int(1))])
        }
    };
    let rule = LinearBackward {
        x: x.name.clone(),
        w: w.into(),
    };
    match b {
        Some(b) => f.record([&x.name, w, b], &y, rule),
        None => f.record([&x.name, w], &y, rule),
    }
    Var::new(y, vec![x.shape[0], l.out])
}

/// The rule for `[x, w]` (no bias) and for `[x, w, b]`.
struct LinearBackward {
    x: String,
    w: String,
}

impl Backward<2> for LinearBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, needs: [bool; 2]) -> [Option<String>; 2] {
        let [dx, dw, _] = <Self as Backward<3>>::backward(self, g, dy, [needs[0], needs[1], false]);
        [dx, dw]
    }
}

impl Backward<3> for LinearBackward {
    /// dW = dyᵀ x, db = Σ dy over the batch, dX = dy W (emitted in that order).
    fn backward(&self, g: &mut GraphBuilder, dy: &str, needs: [bool; 3]) -> [Option<String>; 3] {
        let [need_x, need_w, need_b] = needs;
        let dw = need_w.then(|| g.node("Gemm", &[dy, &self.x], vec![("transA", Attr::Int(1))]));
        let db = need_b.then(|| g.reduce("ReduceSum", dy, &[0], false));
        let dx = need_x.then(|| g.bin("MatMul", dy, &self.w));
        [dx, dw, db]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Bilinear in x and W, so exact up to f32 rounding: the default tolerance, with and
    /// without bias.
    #[test]
    fn linear_grads() {
        for bias in [true, false] {
            let mut rng = ChaCha8Rng::seed_from_u64(26);
            let mut inputs = vec![
                In::random("x", &[3, 4], &mut rng, 1.0, true),
                In::random("w", &[5, 4], &mut rng, 0.5, true),
            ];
            if bias {
                inputs.push(In::random("b", &[5], &mut rng, 0.5, true));
            }
            check_op(inputs, false, 1e-2, TOL, &|f, v| {
                forward(f, &v[0], "w", bias.then_some("b"), &Linear { out: 5, bias })
            });
        }
    }
}
