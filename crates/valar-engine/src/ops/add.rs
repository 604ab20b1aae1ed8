//! Elementwise sum of two values of the same shape: a residual connection.

use super::{Backward, Fwd, Var};
use crate::graph::GraphBuilder;

/// `a + b`. Both operands must have the same shape (no broadcasting), so the gradient of each
/// is the output's gradient itself.
pub(crate) fn forward(f: &mut Fwd<'_>, a: &Var, b: &Var) -> Result<Var, String> {
    if a.shape != b.shape {
        return Err(format!("cannot add shapes {:?} and {:?}", a.shape, b.shape));
    }
    let y = f.g.bin("Add", &a.name, &b.name);
    f.record([&a.name, &b.name], &y, AddBackward);
    Ok(Var::new(y, a.shape.clone()))
}

struct AddBackward;

impl Backward<2> for AddBackward {
    fn backward(&self, _g: &mut GraphBuilder, dy: &str, needs: [bool; 2]) -> [Option<String>; 2] {
        needs.map(|n| n.then(|| dy.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
        check_op(inputs, false, 1e-2, TOL, &|f, v| {
            let s = forward(f, &v[0], &v[1]).unwrap();
            forward(f, &s, &v[0]).unwrap()
        });
    }
}
