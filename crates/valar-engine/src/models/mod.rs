//! The networks, their parameters and initialisation, and their training and inference graphs.
//!
//! Each network is one file in this folder holding a [`Network`]: its name, a line about it,
//! its total stride and its definition, written once against the layer API of [`net::Net`]. The
//! training graph, the inference graph and the parameter list all come from that one definition.
//! A network is registered by one line in the `networks!` table below.

mod blocks;
mod net;

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::EngineError;
use crate::graph::{Attr, Dim, GraphBuilder, fixed};
use crate::names;
use crate::ops::{self, Tape, Var};
use crate::optim::{self, OptimizerKind};
use crate::proto::ModelProto;
use crate::runtime::Device;

pub(crate) use net::Net;

/// One network: what the registry knows about it.
pub(crate) struct Network {
    /// The name on the command line and in `config.toml`.
    pub name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// The product of the strides of its downsampling layers: the input side must be a
    /// positive multiple of it.
    pub stride: usize,
    /// The definition: the layers applied to the (affine-mapped) input image, ending in
    /// `[batch, spec.head_width()]`.
    pub build: fn(&mut Net<'_>, &Var, &ModelSpec) -> Var,
}

/// Declares the network files and the [`ModelKind`] enum from one table, so a network is one
/// file plus one line here.
macro_rules! networks {
    ($($(#[doc = $doc:literal])* $variant:ident => $module:ident,)+) => {
        $(mod $module;)+

        /// Which network to build.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ModelKind {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ModelKind {
            /// Every network, in registration order.
            pub const ALL: &'static [ModelKind] = &[$(ModelKind::$variant),+];

            fn network(self) -> &'static Network {
                match self {
                    $(ModelKind::$variant => &$module::NETWORK,)+
                }
            }
        }
    };
}

networks! {
    /// The recipe's network: three conv blocks (64, 128, 256) and a 4096-1024-256 MLP head (42.6M parameters at 48×48).
    FaceCnn => facecnn,
    /// The default small network: three conv blocks (32, 64, 128), global average pooling and a 64-unit head.
    Compact => compact,
    /// The PyTorch reference recipe's network (`scripts/quality_torch.py`): three conv blocks
    /// (64, 128, 256) and a 1024-256 MLP head without dropout (10.1M parameters at 48×48).
    Reference => reference,
    /// The reference network with dropout 0.5 before each hidden Linear layer, the usual
    /// remedy for a 9.4M-parameter head on a few thousand noisy labels.
    Vgg => vgg,
    /// A ResNet-18-style network at half width for 48–112 px faces: a 3×3 stem, four stages of
    /// two basic blocks (32, 64, 128, 256; stride-2 downsampling with 1×1 shortcuts), global
    /// average pooling and a linear head (2.8M parameters).
    ResNet => resnet,
    /// A MobileNet-style network: a stride-2 stem and depthwise-separable blocks (3×3 depthwise
    /// then 1×1 pointwise, each with BatchNorm and SiLU) up to 512 channels, global average
    /// pooling and a linear head.
    MobileNet => mobilenet,
}

impl ModelKind {
    /// The name used on the command line and in `config.toml`.
    pub fn name(self) -> &'static str {
        self.network().name
    }

    /// One line about the network.
    pub fn about(self) -> &'static str {
        self.network().about
    }

    /// The input side must be a positive multiple of this (the network's total stride).
    pub fn input_multiple(self) -> usize {
        self.network().stride
    }
}

impl Default for ModelKind {
    /// The compact network.
    fn default() -> Self {
        Self::Compact
    }
}

impl Default for ModelSpec {
    /// Compact, 48×48 grey input, 2 outputs (valence, arousal).
    fn default() -> Self {
        Self {
            kind: ModelKind::Compact,
            input_size: 48,
            channels: 1,
            outputs: 2,
            input: InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    /// A registered network's exact name, as for every other setting.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!("unknown model `{s}`: expected {}", names.join(", "))
            })
    }
}

impl serde::Serialize for ModelKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ModelKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// An affine map `x · scale + shift` that both graphs apply to their input before the first
/// layer. It lets a run standardise its inputs by the training set's statistics while the
/// host (and any user of an exported `model.onnx`) keeps feeding valar's one fixed pixel
/// mapping: the statistics travel inside the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputAffine {
    /// Multiplies the input.
    pub scale: f32,
    /// Added after scaling.
    pub shift: f32,
}

impl InputAffine {
    /// No change: the graphs see the input as fed.
    pub const IDENTITY: InputAffine = InputAffine {
        scale: 1.0,
        shift: 0.0,
    };

    fn is_identity(self) -> bool {
        self == Self::IDENTITY
    }
}

/// A network and the shape of its inputs and outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelSpec {
    /// Which network.
    pub kind: ModelKind,
    /// Side of the square input image; a positive multiple of the network's total stride
    /// ([`ModelKind::input_multiple`]).
    pub input_size: usize,
    /// Input channels: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Regression outputs: 1 or 2 (valence, arousal).
    pub outputs: usize,
    /// Applied to the input before the first layer, in training and in the exported model.
    pub input: InputAffine,
    /// Eval mode (validation, `model.onnx`) predicts the mean of the face and its mirror image
    /// (test-time flip averaging); training is unchanged.
    pub flip_average: bool,
    /// Keep an exponential moving average of the weights and BatchNorm statistics with this
    /// decay per step (warmed up as timm's `ModelEma` does), and evaluate and export it
    /// instead of the raw weights.
    pub ema: Option<f32>,
    /// An expression head beside the regression outputs: the last layer emits
    /// `outputs + classes` values, training adds its weighted cross-entropy to the loss, and
    /// the inference graph gets a second output, [`names::EXPRESSION`] (logits).
    pub expression: Option<ExpressionHead>,
}

