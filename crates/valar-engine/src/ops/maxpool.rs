//! Max pooling with a square window (kernel and stride, no padding).

use super::{Backward, Fwd, Var, ints, shape_i64, window_out};
use crate::graph::{Attr, GraphBuilder};
use crate::runtime::Device;

/// A pooling window's settings (used by max and average pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pool {
    /// Side of the square window.
    pub kernel: usize,
    /// Step between windows, both axes.
    pub stride: usize,
}

impl Pool {
    /// A `kernel`×`kernel` window moved by `stride`.
    pub(crate) const fn new(kernel: usize, stride: usize) -> Self {
        Self { kernel, stride }
    }

    /// The output shape for input shape `x` (NCHW), or why the window does not fit.
    pub(crate) fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>, String> {
        match (
            window_out(x[2], self.kernel, self.stride, 0),
            window_out(x[3], self.kernel, self.stride, 0),
        ) {
            (Some(h), Some(w)) => Ok(vec![x[0], x[1], h, w]),
            _ => Err(format!(
                "a {k}×{k} pooling window with stride {} does not fit a {}×{} map",
                self.stride,
                x[2],
                x[3],
                k = self.kernel
            )),
        }
    }

    pub(crate) fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let (k, s) = (self.kernel as i64, self.stride as i64);
        vec![("kernel_shape", ints(&[k, k])), ("strides", ints(&[s, s]))]
    }
}

/// The maximum of each window of an NCHW `x`, or why the window does not fit. In training
/// mode the node also writes the argmax indices, which the backward routes the gradient by;
/// eval mode leaves them out.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var, p: &Pool) -> Result<Var, String> {
    let out = p.output_shape(&x.shape)?;
    if !f.training() {
        return Ok(Var::new(f.g.node("MaxPool", &[&x.name], p.attrs()), out));
    }
    let y = f.g.fresh("pool");
    let idx = f.g.fresh("poolidx");
    f.g.node_to("MaxPool", &[&x.name], &[&y, &idx], p.attrs());
    f.record(
        [&x.name],
        &y,
        MaxPoolBackward {
            x: x.clone(),
            indices: idx,
            p: *p,
        },
    );
    Ok(Var::new(y, out))
}

struct MaxPoolBackward {
    x: Var,
    indices: String,
    p: Pool,
}

impl Backward<1> for MaxPoolBackward {
    /// Each output's gradient goes to the input it took (its flat index over the whole tensor).
    /// Windows that do not overlap send at most one gradient to an input: MaxUnpool on the CPU,
    /// ScatterElements in a graph for CUDA (no MaxUnpool kernel there). Overlapping windows can
    /// pick the same input twice, so their gradients are scatter-added.
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        let overlap = self.p.kernel > self.p.stride;
        let shp = shape_i64(&self.x.shape);
        if g.device() == Device::Cpu && !overlap {
            let out_shape = g.const_i64(&shp);
            return [Some(g.node(
                "MaxUnpool",
                &[dy, &self.indices, &out_shape],
                self.p.attrs(),
            ))];
        }
        let total: usize = self.x.shape.iter().product();
        let shape = g.const_i64(&[total as i64]);
        let zeros = g.node("ConstantOfShape", &[&shape], vec![]);
        let idx = g.reshape(&self.indices, &[-1]);
        let upd = g.reshape(dy, &[-1]);
        let mut attrs = vec![("axis", Attr::Int(0))];
        if overlap {
            attrs.push(("reduction", Attr::Str("add".into())));
        }
        let sc = g.node("ScatterElements", &[&zeros, &idx, &upd], attrs);
        [Some(g.reshape(&sc, &shp))]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ops::relu;
    use crate::ops::tests::{In, TOL, check_op, spread};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `spread` gives distinct inputs at least 2/n apart, so a step of 5e-3 < 1/n never changes
    /// which input a window takes: max pooling is then linear and the default tolerance holds.
    /// Every case runs in the CPU (MaxUnpool) and CUDA (ScatterElements) flavours.
    fn check(seed: u64, x: [usize; 4], p: Pool) {
        for cuda in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = x.iter().product();
            let inputs = vec![In {
                name: "x".into(),
                shape: x.to_vec(),
                data: spread(&mut rng, n),
                check: true,
            }];
            check_op(inputs, cuda, 5e-3, TOL, &|f, v| {
                let y = forward(f, &v[0], &p).unwrap();
                relu::forward(f, &y)
            });
        }
    }

    #[test]
    fn maxpool_2x2_cpu_and_scatter_paths() {
        check(6, [2, 2, 4, 4], Pool::new(2, 2));
    }

    /// A 3×3 window with stride 2 overlaps its neighbours (one input can be the maximum of two
    /// windows), on an odd side that the floor trims.
    #[test]
    fn maxpool_overlapping_and_trimmed() {
        check(19, [2, 2, 7, 7], Pool::new(3, 2));
        check(20, [1, 3, 5, 5], Pool::new(2, 2));
    }
}
