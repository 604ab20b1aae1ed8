//! 2-D convolution with a square kernel: stride, zero padding, groups (depthwise when groups =
//! channels) and an optional bias.

use super::{Backward, Fwd, Var, ints, per_channel, shape_i64, window_out};
use crate::graph::{Attr, GraphBuilder};

/// A convolution's settings (the weight is `[out, in / groups, kernel, kernel]`, as in PyTorch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conv2d {
    /// Output channels.
    pub out: usize,
    /// Side of the square kernel.
    pub kernel: usize,
    /// Step between windows, both axes.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
    /// Channel groups: 1 is a full convolution, the input channel count a depthwise one.
    pub groups: usize,
    /// Whether the layer adds a per-channel bias.
    pub bias: bool,
}

impl Conv2d {
    /// A `kernel`×`kernel` convolution to `out` channels: stride 1, no padding, one group, bias.
    pub(crate) const fn new(out: usize, kernel: usize) -> Self {
        Self {
            out,
            kernel,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
        }
    }
    pub(crate) const fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }
    pub(crate) const fn padding(self, padding: usize) -> Self {
        Self { padding, ..self }
    }
    pub(crate) const fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }
    pub(crate) const fn bias(self, bias: bool) -> Self {
        Self { bias, ..self }
    }

    /// The weight's shape for `cin` input channels.
    pub(crate) fn weight_shape(&self, cin: usize) -> Vec<usize> {
        vec![self.out, cin / self.groups.max(1), self.kernel, self.kernel]
    }

    /// The output shape for input shape `x` (NCHW), or why the settings do not fit it.
    pub(crate) fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>, String> {
        let cin = x[1];
        if self.groups == 0
            || !cin.is_multiple_of(self.groups)
            || !self.out.is_multiple_of(self.groups)
        {
            return Err(format!(
                "a convolution with {} groups needs input ({cin}) and output ({}) channels divisible by it",
                self.groups, self.out
            ));
        }
        if self.padding >= self.kernel.max(1) {
            return Err(format!(
                "padding {} must be smaller than the kernel {}",
                self.padding, self.kernel
            ));
        }
        let h = window_out(x[2], self.kernel, self.stride, self.padding);
        let w = window_out(x[3], self.kernel, self.stride, self.padding);
        match (h, w) {
            (Some(h), Some(w)) => Ok(vec![x[0], self.out, h, w]),
            _ => Err(format!(
                "a {k}×{k} convolution does not fit a {}×{} map",
                x[2],
                x[3],
                k = self.kernel
            )),
        }
    }

    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let (k, s, p) = (self.kernel as i64, self.stride as i64, self.padding as i64);
        vec![
            ("kernel_shape", ints(&[k, k])),
            ("pads", ints(&[p, p, p, p])),
            ("strides", ints(&[s, s])),
            ("group", Attr::Int(self.groups as i64)),
        ]
    }
}

/// `Conv(x, w[, b])` of an NCHW `x` with weight `w` and bias `b` (when `c.bias`), or why the
/// settings do not fit `x`.
pub(crate) fn forward(
    f: &mut Fwd<'_>,
    x: &Var,
    w: &str,
    b: Option<&str>,
    c: &Conv2d,
) -> Result<Var, String> {
    let out = c.output_shape(&x.shape)?;
    let y = match b {
        Some(b) => f.g.node("Conv", &[&x.name, w, b], c.attrs()),
        None => f.g.node("Conv", &[&x.name, w], c.attrs()),
    };
    let rule = ConvBackward {
        x: x.clone(),
        w: w.into(),
        y_shape: out.clone(),
        c: *c,
    };
    match b {
        Some(b) => f.record([&x.name, w, b], &y, rule),
        None => f.record([&x.name, w], &y, rule),
    }
    Ok(Var::new(y, out))
}

/// The rule for `[x, w]` (no bias) and for `[x, w, b]`.
struct ConvBackward {
    x: Var,
    w: String,
    y_shape: Vec<usize>,
    c: Conv2d,
}

impl Backward<2> for ConvBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, needs: [bool; 2]) -> [Option<String>; 2] {
        let dx = needs[0].then(|| self.input_grad(g, dy));
        let dw = needs[1].then(|| self.weight_grad(g, dy));
        [dx, dw]
    }
}

