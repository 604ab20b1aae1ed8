//! The training losses, each with its gradient with respect to the predictions.

use super::Var;
use crate::graph::{Attr, GraphBuilder};

/// The loss functions; each returns `(loss, dloss/dpred)`. `w` (`[batch, 1]`) weights each
/// face's squared error; the CCC term is a statistic of the whole batch and takes no weights.
pub(crate) fn loss(
    g: &mut GraphBuilder,
    pred: &Var,
    y: &str,
    w: &str,
    kind: crate::LossKind,
) -> (String, String) {
    match kind {
        crate::LossKind::Mse => mse(g, pred, y, w),
        crate::LossKind::Ccc => ccc(g, pred, y),
        crate::LossKind::MseCcc => {
            let (l1, g1) = mse(g, pred, y, w);
            let (l2, g2) = ccc(g, pred, y);
            (g.bin("Add", &l1, &l2), g.bin("Add", &g1, &g2))
        }
    }
}

/// Mean over every element of the face-weighted squared error, `Σ wᵢ (ŷ − y)² / (N·O)`: PyTorch's
/// `MSELoss()` when every weight is 1 (multiplying by 1 is exact, so the values are too).
fn mse(g: &mut GraphBuilder, pred: &Var, y: &str, w: &str) -> (String, String) {
    let count = pred.shape.iter().product::<usize>() as f32;
    let diff = g.bin("Sub", &pred.name, y);
    let wdiff = g.bin("Mul", &diff, w);
    let sq = g.bin("Mul", &wdiff, &diff);
    let loss = g.node("ReduceMean", &[&sq], vec![("keepdims", Attr::Int(0))]);
    let k = g.scalar(2.0 / count);
    (loss, g.bin("Mul", &wdiff, &k))
}

/// Added to the CCC denominator so a batch with constant targets and predictions stays finite.
const CCC_EPS: f32 = 1e-8;

/// Mean over output columns of 1 − CCC, with population (1/N) statistics.
///
/// With D = σ²ŷ + σ²y + (μŷ − μy)² and C = 2·cov/D, dC/dŷᵢ = 2/(N·D)·((yᵢ − μy) − C·(ŷᵢ − μy)).
fn ccc(g: &mut GraphBuilder, pred: &Var, y: &str) -> (String, String) {
    let (n, cols) = (pred.shape[0] as f32, pred.shape[1] as f32);
    let mp = g.reduce("ReduceMean", &pred.name, &[0], true);
    let my = g.reduce("ReduceMean", y, &[0], true);
    let dp = g.bin("Sub", &pred.name, &mp);
    let dy = g.bin("Sub", y, &my);
    let dp2 = g.bin("Mul", &dp, &dp);
    let vp = g.reduce("ReduceMean", &dp2, &[0], true);
    let dy2 = g.bin("Mul", &dy, &dy);
    let vy = g.reduce("ReduceMean", &dy2, &[0], true);
    let dpy = g.bin("Mul", &dp, &dy);
    let cov = g.reduce("ReduceMean", &dpy, &[0], true);
    let dm = g.bin("Sub", &mp, &my);
    let dm2 = g.bin("Mul", &dm, &dm);
    let d = g.bin("Add", &vp, &vy);
    let d = g.bin("Add", &d, &dm2);
    let eps = g.scalar(CCC_EPS);
    let d = g.bin("Add", &d, &eps);
    let two = g.scalar(2.0);
    let cov2 = g.bin("Mul", &cov, &two);
    let c = g.bin("Div", &cov2, &d);
    let mc = g.node("ReduceMean", &[&c], vec![("keepdims", Attr::Int(0))]);
    let one = g.scalar(1.0);
    let loss = g.bin("Sub", &one, &mc);
    // dL/dŷ = −(1/cols)·dC/dŷ.
    let pmy = g.bin("Sub", &pred.name, &my);
    let cp = g.bin("Mul", &c, &pmy);
    let num = g.bin("Sub", &dy, &cp);
    let k = g.scalar(-2.0 / (n * cols));
    let kd = g.bin("Div", &k, &d);
    (loss, g.bin("Mul", &num, &kd))
}

/// Keeps the cross-entropy's denominator positive when no face of a batch has a class; the
/// loss and its gradient are then 0.
const CE_EPS: f32 = 1e-12;

