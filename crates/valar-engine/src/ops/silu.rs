//! SiLU (swish), x·σ(x): the smooth activation.

use super::{Backward, Fwd, Var};
use crate::graph::GraphBuilder;

/// `x · Sigmoid(x)` (opset 18 has no SiLU node); keeps σ(x) for the backward.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var) -> Var {
    let s = f.g.node("Sigmoid", &[&x.name], vec![]);
    let y = f.g.bin("Mul", &x.name, &s);
    f.record(
        [&x.name],
        &y,
        SiluBackward {
            x: x.name.clone(),
            s,
        },
    );
    Var::new(y, x.shape.clone())
}

struct SiluBackward {
    x: String,
    s: String,
}

impl Backward<1> for SiluBackward {
    /// d(x·σ)/dx = σ·(1 + x·(1 − σ)).
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        let one = g.scalar(1.0);
        let rest = g.bin("Sub", &one, &self.s);
        let xr = g.bin("Mul", &self.x, &rest);
        let u = g.bin("Add", &xr, &one);
        let d = g.bin("Mul", &self.s, &u);
        [Some(g.bin("Mul", dy, &d))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// SiLU's third derivative is below 1 in magnitude, so with eps = 1e-2 the truncation error
    /// eps²/6·|f'''| < 2e-5: the default tolerance, inputs over (−3, 3) to cover both tails.
    #[test]
    fn silu_grad() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let inputs = vec![In::random("x", &[2, 3, 2, 2], &mut rng, 3.0, true)];
        check_op(inputs, false, 1e-2, TOL, &|f, v| forward(f, &v[0]));
    }
}
