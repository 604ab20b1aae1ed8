//! Average pooling with a square window (kernel and stride, no padding).

use super::maxpool::Pool;
use super::{Backward, Tape, Var, ints};
use crate::graph::{Attr, GraphBuilder};

/// The inference form.
pub(crate) fn infer(g: &mut GraphBuilder, x: &str, p: &Pool) -> String {
    g.node("AveragePool", &[x], p.attrs())
}

/// The training form; `out` is [`Pool::output_shape`] of `x`.
pub(crate) fn train(t: &mut Tape, g: &mut GraphBuilder, x: &Var, p: &Pool, out: Vec<usize>) -> Var {
    let y = infer(g, &x.name, p);
    t.record(
        &[&x.name],
        &y,
        AvgPoolBackward {
            x: x.clone(),
            y_shape: out.clone(),
            p: *p,
        },
    );
    Var::new(y, out)
}

struct AvgPoolBackward {
    x: Var,
    y_shape: Vec<usize>,
    p: Pool,
}

impl Backward for AvgPoolBackward {
    /// Every input gets 1/k² of the gradient of each window it lies in: a depthwise
    /// ConvTranspose with a constant kernel, which also sums where windows overlap; its output
    /// padding restores the rows and columns the forward's floor dropped (they get zero).
    fn backward(
        &self,
        g: &mut GraphBuilder,
        dy: &str,
        _needs: &[bool],
        _cuda: bool,
    ) -> Vec<Option<String>> {
        let c = self.x.shape[1];
        let (k, s) = (self.p.kernel as i64, self.p.stride as i64);
        let w = g.const_f32(
            &[c, 1, self.p.kernel, self.p.kernel],
            &vec![1.0 / (k * k) as f32; c * self.p.kernel * self.p.kernel],
        );
        let oph = self.x.shape[2] as i64 - k - s * (self.y_shape[2] as i64 - 1);
        let opw = self.x.shape[3] as i64 - k - s * (self.y_shape[3] as i64 - 1);
        vec![Some(g.node(
            "ConvTranspose",
            &[dy, &w],
            vec![
                ("kernel_shape", ints(&[k, k])),
                ("strides", ints(&[s, s])),
                ("output_padding", ints(&[oph, opw])),
                ("group", Attr::Int(c as i64)),
            ],
        ))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Linear in x, so exact up to f32 rounding: the default tolerance. Non-overlapping,
    /// overlapping and trimmed (odd side) windows.
    #[test]
    fn avgpool_grads() {
        for (seed, x, p) in [
            (21, [2, 2, 4, 4], Pool::new(2, 2)),
            (22, [2, 2, 7, 7], Pool::new(3, 2)),
            (23, [1, 3, 5, 5], Pool::new(2, 2)),
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let inputs = vec![In::random("x", &x, &mut rng, 1.0, true)];
            let out = p.output_shape(&x).unwrap_or_default();
            check_op(inputs, false, 1e-2, TOL, &|g, t, v| {
                train(t, g, &v[0], &p, out.clone())
            });
        }
    }
}
