//! The training losses, each with its gradient with respect to the predictions.

use super::Var;
use crate::graph::{Attr, GraphBuilder};

/// The loss functions; each returns `(loss, dloss/dpred)`.
pub(crate) fn loss(
    g: &mut GraphBuilder,
    pred: &Var,
    y: &str,
    kind: crate::LossKind,
) -> (String, String) {
    match kind {
        crate::LossKind::Mse => mse(g, pred, y),
        crate::LossKind::Ccc => ccc(g, pred, y),
        crate::LossKind::MseCcc => {
            let (l1, g1) = mse(g, pred, y);
            let (l2, g2) = ccc(g, pred, y);
            (g.bin("Add", &l1, &l2), g.bin("Add", &g1, &g2))
        }
    }
}

/// Mean squared error over every element, as PyTorch's `MSELoss()`.
fn mse(g: &mut GraphBuilder, pred: &Var, y: &str) -> (String, String) {
    let count = pred.shape.iter().product::<usize>() as f32;
    let diff = g.bin("Sub", &pred.name, y);
    let sq = g.bin("Mul", &diff, &diff);
    let loss = g.node("ReduceMean", &[&sq], vec![("keepdims", Attr::Int(0))]);
    let k = g.scalar(2.0 / count);
    (loss, g.bin("Mul", &diff, &k))
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

    fn check_loss(kind: crate::LossKind) -> f64 {
        let (n, o) = (6, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let pred = random(&mut rng, n * o, 0.8);
        let y = random(&mut rng, n * o, 0.8);
        let mut g = GraphBuilder::new();
        g.input("p", &fixed(&[n, o]));
        g.input("y", &fixed(&[n, o]));
        let (l, dp) = loss(
            &mut g,
            &Var {
                name: "p".into(),
                shape: vec![n, o],
            },
            "y",
            kind,
        );
        g.rename(&l, "loss");
        g.rename(&dp, &names::grad("p"));
        g.output("loss", &[]);
        g.output(&names::grad("p"), &fixed(&[n, o]));
        let mut s = session(g);
        let ins = vec![
            In {
                name: "p".into(),
                shape: vec![n, o],
                data: pred.clone(),
                check: true,
            },
            In {
                name: "y".into(),
                shape: vec![n, o],
                data: y.clone(),
                check: false,
            },
        ];
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
            mse += p.iter().zip(&t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / (n * o) as f64;
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

    #[test]
    fn losses_values_and_grads() {
        let mse = check_loss(crate::LossKind::Mse);
        let ccc = check_loss(crate::LossKind::Ccc);
        let both = check_loss(crate::LossKind::MseCcc);
        assert!((both - mse - ccc).abs() < 1e-5);
    }
}
