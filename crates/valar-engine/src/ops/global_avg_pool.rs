//! Global average pooling: the mean of each channel's map, `[B, C, H, W]` → `[B, C, 1, 1]`.

use super::{Backward, Fwd, Var, shape_i64};
use crate::graph::GraphBuilder;

/// The mean of each channel's map of an NCHW `x`.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var) -> Var {
    let y = f.g.node("GlobalAveragePool", &[&x.name], vec![]);
    f.record([&x.name], &y, GlobalAvgPoolBackward { x: x.clone() });
    Var::new(y, vec![x.shape[0], x.shape[1], 1, 1])
}

struct GlobalAvgPoolBackward {
    x: Var,
}

impl Backward<1> for GlobalAvgPoolBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        let k = g.scalar(1.0 / (self.x.shape[2] * self.x.shape[3]) as f32);
        let scaled = g.bin("Mul", dy, &k);
        let s = g.const_i64(&shape_i64(&self.x.shape));
        [Some(g.node("Expand", &[&scaled, &s], vec![]))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Linear, so exact up to f32 rounding: the default tolerance.
    #[test]
    fn global_avg_pool_grad() {
        let mut rng = ChaCha8Rng::seed_from_u64(24);
        let inputs = vec![In::random("x", &[3, 4, 3, 2], &mut rng, 1.0, true)];
        check_op(inputs, false, 1e-2, TOL, &|f, v| forward(f, &v[0]));
    }
}