impl Backward<3> for ConvBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, needs: [bool; 3]) -> [Option<String>; 3] {
        let [dx, dw] = <Self as Backward<2>>::backward(self, g, dy, [needs[0], needs[1]]);
        let db = needs[2].then(|| per_channel(g, "ReduceSum", dy, &self.y_shape, false));
        [dx, dw, db]
    }
}

impl ConvBackward {
    /// dX: for stride 1 a convolution of dY with the kernel transposed per group and flipped
    /// (faster than ConvTranspose in ONNX Runtime); for larger strides ConvTranspose, whose
    /// output padding restores the rows and columns the forward's floor dropped.
    fn input_grad(&self, g: &mut GraphBuilder, dy: &str) -> String {
        let c = &self.c;
        let (k, s, p) = (c.kernel as i64, c.stride as i64, c.padding as i64);
        let groups = c.groups as i64;
        if c.stride == 1 {
            let cin = self.x.shape[1] as i64;
            let (og, cg) = (c.out as i64 / groups, cin / groups);
            let wt = if groups == 1 {
                g.transpose(&self.w, &[1, 0, 2, 3])
            } else if og == 1 && cg == 1 {
                // Depthwise: each group's 1×1 channel matrix is its own transpose.
                self.w.clone()
            } else {
                let w5 = g.reshape(&self.w, &[groups, og, cg, k, k]);
                let t5 = g.transpose(&w5, &[0, 2, 1, 3, 4]);
                g.reshape(&t5, &[cin, og, k, k])
            };
            let starts = g.const_i64(&[-1, -1]);
            let ends = g.const_i64(&[i64::MIN, i64::MIN]);
            let axes = g.const_i64(&[2, 3]);
            let steps = g.const_i64(&[-1, -1]);
            let wf = g.node("Slice", &[&wt, &starts, &ends, &axes, &steps], vec![]);
            let q = k - 1 - p;
            let mut attrs = vec![
                ("kernel_shape", ints(&[k, k])),
                ("pads", ints(&[q, q, q, q])),
            ];
            if groups != 1 {
                attrs.push(("group", Attr::Int(groups)));
            }
            return g.node("Conv", &[dy, &wf], attrs);
        }
        let (h, w) = (self.x.shape[2] as i64, self.x.shape[3] as i64);
        let (ho, wo) = (self.y_shape[2] as i64, self.y_shape[3] as i64);
        let oph = h + 2 * p - k - s * (ho - 1);
        let opw = w + 2 * p - k - s * (wo - 1);
        g.node(
            "ConvTranspose",
            &[dy, &self.w],
            vec![
                ("kernel_shape", ints(&[k, k])),
                ("pads", ints(&[p, p, p, p])),
                ("strides", ints(&[s, s])),
                ("output_padding", ints(&[oph, opw])),
                ("group", Attr::Int(groups)),
            ],
        )
    }

    /// dW, tap by tap: dW[:, :, kh, kw] is dY against the input window shifted by (kh, kw).
    fn weight_grad(&self, g: &mut GraphBuilder, dy: &str) -> String {
        let (cin, cout, groups) = (self.x.shape[1], self.c.out, self.c.groups);
        if groups == 1 && cin == 1 {
            return self.weight_grad_batch_as_channels(g, dy);
        }
        if groups > 1 && cin / groups == 1 && cout / groups == 1 {
            return self.weight_grad_depthwise(g, dy);
        }
        self.weight_grad_gemm(g, dy)
    }

    /// One input channel: a convolution with the batch as channels, input X as [1, B, H, W] and
    /// kernel dYᵀ as [Cout, B, Ho, Wo] dilated by the forward's stride, so that its output
    /// positions are the taps: [1, Cout, k', k'], cut to k × k (k' exceeds k by what the
    /// forward's floor dropped at stride 2). Profiled against the taps at stride 2 on the
    /// stem's shapes: 1.7–3.6× faster.
    fn weight_grad_batch_as_channels(&self, g: &mut GraphBuilder, dy: &str) -> String {
        let x = shape_i64(&self.x.shape);
        let cout = self.c.out as i64;
        let xr = g.reshape(&self.x.name, &[1, x[0], x[2], x[3]]);
        let dyt = g.transpose(dy, &[1, 0, 2, 3]);
        let gw = g.node("Conv", &[&xr, &dyt], self.tap_conv_attrs(None));
        self.cut_to_kernel(g, &gw, cout)
    }

