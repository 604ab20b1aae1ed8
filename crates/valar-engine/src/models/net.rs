//! The layer API a network definition is written in: one definition emits the training graph
//! (recorded on a tape), the inference graph, and the list of parameters, their PyTorch names and
//! their initialisation.
//!
//! A definition calls layers on a [`Net`] as a PyTorch `forward` calls its modules; each layer
//! with weights takes the name its module would have as an attribute, and [`Net::scope`] nests
//! names as submodules do (`layer1.0.conv1.weight`).

use super::{Init, TensorInfo, noise_name};
use crate::graph::GraphBuilder;
use crate::ops::batchnorm::BnNames;
use crate::ops::conv2d::Conv2d;
use crate::ops::linear::Linear;
use crate::ops::maxpool::Pool;
use crate::ops::{
    Tape, Var, add, avgpool, batchnorm, conv2d, dropout, flatten, global_avg_pool, linear, maxpool,
    relu, silu,
};
use crate::optim;

/// An activation a definition can take as a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `F.relu`.
    Relu,
    /// `F.silu`.
    Silu,
}

/// Builds one graph from a network definition, in training mode (with a tape) or eval mode.
pub(crate) struct Net<'a> {
    g: &'a mut GraphBuilder,
    tape: Option<&'a mut Tape>,
    scope: Vec<String>,
    /// Trainable tensors in the order the definition declared them.
    pub(crate) params: Vec<TensorInfo>,
    /// BatchNorm running statistics, in declaration order.
    pub(crate) running: Vec<TensorInfo>,
    /// Per-sample shape of each dropout layer's noise input.
    pub(crate) noise: Vec<Vec<usize>>,
    /// The first layer whose settings did not fit its input.
    pub(crate) error: Option<String>,
}

impl<'a> Net<'a> {
    /// Eval mode: BatchNorm uses its running statistics, dropout is the identity.
    pub(crate) fn eval(g: &'a mut GraphBuilder) -> Self {
        Self::with(g, None)
    }

    /// Training mode: every op is recorded on `tape` for the backward pass.
    pub(crate) fn train(g: &'a mut GraphBuilder, tape: &'a mut Tape) -> Self {
        Self::with(g, Some(tape))
    }

    fn with(g: &'a mut GraphBuilder, tape: Option<&'a mut Tape>) -> Self {
        Self {
            g,
            tape,
            scope: Vec::new(),
            params: Vec::new(),
            running: Vec::new(),
            noise: Vec::new(),
            error: None,
        }
    }

