//! BatchNorm2d: batch statistics and a running-average update in training, running statistics
//! in inference, as PyTorch's `BatchNorm2d` with its defaults.

use super::{Backward, Fwd, Var, per_channel};
use crate::graph::{Attr, GraphBuilder};

/// PyTorch's BatchNorm2d defaults.
pub(crate) const BN_EPS: f32 = 1e-5;
pub(crate) const BN_MOMENTUM: f32 = 0.1;

/// Names of one BatchNorm's tensors in a training graph.
pub(crate) struct BnNames<'a> {
    pub gamma: &'a str,
    pub beta: &'a str,
    pub running_mean: &'a str,
    pub running_var: &'a str,
    pub new_running_mean: &'a str,
    pub new_running_var: &'a str,
}

/// The per-channel affine `γ·(x − mean)/√(var + ε) + β` (the inference BatchNormalization op).
fn affine(g: &mut GraphBuilder, x: &str, gamma: &str, beta: &str, mean: &str, var: &str) -> String {
    g.node(
        "BatchNormalization",
        &[x, gamma, beta, mean, var],
        vec![("epsilon", Attr::Float(BN_EPS))],
    )
}

/// BatchNorm of an NCHW `x`. Training mode normalises by the batch statistics and writes the
/// updated running statistics to the `new_*` names; eval mode normalises by the running
/// statistics and writes nothing else.
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var, p: &BnNames<'_>) -> Var {
    if !f.training() {
        let y = affine(f.g, &x.name, p.gamma, p.beta, p.running_mean, p.running_var);
        return Var::new(y, x.shape.clone());
    }
    let g = &mut *f.g;
    let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let n = (b * h * w) as f32;
    // One pass each for E[x] and E[x²]; the variance is clamped at 0 against rounding.
    let mean = per_channel(g, "ReduceMean", &x.name, &x.shape, true);
    let ss = per_channel(g, "ReduceSumSquare", &x.name, &x.shape, true);
    let inv_n = g.scalar(1.0 / n);
    let ex2 = g.bin("Mul", &ss, &inv_n);
    let m2 = g.bin("Mul", &mean, &mean);
    let var = g.bin("Sub", &ex2, &m2);
    let zero = g.scalar(0.0);
    let var = g.bin("Max", &var, &zero);
    let mean_c = g.reshape(&mean, &[c as i64]);
    let var_c = g.reshape(&var, &[c as i64]);
    // The inference BatchNormalization op is a fused per-channel affine given the batch statistics.
    let y = affine(g, &x.name, p.gamma, p.beta, &mean_c, &var_c);
    let eps = g.scalar(BN_EPS);
    let ve = g.bin("Add", &var, &eps);
    let sd = g.node("Sqrt", &[&ve], vec![]);
    let invstd = g.node("Reciprocal", &[&sd], vec![]);
    // Running statistics as PyTorch keeps them: the variance is unbiased.
    let keep = g.scalar(1.0 - BN_MOMENTUM);
    let mom = g.scalar(BN_MOMENTUM);
    let a = g.bin("Mul", p.running_mean, &keep);
    let bm = g.bin("Mul", &mean_c, &mom);
    g.node_to("Add", &[&a, &bm], &[p.new_running_mean], vec![]);
    let unbias = g.scalar(BN_MOMENTUM * n / (n - 1.0).max(1.0));
    let a = g.bin("Mul", p.running_var, &keep);
    let bv = g.bin("Mul", &var_c, &unbias);
    g.node_to("Add", &[&a, &bv], &[p.new_running_var], vec![]);
    f.record(
        [&x.name, p.gamma, p.beta],
        &y,
        BatchNormBackward {
            x: x.clone(),
            gamma: p.gamma.into(),
            mean,
            invstd,
        },
    );
    Var::new(y, x.shape.clone())
}

struct BatchNormBackward {
    x: Var,
    gamma: String,
    mean: String,
    invstd: String,
}

impl Backward<3> for BatchNormBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, needs: [bool; 3]) -> [Option<String>; 3] {
        let x = &self.x;
        let c = x.shape[1] as i64;
        let n = (x.shape[0] * x.shape[2] * x.shape[3]) as f32;
        let sdy = per_channel(g, "ReduceSum", dy, &x.shape, true);
        let dyx = g.bin("Mul", dy, &x.name);
        let sdyx = per_channel(g, "ReduceSum", &dyx, &x.shape, true);
        // dγ = Σ dy·x̂ = invstd·(Σ dy·x − mean·Σ dy); dβ = Σ dy.
        let ms = g.bin("Mul", &self.mean, &sdy);
        let t = g.bin("Sub", &sdyx, &ms);
        let dgamma4 = g.bin("Mul", &t, &self.invstd);
        let dgamma = needs[1].then(|| g.reshape(&dgamma4, &[c]));
        let dbeta = needs[2].then(|| g.reshape(&sdy, &[c]));
        if !needs[0] {
            return [None, dgamma, dbeta];
        }
        // dx = k·(dy − Σdy/n − x̂·dγ/n) with k = γ·invstd, rearranged to dy·k + (x·s + c)
        // so that the big tensors take four passes.
        let g4 = g.reshape(&self.gamma, &[1, c, 1, 1]);
        let k = g.bin("Mul", &g4, &self.invstd);
        let dgi = g.bin("Mul", &dgamma4, &self.invstd);
        let kdgi = g.bin("Mul", &k, &dgi);
        let neg_inv_n = g.scalar(-1.0 / n);
        let s = g.bin("Mul", &kdgi, &neg_inv_n);
        let dgim = g.bin("Mul", &dgi, &self.mean);
        let u = g.bin("Sub", &dgim, &sdy);
        let ku = g.bin("Mul", &k, &u);
        let inv_n = g.scalar(1.0 / n);
        let cc = g.bin("Mul", &ku, &inv_n);
        let s_c = g.reshape(&s, &[c]);
        let c_c = g.reshape(&cc, &[c]);
        // x·s + c as one pass: the inference BatchNormalization op with mean 0 and
        // var + epsilon = 1 (epsilon stays at 1e-5 because cuDNN clamps it there).
        let zeros = g.const_f32(&[c as usize], &vec![0.0; c as usize]);
        let ones = g.const_f32(&[c as usize], &vec![1.0 - BN_EPS; c as usize]);
        let xs = g.node(
            "BatchNormalization",
            &[&x.name, &s_c, &c_c, &zeros, &ones],
            vec![("epsilon", Attr::Float(BN_EPS))],
        );
        let dyk = g.bin("Mul", dy, &k);
        [Some(g.bin("Add", &dyk, &xs)), dgamma, dbeta]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::fixed;
    use crate::ops::Tape;
    use crate::ops::tests::{In, TOL, check_op, random, run, session};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn named(name: &str, data: Vec<f32>, check: bool) -> In {
        In {
            name: name.into(),
            shape: vec![data.len()],
            data,
            check,
        }
    }

