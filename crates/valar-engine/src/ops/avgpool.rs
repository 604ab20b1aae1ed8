//! Average pooling with a square window (kernel and stride, no padding).

use super::maxpool::Pool;
use super::{Backward, Fwd, Var, ints};
use crate::graph::{Attr, GraphBuilder};

/// The mean of each window of an NCHW `x`, or why the window does not fit.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var, p: &Pool) -> Result<Var, String> {
    let out = p.output_shape(&x.shape)?;
    let y = f.g.node("AveragePool", &[&x.name], p.attrs());
    f.record(
        [&x.name],
        &y,
        AvgPoolBackward {
            x: x.clone(),
            y_shape: out.clone(),
            p: *p,
        },
    );
    Ok(Var::new(y, out))
}

struct AvgPoolBackward {
    x: Var,
    y_shape: Vec<usize>,
    p: Pool,
}

impl Backward<1> for AvgPoolBackward {
    /// Every input gets 1/k² of the gradient of each window it lies in: a depthwise
    /// ConvTranspose with a constant kernel, which also sums where windows overlap; its output
    /// padding restores the rows and columns the forward's floor dropped (they get zero).
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        let c = self.x.shape[1];
        let (k, s) = (self.p.kernel as i64, self.p.stride as i64);
        let w = g.const_f32(
            &[c, 1, self.p.kernel, self.p.kernel],
            &vec![1.0 / (k * k) as f32; c * self.p.kernel * self.p.kernel],
        );
        let oph = self.x.shape[2] as i64 - k - s * (self.y_shape[2] as i64 - 1);
        let opw = self.x.shape[3] as i64 - k - s * (self.y_shape[3] as i64 - 1);
        [Some(g.node(
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
    #![allow(clippy::unwrap_used)]
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
            check_op(inputs, false, 1e-2, TOL, &|f, v| {
                forward(f, &v[0], &p).unwrap()
            });
        }
    }
}