    /// Attributes of a convolution whose kernel is dY and whose outputs are the taps: the
    /// forward's padding, dY dilated by the forward's stride (ONNX's default of 1 left
    /// unwritten), and `groups` if any.
    fn tap_conv_attrs(&self, groups: Option<i64>) -> Vec<(&'static str, Attr)> {
        let (p, s) = (self.c.padding as i64, self.c.stride as i64);
        let mut attrs = vec![("pads", ints(&[p, p, p, p]))];
        if s > 1 {
            attrs.push(("dilations", ints(&[s, s])));
        }
        if let Some(groups) = groups {
            attrs.push(("group", Attr::Int(groups)));
        }
        attrs
    }

    /// The tap positions such a convolution gives along axis `axis` (2: rows, 3: columns):
    /// the padded side less the dilated dY, plus one; k at stride 1.
    fn taps_side(&self, axis: usize) -> i64 {
        let (p, s) = (self.c.padding as i64, self.c.stride as i64);
        self.x.shape[axis] as i64 + 2 * p - s * (self.y_shape[axis] as i64 - 1)
    }

    /// Tap sums of `channels` channels whose last two axes are the taps, cut to the
    /// kernel's k × k and shaped [C, 1, k, k].
    fn cut_to_kernel(&self, g: &mut GraphBuilder, taps: &str, channels: i64) -> String {
        let k = self.c.kernel as i64;
        let cut = if self.taps_side(2) > k || self.taps_side(3) > k {
            let starts = g.const_i64(&[0, 0]);
            let ends = g.const_i64(&[k, k]);
            let axes = g.const_i64(&[-2, -1]);
            g.node("Slice", &[taps, &starts, &ends, &axes], vec![])
        } else {
            taps.to_string()
        };
        g.reshape(&cut, &[channels, 1, k, k])
    }

    /// The values of the padded input `src` that tap (kh, kw) meets at every output position:
    /// `src` sliced along `axes` from (kh, kw), strided as the forward steps (or `src` itself
    /// for a 1×1 kernel at stride 1 without padding).
    fn tap(&self, g: &mut GraphBuilder, src: &str, (kh, kw): (i64, i64), axes: &str) -> String {
        let (k, s, p) = (
            self.c.kernel as i64,
            self.c.stride as i64,
            self.c.padding as i64,
        );
        if k == 1 && s == 1 && p == 0 {
            return src.to_string();
        }
        let (ho, wo) = (self.y_shape[2] as i64, self.y_shape[3] as i64);
        let starts = g.const_i64(&[kh, kw]);
        let ends = g.const_i64(&[kh + s * (ho - 1) + 1, kw + s * (wo - 1) + 1]);
        let steps = g.const_i64(&[s, s]);
        g.node("Slice", &[src, &starts, &ends, axes, &steps], vec![])
    }

    /// Depthwise, as one grouped convolution whose kernel is dY dilated by the stride, so that
    /// its output positions are the taps (profiled against k² Slice-Mul-ReduceSum taps on
    /// mobilenet's layers: the seven depthwise weight gradients 25% faster in all). Each
    /// (sample, channel) pair is a group and the samples are summed after; on maps of 6 × 6
    /// or less at stride 1, where that makes tens of thousands of tiny groups, one group per
    /// channel with the batch as its input channels is faster (1.2–2×).
    fn weight_grad_depthwise(&self, g: &mut GraphBuilder, dy: &str) -> String {
        let x = shape_i64(&self.x.shape);
        let (n, c, h, w) = (x[0], x[1], x[2], x[3]);
        let (ho, wo) = (self.y_shape[2] as i64, self.y_shape[3] as i64);
        let (kh, kw) = (self.taps_side(2), self.taps_side(3));
        let taps = if self.c.stride == 1 && h.max(w) <= 6 {
            let xt = g.transpose(&self.x.name, &[1, 0, 2, 3]);
            let xr = g.reshape(&xt, &[1, c * n, h, w]);
            let dyt = g.transpose(dy, &[1, 0, 2, 3]);
            g.node("Conv", &[&xr, &dyt], self.tap_conv_attrs(Some(c)))
        } else {
            let xr = g.reshape(&self.x.name, &[1, n * c, h, w]);
            let dyr = g.reshape(dy, &[n * c, 1, ho, wo]);
            let t = g.node("Conv", &[&xr, &dyr], self.tap_conv_attrs(Some(n * c)));
            let t = g.reshape(&t, &[n, c, kh, kw]);
            g.reduce("ReduceSum", &t, &[0], false)
        };
        self.cut_to_kernel(g, &taps, c)
    }

