//! A fully connected layer, `y = x Wᵀ + b`, with W stored `[out, in]` as in PyTorch.

use super::{Backward, Tape, Var};
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

/// The inference form (also the forward of the training form).
pub(crate) fn infer(g: &mut GraphBuilder, x: &str, w: &str, b: Option<&str>) -> String {
    let mut inputs = vec![x, w];
    inputs.extend(b);
    g.node("Gemm", &inputs, vec![("transB", Attr::Int(1))])
}

/// The training form.
pub(crate) fn train(
    t: &mut Tape,
    g: &mut GraphBuilder,
    x: &Var,
    w: &str,
    b: Option<&str>,
    l: &Linear,
) -> Var {
    let y = infer(g, &x.name, w, b);
    let mut inputs = vec![x.name.as_str(), w];
    inputs.extend(b);
    t.record(
        &inputs,
        &y,
        LinearBackward {
            x: x.name.clone(),
            w: w.into(),
            bias: b.is_some(),
        },
    );
    Var::new(y, vec![x.shape[0], l.out])
}

struct LinearBackward {
    x: String,
    w: String,
    bias: bool,
}

impl Backward for LinearBackward {
    fn backward(
        &self,
        g: &mut GraphBuilder,
        dy: &str,
        needs: &[bool],
        _cuda: bool,
    ) -> Vec<Option<String>> {
        let dw = needs[1].then(|| g.node("Gemm", &[dy, &self.x], vec![("transA", Attr::Int(1))]));
        let mut out = vec![None, dw];
        if self.bias {
            out.push(needs[2].then(|| g.reduce("ReduceSum", dy, &[0], false)));
        }
        out[0] = needs[0].then(|| g.bin("MatMul", dy, &self.w));
        out
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
            check_op(inputs, false, 1e-2, TOL, &|g, t, v| {
                train(
                    t,
                    g,
                    &v[0],
                    "w",
                    bias.then_some("b"),
                    &Linear { out: 5, bias },
                )
            });
        }
    }
}
