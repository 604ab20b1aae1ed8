//! The networks (facecnn, compact), their parameters and initialisation, and their training and
//! inference graphs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::EngineError;
use crate::graph::{Attr, Dim, GraphBuilder, fixed};
use crate::ops::{self, BN_EPS, BnNames, Tape, Var};
use crate::optim::{self, OptimizerKind};
use crate::proto::ModelProto;

/// Which network to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// The recipe's network: three conv blocks (64, 128, 256) and a 4096-1024-256 MLP head (42.6M parameters at 48×48).
    FaceCnn,
    /// The default small network: three conv blocks (32, 64, 128), global average pooling and a 64-unit head.
    Compact,
    /// The PyTorch reference recipe's network (`scripts/quality_torch.py`): three conv blocks
    /// (64, 128, 256) and a 1024-256 MLP head without dropout (10.1M parameters at 48×48).
    Reference,
    /// The reference network with dropout 0.5 before each hidden Linear layer, the usual
    /// remedy for a 9.4M-parameter head on a few thousand noisy labels.
    Vgg,
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
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::FaceCnn => "facecnn",
            ModelKind::Compact => "compact",
            ModelKind::Reference => "reference",
            ModelKind::Vgg => "vgg",
        })
    }
}

impl std::str::FromStr for ModelKind {
    type Err = EngineError;
    /// `facecnn`, `compact`, `reference` or `vgg` (any case).
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s.to_ascii_lowercase().as_str() {
            "facecnn" => Ok(ModelKind::FaceCnn),
            "compact" => Ok(ModelKind::Compact),
            "reference" => Ok(ModelKind::Reference),
            "vgg" => Ok(ModelKind::Vgg),
            _ => Err(EngineError::InvalidSpec(format!(
                "unknown model `{s}` (expected facecnn, compact, reference or vgg)"
            ))),
        }
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossKind::Mse => "mse",
            LossKind::Ccc => "ccc",
            LossKind::MseCcc => "mse+ccc",
        })
    }
}

impl std::str::FromStr for LossKind {
    type Err = EngineError;
    /// `mse`, `ccc` or `mse+ccc` (also `mse_ccc`, `mseccc`; any case).
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s.to_ascii_lowercase().as_str() {
            "mse" => Ok(LossKind::Mse),
            "ccc" => Ok(LossKind::Ccc),
            "mse+ccc" | "mse_ccc" | "mseccc" | "mse-ccc" => Ok(LossKind::MseCcc),
            _ => Err(EngineError::InvalidInput(format!(
                "unknown loss `{s}` (expected mse, ccc or mse+ccc)"
            ))),
        }
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
    /// Side of the square input image; divisible by 8.
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
}

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Mean squared error over all outputs.
    Mse,
    /// Mean over output columns of 1 − CCC (concordance correlation, population statistics).
    Ccc,
    /// The sum of `Mse` and `Ccc`.
    MseCcc,
}

/// One layer of a network.
#[derive(Clone, Debug)]
pub(crate) enum Layer {
    Conv {
        name: String,
        cout: usize,
    },
    BatchNorm {
        name: String,
    },
    MaxPool,
    Relu,
    GlobalAvgPool,
    Flatten,
    /// `slot` indexes the dropout noise inputs.
    Dropout {
        p: f32,
        slot: usize,
    },
    Linear {
        name: String,
        fout: usize,
    },
}

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

/// A network laid out as layers, with its parameters and BatchNorm running statistics.
#[derive(Clone, Debug)]
pub(crate) struct Arch {
    pub spec: ModelSpec,
    pub layers: Vec<Layer>,
    pub params: Vec<TensorInfo>,
    pub running: Vec<TensorInfo>,
    /// Per-sample shape of each dropout noise input.
    pub noise: Vec<Vec<usize>>,
}