    /// Every other convolution: each tap is one GEMM (a batch of them, one per group) of dYᵀ
    /// with the shifted windows of the padded NHWC input.
    fn weight_grad_gemm(&self, g: &mut GraphBuilder, dy: &str) -> String {
        let c = &self.c;
        let (b, cin) = (self.x.shape[0] as i64, self.x.shape[1] as i64);
        let (ho, wo) = (self.y_shape[2] as i64, self.y_shape[3] as i64);
        let (k, p) = (c.kernel as i64, c.padding as i64);
        let (cout, groups) = (c.out as i64, c.groups as i64);
        let (og, cg) = (cout / groups, cin / groups);
        let n = b * ho * wo;
        let xn = g.transpose(&self.x.name, &[0, 2, 3, 1]);
        let xp = if p > 0 {
            let pads = g.const_i64(&[0, p, p, 0, 0, p, p, 0]);
            g.node("Pad", &[&xn, &pads], vec![])
        } else {
            xn
        };
        let dyt = g.transpose(dy, &[1, 0, 2, 3]);
        let dym = if groups == 1 {
            g.reshape(&dyt, &[cout, n])
        } else {
            g.reshape(&dyt, &[groups, og, n])
        };
        let axes = g.const_i64(&[1, 2]);
        let axis = if groups == 1 { 2 } else { 3 };
        let unsq_axes = g.const_i64(&[axis]);
        let mut taps = Vec::with_capacity((k * k) as usize);
        for kh in 0..k {
            for kw in 0..k {
                let sl = self.tap(g, &xp, (kh, kw), &axes);
                let tap = if groups == 1 {
                    let sm = g.reshape(&sl, &[n, cin]);
                    g.bin("MatMul", &dym, &sm)
                } else {
                    let sm = g.reshape(&sl, &[n, groups, cg]);
                    let st = g.transpose(&sm, &[1, 0, 2]);
                    g.bin("MatMul", &dym, &st)
                };
                taps.push(g.node("Unsqueeze", &[&tap, &unsq_axes], vec![]));
            }
        }
        let refs: Vec<&str> = taps.iter().map(String::as_str).collect();
        let cat = g.node("Concat", &refs, vec![("axis", Attr::Int(axis))]);
        g.reshape(&cat, &[cout, cg, k, k])
    }
}

#[cfg(test)]
mod tests {
    //! Convolutions are linear in x and in w, so central differences have no truncation error
    //! and the default tolerance (f32 rounding of Σ y·r, see `ops::tests`) applies to every case.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ops::tests::{In, TOL, check_op};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Checks x, w and b (as `check` says) of one convolution on an input of shape `x`.
    fn check(seed: u64, x: [usize; 4], c: Conv2d, check_x: bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let wshape = c.weight_shape(x[1]);
        let mut inputs = vec![
            In::random("x", &x, &mut rng, 1.0, check_x),
            In::random("w", &wshape, &mut rng, 0.5, true),
        ];
        if c.bias {
            inputs.push(In::random("b", &[c.out], &mut rng, 0.5, true));
        }
        check_op(inputs, false, 1e-2, TOL, &|f, v| {
            let b = c.bias.then_some("b");
            forward(f, &v[0], "w", b, &c).unwrap()
        });
    }

    #[test]
    fn conv3x3_single_channel_weight_grad() {
        check(1, [2, 1, 4, 4], Conv2d::new(3, 3).padding(1), false);
        // The same path (the batch as channels) without a bias, as ResNet's stem has it.
        check(
            27,
            [2, 1, 8, 8],
            Conv2d::new(3, 3).padding(1).bias(false),
            false,
        );
    }