/// Class-weighted cross-entropy of `logits` (`[batch, classes]`) against `targets` of the same
/// shape, each row holding a face's class weight at its class and zeros elsewhere (a zero row
/// for a face without a class; mixup's blended rows work the same way):
/// `L = −Σ t ⊙ log softmax(z) / Σ t`, which for one-hot rows is PyTorch's
/// `CrossEntropyLoss(weight=w)` with its weighted mean. Returns `(loss, dL/dz)` with
/// `dL/dzᵢⱼ = (softmax(z)ᵢⱼ · Σⱼ tᵢⱼ − tᵢⱼ) / Σ t`. Softmax is shifted by the row maximum so
/// large logits stay finite.
pub(crate) fn cross_entropy(g: &mut GraphBuilder, logits: &Var, targets: &str) -> (String, String) {
    let z = &logits.name;
    let top = g.reduce("ReduceMax", z, &[1], true);
    let shifted = g.bin("Sub", z, &top);
    let e = g.node("Exp", &[&shifted], vec![]);
    let se = g.reduce("ReduceSum", &e, &[1], true);
    let lse = g.node("Log", &[&se], vec![]);
    let logp = g.bin("Sub", &shifted, &lse);
    let total = g.node("ReduceSum", &[targets], vec![("keepdims", Attr::Int(0))]);
    let eps = g.scalar(CE_EPS);
    let total = g.bin("Max", &total, &eps);
    let tl = g.bin("Mul", targets, &logp);
    let sum = g.node("ReduceSum", &[&tl], vec![("keepdims", Attr::Int(0))]);
    let neg = g.node("Neg", &[&sum], vec![]);
    let loss = g.bin("Div", &neg, &total);
    let softmax = g.bin("Div", &e, &se);
    let rows = g.reduce("ReduceSum", targets, &[1], true);
    let sr = g.bin("Mul", &softmax, &rows);
    let num = g.bin("Sub", &sr, targets);
    (loss, g.bin("Div", &num, &total))
}

#[cfg(test)]
mod tests {
    //! The value against a host computation in f64, and the gradient against central
    //! differences. The loss is a smooth function of ~1 computed in f32: rounding of ~1e-7 over
    //! 2·eps = 2e-2 is ~1e-5, and truncation is O(eps²); the default tolerance holds.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::fixed;
    use crate::names;
    use crate::ops::tests::{In, TOL, compare, random, run, session};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// An input of the given values.
    fn input(name: &str, shape: &[usize], data: Vec<f32>, check: bool) -> In {
        In {
            name: name.into(),
            shape: shape.to_vec(),
            data,
            check,
        }
    }

    /// A session of the loss `build` emits over `ins` (declared in order): its outputs are
    /// `loss` and the gradient of the first input, `grad.<first>`.
    fn loss_session(
        ins: &[In],
        build: impl FnOnce(&mut GraphBuilder) -> (String, String),
    ) -> ort::session::Session {
        let mut g = GraphBuilder::new();
        for i in ins {
            g.input(&i.name, &fixed(&i.shape));
        }
        let (l, d) = build(&mut g);
        let first = &ins[0];
        g.rename(&l, "loss");
        g.rename(&d, &names::grad(&first.name));
        g.output("loss", &[]);
        g.output(&names::grad(&first.name), &fixed(&first.shape));
        session(g)
    }

