//! Reverse-mode autodiff over an ONNX graph, and the ops it differentiates (one file per op).
//!
//! Each op file holds one `forward` that emits the op's ONNX nodes into a [`Fwd`] and, when the
//! [`Fwd`] trains, records the op on its [`Tape`]; the op's backward rule (an implementation of
//! [`Backward`] for its number of inputs); and a central-finite-difference test of that rule.
//! Adding an op is that file and its `mod` line below.
//!
//! The graph is a DAG, not a chain: a value may feed several ops (a residual connection feeds
//! both the block and the shortcut), and the gradients that reach it are summed before they
//! flow further back, in the order the consumers were recorded (so the sum, and the step, is the
//! same on every run). Only values that depend on a value marked with [`Tape::requires_grad`]
//! are recorded, so the input image gets no gradient and the first convolution emits no dX.

pub(crate) mod add;
pub(crate) mod avgpool;
pub(crate) mod batchnorm;
pub(crate) mod conv2d;
pub(crate) mod dropout;
pub(crate) mod flatten;
pub(crate) mod global_avg_pool;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod maxpool;
pub(crate) mod relu;
pub(crate) mod silu;

use std::collections::{HashMap, HashSet};

use crate::graph::{Attr, GraphBuilder};

/// A value in a training graph with its static shape (dimension 0 is the batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Var {
    pub name: String,
    pub shape: Vec<usize>,
}

impl Var {
    pub(crate) fn new(name: impl Into<String>, shape: Vec<usize>) -> Self {
        Self {
            name: name.into(),
            shape,
        }
    }
}

/// Where an op's forward emits: the graph, and in training mode the tape that records it. An
/// op's one `forward` takes this, so it never matches on the mode except where eval mode
/// computes something else (BatchNorm's running statistics, dropout's identity).
pub(crate) struct Fwd<'a> {
    pub(crate) g: &'a mut GraphBuilder,
    tape: Option<&'a mut Tape>,
}

impl<'a> Fwd<'a> {
    /// Training mode: every op is recorded on `tape` for the backward pass.
    pub(crate) fn train(g: &'a mut GraphBuilder, tape: &'a mut Tape) -> Self {
        Self {
            g,
            tape: Some(tape),
        }
    }

    /// Eval mode: nothing is recorded.
    pub(crate) fn eval(g: &'a mut GraphBuilder) -> Self {
        Self { g, tape: None }
    }

    /// Whether this forward trains (and so records).
    pub(crate) fn training(&self) -> bool {
        self.tape.is_some()
    }

    /// Marks a leaf as wanting a gradient (training mode only).
    pub(crate) fn requires_grad(&mut self, name: &str) {
        if let Some(t) = self.tape.as_deref_mut() {
            t.requires_grad(name);
        }
    }

    /// Records an op on the tape in training mode; see [`Tape::record`].
    pub(crate) fn record<const N: usize>(
        &mut self,
        inputs: [&str; N],
        output: &str,
        rule: impl Backward<N> + 'static,
    ) {
        if let Some(t) = self.tape.as_deref_mut() {
            t.record(inputs, output, rule);
        }
    }
}

/// The backward rule of one recorded op with `N` inputs.
pub(crate) trait Backward<const N: usize> {
    /// Emits the gradients of the op's inputs given `dy`, the gradient of its (differentiable)
    /// output. `needs[i]` says whether input `i` needs one; the result is `None` where none was
    /// needed (or the input is not differentiable, such as noise).
    fn backward(&self, g: &mut GraphBuilder, dy: &str, needs: [bool; N]) -> [Option<String>; N];
}

/// The gradients that have reached each value so far, in the order the consumers ran backwards.
type Parts = HashMap<String, Vec<String>>;

/// A recorded op with its input count erased, so that the tape can hold every kind of op.
trait Step {
    /// Emits the op's backward from `dy` and adds the gradient of each input that needs one
    /// (a `tracked` one) to `parts`.
    fn emit(&self, g: &mut GraphBuilder, dy: &str, tracked: &HashSet<String>, parts: &mut Parts);
}

/// One recorded op: the values it read and its rule.
struct Recorded<R, const N: usize> {
    inputs: [String; N],
    rule: R,
}

impl<R: Backward<N>, const N: usize> Step for Recorded<R, N> {
    fn emit(&self, g: &mut GraphBuilder, dy: &str, tracked: &HashSet<String>, parts: &mut Parts) {
        let needs = self.inputs.each_ref().map(|i| tracked.contains(i));
        let grads = self.rule.backward(g, dy, needs);
        for ((input, grad), need) in self.inputs.iter().zip(grads).zip(needs) {
            if let (Some(grad), true) = (grad, need) {
                parts.entry(input.clone()).or_default().push(grad);
            }
        }
    }
}