/// An expression-classification head trained beside valence and arousal (multi-task learning,
/// as HSEmotion and EmoNet train theirs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpressionHead {
    /// Number of classes (AffectNet's 8 expressions).
    pub classes: usize,
    /// The cross-entropy's weight in the loss, beside the regression loss's 1.
    pub weight: f32,
}

impl ModelSpec {
    /// The width of the network's last layer: the regression outputs, then any expression
    /// logits.
    pub fn head_width(&self) -> usize {
        self.outputs + self.expression.map_or(0, |e| e.classes)
    }
}

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LossKind {
    /// Mean squared error over all outputs.
    #[serde(rename = "mse")]
    Mse,
    /// Mean over output columns of 1 − CCC (concordance correlation, population statistics).
    #[serde(rename = "ccc")]
    Ccc,
    /// The sum of `Mse` and `Ccc`: the default, far better CCC than MSE alone on AffectNet.
    #[serde(rename = "mse+ccc")]
    MseCcc,
}
crate::named_enum!(LossKind, "loss", Mse => "mse", Ccc => "ccc", MseCcc => "mse+ccc");

/// Looks up an exported tensor's values by name.
pub(crate) type WeightLookup<'a> = dyn Fn(&str) -> Vec<f32> + 'a;

/// How a tensor is initialised.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Init {
    /// PyTorch's default for `Conv2d` and `Linear` weights and biases: U(−1/√fan_in, 1/√fan_in)
    /// (`kaiming_uniform_(a=√5)` for the weights, the same bound for the biases).
    TorchUniform {
        fan_in: usize,
    },
    Zeros,
    Ones,
}

/// A named tensor of the model state with its shape and initialisation.
#[derive(Clone, Debug)]
pub(crate) struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

/// A network with its parameters, BatchNorm running statistics and dropout noise inputs.
#[derive(Clone)]
pub(crate) struct Arch {
    pub spec: ModelSpec,
    network: &'static Network,
    pub params: Vec<TensorInfo>,
    pub running: Vec<TensorInfo>,
    /// Per-sample shape of each dropout noise input.
    pub noise: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arch")
            .field("network", &self.network.name)
            .field("spec", &self.spec)
            .field("params", &self.params.len())
            .finish()
    }
}

impl Arch {
    pub(crate) fn new(spec: &ModelSpec) -> Result<Self, EngineError> {
        Self::of(spec.kind.network(), spec)
    }