    /// Runs `f` with names nested under `name` (a submodule).
    pub(crate) fn scope<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scope.push(name.to_string());
        let r = f(self);
        self.scope.pop();
        r
    }

    fn path(&self, local: &str) -> String {
        let mut parts = self.scope.clone();
        parts.push(local.to_string());
        parts.join(".")
    }

    /// Keeps the first problem, named by the layer it came from; the definition carries on with
    /// a placeholder value so that it needs no error handling of its own.
    fn fail(&mut self, layer: &str, msg: String) {
        if self.error.is_none() {
            self.error = Some(format!("{}: {msg}", self.path(layer)));
        }
    }

    fn param(&mut self, module: &str, what: &str, shape: Vec<usize>, init: Init) -> String {
        let name = format!("{}.{what}", self.path(module));
        if let Some(t) = self.tape.as_deref_mut() {
            t.requires_grad(&name);
        }
        self.params.push(TensorInfo {
            name: name.clone(),
            shape,
            init,
        });
        name
    }

    fn running_stat(&mut self, module: &str, what: &str, shape: Vec<usize>, init: Init) -> String {
        let name = format!("{}.{what}", self.path(module));
        self.running.push(TensorInfo {
            name: name.clone(),
            shape,
            init,
        });
        name
    }

    fn spatial(&mut self, layer: &str, x: &Var) -> bool {
        if x.shape.len() == 4 {
            return true;
        }
        self.fail(
            layer,
            format!(
                "needs a [batch, channels, height, width] input, got {:?}",
                x.shape
            ),
        );
        false
    }

    /// `nn.Conv2d(in, c.out, c.kernel, c.stride, c.padding, groups=c.groups, bias=c.bias)`
    /// named `name`, with PyTorch's default initialisation.
    pub(crate) fn conv2d(&mut self, name: &str, x: &Var, c: Conv2d) -> Var {
        if !self.spatial(name, x) {
            return x.clone();
        }
        let out = match c.output_shape(&x.shape) {
            Ok(s) => s,
            Err(e) => {
                self.fail(name, e);
                return Var::new(x.name.clone(), vec![x.shape[0], c.out, 1, 1]);
            }
        };
        let wshape = c.weight_shape(x.shape[1]);
        let fan_in = wshape[1] * c.kernel * c.kernel;
        let w = self.param(name, "weight", wshape, Init::TorchUniform { fan_in });
        let b = c
            .bias
            .then(|| self.param(name, "bias", vec![c.out], Init::TorchUniform { fan_in }));
        match self.tape.as_deref_mut() {
            Some(t) => conv2d::train(t, self.g, x, &w, b.as_deref(), &c, out),
            None => Var::new(conv2d::infer(self.g, &x.name, &w, b.as_deref(), &c), out),
        }
    }

    /// `nn.BatchNorm2d(channels)` named `name`: γ = 1, β = 0, running mean 0 and variance 1.
    pub(crate) fn batch_norm(&mut self, name: &str, x: &Var) -> Var {
        if !self.spatial(name, x) {
            return x.clone();
        }
        let c = x.shape[1];
        let gamma = self.param(name, "weight", vec![c], Init::Ones);
        let beta = self.param(name, "bias", vec![c], Init::Zeros);
        let rm = self.running_stat(name, "running_mean", vec![c], Init::Zeros);
        let rv = self.running_stat(name, "running_var", vec![c], Init::Ones);
        match self.tape.as_deref_mut() {
            Some(t) => {
                let (nrm, nrv) = (optim::new_name(&rm), optim::new_name(&rv));
                let names = BnNames {
                    gamma: &gamma,
                    beta: &beta,
                    running_mean: &rm,
                    running_var: &rv,
                    new_running_mean: &nrm,
                    new_running_var: &nrv,
                };
                batchnorm::train(t, self.g, x, &names)
            }
            None => Var::new(
                batchnorm::infer(self.g, &x.name, &gamma, &beta, &rm, &rv),
                x.shape.clone(),
            ),
        }
    }

    /// `nn.Linear(in, l.out, bias=l.bias)` named `name`, with PyTorch's default initialisation.
    pub(crate) fn linear(&mut self, name: &str, x: &Var, l: Linear) -> Var {
        if x.shape.len() != 2 {
            self.fail(
                name,
                format!(
                    "needs a [batch, features] input (flatten first), got {:?}",
                    x.shape
                ),
            );
            return Var::new(x.name.clone(), vec![x.shape[0], l.out]);
        }
        let fan_in = x.shape[1];
        let w = self.param(
            name,
            "weight",
            vec![l.out, fan_in],
            Init::TorchUniform { fan_in },
        );
        let b = l
            .bias
            .then(|| self.param(name, "bias", vec![l.out], Init::TorchUniform { fan_in }));
        match self.tape.as_deref_mut() {
            Some(t) => linear::train(t, self.g, x, &w, b.as_deref(), &l),
            None => Var::new(
                linear::infer(self.g, &x.name, &w, b.as_deref()),
                vec![x.shape[0], l.out],
            ),
        }
    }

    fn pool_shape(&mut self, layer: &str, x: &Var, p: &Pool) -> Option<Vec<usize>> {
        if !self.spatial(layer, x) {
            return None;
        }
        match p.output_shape(&x.shape) {
            Ok(s) => Some(s),
            Err(e) => {
                self.fail(layer, e);
                None
            }
        }
    }

    /// `nn.MaxPool2d(p.kernel, p.stride)`.
    pub(crate) fn max_pool(&mut self, x: &Var, p: Pool) -> Var {
        let Some(out) = self.pool_shape("max_pool", x, &p) else {
            return x.clone();
        };
        match self.tape.as_deref_mut() {
            Some(t) => maxpool::train(t, self.g, x, &p, out),
            None => Var::new(maxpool::infer(self.g, &x.name, &p), out),
        }
    }

    /// `nn.AvgPool2d(p.kernel, p.stride)`.
    // Part of the layer API for new definitions; no registered network pools by averaging yet.
    #[allow(dead_code)]
    pub(crate) fn avg_pool(&mut self, x: &Var, p: Pool) -> Var {
        let Some(out) = self.pool_shape("avg_pool", x, &p) else {
            return x.clone();
        };
        match self.tape.as_deref_mut() {
            Some(t) => avgpool::train(t, self.g, x, &p, out),
            None => Var::new(avgpool::infer(self.g, &x.name, &p), out),
        }
    }

    /// `nn.AdaptiveAvgPool2d(1)`.
    pub(crate) fn global_avg_pool(&mut self, x: &Var) -> Var {
        if !self.spatial("global_avg_pool", x) {
            return x.clone();
        }
        match self.tape.as_deref_mut() {
            Some(t) => global_avg_pool::train(t, self.g, x),
            None => Var::new(
                global_avg_pool::infer(self.g, &x.name),
                vec![x.shape[0], x.shape[1], 1, 1],
            ),
        }
    }

    /// `torch.flatten(x, 1)`.
    pub(crate) fn flatten(&mut self, x: &Var) -> Var {
        match self.tape.as_deref_mut() {
            Some(t) => flatten::train(t, self.g, x),
            None => Var::new(
                flatten::infer(self.g, &x.name),
                vec![x.shape[0], x.shape[1..].iter().product()],
            ),
        }
    }

    /// `F.relu`.
    pub(crate) fn relu(&mut self, x: &Var) -> Var {
        match self.tape.as_deref_mut() {
            Some(t) => relu::train(t, self.g, x),
            None => Var::new(relu::infer(self.g, &x.name), x.shape.clone()),
        }
    }

    /// `F.silu`.
    pub(crate) fn silu(&mut self, x: &Var) -> Var {
        match self.tape.as_deref_mut() {
            Some(t) => silu::train(t, self.g, x),
            None => Var::new(silu::infer(self.g, &x.name), x.shape.clone()),
        }
    }

    /// The activation `a`.
    pub(crate) fn act(&mut self, x: &Var, a: Activation) -> Var {
        match a {
            Activation::Relu => self.relu(x),
            Activation::Silu => self.silu(x),
        }
    }

    /// `nn.Dropout(p)`: its noise is the next `noise<k>` input of the training graph.
    pub(crate) fn dropout(&mut self, x: &Var, p: f32) -> Var {
        let slot = self.noise.len();
        self.noise.push(x.shape[1..].to_vec());
        if !(0.0..1.0).contains(&p) {
            self.fail(
                "dropout",
                format!("the drop probability must lie in [0, 1), not {p}"),
            );
            return x.clone();
        }
        match self.tape.as_deref_mut() {
            Some(t) => dropout::train(t, self.g, x, &noise_name(slot), p),
            None => Var::new(dropout::infer(&x.name), x.shape.clone()),
        }
    }

    /// `a + b` for values of one shape (a residual connection).
    pub(crate) fn add(&mut self, a: &Var, b: &Var) -> Var {
        if a.shape != b.shape {
            self.fail(
                "add",
                format!("cannot add shapes {:?} and {:?}", a.shape, b.shape),
            );
            return a.clone();
        }
        match self.tape.as_deref_mut() {
            Some(t) => add::train(t, self.g, a, b),
            None => Var::new(add::infer(self.g, &a.name, &b.name), a.shape.clone()),
        }
    }
}
