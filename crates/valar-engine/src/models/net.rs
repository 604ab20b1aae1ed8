//! The layer API a network definition is written in: one definition emits the training graph
//! (recorded on a tape), the inference graph, and the list of parameters, their PyTorch names and
//! their initialisation.
//!
//! A definition calls layers on a [`Net`] as a PyTorch `forward` calls its modules; each layer
//! with weights takes the name its module would have as an attribute, and [`Net::scope`] nests
//! names as submodules do (`layer1.0.conv1.weight`).

use super::{Init, TensorInfo};
use crate::graph::GraphBuilder;
use crate::names;
use crate::ops::batchnorm::BnNames;
use crate::ops::conv2d::Conv2d;
use crate::ops::linear::Linear;
use crate::ops::maxpool::Pool;
use crate::ops::{self, Fwd, Tape, Var};

/// An activation a definition can take as a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `F.relu`.
    Relu,
    /// `F.silu`.
    Silu,
}

/// Builds one graph from a network definition, in training mode (with a tape) or eval mode.
/// Each layer method declares the layer's tensors and calls its op's one forward; the op
/// records itself when the graph trains.
pub(crate) struct Net<'a> {
    f: Fwd<'a>,
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
        Self::with(Fwd::eval(g))
    }

    /// Training mode: every op is recorded on `tape` for the backward pass.
    pub(crate) fn train(g: &'a mut GraphBuilder, tape: &'a mut Tape) -> Self {
        Self::with(Fwd::train(g, tape))
    }

    fn with(f: Fwd<'a>) -> Self {
        Self {
            f,
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

    /// The op's output, or (after keeping the problem, see [`Net::fail`]) `placeholder`.
    fn checked(&mut self, layer: &str, y: Result<Var, String>, placeholder: Var) -> Var {
        y.unwrap_or_else(|e| {
            self.fail(layer, e);
            placeholder
        })
    }

    fn param(&mut self, module: &str, what: &str, shape: Vec<usize>, init: Init) -> String {
        let name = format!("{}.{what}", self.path(module));
        self.f.requires_grad(&name);
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
        // Settings that do not fit are reported by the op; the tensors declared before then
        // are never used, since a definition with a problem builds no graph.
        let wshape = c.weight_shape(x.shape[1]);
        let fan_in = wshape[1] * c.kernel * c.kernel;
        let w = self.param(name, "weight", wshape, Init::TorchUniform { fan_in });
        let b = c
            .bias
            .then(|| self.param(name, "bias", vec![c.out], Init::TorchUniform { fan_in }));
        let y = ops::conv2d::forward(&mut self.f, x, &w, b.as_deref(), &c);
        let placeholder = Var::new(x.name.clone(), vec![x.shape[0], c.out, 1, 1]);
        self.checked(name, y, placeholder)
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
        let (nrm, nrv) = (names::new(&rm), names::new(&rv));
        let bn = BnNames {
            gamma: &gamma,
            beta: &beta,
            running_mean: &rm,
            running_var: &rv,
            new_running_mean: &nrm,
            new_running_var: &nrv,
        };
        ops::batchnorm::forward(&mut self.f, x, &bn)
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
        ops::linear::forward(&mut self.f, x, &w, b.as_deref(), &l)
    }

    /// `nn.MaxPool2d(p.kernel, p.stride)`.
    pub(crate) fn max_pool(&mut self, x: &Var, p: Pool) -> Var {
        if !self.spatial("max_pool", x) {
            return x.clone();
        }
        let y = ops::maxpool::forward(&mut self.f, x, &p);
        self.checked("max_pool", y, x.clone())
    }

    /// `nn.AvgPool2d(p.kernel, p.stride)`.
    // Part of the layer API for new definitions; no registered network pools by averaging yet.
    #[allow(dead_code)]
    pub(crate) fn avg_pool(&mut self, x: &Var, p: Pool) -> Var {
        if !self.spatial("avg_pool", x) {
            return x.clone();
        }
        let y = ops::avgpool::forward(&mut self.f, x, &p);
        self.checked("avg_pool", y, x.clone())
    }

    /// `nn.AdaptiveAvgPool2d(1)`.
    pub(crate) fn global_avg_pool(&mut self, x: &Var) -> Var {
        if !self.spatial("global_avg_pool", x) {
            return x.clone();
        }
        ops::global_avg_pool::forward(&mut self.f, x)
    }

    /// `torch.flatten(x, 1)`.
    pub(crate) fn flatten(&mut self, x: &Var) -> Var {
        ops::flatten::forward(&mut self.f, x)
    }

    /// `F.relu`.
    pub(crate) fn relu(&mut self, x: &Var) -> Var {
        ops::relu::forward(&mut self.f, x)
    }

    /// `F.silu`.
    pub(crate) fn silu(&mut self, x: &Var) -> Var {
        ops::silu::forward(&mut self.f, x)
    }

    /// The activation `a`.
    pub(crate) fn act(&mut self, x: &Var, a: Activation) -> Var {
        match a {
            Activation::Relu => self.relu(x),
            Activation::Silu => self.silu(x),
        }
    }

    /// `nn.Dropout(p)`: its noise is the next noise input of the training graph
    /// ([`names::noise`]).
    pub(crate) fn dropout(&mut self, x: &Var, p: f32) -> Var {
        let slot = self.noise.len();
        self.noise.push(x.shape[1..].to_vec());
        let y = ops::dropout::forward(&mut self.f, x, &names::noise(slot), p);
        self.checked("dropout", y, x.clone())
    }

    /// `a + b` for values of one shape (a residual connection).
    pub(crate) fn add(&mut self, a: &Var, b: &Var) -> Var {
        let y = ops::add::forward(&mut self.f, a, b);
        self.checked("add", y, a.clone())
    }
}
