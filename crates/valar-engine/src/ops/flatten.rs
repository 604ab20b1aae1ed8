//! Flatten: `[B, ...]` → `[B, product of the rest]`.

use super::{Backward, Fwd, Var, shape_i64};
use crate::graph::{Attr, GraphBuilder};

/// `[B, ...]` → `[B, product of the rest]`.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var) -> Var {
    let y =
        f.g.node("Flatten", &[&x.name], vec![("axis", Attr::Int(1))]);
    f.record([&x.name], &y, FlattenBackward { x: x.clone() });
    let rest = x.shape[1..].iter().product();
    Var::new(y, vec![x.shape[0], rest])
}

struct FlattenBackward {
    x: Var,
}

impl Backward<1> for FlattenBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        [Some(g.reshape(dy, &shape_i64(&self.x.shape)))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A reshape, so exact up to f32 rounding: the default tolerance.
    #[test]
    fn flatten_of_spatial_maps() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let inputs = vec![In::random("x", &[2, 2, 2, 3], &mut rng, 1.0, true)];
        check_op(inputs, false, 1e-2, TOL, &|f, v| forward(f, &v[0]));
    }
}