/// One recorded op: the differentiable value it wrote, and the rest of it.
struct Node {
    output: String,
    step: Box<dyn Step>,
}

/// Records the forward pass of a training graph and emits its backward.
pub(crate) struct Tape {
    nodes: Vec<Node>,
    /// Values whose gradient is wanted, or that depend on one that is.
    tracked: HashSet<String>,
}

impl Tape {
    pub(crate) fn new() -> Self {
        Self {
            nodes: Vec::new(),
            tracked: HashSet::new(),
        }
    }

    /// Marks a leaf (a parameter, or an input under test) as wanting a gradient.
    pub(crate) fn requires_grad(&mut self, name: &str) {
        self.tracked.insert(name.to_string());
    }

    /// Whether `name` needs a gradient.
    pub(crate) fn tracks(&self, name: &str) -> bool {
        self.tracked.contains(name)
    }

    /// Records an op that read `inputs` and wrote `output`. Skipped when no input is tracked:
    /// nothing upstream of it wants a gradient.
    pub(crate) fn record<const N: usize>(
        &mut self,
        inputs: [&str; N],
        output: &str,
        rule: impl Backward<N> + 'static,
    ) {
        if !inputs.iter().any(|i| self.tracks(i)) {
            return;
        }
        self.tracked.insert(output.to_string());
        self.nodes.push(Node {
            output: output.to_string(),
            step: Box::new(Recorded {
                inputs: inputs.map(str::to_string),
                rule,
            }),
        });
    }

    /// Emits the backward pass from `dy`, the loss gradient of `output`, and returns the gradient of
    /// each of `wanted`, in order (`None` for a value the loss does not depend on).
    pub(crate) fn backward(
        self,
        g: &mut GraphBuilder,
        output: &str,
        dy: String,
        wanted: &[&str],
    ) -> Vec<Option<String>> {
        let mut parts = Parts::new();
        parts.insert(output.to_string(), vec![dy]);
        for node in self.nodes.into_iter().rev() {
            let Some(dy) = take_sum(g, &mut parts, &node.output) else {
                continue;
            };
            node.step.emit(g, &dy, &self.tracked, &mut parts);
        }
        wanted.iter().map(|w| take_sum(g, &mut parts, w)).collect()
    }
}

/// The sum of the gradients that reached `name`, or `None` if none did.
fn take_sum(g: &mut GraphBuilder, parts: &mut Parts, name: &str) -> Option<String> {
    let mut it = parts.remove(name)?.into_iter();
    let first = it.next()?;
    Some(it.fold(first, |acc, next| g.bin("Add", &acc, &next)))
}

pub(crate) fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

/// Shape as i64, for Reshape and Expand constants.
pub(crate) fn shape_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Reduces an NCHW tensor to one value per channel, `[1, C, 1, 1]` (`keep`) or `[C]`.
///
/// ONNX Runtime reduces over axes (0, 2, 3) on a slow general path; reducing the contiguous H·W axis
/// first, then the batch axis, takes the fast paths (and sums in a better order). `op` is
/// ReduceMean, ReduceSum or ReduceSumSquare; the second stage is a mean or a plain sum.
pub(crate) fn per_channel(
    g: &mut GraphBuilder,
    op: &str,
    x: &str,
    shape: &[usize],
    keep: bool,
) -> String {
    let (b, c, hw) = (
        shape[0] as i64,
        shape[1] as i64,
        (shape[2] * shape[3]) as i64,
    );
    let flat = g.reshape(x, &[b, c, hw]);
    let first = g.reduce(op, &flat, &[2], false);
    let second = if op == "ReduceMean" {
        "ReduceMean"
    } else {
        "ReduceSum"
    };
    let per = g.reduce(second, &first, &[0], false);
    if keep {
        g.reshape(&per, &[1, c, 1, 1])
    } else {
        per
    }
}

