//! Inverted dropout with noise drawn on the host (see the crate's design notes).

use super::{Backward, Fwd, Var};
use crate::graph::GraphBuilder;

/// In training mode keeps `x` where `noise ≥ p` and scales it by 1/(1 − p); `noise` is a graph
/// input of uniform [0, 1) numbers with the shape of `x`. In eval mode the identity. Either way
/// `p` must lie in [0, 1).
pub(crate) fn forward(f: &mut Fwd<'_>, x: &Var, noise: &str, p: f32) -> Result<Var, String> {
    if !(0.0..1.0).contains(&p) {
        return Err(format!("the drop probability must lie in [0, 1), not {p}"));
    }
    if !f.training() {
        return Ok(x.clone());
    }
    let g = &mut *f.g;
    let pc = g.scalar(p);
    let keep = g.bin("GreaterOrEqual", noise, &pc);
    let scale = g.scalar(1.0 / (1.0 - p));
    let zero = g.scalar(0.0);
    let mask = g.node("Where", &[&keep, &scale, &zero], vec![]);
    let y = g.bin("Mul", &x.name, &mask);
    f.record([&x.name], &y, DropoutBackward { mask });
    Ok(Var::new(y, x.shape.clone()))
}

struct DropoutBackward {
    mask: String,
}

impl Backward<1> for DropoutBackward {
    fn backward(&self, g: &mut GraphBuilder, dy: &str, _needs: [bool; 1]) -> [Option<String>; 1] {
        [Some(g.bin("Mul", dy, &self.mask))]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::fixed;
    use crate::ops::Tape;
    use crate::ops::tests::{In, TOL, check_op, run, session};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Linear in x for fixed noise, so exact up to f32 rounding: the default tolerance.
    #[test]
    fn dropout_grad() {
        let mut rng = ChaCha8Rng::seed_from_u64(25);
        let inputs = vec![
            In::random("x", &[3, 8], &mut rng, 1.0, true),
            In {
                name: "noise".into(),
                shape: vec![3, 8],
                data: (0..24).map(|_| rng.random::<f32>()).collect(),
                check: false,
            },
        ];
        check_op(inputs, false, 1e-2, TOL, &|f, v| {
            forward(f, &v[0], "noise", 0.4).unwrap()
        });
    }

    #[test]
    fn dropout_masks_and_scales() {
        let mut g = GraphBuilder::new();
        g.input("x", &fixed(&[1, 4]));
        g.input("noise", &fixed(&[1, 4]));
        let x = Var::new("x", vec![1, 4]);
        let mut tape = Tape::new();
        let y = forward(&mut Fwd::train(&mut g, &mut tape), &x, "noise", 0.5).unwrap();
        g.rename(&y.name, "y");
        g.output("y", &fixed(&[1, 4]));
        let mut s = session(g);
        let ins = vec![
            In {
                name: "x".into(),
                shape: vec![1, 4],
                data: vec![1.0, 2.0, 3.0, 4.0],
                check: false,
            },
            In {
                name: "noise".into(),
                shape: vec![1, 4],
                data: vec![0.1, 0.5, 0.9, 0.49],
                check: false,
            },
        ];
        assert_eq!(run(&mut s, &ins, &["y"])[0], vec![0.0, 4.0, 6.0, 0.0]);
        // Eval mode is the identity, and emits nothing.
        let mut g = GraphBuilder::new();
        assert_eq!(
            forward(&mut Fwd::eval(&mut g), &x, "noise", 0.5).unwrap(),
            x
        );
        assert!(g.finish("eval").graph.unwrap().node.is_empty());
        let mut g = GraphBuilder::new();
        assert!(forward(&mut Fwd::eval(&mut g), &x, "noise", 1.0).is_err());
    }
}