    /// `network` (normally `spec.kind`'s) for `spec`'s input and outputs.
    pub(crate) fn of(network: &'static Network, spec: &ModelSpec) -> Result<Self, EngineError> {
        check_spec(network, spec)?;
        // One eval-mode pass over the definition lists the tensors and checks every layer's
        // settings against the shapes this input size gives.
        let mut g = GraphBuilder::new();
        let mut net = Net::eval(&mut g);
        let x = Var::new(
            names::IMAGE,
            vec![1, spec.channels, spec.input_size, spec.input_size],
        );
        let y = (network.build)(&mut net, &x, spec);
        let at = format!(
            "{} at {}×{}",
            network.name, spec.input_size, spec.input_size
        );
        if let Some(e) = net.error {
            return Err(EngineError::InvalidSpec(format!("{at}: {e}")));
        }
        if y.shape != [1, spec.head_width()] {
            return Err(EngineError::InvalidSpec(format!(
                "{at} ends in shape {:?}, not [batch, {}]",
                &y.shape[1..],
                spec.head_width()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = net
            .params
            .iter()
            .chain(&net.running)
            .find(|t| !seen.insert(t.name.clone()))
        {
            return Err(EngineError::InvalidSpec(format!(
                "{at}: two layers are both named `{}`",
                dup.name
            )));
        }
        Ok(Self {
            spec: *spec,
            network,
            params: net.params,
            running: net.running,
            noise: net.noise,
        })
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.params
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }

    /// Every state tensor in graph order: parameters, optimizer state, running statistics.
    pub(crate) fn state_tensors(&self, opt: Option<&OptimizerKind>) -> Vec<TensorInfo> {
        let mut all = self.params.clone();
        for p in &self.params {
            for name in opt.map(|o| o.state_names(&p.name)).unwrap_or_default() {
                all.push(TensorInfo {
                    name,
                    shape: p.shape.clone(),
                    init: Init::Zeros,
                });
            }
        }
        all.extend(self.running.iter().cloned());
        if opt.is_some() && self.spec.ema.is_some() {
            // Zeros here; the trainer copies the starting weights in (see `eval_sources`).
            for t in self.params.iter().chain(&self.running) {
                all.push(TensorInfo {
                    name: names::ema(&t.name),
                    shape: t.shape.clone(),
                    init: Init::Zeros,
                });
            }
        }
        all
    }

    /// The tensors eval mode reads (parameters and running statistics), each with the name of
    /// the state tensor that holds its value: itself, or its moving average.
    pub(crate) fn eval_sources(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .chain(&self.running)
            .map(|t| {
                let src = match self.spec.ema {
                    Some(_) => names::ema(&t.name),
                    None => t.name.clone(),
                };
                (t.name.clone(), src)
            })
            .collect()
    }

    /// The training graph for a fixed batch size, emitted for `device`: one run is one
    /// optimizer step.
    ///
    /// Inputs: the image, the targets, the noise inputs, the learning rate, the step number (and
    /// the weight-average decay), then every state tensor. Outputs: the loss, the predictions,
    /// then [`names::new`] of every state tensor, in the same order (see [`crate::names`]).
    ///
    /// Without an optimizer the graph has no learning-rate and step inputs and outputs
    /// [`names::grad`] of every parameter instead of updated parameters (used to check
    /// gradients).
    pub(crate) fn train_graph(
        &self,
        batch: usize,
        loss: LossKind,
        opt: Option<&OptimizerKind>,
        device: Device,
    ) -> ModelProto {
        let mut g = GraphBuilder::for_device(device);
        let state = self.train_inputs(&mut g, batch, opt);
        let scale = opt.map_or(1.0, optim::grad_scale);
        let (l, pred, grads) = self.loss_and_gradients(&mut g, batch, loss, scale);
        g.rename(&l, names::LOSS);
        g.rename(&pred, names::PREDICTIONS);
        g.output(names::LOSS, &[]);
        g.output(names::PREDICTIONS, &fixed(&[batch, self.spec.outputs]));
        match opt {
            Some(opt) => {
                let after = update_waits(&g, &grads);
                optim::emit_update(&mut g, opt, &grads, &after, scale, names::LR, names::STEP);
                if self.spec.ema.is_some() {
                    self.emit_ema(&mut g);
                }
                for t in &state {
                    g.output(&names::new(&t.name), &fixed(&t.shape));
                }
            }
            None => self.gradient_outputs(&mut g, &grads),
        }
        g.finish(names::TRAIN_GRAPH)
    }

    /// Declares the training graph's inputs and returns the state tensors among them.
    fn train_inputs(
        &self,
        g: &mut GraphBuilder,
        batch: usize,
        opt: Option<&OptimizerKind>,
    ) -> Vec<TensorInfo> {
        let s = &self.spec;
        g.input(
            names::IMAGE,
            &fixed(&[batch, s.channels, s.input_size, s.input_size]),
        );
        g.input(names::TARGETS, &fixed(&[batch, s.outputs]));
        g.input(names::SAMPLE_WEIGHTS, &fixed(&[batch, 1]));
        if let Some(head) = s.expression {
            g.input(names::EXPRESSION_TARGETS, &fixed(&[batch, head.classes]));
        }
        for (i, n) in self.noise.iter().enumerate() {
            let mut shape = vec![batch];
            shape.extend(n);
            g.input(&names::noise(i), &fixed(&shape));
        }
        if opt.is_some() {
            g.input(names::LR, &[]);
            g.input(names::STEP, &[]);
            if s.ema.is_some() {
                g.input(names::EMA_DECAY, &[]);
            }
        }
        let state = self.state_tensors(opt);
        for t in &state {
            g.input(&t.name, &fixed(&t.shape));
        }
        state
    }

    /// The forward pass in training mode, the loss, and the backward pass seeded with the loss
    /// gradient times `scale`: returns the loss, the predictions and `(parameter, gradient)`
    /// for every parameter.
    fn loss_and_gradients(
        &self,
        g: &mut GraphBuilder,
        batch: usize,
        loss: LossKind,
        scale: f32,
    ) -> (String, String, Vec<(String, String)>) {
        let s = &self.spec;
        let xshape = vec![batch, s.channels, s.input_size, s.input_size];
        let mut tape = Tape::new();
        // The input needs no gradient, so the affine needs no backward rule.
        let x = Var::new(input_affine(g, names::IMAGE, s.input), xshape);
        let mut net = Net::train(g, &mut tape);
        let out = (self.network.build)(&mut net, &x, s);
        drop(net);
        let (l, dout, pred) = self.loss_of_heads(g, &out, loss);
        let seed = if scale != 1.0 {
            let c = g.scalar(scale);
            g.bin("Mul", &dout, &c)
        } else {
            dout
        };
        let params: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        let found = tape.backward(g, &out.name, seed, &params);
        let grads = self
            .params
            .iter()
            .zip(found)
            .map(|(p, grad)| {
                // A parameter the loss does not reach has a zero gradient (no network here has
                // one; this keeps the update well defined if a definition ever does).
                let grad = grad.unwrap_or_else(|| {
                    let shape = g.const_i64(&ops::shape_i64(&p.shape));
                    g.node("ConstantOfShape", &[&shape], vec![])
                });
                (p.name.clone(), grad)
            })
            .collect();
        (l, pred, grads)
    }

    /// The loss of the network's last layer `out` and its gradient, with the regression
    /// predictions: the regression loss on the whole of `out`, or with an expression head the
    /// regression loss on its first `outputs` columns plus the weighted cross-entropy on the
    /// rest, their gradients side by side.
    fn loss_of_heads(
        &self,
        g: &mut GraphBuilder,
        out: &Var,
        loss: LossKind,
    ) -> (String, String, String) {
        let Some(head) = self.spec.expression else {
            let (l, d) = ops::loss::loss(g, out, names::TARGETS, names::SAMPLE_WEIGHTS, loss);
            return (l, d, out.name.clone());
        };
        let (batch, o) = (out.shape[0], self.spec.outputs);
        let pred = Var::new(columns(g, &out.name, 0, o), vec![batch, o]);
        let logits = Var::new(
            columns(g, &out.name, o, o + head.classes),
            vec![batch, head.classes],
        );
        let (lr, dr) = ops::loss::loss(g, &pred, names::TARGETS, names::SAMPLE_WEIGHTS, loss);
        let (le, de) = ops::loss::cross_entropy(g, &logits, names::EXPRESSION_TARGETS);
        let w = g.scalar(head.weight);
        let le = g.bin("Mul", &le, &w);
        let de = g.bin("Mul", &de, &w);
        let l = g.bin("Add", &lr, &le);
        let d = g.node("Concat", &[&dr, &de], vec![("axis", Attr::Int(1))]);
        (l, d, pred.name)
    }

    /// avg' = avg·d + new·(1 − d) for every parameter and running statistic, from the values
    /// this step produced.
    fn emit_ema(&self, g: &mut GraphBuilder) {
        let one = g.scalar(1.0);
        let rest = g.bin("Sub", &one, names::EMA_DECAY);
        for t in self.params.iter().chain(&self.running) {
            let avg = names::ema(&t.name);
            let kept = g.bin("Mul", &avg, names::EMA_DECAY);
            let fresh = g.bin("Mul", &names::new(&t.name), &rest);
            g.node_to("Add", &[&kept, &fresh], &[&names::new(&avg)], vec![]);
        }
    }

    /// The outputs of a graph without an optimizer: every parameter's gradient and the updated
    /// running statistics.
    fn gradient_outputs(&self, g: &mut GraphBuilder, grads: &[(String, String)]) {
        for ((p, grad), info) in grads.iter().zip(&self.params) {
            let name = names::grad(p);
            g.rename(grad, &name);
            g.output(&name, &fixed(&info.shape));
        }
        for t in &self.running {
            g.output(&names::new(&t.name), &fixed(&t.shape));
        }
    }

    /// The inference graph (eval mode: running statistics, no dropout) with a symbolic batch.
    /// With `weights` the parameters and running statistics become initializers (an exported model);
    /// without, they are graph inputs.
    pub(crate) fn inference_graph(&self, weights: Option<&WeightLookup<'_>>) -> ModelProto {
        let s = &self.spec;
        let mut g = GraphBuilder::new();
        g.input(
            names::IMAGE,
            &[
                Dim::Batch,
                Dim::Fixed(s.channels),
                Dim::Fixed(s.input_size),
                Dim::Fixed(s.input_size),
            ],
        );
        for t in self.params.iter().chain(&self.running) {
            match weights {
                Some(f) => g.initializer(&t.name, &t.shape, &f(&t.name)),
                None => g.input(&t.name, &fixed(&t.shape)),
            }
        }
        let x = input_affine(&mut g, names::IMAGE, s.input);
        let mut y = self.eval_forward(&mut g, &x);
        if s.flip_average {
            // The mirror image along the width axis, through the same weights.
            let starts = g.const_i64(&[-1]);
            let ends = g.const_i64(&[i64::MIN]);
            let axes = g.const_i64(&[3]);
            let steps = g.const_i64(&[-1]);
            let mirrored = g.node("Slice", &[&x, &starts, &ends, &axes, &steps], vec![]);
            let ym = self.eval_forward(&mut g, &mirrored);
            let sum = g.bin("Add", &y, &ym);
            let half = g.scalar(0.5);
            y = g.bin("Mul", &sum, &half);
        }
        if let Some(head) = s.expression {
            let logits = columns(&mut g, &y, s.outputs, s.outputs + head.classes);
            y = columns(&mut g, &y, 0, s.outputs);
            g.rename(&logits, names::EXPRESSION);
        }
        g.rename(&y, names::PREDICTIONS);
        // The regression output comes first: export finishes (clips, renames) the first one.
        g.output(names::PREDICTIONS, &[Dim::Batch, Dim::Fixed(s.outputs)]);
        if let Some(head) = s.expression {
            g.output(names::EXPRESSION, &[Dim::Batch, Dim::Fixed(head.classes)]);
        }
        g.finish(names::INFERENCE_GRAPH)
    }

    /// The network in eval mode (running statistics, no dropout) applied to `input`. The batch
    /// is symbolic; eval-mode layers never bake it into a constant, so 1 stands in for it.
    fn eval_forward(&self, g: &mut GraphBuilder, input: &str) -> String {
        let s = &self.spec;
        let x = Var::new(input, vec![1, s.channels, s.input_size, s.input_size]);
        let mut net = Net::eval(g);
        (self.network.build)(&mut net, &x, s).name
    }
}

/// Refuses a spec no network can be built for: an input side that is not a multiple of
/// `network`'s stride, other channel or output counts, a degenerate head, input map or decay.
fn check_spec(network: &Network, spec: &ModelSpec) -> Result<(), EngineError> {
    if spec.input_size == 0 || !spec.input_size.is_multiple_of(network.stride) {
        return Err(EngineError::InvalidSpec(format!(
            "the {} network takes faces whose side is a positive multiple of {} (its total stride), not {}",
            network.name, network.stride, spec.input_size
        )));
    }
    if spec.channels != 1 && spec.channels != 3 {
        return Err(EngineError::InvalidSpec(format!(
            "channels must be 1 or 3, not {}",
            spec.channels
        )));
    }
    if spec.outputs != 1 && spec.outputs != 2 {
        return Err(EngineError::InvalidSpec(format!(
            "outputs must be 1 or 2, not {}",
            spec.outputs
        )));
    }
    if let Some(e) = spec.expression
        && !(e.classes >= 2 && e.weight.is_finite() && e.weight > 0.0)
    {
        return Err(EngineError::InvalidSpec(format!(
            "an expression head needs at least 2 classes and a positive finite weight, not {e:?}"
        )));
    }
    if !(spec.input.scale.is_finite() && spec.input.scale != 0.0 && spec.input.shift.is_finite()) {
        return Err(EngineError::InvalidSpec(format!(
            "the input affine must have a finite non-zero scale and a finite shift, not {:?}",
            spec.input
        )));
    }
    if let Some(d) = spec.ema
        && !(d.is_finite() && (0.0..1.0).contains(&d))
    {
        return Err(EngineError::InvalidSpec(format!(
            "the weight-average decay must lie in [0, 1), not {d}"
        )));
    }
    Ok(())
}

/// What each parameter's update must wait for. The trainer binds every state tensor as both
/// input and output of the training step (one copy of the state, not two), so a parameter may
/// only be overwritten after every node that reads it has run. Its forward use and its own
/// gradient come before its update by construction, but the backward pass also reads it to pass
/// the gradient down (dX = dY·Wᵀ), and nothing in the data orders that read before the update.
/// For each parameter this gives the gradient of a lower layer that every such read flows into
/// (the nearest one: it exists until its own update anyway, so waiting for it costs little
/// memory), or, when there is none, the reads' own outputs; empty when nothing is left to wait
/// for. `overwrite_hazards` (tests) checks the result on every network.
fn update_waits(g: &GraphBuilder, grads: &[(String, String)]) -> Vec<Vec<String>> {
    let before: Vec<HashSet<usize>> = grads.iter().map(|(_, d)| g.ancestors(d)).collect();
    grads
        .iter()
        .zip(&before)
        .map(|((p, _), own)| {
            let reads: Vec<usize> = g
                .consumers(p)
                .into_iter()
                .filter(|i| !own.contains(i))
                .collect();
            if reads.is_empty() {
                return Vec::new();
            }
            let nearest = before
                .iter()
                .enumerate()
                .filter(|(_, a)| reads.iter().all(|r| a.contains(r)))
                .min_by_key(|(_, a)| a.len());
            match nearest {
                Some((q, _)) => vec![grads[q].1.clone()],
                None => reads
                    .iter()
                    .map(|&r| g.node_output(r).to_string())
                    .collect(),
            }
        })
        .collect()
}

/// Columns `start..end` of a `[batch, width]` value.
fn columns(g: &mut GraphBuilder, x: &str, start: usize, end: usize) -> String {
    let starts = g.const_i64(&[start as i64]);
    let ends = g.const_i64(&[end as i64]);
    let axes = g.const_i64(&[1]);
    g.node("Slice", &[x, &starts, &ends, &axes], vec![])
}

/// `x · scale + shift`, or `x` itself for the identity.
fn input_affine(g: &mut GraphBuilder, x: &str, a: InputAffine) -> String {
    if a.is_identity() {
        return x.to_string();
    }
    let scale = g.scalar(a.scale);
    let shift = g.scalar(a.shift);
    let scaled = g.bin("Mul", x, &scale);
    g.bin("Add", &scaled, &shift)
}

/// Initial values of a tensor, drawn from `rng` in a fixed order.
pub(crate) fn init_tensor(info: &TensorInfo, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n: usize = info.shape.iter().product();
    match info.init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::TorchUniform { fan_in } => {
            let bound = (1.0 / fan_in as f64).sqrt() as f32;
            (0..n)
                .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound)
                .collect()
        }
    }
}

/// The generator for initial weights; separate from the dropout stream (see `runtime::noise_rng`).
pub(crate) fn init_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(0);
    rng
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The state inputs of a training graph that some node may read after the node writing
    /// their new value has run (it is not among that writer's ancestors): with the state bound
    /// in place, such a read could see the updated value.
    fn overwrite_hazards(model: &ModelProto) -> Vec<String> {
        use crate::graph::{ancestors_in, consumers_in};
        let graph = model.graph.as_ref().unwrap();
        let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        let mut hazards = Vec::new();
        for input in &graph.input {
            let new = names::new(&input.name);
            if !outputs.contains(new.as_str()) {
                continue;
            }
            let before = ancestors_in(&graph.node, &new);
            for c in consumers_in(&graph.node, &input.name) {
                if !before.contains(&c) {
                    let n = &graph.node[c];
                    hazards.push(format!("{} read by {} ({})", input.name, n.name, n.op_type));
                }
            }
        }
        hazards
    }

    /// The check sees a read the update does not wait for.
    #[test]
    fn an_unordered_read_of_updated_state_is_a_hazard() {
        let mut g = GraphBuilder::new();
        g.input("w", &fixed(&[2]));
        g.input("d", &fixed(&[2]));
        let dx = g.bin("Mul", "d", "w");
        g.node_to("Sub", &["w", "d"], &[&names::new("w")], vec![]);
        g.output(&names::new("w"), &fixed(&[2]));
        g.rename(&dx, "dx");
        g.output("dx", &fixed(&[2]));
        let hazards = overwrite_hazards(&g.finish("t"));
        assert_eq!(hazards, vec!["w read by n0 (Mul)".to_string()]);
    }

    /// Every state tensor of every network's training graph (AdamW and SGD, with and without
    /// a weight average and an expression head, both device flavours) is overwritten only after
    /// its last read: the trainer's one-copy, in-place binding depends on it.
    #[test]
    fn training_graphs_overwrite_state_only_after_its_last_read() {
        let sgd = OptimizerKind::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        };
        for &kind in ModelKind::ALL {
            for (opt, ema, expression) in [
                (OptimizerKind::adamw_default(), None, None),
                (
                    OptimizerKind::adamw(0.0),
                    Some(0.99),
                    Some(ExpressionHead {
                        classes: 8,
                        weight: 0.5,
                    }),
                ),
                (sgd, Some(0.9), None),
            ] {
                let spec = ModelSpec {
                    kind,
                    input_size: kind.input_multiple(),
                    ema,
                    expression,
                    ..ModelSpec::default()
                };
                let arch = Arch::new(&spec).unwrap();
                for device in [Device::Cpu, Device::Cuda] {
                    let model = arch.train_graph(3, LossKind::Mse, Some(&opt), device);
                    let hazards = overwrite_hazards(&model);
                    assert!(
                        hazards.is_empty(),
                        "{kind} {opt:?} on {device}: {hazards:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn facecnn_has_the_recipe_parameter_count() {
        let spec = ModelSpec {
            kind: ModelKind::FaceCnn,
            input_size: 48,
            channels: 1,
            outputs: 2,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        };
        let arch = Arch::new(&spec).unwrap();
        assert_eq!(arch.parameter_count(), 42_581_634);
        // The training graph builds (no session needed) and has one update output per state tensor.
        let model = arch.train_graph(
            4,
            LossKind::Mse,
            Some(&OptimizerKind::adamw_default()),
            Device::Cpu,
        );
        let graph = model.graph.unwrap();
        assert_eq!(
            graph.output.len(),
            2 + arch
                .state_tensors(Some(&OptimizerKind::adamw_default()))
                .len()
        );
    }

    /// The gradients of a whole network (training mode, MSE+CCC) at `size`×`size`, against
    /// central differences (step 1e-3) of the f32 loss, at `per_tensor` coordinates of every
    /// parameter tensor.
    fn check_gradients(
        network: &'static Network,
        size: usize,
        batch: usize,
        per_tensor: usize,
        tol: (f64, f64),
    ) {
        check_gradients_with(network, size, batch, per_tensor, tol, None);
    }

    /// [`check_gradients`], with an expression head whose targets give face `i` class
    /// `i % classes` with weight `1 + i/4`, except the last face, which has none.
    fn check_gradients_with(
        network: &'static Network,
        size: usize,
        batch: usize,
        per_tensor: usize,
        tol: (f64, f64),
        expression: Option<ExpressionHead>,
    ) {
        use crate::ops::tests::{In, compare, random};
        use prost::Message;
        let spec = ModelSpec {
            input_size: size,
            expression,
            ..ModelSpec::default()
        };
        let arch = Arch::of(network, &spec).unwrap();
        let model = arch.train_graph(batch, LossKind::MseCcc, None, Device::Cpu);
        let (mut session, _) =
            crate::runtime::session(&model.encode_to_vec(), crate::Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut inputs = vec![
            In {
                name: names::IMAGE.into(),
                shape: vec![batch, 1, size, size],
                data: random(&mut rng, batch * size * size, 1.0),
                check: false,
            },
            In {
                name: names::TARGETS.into(),
                shape: vec![batch, 2],
                data: random(&mut rng, batch * 2, 0.8),
                check: false,
            },
            // Unequal face weights, so the weighted squared error is checked too.
            In {
                name: names::SAMPLE_WEIGHTS.into(),
                shape: vec![batch, 1],
                data: (0..batch).map(|i| 0.5 + i as f32 * 0.25).collect(),
                check: false,
            },
        ];
        if let Some(head) = expression {
            let c = head.classes;
            let mut t = vec![0.0; batch * c];
            for i in 0..batch - 1 {
                t[i * c + i % c] = 1.0 + i as f32 / 4.0;
            }
            inputs.push(In {
                name: names::EXPRESSION_TARGETS.into(),
                shape: vec![batch, c],
                data: t,
                check: false,
            });
        }
        for (i, n) in arch.noise.iter().enumerate() {
            let mut shape = vec![batch];
            shape.extend(n);
            let count = shape.iter().product();
            inputs.push(In {
                name: names::noise(i),
                shape,
                data: (0..count).map(|_| rng.random::<f32>()).collect(),
                check: false,
            });
        }
        let mut init = init_rng(5);
        for t in arch.params.iter().chain(&arch.running) {
            let mut data = init_tensor(t, &mut init);
            // Non-trivial BatchNorm affine parameters and biases.
            if matches!(t.init, Init::Ones | Init::Zeros)
                && arch.params.iter().any(|p| p.name == t.name)
            {
                for v in &mut data {
                    *v += rng.random::<f32>() * 0.4 - 0.2;
                }
            }
            let check = arch.params.iter().any(|p| p.name == t.name);
            inputs.push(In {
                name: t.name.clone(),
                shape: t.shape.clone(),
                data,
                check,
            });
        }
        compare(
            &mut session,
            inputs,
            &[names::LOSS],
            &|o| f64::from(o[0][0]),
            1e-3,
            per_tensor,
            tol,
        );
    }

    /// The whole compact network. The loss is ~1 and rounds at ~1e-7, and BatchNorm's f32
    /// reductions add ~1e-6 of noise, i.e. ~5e-4 after dividing by 2·eps; hence 2e-3 absolute
    /// plus 2e-2 relative.
    #[test]
    fn compact_model_gradients_match_finite_differences() {
        check_gradients(ModelKind::Compact.network(), 8, 4, 3, (2e-3, 2e-2));
    }

    /// The compact network with an 8-way expression head: the regression loss on the first two
    /// columns of its last layer and the weighted cross-entropy on the other eight reach every
    /// parameter through one backward pass (tolerances as above).
    #[test]
    fn expression_head_gradients_match_finite_differences() {
        let head = ExpressionHead {
            classes: 8,
            weight: 0.5,
        };
        check_gradients_with(
            ModelKind::Compact.network(),
            8,
            4,
            3,
            (2e-3, 2e-2),
            Some(head),
        );
    }

    /// The inference graph of a network with an expression head has two outputs,
    /// `predictions` then `expression`, of widths 2 and 8.
    #[test]
    fn expression_head_adds_a_second_output() {
        let spec = ModelSpec {
            input_size: 16,
            expression: Some(ExpressionHead {
                classes: 8,
                weight: 1.0,
            }),
            ..ModelSpec::default()
        };
        let graph = Arch::new(&spec)
            .unwrap()
            .inference_graph(None)
            .graph
            .unwrap();
        let outs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outs, [names::PREDICTIONS, names::EXPRESSION]);
        let bad = ModelSpec {
            expression: Some(ExpressionHead {
                classes: 8,
                weight: 0.0,
            }),
            ..spec
        };
        assert!(Arch::new(&bad).is_err());
    }

    /// The whole residual network at 16×16, batch 4: every one of its 62 parameter tensors,
    /// through the summed gradients of eight residual connections, the strided 3×3 and 1×1
    /// convolutions, twenty BatchNorms and the pooled head, built from the registered
    /// definition with SiLU in place of ReLU. Why: with ReLU the loss is too kinked for
    /// central differences at any step f32 can resolve. Measured on this very network in
    /// PyTorch float64: at the stem, ∂L/∂w = −0.0603 (autograd, matching valar's to 2e-6)
    /// while central differences give −0.0887, −0.0650, −0.0638 and −0.0609 at steps 1e-2,
    /// 1e-3, 3e-4 and 1e-4: thousands of ReLU units sit within a step of their kink. SiLU is
    /// smooth, so the truncation error is O(eps²); ReLU's own rule is checked in `ops::relu`
    /// and the graph around it is the same. Noise: the loss is ~1, rounds at ~1e-7, and twenty
    /// BatchNorms' f32 reductions add ~1e-6, i.e. ~5e-4 after dividing by 2·eps; hence 2e-3
    /// absolute plus 2e-2 relative, as for compact.
    #[test]
    fn resnet_gradients_match_finite_differences() {
        const SMOOTH: Network = Network {
            name: "resnet-silu",
            about: "",
            stride: 8,
            build: |n, x, s| resnet::resnet(n, x, s, net::Activation::Silu),
        };
        check_gradients(&SMOOTH, 16, 4, 2, (2e-3, 2e-2));
    }

    /// The depthwise-separable network at 16×16 (depthwise 3×3 convolutions at stride 1 and 2,
    /// pointwise 1×1, SiLU, dropout), every parameter tensor. Batch 8: at batch 4 its last
    /// blocks normalise 4 values per channel (1×1 maps), where BatchNorm's curvature puts the
    /// truncation error of the stem's weights at ~4%; 8 values bring it under the tolerance,
    /// which is compact's for the same reasons.
    #[test]
    fn mobilenet_gradients_match_finite_differences() {
        check_gradients(ModelKind::MobileNet.network(), 16, 8, 2, (2e-3, 2e-2));
    }

    /// The CUDA flavour of every network's training graph (ScatterElements instead of MaxUnpool)
    /// computes the same step; it runs here on the CPU execution provider.
    #[test]
    fn cuda_flavoured_graph_matches_on_cpu() {
        for &kind in ModelKind::ALL {
            cuda_flavour_matches(kind);
        }
    }

    fn cuda_flavour_matches(kind: ModelKind) {
        use crate::ops::tests::{In, random, run};
        use prost::Message;
        let spec = ModelSpec {
            kind,
            input_size: 16,
            channels: 3,
            outputs: 2,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        };
        let arch = Arch::new(&spec).unwrap();
        let opt = OptimizerKind::adamw_default();
        let batch = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut ins = vec![
            In {
                name: names::IMAGE.into(),
                shape: vec![batch, 3, 16, 16],
                data: random(&mut rng, batch * 768, 1.0),
                check: false,
            },
            In {
                name: names::TARGETS.into(),
                shape: vec![batch, 2],
                data: random(&mut rng, batch * 2, 0.8),
                check: false,
            },
            In {
                name: names::SAMPLE_WEIGHTS.into(),
                shape: vec![batch, 1],
                data: vec![1.0; batch],
                check: false,
            },
            In {
                name: names::LR.into(),
                shape: vec![],
                data: vec![1e-3],
                check: false,
            },
            In {
                name: names::STEP.into(),
                shape: vec![],
                data: vec![1.0],
                check: false,
            },
        ];
        for (i, n) in arch.noise.iter().enumerate() {
            let mut shape = vec![batch];
            shape.extend(n);
            let count = shape.iter().product();
            ins.push(In {
                name: names::noise(i),
                shape,
                data: (0..count).map(|_| rng.random::<f32>()).collect(),
                check: false,
            });
        }
        let mut init = init_rng(1);
        for t in arch.state_tensors(Some(&opt)) {
            ins.push(In {
                name: t.name.clone(),
                shape: t.shape.clone(),
                data: init_tensor(&t, &mut init),
                check: false,
            });
        }
        let outs: Vec<String> = [names::LOSS, names::PREDICTIONS]
            .map(String::from)
            .into_iter()
            .chain(
                arch.state_tensors(Some(&opt))
                    .iter()
                    .map(|t| names::new(&t.name)),
            )
            .collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let results: Vec<Vec<Vec<f32>>> = [Device::Cpu, Device::Cuda]
            .into_iter()
            .map(|device| {
                let model = arch.train_graph(batch, LossKind::MseCcc, Some(&opt), device);
                let (mut s, _) =
                    crate::runtime::session(&model.encode_to_vec(), crate::Device::Cpu).unwrap();
                run(&mut s, &ins, &refs)
            })
            .collect();
        assert_eq!(results[0], results[1], "{kind}");
        assert!(results[0][0][0].is_finite(), "{kind}");
    }

    /// Parameter counts by hand. resnet (grey input, 2 outputs): stem 288 + 64; layer1 two
    /// blocks of 2·9,216 + 2·64; layer2 18,432 + 36,864 + 2,048 (shortcut) + 3·128, then
    /// 2·36,864 + 2·128; layer3 and layer4 likewise at 128 and 256 channels; fc 514: 2,794,978.
    /// mobilenet: stem 288 + 64; each block C·9 + 2C (depthwise and its BN) + C·W + 2W; fc
    /// 1,026: 538,370.
    #[test]
    fn new_networks_have_their_parameter_counts() {
        for (kind, want) in [
            (ModelKind::ResNet, 2_794_978),
            (ModelKind::MobileNet, 538_370),
        ] {
            let spec = ModelSpec {
                kind,
                ..ModelSpec::default()
            };
            assert_eq!(Arch::new(&spec).unwrap().parameter_count(), want, "{kind}");
        }
        let arch = Arch::new(&ModelSpec {
            kind: ModelKind::ResNet,
            ..ModelSpec::default()
        })
        .unwrap();
        // Names follow torchvision's resnet18.
        for name in [
            "conv1.weight",
            "layer1.0.conv1.weight",
            "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.running_var",
            "layer4.1.bn2.bias",
            "fc.weight",
        ] {
            assert!(
                arch.params
                    .iter()
                    .chain(&arch.running)
                    .any(|t| t.name == name),
                "{name}"
            );
        }
        assert!(
            !arch
                .params
                .iter()
                .any(|t| t.name == "layer1.0.downsample.0.weight")
        );
    }

    /// Every network accepts exactly the input sides that are positive multiples of its total
    /// stride (48 to 112 for the residual network), and says so otherwise.
    #[test]
    fn input_sizes_are_multiples_of_the_total_stride() {
        for &kind in ModelKind::ALL {
            let m = kind.input_multiple();
            for size in (1..=7).map(|k| k * m) {
                let spec = ModelSpec {
                    kind,
                    input_size: size,
                    ..ModelSpec::default()
                };
                assert!(Arch::new(&spec).is_ok(), "{kind} at {size}");
            }
            for size in [0, m + 4, 3 * m - 2] {
                let spec = ModelSpec {
                    kind,
                    input_size: size,
                    ..ModelSpec::default()
                };
                let err = Arch::new(&spec).unwrap_err().to_string();
                assert!(
                    err.contains(&format!("positive multiple of {m}")),
                    "{kind} at {size}: {err}"
                );
            }
        }
        for size in (48..=112).step_by(8) {
            let spec = ModelSpec {
                kind: ModelKind::ResNet,
                input_size: size,
                ..ModelSpec::default()
            };
            assert!(Arch::new(&spec).is_ok(), "resnet at {size}");
        }
    }

    /// A definition whose layers do not fit their inputs is an error naming the layer, not a
    /// panic or a broken graph.
    #[test]
    fn a_definition_that_does_not_fit_names_the_layer() {
        use crate::ops::conv2d::Conv2d;
        use crate::ops::maxpool::Pool;
        let mut g = GraphBuilder::new();
        let mut net = Net::eval(&mut g);
        let x = Var::new(names::IMAGE, vec![1, 3, 8, 8]);
        let y = net.scope("stage", |n| {
            n.conv2d("conv", &x, Conv2d::new(4, 3).groups(2))
        });
        let y = net.avg_pool(&y, Pool::new(2, 2));
        let _ = net.add(&y, &x);
        let err = net.error.unwrap();
        assert!(err.starts_with("stage.conv: "), "{err}");
        let mut g = GraphBuilder::new();
        let mut net = Net::eval(&mut g);
        let p = net.avg_pool(&x, Pool::new(2, 2));
        let _ = net.add(&p, &x);
        assert!(net.error.unwrap().starts_with("add: cannot add"));
    }

    /// The reference recipe's network: convolutions 640 + 73,856 + 295,168, BatchNorms
    /// 128 + 256 + 512, and Linear 9216→1024 (9,438,208), 1024→256 (262,400), 256→2 (514).
    #[test]
    fn reference_has_the_pytorch_parameter_count() {
        let spec = ModelSpec {
            kind: ModelKind::Reference,
            ..ModelSpec::default()
        };
        let arch = Arch::new(&spec).unwrap();
        assert_eq!(arch.parameter_count(), 10_071_682);
        assert!(
            arch.noise.is_empty(),
            "the reference network has no dropout"
        );
    }

    /// Weights and biases of convolutions and linear layers are drawn as PyTorch draws them,
    /// U(±1/√fan_in): every value inside the bound and the extremes close to it.
    #[test]
    fn initialisation_is_pytorchs_default() {
        let arch = Arch::new(&ModelSpec::default()).unwrap();
        let mut rng = init_rng(3);
        for t in &arch.params {
            let values = init_tensor(t, &mut rng);
            match t.init {
                Init::TorchUniform { fan_in } => {
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    assert!(max <= bound, "{}: {max} > {bound}", t.name);
                    if values.len() >= 100 {
                        assert!(max > 0.9 * bound, "{}: {max} vs {bound}", t.name);
                    }
                }
                Init::Ones => assert!(values.iter().all(|&v| v == 1.0)),
                Init::Zeros => assert!(values.iter().all(|&v| v == 0.0)),
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for &k in ModelKind::ALL {
            assert_eq!(k.to_string().parse::<ModelKind>().unwrap(), k);
            // Exact names only, as for every other setting.
            assert!(k.name().to_uppercase().parse::<ModelKind>().is_err());
        }
        for l in [LossKind::Mse, LossKind::Ccc, LossKind::MseCcc] {
            assert_eq!(l.to_string().parse::<LossKind>().unwrap(), l);
        }
        for d in [crate::Device::Cpu, crate::Device::Cuda] {
            assert_eq!(d.to_string().parse::<crate::Device>().unwrap(), d);
        }
        assert!("densenet".parse::<ModelKind>().is_err());
        assert!("l1".parse::<LossKind>().is_err());
        assert!("tpu".parse::<crate::Device>().is_err());
    }

    #[test]
    fn compact_is_small() {
        let spec = ModelSpec {
            kind: ModelKind::Compact,
            input_size: 48,
            channels: 1,
            outputs: 2,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        };
        let n = Arch::new(&spec).unwrap().parameter_count();
        assert!(n < 200_000, "{n}");
    }

    #[test]
    fn bad_specs_are_rejected() {
        for (size, ch, out) in [(50, 1, 2), (48, 2, 2), (48, 1, 3), (0, 1, 1)] {
            let spec = ModelSpec {
                kind: ModelKind::Compact,
                input_size: size,
                channels: ch,
                outputs: out,
                input: crate::InputAffine::IDENTITY,
                flip_average: false,
                ema: None,
                expression: None,
            };
            assert!(matches!(Arch::new(&spec), Err(EngineError::InvalidSpec(_))));
        }
    }
}
