//! ReLU.

use super::{Backward, Fwd, Var};
use crate::graph::GraphBuilder;

/// `max(x, 0)`; the backward masks by the output, so it keeps no copy of the input.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var) -> Var {
    let y = f.g.node("Relu", &[&x.name], vec![]);
    f.record([&x.name], &y, ReluBackward { y: y.clone() });
    Var::new(y, x.shape.clone())
}

struct ReluBackward {
    y: String,
}

impl Backward<1> for ReluBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        let zero = g.scalar(0.0);
        let pos = g.bin("Greater", &self.y, &zero);
        [Some(g.node("Where", &[&pos, dy, &zero], vec![]))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op, spread};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `spread` keeps every input at least 1/48 from the kink at 0, beyond the 5e-3 step, so
    /// the central difference is exact up to rounding: the default tolerance.
    #[test]
    fn relu_grad() {
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let inputs = vec![In {
            name: "x".into(),
            shape: vec![2, 3, 2, 4],
            data: spread(&mut rng, 48),
            check: true,
        }];
        check_op(inputs, false, 5e-3, TOL, &|f, v| forward(f, &v[0]));
    }
}