/// The output side of a sliding window (convolution or pooling) over `side` with `pad` on both
/// ends, or `None` when the window does not fit.
pub(crate) fn window_out(side: usize, kernel: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = side + 2 * pad;
    if kernel == 0 || stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

#[cfg(test)]
pub(crate) mod tests {
    //! The finite-difference harness every op's test uses, and the autodiff's own tests.
    //!
    //! The graphs compute in f32, so the finite differences are taken of L = Σ y·r accumulated in f64
    //! on the host (r fixed and random): each y carries a rounding error of about 6e-8·|y|, so L is
    //! off by ~1e-6 for these sizes, which divided by 2·eps (1e-2) is ~1e-4. The ops are linear or
    //! smooth (inputs keep ReLU and max-pool away from their kinks), so truncation error is O(eps²).
    //! A tolerance of 1e-3 absolute plus 1e-2 relative is thus well above the noise and far below
    //! any real mistake (a wrong sign, index or scale factor). An op's test says where it differs.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::fixed;
    use crate::names;
    use crate::runtime::{self, Device};
    use ort::session::Session;
    use ort::value::Tensor;
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    use rand_chacha::ChaCha8Rng;

    /// The default tolerance (absolute, relative) reasoned above.
    pub(crate) const TOL: (f64, f64) = (1e-3, 1e-2);

    pub(crate) struct In {
        pub name: String,
        pub shape: Vec<usize>,
        pub data: Vec<f32>,
        /// Whether to check this input's gradient.
        pub check: bool,
    }

    impl In {
        /// An input of random values in (−scale, scale).
        pub(crate) fn random(
            name: &str,
            shape: &[usize],
            rng: &mut ChaCha8Rng,
            scale: f32,
            check: bool,
        ) -> Self {
            let n = shape.iter().product();
            In {
                name: name.into(),
                shape: shape.to_vec(),
                data: random(rng, n, scale),
                check,
            }
        }
    }

    pub(crate) fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect()
    }

    /// Distinct values in (−1, 1), at least 2/n apart and at least 1/n from zero: no ties, no kinks
    /// within a perturbation smaller than 1/n.
    pub(crate) fn spread(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n)
            .map(|k| ((k as f32 + 0.5) / n as f32) * 2.0 - 1.0)
            .collect();
        v.shuffle(rng);
        v
    }

    pub(crate) fn run(session: &mut Session, inputs: &[In], outputs: &[&str]) -> Vec<Vec<f32>> {
        let values: Vec<(String, Tensor<f32>)> = inputs
            .iter()
            .map(|i| {
                let shape: Vec<i64> = i.shape.iter().map(|&d| d as i64).collect();
                (
                    i.name.to_string(),
                    Tensor::from_array((shape, i.data.clone().into_boxed_slice())).unwrap(),
                )
            })
            .collect();
        let out = session.run(values).unwrap();
        outputs
            .iter()
            .map(|o| out[*o].try_extract_tensor::<f32>().unwrap().1.to_vec())
            .collect()
    }

    /// Compares analytic gradients (graph outputs `grad.<name>`) of every checked input with central
    /// differences of `objective(outputs)`, at up to `per_tensor` coordinates per input.
    pub(crate) fn compare(
        session: &mut Session,
        mut inputs: Vec<In>,
        value_outputs: &[&str],
        objective: &dyn Fn(&[Vec<f32>]) -> f64,
        eps: f32,
        per_tensor: usize,
        tol: (f64, f64),
    ) {
        let grad_names: Vec<String> = inputs
            .iter()
            .filter(|i| i.check)
            .map(|i| names::grad(&i.name))
            .collect();
        let refs: Vec<&str> = grad_names.iter().map(String::as_str).collect();
        let analytic = run(session, &inputs, &refs);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut gi = 0;
        let mut checked = 0;
        for k in 0..inputs.len() {
            if !inputs[k].check {
                continue;
            }
            let n = inputs[k].data.len();
            let mut coords: Vec<usize> = (0..n).collect();
            coords.shuffle(&mut rng);
            coords.truncate(per_tensor);
            for &c in &coords {
                let orig = inputs[k].data[c];
                inputs[k].data[c] = orig + eps;
                let lp = objective(&run(session, &inputs, value_outputs));
                inputs[k].data[c] = orig - eps;
                let lm = objective(&run(session, &inputs, value_outputs));
                inputs[k].data[c] = orig;
                let fd = (lp - lm) / (2.0 * f64::from(eps));
                let an = f64::from(analytic[gi][c]);
                assert!(
                    (an - fd).abs() <= tol.0 + tol.1 * fd.abs(),
                    "d/d{}[{c}]: analytic {an}, finite difference {fd}",
                    inputs[k].name
                );
                checked += 1;
            }
            gi += 1;
        }
        assert!(checked > 0, "no coordinate was checked");
    }

    pub(crate) fn session(g: GraphBuilder) -> Session {
        use prost::Message;
        runtime::session(&g.finish("test").encode_to_vec(), Device::Cpu)
            .unwrap()
            .0
    }

    /// Checks the backward of `forward` applied to `inputs` against central differences of
    /// Σ y·r with step `eps`, for every input marked `check`, in a graph emitted for CUDA when
    /// `cuda` (run here on the CPU).
    pub(crate) fn check_op(
        inputs: Vec<In>,
        cuda: bool,
        eps: f32,
        tol: (f64, f64),
        forward: &dyn Fn(&mut Fwd<'_>, &[Var]) -> Var,
    ) {
        let device = if cuda { Device::Cuda } else { Device::Cpu };
        let mut g = GraphBuilder::for_device(device);
        let mut tape = Tape::new();
        let vars: Vec<Var> = inputs
            .iter()
            .map(|i| {
                g.input(&i.name, &fixed(&i.shape));
                if i.check {
                    tape.requires_grad(&i.name);
                }
                Var::new(i.name.clone(), i.shape.clone())
            })
            .collect();
        let y = forward(&mut Fwd::train(&mut g, &mut tape), &vars);
        g.input("r", &fixed(&y.shape));
        let checked: Vec<&In> = inputs.iter().filter(|i| i.check).collect();
        let names: Vec<&str> = checked.iter().map(|i| i.name.as_str()).collect();
        let grads = tape.backward(&mut g, &y.name, "r".into(), &names);
        g.rename(&y.name, "y");
        g.output("y", &fixed(&y.shape));
        for (i, grad) in checked.iter().zip(grads) {
            let grad = grad.unwrap_or_else(|| panic!("no gradient reached {}", i.name));
            // An input's gradient that is the seed itself (a lone Add) needs a copy to be an output.
            let grad = if grad == "r" {
                g.node("Identity", &["r"], vec![])
            } else {
                grad
            };
            g.rename(&grad, &names::grad(&i.name));
            g.output(&names::grad(&i.name), &fixed(&i.shape));
        }
        let mut s = session(g);
        let n: usize = y.shape.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let r: Vec<f64> = random(&mut rng, n, 1.0)
            .into_iter()
            .map(f64::from)
            .collect();
        let mut all = inputs;
        all.push(In {
            name: "r".into(),
            shape: y.shape.clone(),
            data: r.iter().map(|&v| v as f32).collect(),
            check: false,
        });
        let objective = |o: &[Vec<f32>]| {
            o[0].iter()
                .zip(&r)
                .map(|(&a, b)| f64::from(a) * b)
                .sum::<f64>()
        };
        compare(&mut s, all, &["y"], &objective, eps, 12, tol);
    }

    /// A value read by three ops gets the sum of their gradients: y = relu(x) + silu(x) + x, and
    /// a diamond two levels deep. Default tolerance: the ops are smooth away from ReLU's kink,
    /// which `spread` keeps 1/n away from every input.
    #[test]
    fn gradients_of_a_value_with_several_consumers_are_summed() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let inputs = vec![In {
            name: "x".into(),
            shape: vec![2, 3, 2, 2],
            data: spread(&mut rng, 24),
            check: true,
        }];
        check_op(inputs, false, 5e-3, TOL, &|f, v| {
            let a = relu::forward(f, &v[0]);
            let b = silu::forward(f, &v[0]);
            let ab = add::forward(f, &a, &b).unwrap();
            let y = add::forward(f, &ab, &v[0]).unwrap();
            // A diamond: y feeds two ReLUs whose sum feeds one more op.
            let p = relu::forward(f, &y);
            let q = silu::forward(f, &y);
            add::forward(f, &p, &q).unwrap()
        });
    }

    /// A value the loss does not reach has no gradient, and an untracked input is not
    /// differentiated at all (no nodes recorded).
    #[test]
    fn untracked_values_are_not_recorded() {
        let mut g = GraphBuilder::new();
        let mut tape = Tape::new();
        tape.requires_grad("p");
        let x = Var::new("x", vec![1, 2]);
        let p = Var::new("p", vec![1, 2]);
        let mut f = Fwd::train(&mut g, &mut tape);
        let rx = relu::forward(&mut f, &x);
        let s = add::forward(&mut f, &rx, &p).unwrap();
        assert!(
            !tape.tracks(&rx.name),
            "a function of the image alone is not tracked"
        );
        assert!(tape.tracks(&s.name));
        let grads = tape.backward(&mut g, &s.name, "dy".into(), &["p", "x", "q"]);
        assert_eq!(grads[0].as_deref(), Some("dy"));
        assert_eq!(grads[1], None);
        assert_eq!(grads[2], None);
    }
}