    /// BatchNorm is smooth (the batch variance is far from 0 here), so its truncation error is
    /// O(eps²) ≈ 1e-4 × the curvature (of order 1 for unit-variance inputs): the default
    /// tolerance holds.
    #[test]
    fn batchnorm_grads_and_running_stats() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (b, c, h, w) = (3, 2, 3, 3);
        let x: Vec<f32> = random(&mut rng, b * c * h * w, 1.0)
            .iter()
            .map(|v| v * 2.0 + 0.5)
            .collect();
        let params = |check: bool| {
            vec![
                named("gamma", vec![1.3, 0.7], check),
                named("beta", vec![0.2, -0.4], check),
                named("rm", vec![0.1, -0.2], false),
                named("rv", vec![1.5, 0.5], false),
            ]
        };
        let x_in = |check: bool| In {
            name: "x".into(),
            shape: vec![b, c, h, w],
            data: x.clone(),
            check,
        };
        let names = BnNames {
            gamma: "gamma",
            beta: "beta",
            running_mean: "rm",
            running_var: "rv",
            new_running_mean: "new_rm",
            new_running_var: "new_rv",
        };
        let train = |f: &mut Fwd<'_>, v: &[Var]| {
            f.g.output("new_rm", &fixed(&[2]));
            f.g.output("new_rv", &fixed(&[2]));
            forward(f, &v[0], &names)
        };
        let mut inputs = vec![x_in(true)];
        inputs.extend(params(true));
        check_op(inputs, false, 1e-2, TOL, &train);

        // The running statistics follow PyTorch: momentum 0.1, unbiased variance.
        let mut g = GraphBuilder::new();
        for (name, shape) in [
            ("x", vec![b, c, h, w]),
            ("gamma", vec![c]),
            ("beta", vec![c]),
            ("rm", vec![c]),
            ("rv", vec![c]),
        ] {
            g.input(name, &fixed(&shape));
        }
        let x_var = Var::new("x", vec![b, c, h, w]);
        let mut tape = Tape::new();
        let y = train(
            &mut Fwd::train(&mut g, &mut tape),
            std::slice::from_ref(&x_var),
        );
        g.rename(&y.name, "y");
        g.output("y", &fixed(&[b, c, h, w]));
        let mut s = session(g);
        let mut ins = vec![x_in(false)];
        ins.extend(params(false));
        let out = run(&mut s, &ins, &["new_rm", "new_rv", "y"]);
        for ch in 0..c {
            let vals: Vec<f64> = (0..b)
                .flat_map(|n| (0..h * w).map(move |k| (n * c + ch) * h * w + k))
                .map(|i| f64::from(x[i]))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
            let unbiased = var * vals.len() as f64 / (vals.len() - 1) as f64;
            let rm0 = [0.1, -0.2][ch];
            let rv0 = [1.5, 0.5][ch];
            assert!((f64::from(out[0][ch]) - (0.9 * rm0 + 0.1 * m)).abs() < 1e-5);
            assert!((f64::from(out[1][ch]) - (0.9 * rv0 + 0.1 * unbiased)).abs() < 1e-5);
            // And the forward normalises with the biased variance.
            let i0 = ch * h * w;
            let expect =
                (f64::from(x[i0]) - m) / (var + 1e-5).sqrt() * [1.3, 0.7][ch] + [0.2, -0.4][ch];
            assert!((f64::from(out[2][i0]) - expect).abs() < 1e-4);
        }

        // The inference form normalises with the running statistics.
        let mut g = GraphBuilder::new();
        for (name, shape) in [
            ("x", vec![b, c, h, w]),
            ("gamma", vec![c]),
            ("beta", vec![c]),
            ("rm", vec![c]),
            ("rv", vec![c]),
        ] {
            g.input(name, &fixed(&shape));
        }
        let y = forward(&mut Fwd::eval(&mut g), &x_var, &names).name;
        g.rename(&y, "y");
        g.output("y", &fixed(&[b, c, h, w]));
        let out = run(&mut session(g), &ins, &["y"]);
        for (i, &v) in x.iter().enumerate() {
            let ch = (i / (h * w)) % c;
            let expect = (v - [0.1, -0.2][ch]) / ([1.5f32, 0.5][ch] + 1e-5).sqrt() * [1.3, 0.7][ch]
                + [0.2, -0.4][ch];
            assert!((out[0][i] - expect).abs() < 1e-5, "{i}");
        }
    }
}