    #[test]
    fn conv3x3_multi_channel_all_grads() {
        check(2, [2, 3, 4, 4], Conv2d::new(4, 3).padding(1), true);
    }

    #[test]
    fn conv3x3_single_channel_input_grad() {
        check(4, [1, 1, 6, 6], Conv2d::new(2, 3).padding(1), true);
    }

    /// Stride 2 on an odd side: the forward's floor drops a row and a column, which dX's
    /// output padding must restore as zeros' gradients.
    #[test]
    fn conv_strided_on_odd_and_even_sides() {
        check(
            5,
            [2, 3, 7, 7],
            Conv2d::new(4, 3).stride(2).padding(1),
            true,
        );
        check(
            6,
            [2, 2, 6, 6],
            Conv2d::new(3, 3).stride(2).padding(1).bias(false),
            true,
        );
        check(7, [2, 1, 6, 6], Conv2d::new(2, 3).stride(2), true);
    }

    /// 1×1 convolutions, plain and strided (a ResNet shortcut), without bias.
    #[test]
    fn conv1x1_plain_and_strided() {
        check(8, [2, 3, 4, 4], Conv2d::new(5, 1).bias(false), true);
        // An even side: dX needs an output padding of 1 (a ResNet shortcut on 8×8).
        check(
            15,
            [2, 3, 6, 6],
            Conv2d::new(4, 1).stride(2).bias(false),
            true,
        );
        check(
            9,
            [2, 3, 5, 5],
            Conv2d::new(4, 1).stride(2).bias(false),
            true,
        );
    }

    /// Depthwise (groups = channels), stride 1 and 2, and a grouped convolution with two input
    /// and two output channels per group.
    #[test]
    fn conv_depthwise_and_grouped() {
        check(
            10,
            [2, 4, 5, 5],
            Conv2d::new(4, 3).padding(1).groups(4).bias(false),
            true,
        );
        check(
            11,
            [2, 3, 6, 6],
            Conv2d::new(3, 3).stride(2).padding(1).groups(3),
            true,
        );
        check(
            12,
            [2, 4, 4, 4],
            Conv2d::new(4, 3).padding(1).groups(2),
            true,
        );
        check(
            13,
            [2, 2, 5, 5],
            Conv2d::new(4, 3).stride(2).padding(1).groups(2),
            true,
        );
    }

    /// The depthwise weight gradient's two forms (a group per sample and channel; on maps of
    /// 6 × 6 or less at stride 1, a group per channel), at strides 1 and 2 on odd and even
    /// sides, and the single-channel stem at stride 2, whose dilated dY gives one tap too many
    /// on an even side.
    #[test]
    fn depthwise_and_stem_weight_grads_as_one_convolution() {
        for (seed, side, stride) in [(16, 7, 1), (17, 8, 2), (18, 7, 2), (19, 13, 1)] {
            let c = Conv2d::new(3, 3)
                .stride(stride)
                .padding(1)
                .groups(3)
                .bias(false);
            check(seed, [2, 3, side, side], c, true);
        }
        for (seed, side) in [(20, 6), (21, 7)] {
            let c = Conv2d::new(4, 3).stride(2).padding(1).bias(false);
            check(seed, [3, 1, side, side], c, false);
        }
    }

    /// A 5×5 kernel with padding 2, so taps and pads are not hard-wired to 3×3.
    #[test]
    fn conv5x5() {
        check(14, [1, 2, 6, 6], Conv2d::new(2, 5).padding(2), true);
    }

    #[test]
    fn settings_that_do_not_fit_are_rejected() {
        assert!(
            Conv2d::new(4, 3)
                .groups(2)
                .output_shape(&[1, 3, 8, 8])
                .is_err()
        );
        assert!(Conv2d::new(4, 5).output_shape(&[1, 3, 4, 4]).is_err());
        assert!(
            Conv2d::new(4, 3)
                .padding(3)
                .output_shape(&[1, 3, 8, 8])
                .is_err()
        );
        assert_eq!(
            Conv2d::new(4, 3)
                .stride(2)
                .padding(1)
                .output_shape(&[2, 3, 7, 7])
                .unwrap(),
            vec![2, 4, 4, 4]
        );
    }
}