    fn check_loss(kind: crate::LossKind, weights: &[f32]) -> f64 {
        let (n, o) = (6, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let pred = random(&mut rng, n * o, 0.8);
        let y = random(&mut rng, n * o, 0.8);
        let ins = vec![
            input("p", &[n, o], pred.clone(), true),
            input("y", &[n, o], y.clone(), false),
            input("w", &[n, 1], weights.to_vec(), false),
        ];
        let p = Var::new("p", vec![n, o]);
        let mut s = loss_session(&ins, |g| loss(g, &p, "y", "w", kind));
        let value = f64::from(run(&mut s, &ins, &["loss"])[0][0]);
        compare(
            &mut s,
            ins,
            &["loss"],
            &|o| f64::from(o[0][0]),
            1e-2,
            12,
            TOL,
        );
        // The value against a host computation in f64.
        let col = |v: &[f32], j: usize| {
            (0..n)
                .map(|i| f64::from(v[i * o + j]))
                .collect::<Vec<f64>>()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mut mse = 0.0;
        let mut one_minus_ccc = 0.0;
        for j in 0..o {
            let (p, t) = (col(&pred, j), col(&y, j));
            let (mp, mt) = (mean(&p), mean(&t));
            let vp = mean(&p.iter().map(|a| (a - mp).powi(2)).collect::<Vec<_>>());
            let vt = mean(&t.iter().map(|a| (a - mt).powi(2)).collect::<Vec<_>>());
            let cov = mean(
                &p.iter()
                    .zip(&t)
                    .map(|(a, b)| (a - mp) * (b - mt))
                    .collect::<Vec<_>>(),
            );
            one_minus_ccc += (1.0 - 2.0 * cov / (vp + vt + (mp - mt).powi(2))) / o as f64;
            mse += p
                .iter()
                .zip(&t)
                .zip(weights)
                .map(|((a, b), w)| f64::from(*w) * (a - b).powi(2))
                .sum::<f64>()
                / (n * o) as f64;
        }
        let expect = match kind {
            crate::LossKind::Mse => mse,
            crate::LossKind::Ccc => one_minus_ccc,
            crate::LossKind::MseCcc => mse + one_minus_ccc,
        };
        assert!(
            (value - expect).abs() < 1e-5,
            "{kind:?}: {value} vs {expect}"
        );
        value
    }

    /// The cross-entropy against a host computation in f64 (one face without a class, one
    /// blended row as mixup makes), and its gradient against central differences.
    #[test]
    fn cross_entropy_value_and_grad() {
        let (n, c) = (5, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let z = random(&mut rng, n * c, 2.0);
        #[rustfmt::skip]
        let t: Vec<f32> = vec![
            0.0, 2.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, // no class: no term
            0.5, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 1.5,
            0.3, 0.0, 0.7, 0.0, // a mixed pair
        ];
        let ins = vec![
            input("z", &[n, c], z.clone(), true),
            input("t", &[n, c], t.clone(), false),
        ];
        let zv = Var::new("z", vec![n, c]);
        let mut s = loss_session(&ins, |g| cross_entropy(g, &zv, "t"));
        let value = f64::from(run(&mut s, &ins, &["loss"])[0][0]);
        compare(
            &mut s,
            ins,
            &["loss"],
            &|o| f64::from(o[0][0]),
            1e-2,
            12,
            TOL,
        );
        let mut num = 0.0;
        for i in 0..n {
            let row: Vec<f64> = (0..c).map(|j| f64::from(z[i * c + j])).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            for j in 0..c {
                num -= f64::from(t[i * c + j]) * (row[j] - lse);
            }
        }
        let expect = num / t.iter().map(|&v| f64::from(v)).sum::<f64>();
        assert!((value - expect).abs() < 1e-5, "{value} vs {expect}");
    }

    /// A batch in which no face has a class adds nothing: loss 0 and gradient 0, not NaN.
    #[test]
    fn cross_entropy_without_classes_is_zero() {
        let (n, c) = (3, 4);
        let ins = vec![
            input("z", &[n, c], (0..n * c).map(|k| k as f32).collect(), false),
            input("t", &[n, c], vec![0.0; n * c], false),
        ];
        let zv = Var::new("z", vec![n, c]);
        let mut s = loss_session(&ins, |g| cross_entropy(g, &zv, "t"));
        let out = run(&mut s, &ins, &["loss", &names::grad("z")]);
        assert_eq!(out[0], vec![0.0]);
        assert!(out[1].iter().all(|&v| v == 0.0), "{:?}", out[1]);
    }

    #[test]
    fn losses_values_and_grads() {
        let ones = [1.0; 6];
        let mse = check_loss(crate::LossKind::Mse, &ones);
        let ccc = check_loss(crate::LossKind::Ccc, &ones);
        let both = check_loss(crate::LossKind::MseCcc, &ones);
        assert!((both - mse - ccc).abs() < 1e-5);
        // Face weights scale each face's squared error; the CCC term ignores them.
        let weights = [0.5, 2.0, 1.0, 0.25, 1.5, 0.75];
        let weighted = check_loss(crate::LossKind::Mse, &weights);
        assert!((weighted - mse).abs() > 1e-3, "{weighted} vs {mse}");
        let ccc_w = check_loss(crate::LossKind::Ccc, &weights);
        assert!((ccc_w - ccc).abs() < 1e-7);
    }
}