impl Arch {
    pub(crate) fn new(spec: &ModelSpec) -> Result<Self, EngineError> {
        if spec.input_size == 0 || !spec.input_size.is_multiple_of(8) {
            return Err(EngineError::InvalidSpec(format!(
                "input size {} must be a positive multiple of 8",
                spec.input_size
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
        if !(spec.input.scale.is_finite()
            && spec.input.scale != 0.0
            && spec.input.shift.is_finite())
        {
            return Err(EngineError::InvalidSpec(format!(
                "the input affine must have a finite non-zero scale and a finite shift, not {:?}",
                spec.input
            )));
        }
        let mut b = ArchBuilder {
            layers: Vec::new(),
            params: Vec::new(),
            running: Vec::new(),
            noise: Vec::new(),
            shape: vec![spec.channels, spec.input_size, spec.input_size],
        };
        let widths: &[usize] = match spec.kind {
            ModelKind::FaceCnn => &[64, 128, 256],
            ModelKind::Compact => &[32, 64, 128],
            ModelKind::Reference | ModelKind::Vgg => &[64, 128, 256],
        };
        for (i, &w) in widths.iter().enumerate() {
            b.conv_block(i + 1, w);
        }
        match spec.kind {
            ModelKind::FaceCnn => {
                b.push(Layer::Flatten);
                b.dropout(0.2);
                b.linear("fc1", 4096);
                b.push(Layer::Relu);
                b.dropout(0.5);
                b.linear("fc2", 1024);
                b.push(Layer::Relu);
                b.linear("fc3", 256);
                b.push(Layer::Relu);
                b.linear("fc4", spec.outputs);
            }
            ModelKind::Compact => {
                b.push(Layer::GlobalAvgPool);
                b.push(Layer::Flatten);
                b.linear("fc1", 64);
                b.push(Layer::Relu);
                b.dropout(0.2);
                b.linear("fc2", spec.outputs);
            }
            ModelKind::Reference => b.mlp_head(&[1024, 256], None, spec.outputs),
            ModelKind::Vgg => b.mlp_head(&[1024, 256], Some(0.5), spec.outputs),
        }
        if let Some(d) = spec.ema
            && !(d.is_finite() && (0.0..1.0).contains(&d))
        {
            return Err(EngineError::InvalidSpec(format!(
                "the weight-average decay must lie in [0, 1), not {d}"
            )));
        }
        Ok(Self {
            spec: *spec,
            layers: b.layers,
            params: b.params,
            running: b.running,
            noise: b.noise,
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
            // Zeros here; the trainer copies the starting weights in (see `ema_name`).
            for t in self.params.iter().chain(&self.running) {
                all.push(TensorInfo {
                    name: ema_name(&t.name),
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
                    Some(_) => ema_name(&t.name),
                    None => t.name.clone(),
                };
                (t.name.clone(), src)
            })
            .collect()
    }

    /// The training graph for a fixed batch size: one run is one optimizer step.
    ///
    /// Inputs: `x`, `y`, `noise0..`, `lr`, `step`, then every state tensor. Outputs: `loss`,
    /// `predictions`, then `new.<name>` for every state tensor, in the same order.
    ///
    /// Without an optimizer the graph has no `lr`/`step` inputs and outputs `grad.<param>` for
    /// every parameter instead of updated parameters (used to check gradients).
    pub(crate) fn train_graph(
        &self,
        batch: usize,
        loss: LossKind,
        opt: Option<&OptimizerKind>,
        cuda: bool,
    ) -> ModelProto {
        let s = &self.spec;
        let mut g = GraphBuilder::new();
        let xshape = vec![batch, s.channels, s.input_size, s.input_size];
        g.input("x", &fixed(&xshape));
        g.input("y", &fixed(&[batch, s.outputs]));
        for (i, n) in self.noise.iter().enumerate() {
            let mut shape = vec![batch];
            shape.extend(n);
            g.input(&noise_name(i), &fixed(&shape));
        }
        if opt.is_some() {
            g.input("lr", &[]);
            g.input("step", &[]);
            if s.ema.is_some() {
                g.input("ema_decay", &[]);
            }
        }
        let state = self.state_tensors(opt);
        for t in &state {
            g.input(&t.name, &fixed(&t.shape));
        }
        let mut tape = Tape::new(cuda);
        // The first layer needs no input gradient, so the affine needs no backward rule.
        let mut x = Var {
            name: input_affine(&mut g, "x", s.input),
            shape: xshape,
        };
        let mut first = true;
        for layer in &self.layers {
            x = match layer {
                Layer::Conv { name, cout, .. } => {
                    let v = tape.conv(&mut g, &x, &weight(name), &bias(name), *cout, !first);
                    first = false;
                    v
                }
                Layer::BatchNorm { name, .. } => {
                    let (rm, rv) = (running_mean(name), running_var(name));
                    let (nrm, nrv) = (optim::new_name(&rm), optim::new_name(&rv));
                    let (gw, gb) = (weight(name), bias(name));
                    let names = BnNames {
                        gamma: &gw,
                        beta: &gb,
                        running_mean: &rm,
                        running_var: &rv,
                        new_running_mean: &nrm,
                        new_running_var: &nrv,
                    };
                    tape.batchnorm(&mut g, &x, &names)
                }
                Layer::MaxPool => tape.maxpool(&mut g, &x),
                Layer::Relu => tape.relu(&mut g, &x),
                Layer::GlobalAvgPool => tape.global_avg_pool(&mut g, &x),
                Layer::Flatten => tape.flatten(&mut g, &x),
                Layer::Dropout { p, slot } => tape.dropout(&mut g, &x, &noise_name(*slot), *p),
                Layer::Linear { name, fout, .. } => {
                    let v = tape.linear(&mut g, &x, &weight(name), &bias(name), *fout, !first);
                    first = false;
                    v
                }
            };
        }
        let (l, dpred) = ops::loss(&mut g, &x, "y", loss);
        let scale = opt.map_or(1.0, optim::grad_scale);
        let seed = if scale != 1.0 {
            let c = g.scalar(scale);
            g.bin("Mul", &dpred, &c)
        } else {
            dpred
        };
        let (grads, _) = tape.backward(&mut g, seed);
        g.rename(&l, "loss");
        g.rename(&x.name, "predictions");
        g.output("loss", &[]);
        g.output("predictions", &fixed(&[batch, s.outputs]));
        match opt {
            Some(opt) => {
                optim::emit_update(&mut g, opt, &grads, scale, "lr", "step");
                if s.ema.is_some() {
                    // avg' = avg·d + new·(1 − d), from the values this step produced.
                    let one = g.scalar(1.0);
                    let rest = g.bin("Sub", &one, "ema_decay");
                    for t in self.params.iter().chain(&self.running) {
                        let avg = ema_name(&t.name);
                        let kept = g.bin("Mul", &avg, "ema_decay");
                        let fresh = g.bin("Mul", &optim::new_name(&t.name), &rest);
                        g.node_to("Add", &[&kept, &fresh], &[&optim::new_name(&avg)], vec![]);
                    }
                }
                for t in &state {
                    g.output(&optim::new_name(&t.name), &fixed(&t.shape));
                }
            }
            None => {
                for (p, grad) in &grads {
                    let name = format!("grad.{p}");
                    g.rename(grad, &name);
                    let shape = &self
                        .params
                        .iter()
                        .find(|i| &i.name == p)
                        .map(|i| i.shape.clone())
                        .unwrap_or_default();
                    g.output(&name, &fixed(shape));
                }
                for t in &self.running {
                    g.output(&optim::new_name(&t.name), &fixed(&t.shape));
                }
            }
        }
        g.finish("valar_train_step")
    }

    /// The inference graph (eval mode: running statistics, no dropout) with a symbolic batch.
    /// With `weights` the parameters and running statistics become initializers (an exported model);
    /// without, they are graph inputs.
    pub(crate) fn inference_graph(&self, weights: Option<&WeightLookup<'_>>) -> ModelProto {
        let s = &self.spec;
        let mut g = GraphBuilder::new();
        g.input(
            "x",
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
        let x = input_affine(&mut g, "x", s.input);
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
        g.rename(&y, "predictions");
        g.output("predictions", &[Dim::Batch, Dim::Fixed(s.outputs)]);
        g.finish("valar_inference")
    }

    /// The layers in eval mode (running statistics, no dropout) applied to `input`.
    fn eval_forward(&self, g: &mut GraphBuilder, input: &str) -> String {
        let mut x = input.to_string();
        for layer in &self.layers {
            x = match layer {
                Layer::Conv { name, .. } => ops::conv_forward(g, &x, &weight(name), &bias(name)),
                Layer::BatchNorm { name, .. } => g.node(
                    "BatchNormalization",
                    &[
                        &x,
                        &weight(name),
                        &bias(name),
                        &running_mean(name),
                        &running_var(name),
                    ],
                    vec![("epsilon", Attr::Float(BN_EPS))],
                ),
                Layer::MaxPool => g.node(
                    "MaxPool",
                    &[&x],
                    vec![
                        ("kernel_shape", Attr::Ints(vec![2, 2])),
                        ("strides", Attr::Ints(vec![2, 2])),
                    ],
                ),
                Layer::Relu => g.node("Relu", &[&x], vec![]),
                Layer::GlobalAvgPool => g.node("GlobalAveragePool", &[&x], vec![]),
                Layer::Flatten => g.node("Flatten", &[&x], vec![("axis", Attr::Int(1))]),
                Layer::Dropout { .. } => continue,
                Layer::Linear { name, .. } => g.node(
                    "Gemm",
                    &[&x, &weight(name), &bias(name)],
                    vec![("transB", Attr::Int(1))],
                ),
            };
        }
        x
    }
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

/// The state tensor holding the moving average of tensor `name`.
pub(crate) fn ema_name(name: &str) -> String {
    format!("{name}.ema")
}

pub(crate) fn noise_name(slot: usize) -> String {
    format!("noise{slot}")
}
fn weight(layer: &str) -> String {
    format!("{layer}.weight")
}
fn bias(layer: &str) -> String {
    format!("{layer}.bias")
}
fn running_mean(layer: &str) -> String {
    format!("{layer}.running_mean")
}
fn running_var(layer: &str) -> String {
    format!("{layer}.running_var")
}

struct ArchBuilder {
    layers: Vec<Layer>,
    params: Vec<TensorInfo>,
    running: Vec<TensorInfo>,
    noise: Vec<Vec<usize>>,
    /// Per-sample shape of the current activation.
    shape: Vec<usize>,
}

impl ArchBuilder {
    fn push(&mut self, l: Layer) {
        match &l {
            Layer::MaxPool => {
                self.shape[1] /= 2;
                self.shape[2] /= 2;
            }
            Layer::GlobalAvgPool => {
                self.shape[1] = 1;
                self.shape[2] = 1;
            }
            Layer::Flatten => self.shape = vec![self.shape.iter().product()],
            _ => {}
        }
        self.layers.push(l);
    }

    fn param(&mut self, name: String, shape: Vec<usize>, init: Init) {
        self.params.push(TensorInfo { name, shape, init });
    }

    /// conv 3×3 → BatchNorm → MaxPool 2×2 → ReLU. Pooling before ReLU gives the same forward as the
    /// recipe's conv → BN → ReLU → pool (both are monotone) with a 4× smaller ReLU backward.
    fn conv_block(&mut self, i: usize, cout: usize) {
        let cin = self.shape[0];
        let conv = format!("conv{i}");
        self.param(
            weight(&conv),
            vec![cout, cin, 3, 3],
            Init::TorchUniform { fan_in: cin * 9 },
        );
        self.param(
            bias(&conv),
            vec![cout],
            Init::TorchUniform { fan_in: cin * 9 },
        );
        self.layers.push(Layer::Conv { name: conv, cout });
        self.shape[0] = cout;
        let bn = format!("bn{i}");
        self.param(weight(&bn), vec![cout], Init::Ones);
        self.param(bias(&bn), vec![cout], Init::Zeros);
        self.running.push(TensorInfo {
            name: running_mean(&bn),
            shape: vec![cout],
            init: Init::Zeros,
        });
        self.running.push(TensorInfo {
            name: running_var(&bn),
            shape: vec![cout],
            init: Init::Ones,
        });
        self.layers.push(Layer::BatchNorm { name: bn });
        self.push(Layer::MaxPool);
        self.push(Layer::Relu);
    }

    fn linear(&mut self, name: &str, fout: usize) {
        let fin = self.shape[0];
        self.param(
            weight(name),
            vec![fout, fin],
            Init::TorchUniform { fan_in: fin },
        );
        self.param(bias(name), vec![fout], Init::TorchUniform { fan_in: fin });
        self.layers.push(Layer::Linear {
            name: name.into(),
            fout,
        });
        self.shape = vec![fout];
    }

    /// Flatten, then `[Dropout →] Linear → ReLU` for each hidden width, then the output
    /// Linear layer; the layers are named fc1, fc2, … in order.
    fn mlp_head(&mut self, hidden: &[usize], dropout: Option<f32>, outputs: usize) {
        self.push(Layer::Flatten);
        for (i, &width) in hidden.iter().enumerate() {
            if let Some(p) = dropout {
                self.dropout(p);
            }
            self.linear(&format!("fc{}", i + 1), width);
            self.push(Layer::Relu);
        }
        self.linear(&format!("fc{}", hidden.len() + 1), outputs);
    }

    fn dropout(&mut self, p: f32) {
        let slot = self.noise.len();
        self.noise.push(self.shape.clone());
        self.layers.push(Layer::Dropout { p, slot });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        };
        let arch = Arch::new(&spec).unwrap();
        assert_eq!(arch.parameter_count(), 42_581_634);
        // The training graph builds (no session needed) and has one update output per state tensor.
        let model = arch.train_graph(
            4,
            LossKind::Mse,
            Some(&OptimizerKind::adamw_default()),
            false,
        );
        let graph = model.graph.unwrap();
        assert_eq!(
            graph.output.len(),
            2 + arch
                .state_tensors(Some(&OptimizerKind::adamw_default()))
                .len()
        );
    }

    /// The whole compact network's gradients (training mode, MSE+CCC) against central differences of
    /// the f32 loss. The loss is ~1 and rounds at ~1e-7, and BatchNorm's f32 reductions add ~1e-6 of
    /// noise, i.e. ~5e-4 after dividing by 2·eps; hence 2e-3 absolute plus 2e-2 relative.
    #[test]
    fn compact_model_gradients_match_finite_differences() {
        use crate::ops::tests::{In, compare, random};
        use prost::Message;
        let spec = ModelSpec {
            kind: ModelKind::Compact,
            input_size: 8,
            channels: 1,
            outputs: 2,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
        };
        let arch = Arch::new(&spec).unwrap();
        let batch = 4;
        let model = arch.train_graph(batch, LossKind::MseCcc, None, false);
        let (mut session, _) =
            crate::runtime::session(&model.encode_to_vec(), crate::Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut inputs = vec![
            In {
                name: "x".into(),
                shape: vec![batch, 1, 8, 8],
                data: random(&mut rng, batch * 64, 1.0),
                check: false,
            },
            In {
                name: "y".into(),
                shape: vec![batch, 2],
                data: random(&mut rng, batch * 2, 0.8),
                check: false,
            },
        ];
        for (i, n) in arch.noise.iter().enumerate() {
            let mut shape = vec![batch];
            shape.extend(n);
            let count = shape.iter().product();
            inputs.push(In {
                name: noise_name(i),
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
            &["loss"],
            &|o| f64::from(o[0][0]),
            1e-3,
            3,
            (2e-3, 2e-2),
        );
    }

    /// The CUDA flavour of the training graph (ScatterElements instead of MaxUnpool) computes the
    /// same step; it runs here on the CPU execution provider.
    #[test]
    fn cuda_flavoured_graph_matches_on_cpu() {
        use crate::ops::tests::{In, random, run};
        use prost::Message;
        let spec = ModelSpec {
            kind: ModelKind::Compact,
            input_size: 16,
            channels: 3,
            outputs: 2,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
        };
        let arch = Arch::new(&spec).unwrap();
        let opt = OptimizerKind::adamw_default();
        let batch = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut ins = vec![
            In {
                name: "x".into(),
                shape: vec![batch, 3, 16, 16],
                data: random(&mut rng, batch * 768, 1.0),
                check: false,
            },
            In {
                name: "y".into(),
                shape: vec![batch, 2],
                data: random(&mut rng, batch * 2, 0.8),
                check: false,
            },
            In {
                name: "lr".into(),
                shape: vec![],
                data: vec![1e-3],
                check: false,
            },
            In {
                name: "step".into(),
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
                name: noise_name(i),
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
        let outs: Vec<String> = ["loss".to_string(), "predictions".to_string()]
            .into_iter()
            .chain(
                arch.state_tensors(Some(&opt))
                    .iter()
                    .map(|t| optim::new_name(&t.name)),
            )
            .collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let results: Vec<Vec<Vec<f32>>> = [false, true]
            .into_iter()
            .map(|cuda| {
                let model = arch.train_graph(batch, LossKind::MseCcc, Some(&opt), cuda);
                let (mut s, _) =
                    crate::runtime::session(&model.encode_to_vec(), crate::Device::Cpu).unwrap();
                run(&mut s, &ins, &refs)
            })
            .collect();
        assert_eq!(results[0], results[1]);
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
        for k in [
            ModelKind::FaceCnn,
            ModelKind::Compact,
            ModelKind::Reference,
            ModelKind::Vgg,
        ] {
            assert_eq!(k.to_string().parse::<ModelKind>().unwrap(), k);
        }
        for l in [LossKind::Mse, LossKind::Ccc, LossKind::MseCcc] {
            assert_eq!(l.to_string().parse::<LossKind>().unwrap(), l);
        }
        for d in [crate::Device::Cpu, crate::Device::Cuda] {
            assert_eq!(d.to_string().parse::<crate::Device>().unwrap(), d);
        }
        assert!("resnet".parse::<ModelKind>().is_err());
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
            };
            assert!(matches!(Arch::new(&spec), Err(EngineError::InvalidSpec(_))));
        }
    }
}
