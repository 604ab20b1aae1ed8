//! Elementwise sum of two values of the same shape: a residual connection.

use super::{Backward, Tape, Var};
use crate::graph::GraphBuilder;

/// The inference form.
pub(crate) fn infer(g: &mut GraphBuilder, a: &str, b: &str) -> String {
    g.bin("Add", a, b)
}

/// The training form. Both operands must have the same shape (no broadcasting), so the
/// gradient of each is the output's gradient itself.
pub(crate) fn train(t: &mut Tape, g: &mut GraphBuilder, a: &Var, b: &Var) -> Var {
    let y = infer(g, &a.name, &b.name);
    t.record(&[&a.name, &b.name], &y, AddBackward);
    Var::new(y, a.shape.clone())
}

struct AddBackward;

impl Backward for AddBackward {
    fn backward(
        &self,
        _g: &mut GraphBuilder,
        dy: &str,
        needs: &[bool],
        _cuda: bool,
    ) -> Vec<Option<String>> {
        needs.iter().map(|&n| n.then(|| dy.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Linear, so exact up to f32 rounding: the default tolerance. Both operands are checked,
    /// and a value added to itself gets twice the gradient.
    #[test]
    fn add_grads() {
        let mut rng = ChaCha8Rng::seed_from_u64(18);
        let inputs = vec![
            In::random("x", &[2, 3, 2, 2], &mut rng, 1.0, true),
            In::random("z", &[2, 3, 2, 2], &mut rng, 1.0, true),
        ];
        check_op(inputs, false, 1e-2, TOL, &|g, t, v| {
            let s = train(t, g, &v[0], &v[1]);
            train(t, g, &s, &v[0])
        });
    }
}
