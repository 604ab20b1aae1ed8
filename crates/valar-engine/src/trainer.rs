//! The training host: two sets of state buffers swapped between steps, one training session per batch
//! size, an eval session for prediction, and model export.

use std::collections::HashMap;
use std::path::Path;

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::Tensor;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::EngineError;
use crate::metadata::ExportInfo;
use crate::models::{self, Arch, LossKind, ModelSpec, TensorInfo};
use crate::names;
use crate::optim::OptimizerKind;
use crate::proto::{self, ModelProto, NodeProto, StringStringEntryProto, TensorProto};
use crate::runtime::{self, Device};
use crate::state::{self, NamedTensor, TrainState};

/// Name of the state tensor holding the dropout generator's seed.
const SEED_TENSOR: &str = "dropout_rng.seed";
/// Training sessions kept at once (a full batch size and the last, smaller batch of an epoch).
const MAX_SESSIONS: usize = 2;

/// The result of one training step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    /// The loss on this batch, before the update.
    pub loss: f32,
    /// The network's outputs on this batch (training mode), `batch × outputs`, row-major.
    pub predictions: Vec<f32>,
}

/// One training batch, row-major.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The images, `size × channels × side × side`.
    pub x: &'a [f32],
    /// The targets, `size × outputs`.
    pub y: &'a [f32],
    /// For a network with an expression head, `size × classes`: each row the face's class
    /// weight at its class and zeros elsewhere (all zeros for a face without a class); empty
    /// otherwise.
    pub expression: &'a [f32],
    /// Each face's weight in the squared-error term (label-distribution smoothing); empty
    /// means 1 for every face.
    pub weights: &'a [f32],
    /// Faces in the batch.
    pub size: usize,
}

impl<'a> Batch<'a> {
    /// Images and targets alone: no expression targets, every face weighing 1.
    pub fn new(x: &'a [f32], y: &'a [f32], size: usize) -> Self {
        Batch {
            x,
            y,
            expression: &[],
            weights: &[],
            size,
        }
    }
}

/// One compiled training step for a fixed batch size.
struct TrainSession {
    batch: usize,
    session: Session,
    /// Binds every state tensor as both input and output: the step updates the state in place.
    binding: IoBinding,
    loss: Tensor<f32>,
    predictions: Tensor<f32>,
}

/// Trains one network: each [`Trainer::step`] is one run of a single ONNX graph holding the forward
/// pass, the backward pass and the optimizer update.
///
/// Dropout noise comes from the host: `ChaCha8Rng` seeded with the trainer's seed, on stream
/// `1 + step`, so a run resumed from a checkpoint draws exactly the masks an uninterrupted run would
/// (ONNX Runtime's RandomUniformLike restarts its stream with every session).
pub struct Trainer {
    arch: Arch,
    loss: LossKind,
    opt: OptimizerKind,
    requested: Device,
    device: Device,
    seed: u64,
    step: u64,
    infos: Vec<TensorInfo>,
    /// Every state tensor, held once: the training graph orders each overwrite after the
    /// tensor's last read (`Arch::update_waits`), so a step reads and writes the same buffers.
    /// A step that fails part-way leaves them mixed; the run stops and resumes from its last
    /// checkpoint.
    bufs: Vec<Tensor<f32>>,
    sessions: Vec<TrainSession>,
    eval: Session,
}

fn shape_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn cpu_tensor(shape: &[usize], data: Vec<f32>) -> Result<Tensor<f32>, EngineError> {
    Ok(Tensor::from_array((
        shape_i64(shape),
        data.into_boxed_slice(),
    ))?)
}

/// Copies a tensor's values to the host.
fn read(t: &Tensor<f32>) -> Result<Vec<f32>, EngineError> {
    if t.memory_info().is_cpu_accessible() {
        Ok(t.extract_tensor().1.to_vec())
    } else {
        let host = t.to(AllocationDevice::CPU, 0)?;
        Ok(host.extract_tensor().1.to_vec())
    }
}

/// Overwrites a tensor's values from the host.
fn write(t: &mut Tensor<f32>, data: &[f32]) -> Result<(), EngineError> {
    if t.memory_info().is_cpu_accessible() {
        t.extract_tensor_mut().1.copy_from_slice(data);
    } else {
        let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
        let host = cpu_tensor(&shape, data.to_vec())?;
        host.copy_into(t)?;
    }
    Ok(())
}

/// The dropout noise of step `step` (0-based): `(shape, values)` per dropout layer, drawn from
/// `ChaCha8Rng` seeded with `seed` on stream `1 + step` (stream 0 initialises the weights).
pub(crate) fn noise_values(
    arch: &Arch,
    seed: u64,
    step: u64,
    batch: usize,
) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1 + step);
    arch.noise
        .iter()
        .map(|per| {
            let mut shape = vec![batch];
            shape.extend(per);
            let n: usize = shape.iter().product();
            (shape, (0..n).map(|_| rng.random::<f32>()).collect())
        })
        .collect()
}

impl Trainer {
    /// Builds the network with fresh weights (PyTorch's default initialisation, drawn from `seed`) and zero optimizer state.
    /// `Device::Cuda` falls back to the CPU when CUDA is unusable; see [`Trainer::device`] and
    /// [`crate::cuda_unavailable_reason`].
    pub fn new(
        spec: &ModelSpec,
        loss: LossKind,
        opt: OptimizerKind,
        device: Device,
        seed: u64,
    ) -> Result<Self, EngineError> {
        let arch = Arch::new(spec)?;
        let eval_model = arch.inference_graph(None).encode_to_vec();
        let (eval, used) = runtime::session(&eval_model, device)?;
        let infos = arch.state_tensors(Some(&opt));
        let allocator = match used {
            Device::Cpu => Allocator::default(),
            Device::Cuda => Allocator::new(
                &eval,
                MemoryInfo::new(
                    AllocationDevice::CUDA,
                    0,
                    AllocatorType::Device,
                    MemoryType::Default,
                )?,
            )?,
        };
        let make = || -> Result<Vec<Tensor<f32>>, EngineError> {
            infos
                .iter()
                .map(|i| Ok(Tensor::<f32>::new(&allocator, shape_i64(&i.shape))?))
                .collect()
        };
        let bufs = make()?;
        let mut t = Self {
            arch,
            loss,
            opt,
            requested: device,
            device: used,
            seed,
            step: 0,
            infos,
            bufs,
            sessions: Vec::new(),
            eval,
        };
        let mut rng = models::init_rng(seed);
        let mut start: HashMap<String, Vec<f32>> = HashMap::new();
        for (i, info) in t.infos.iter().enumerate() {
            let values = models::init_tensor(info, &mut rng);
            write(&mut t.bufs[i], &values)?;
            start.insert(info.name.clone(), values);
        }
        // A moving average starts at the starting weights.
        for (name, src) in t.arch.eval_sources() {
            if name != src
                && let (Some(i), Some(values)) =
                    (t.infos.iter().position(|x| x.name == src), start.get(&name))
            {
                write(&mut t.bufs[i], values)?;
            }
        }
        Ok(t)
    }

    /// The device the sessions actually run on (after any fallback).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Trainable parameters (BatchNorm γ/β included, running statistics not).
    pub fn parameter_count(&self) -> usize {
        self.arch.parameter_count()
    }

    /// The network this trainer trains.
    pub fn spec(&self) -> ModelSpec {
        self.arch.spec
    }

    /// Optimizer steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    fn session_index(&mut self, batch: usize) -> Result<usize, EngineError> {
        if let Some(i) = self.sessions.iter().position(|s| s.batch == batch) {
            return Ok(i);
        }
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.remove(0);
        }
        let model = self
            .arch
            .train_graph(batch, self.loss, Some(&self.opt), self.device);
        let (session, used) = runtime::session(&model.encode_to_vec(), self.device)?;
        if used != self.device {
            return Err(EngineError::Runtime(format!(
                "the training session runs on {used} but the trainer's buffers live on {}",
                self.device
            )));
        }
        let host = Allocator::default();
        let mut loss = Tensor::<f32>::new(&host, Vec::<i64>::new())?;
        let mut predictions =
            Tensor::<f32>::new(&host, [batch as i64, self.arch.spec.outputs as i64])?;
        let mut binding = session.create_binding()?;
        for (info, buf) in self.infos.iter().zip(&mut self.bufs) {
            binding.bind_input(info.name.as_str(), buf)?;
            binding.bind_output(names::new(&info.name), buf)?;
        }
        binding.bind_output(names::LOSS, &mut loss)?;
        binding.bind_output(names::PREDICTIONS, &mut predictions)?;
        self.sessions.push(TrainSession {
            batch,
            session,
            binding,
            loss,
            predictions,
        });
        Ok(self.sessions.len() - 1)
    }

    /// One optimizer step on a batch: `x` is `batch × channels × size × size`, `y` is `batch × outputs`,
    /// both row-major. Returns the batch loss and predictions computed before the update.
    pub fn step(
        &mut self,
        x: &[f32],
        y: &[f32],
        batch: usize,
        lr: f32,
    ) -> Result<StepOutput, EngineError> {
        self.step_with(&Batch::new(x, y, batch), lr)
    }

    /// [`Trainer::step`] on a batch that may carry expression targets and face weights.
    pub fn step_with(&mut self, input: &Batch<'_>, lr: f32) -> Result<StepOutput, EngineError> {
        let s = self.arch.spec;
        let per = s.channels * s.input_size * s.input_size;
        let classes = s.expression.map_or(0, |h| h.classes);
        let batch = input.size;
        let (x, y, expression) = (input.x, input.y, input.expression);
        if batch == 0
            || x.len() != batch * per
            || y.len() != batch * s.outputs
            || expression.len() != batch * classes
            || !(input.weights.is_empty() || input.weights.len() == batch)
        {
            return Err(EngineError::InvalidInput(format!(
                "batch {batch} needs {} input values, {} targets, {} expression targets and {batch}                  face weights (or none), got {}, {}, {} and {}",
                batch * per,
                batch * s.outputs,
                batch * classes,
                x.len(),
                y.len(),
                expression.len(),
                input.weights.len()
            )));
        }
        let weights = if input.weights.is_empty() {
            vec![1.0; batch]
        } else {
            input.weights.to_vec()
        };
        let wt = cpu_tensor(&[batch, 1], weights)?;
        if !lr.is_finite() || lr < 0.0 {
            return Err(EngineError::InvalidInput(format!(
                "learning rate {lr} is not a finite non-negative number"
            )));
        }
        let idx = self.session_index(batch)?;
        let xt = cpu_tensor(&[batch, s.channels, s.input_size, s.input_size], x.to_vec())?;
        let yt = cpu_tensor(&[batch, s.outputs], y.to_vec())?;
        let et = (classes > 0)
            .then(|| cpu_tensor(&[batch, classes], expression.to_vec()))
            .transpose()?;
        let lrt = cpu_tensor(&[], vec![lr])?;
        // 1-based, as PyTorch's bias correction counts steps.
        let stept = cpu_tensor(&[], vec![(self.step + 1) as f32])?;
        let noise = self.noise(batch)?;
        let ts = &mut self.sessions[idx];
        let b = &mut ts.binding;
        b.bind_input(names::IMAGE, &xt)?;
        b.bind_input(names::TARGETS, &yt)?;
        b.bind_input(names::SAMPLE_WEIGHTS, &wt)?;
        if let Some(et) = &et {
            b.bind_input(names::EXPRESSION_TARGETS, et)?;
        }
        b.bind_input(names::LR, &lrt)?;
        b.bind_input(names::STEP, &stept)?;
        if let Some(decay) = s.ema {
            // timm's ModelEma warm-up: early averages forget the random start quickly.
            let t = self.step as f32;
            let d = decay.min((1.0 + t) / (10.0 + t));
            b.bind_input(names::EMA_DECAY, &cpu_tensor(&[], vec![d])?)?;
        }
        for (i, n) in noise.iter().enumerate() {
            b.bind_input(names::noise(i), n)?;
        }
        ts.session.run_binding(&ts.binding)?;
        let loss = ts
            .loss
            .extract_tensor()
            .1
            .first()
            .copied()
            .unwrap_or(f32::NAN);
        let predictions = ts.predictions.extract_tensor().1.to_vec();
        self.step += 1;
        Ok(StepOutput { loss, predictions })
    }

    /// Uniform [0, 1) noise for every dropout layer of the step about to run.
    fn noise(&self, batch: usize) -> Result<Vec<Tensor<f32>>, EngineError> {
        noise_values(&self.arch, self.seed, self.step, batch)
            .into_iter()
            .map(|(shape, data)| cpu_tensor(&shape, data))
            .collect()
    }

    /// The network's outputs in eval mode (BatchNorm running statistics, no dropout), `batch × outputs`.
    pub fn predict(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>, EngineError> {
        let s = self.arch.spec;
        let per = s.channels * s.input_size * s.input_size;
        if batch == 0 || x.len() != batch * per {
            return Err(EngineError::InvalidInput(format!(
                "batch {batch} needs {} input values, got {}",
                batch * per,
                x.len()
            )));
        }
        let xt = cpu_tensor(&[batch, s.channels, s.input_size, s.input_size], x.to_vec())?;
        let mut b = self.eval.create_binding()?;
        b.bind_input(names::IMAGE, &xt)?;
        for (name, src) in self.arch.eval_sources() {
            if let Some(i) = self.infos.iter().position(|x| x.name == src) {
                b.bind_input(name.as_str(), &self.bufs[i])?;
            }
        }
        b.bind_output_to_device(names::PREDICTIONS, &MemoryInfo::default())?;
        let out = self.eval.run_binding(&b)?;
        let (_, data) = out
            .get(names::PREDICTIONS)
            .ok_or_else(|| EngineError::Runtime("the eval graph returned no predictions".into()))?
            .try_extract_tensor::<f32>()?;
        Ok(data.to_vec())
    }

    /// A copy of the whole training state. On the CPU this cannot fail; if a CUDA device-to-host copy
    /// fails the tensor list is empty (and [`Trainer::load_state`] would reject it): use
    /// [`Trainer::try_state`] to see the error.
    pub fn state(&self) -> TrainState {
        self.try_state().unwrap_or_else(|_| TrainState {
            step: self.step,
            tensors: Vec::new(),
        })
    }

    /// A copy of the whole training state; fails only if a device-to-host copy fails.
    pub fn try_state(&self) -> Result<TrainState, EngineError> {
        let mut tensors = Vec::with_capacity(self.infos.len() + 1);
        for (i, info) in self.infos.iter().enumerate() {
            tensors.push(NamedTensor {
                name: info.name.clone(),
                shape: info.shape.clone(),
                data: read(&self.bufs[i])?,
            });
        }
        tensors.push(NamedTensor {
            name: SEED_TENSOR.into(),
            shape: vec![4],
            data: state::u64_to_f32s(self.seed),
        });
        Ok(TrainState {
            step: self.step,
            tensors,
        })
    }

    /// Replaces the training state. Every tensor of this model must be present with the right shape.
    pub fn load_state(&mut self, st: TrainState) -> Result<(), EngineError> {
        let by_name: HashMap<&str, &NamedTensor> =
            st.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut problems = Vec::new();
        for info in &self.infos {
            match by_name.get(info.name.as_str()) {
                None => problems.push(format!("missing `{}`", info.name)),
                Some(t)
                    if t.shape != info.shape
                        || t.data.len() != info.shape.iter().product::<usize>() =>
                {
                    problems.push(format!(
                        "`{}` has shape {:?}, the model needs {:?}",
                        info.name, t.shape, info.shape
                    ))
                }
                Some(_) => {}
            }
        }
        let seed = match by_name.get(SEED_TENSOR) {
            Some(t) => state::f32s_to_u64(&t.data),
            None => None,
        };
        if seed.is_none() {
            problems.push(format!("missing or invalid `{SEED_TENSOR}`"));
        }
        let known: Vec<&str> = self
            .infos
            .iter()
            .map(|i| i.name.as_str())
            .chain([SEED_TENSOR])
            .collect();
        for t in &st.tensors {
            if !known.contains(&t.name.as_str()) {
                problems.push(format!(
                    "unexpected `{}` (another model or optimizer?)",
                    t.name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::StateMismatch(problems.join("; ")));
        }
        for (i, info) in self.infos.iter().enumerate() {
            if let Some(t) = by_name.get(info.name.as_str()) {
                write(&mut self.bufs[i], &t.data)?;
            }
        }
        self.seed = seed.unwrap_or(self.seed);
        self.step = st.step;
        Ok(())
    }

    /// Writes a standard inference model (weights as initializers, BatchNorm in inference mode,
    /// symbolic batch) to `path` via a temporary file and a rename; its output is `predictions`,
    /// unclipped, with no metadata.
    pub fn export_onnx(&self, path: &Path) -> Result<(), EngineError> {
        self.export_onnx_with(path, &ExportInfo::default())
    }

    /// [`Trainer::export_onnx`], with the output renamed, clipped inside the graph and the
    /// model's `metadata_props` set, as `info` says.
    pub fn export_onnx_with(&self, path: &Path, info: &ExportInfo) -> Result<(), EngineError> {
        if let Some(cal) = &info.calibration
            && cal.len() != self.arch.spec.outputs
        {
            return Err(EngineError::InvalidInput(format!(
                "the calibration has {} (scale, shift) pairs, the model has {} outputs",
                cal.len(),
                self.arch.spec.outputs
            )));
        }
        // Each buffer is read when the graph asks for it: the optimizer's moments (and, with
        // weight averaging, the raw weights) are two thirds of the state and never copied out.
        let index: HashMap<&str, usize> = (self.infos.iter().enumerate())
            .map(|(i, info)| (info.name.as_str(), i))
            .collect();
        let sources: HashMap<String, String> = self.arch.eval_sources().into_iter().collect();
        let failed = std::cell::RefCell::new(None);
        let lookup = |name: &str| {
            let src = sources.get(name).map_or(name, String::as_str);
            let Some(&i) = index.get(src) else {
                return Vec::new();
            };
            read(&self.bufs[i]).unwrap_or_else(|e| {
                failed.borrow_mut().get_or_insert(e);
                Vec::new()
            })
        };
        let mut model = self.arch.inference_graph(Some(&lookup));
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        finish_export(&mut model, info);
        state::write_atomic(path, &model.encode_to_vec())
    }

    /// The device that was asked for.
    pub fn requested_device(&self) -> Device {
        self.requested
    }
}

/// Renames the inference graph's single output, clips it and adds the metadata. The clip is
/// the last node, so every consumer of the file (valar, onnxruntime in Python, …) gets values in
/// the label range; ONNX Runtime's Clip keeps NaN as NaN, so a broken model still shows.
fn finish_export(model: &mut ModelProto, info: &ExportInfo) {
    let Some(graph) = model.graph.as_mut() else {
        return;
    };
    if let (Some(cal), Some(out)) = (&info.calibration, graph.output.first()) {
        let raw = out.name.clone();
        fold_calibration(graph, &raw, cal);
    }
    let Some(out) = graph.output.first_mut() else {
        return;
    };
    let raw = out.name.clone();
    let name = if info.output_name.is_empty() {
        raw.clone()
    } else {
        info.output_name.clone()
    };
    if let Some((lo, hi)) = info.clip {
        let bound = |n: &str, v: f32| TensorProto {
            dims: vec![],
            data_type: proto::FLOAT,
            name: n.into(),
            raw_data: v.to_le_bytes().to_vec(),
        };
        let unclipped = format!("{raw}.unclipped");
        for n in &mut graph.node {
            for v in n.input.iter_mut().chain(n.output.iter_mut()) {
                if *v == raw {
                    v.clone_from(&unclipped);
                }
            }
        }
        graph.initializer.push(bound("clip.min", lo));
        graph.initializer.push(bound("clip.max", hi));
        graph.node.push(NodeProto {
            input: vec![unclipped, "clip.min".into(), "clip.max".into()],
            output: vec![name.clone()],
            name: "clip_to_label_range".into(),
            op_type: "Clip".into(),
            ..Default::default()
        });
    } else if name != raw {
        for n in &mut graph.node {
            for v in n.input.iter_mut().chain(n.output.iter_mut()) {
                if *v == raw {
                    v.clone_from(&name);
                }
            }
        }
    }
    out.name = name;
    model.metadata_props = info
        .metadata
        .iter()
        .map(|(key, value)| StringStringEntryProto {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
}

/// Makes the value `out` `scale·out + shift` per column (ONNX `Mul` and `Add` of `[columns]`
/// initializers, broadcast over the batch): its producer now writes `{out}.uncalibrated`, so
/// the clip that [`finish_export`] appends afterwards comes after the map.
fn fold_calibration(graph: &mut proto::GraphProto, out: &str, cal: &[(f32, f32)]) {
    let uncalibrated = format!("{out}.uncalibrated");
    let scaled = format!("{out}.calibration_scaled");
    for n in &mut graph.node {
        for v in n.input.iter_mut().chain(n.output.iter_mut()) {
            if v == out {
                v.clone_from(&uncalibrated);
            }
        }
    }
    let column = |name: &str, values: Vec<f32>| TensorProto {
        dims: vec![values.len() as i64],
        data_type: proto::FLOAT,
        name: name.into(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    graph.initializer.push(column(
        "calibration.scale",
        cal.iter().map(|c| c.0).collect(),
    ));
    graph.initializer.push(column(
        "calibration.shift",
        cal.iter().map(|c| c.1).collect(),
    ));
    graph.node.push(NodeProto {
        input: vec![uncalibrated, "calibration.scale".into()],
        output: vec![scaled.clone()],
        name: "calibration_scale".into(),
        op_type: "Mul".into(),
        ..Default::default()
    });
    graph.node.push(NodeProto {
        input: vec![scaled, "calibration.shift".into()],
        output: vec![out.into()],
        name: "calibration_shift".into(),
        op_type: "Add".into(),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{InferenceModel, ModelKind};

    fn spec() -> ModelSpec {
        ModelSpec {
            kind: ModelKind::Compact,
            input_size: 16,
            channels: 1,
            outputs: 2,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        }
    }

    /// A fixed batch whose targets depend on the image (mean brightness, left-right contrast).
    fn batch(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b) = (
                rng.random::<f32>() * 2.0 - 1.0,
                rng.random::<f32>() * 2.0 - 1.0,
            );
            for r in 0..16 {
                for c in 0..16 {
                    let side = if c < 8 { b } else { -b };
                    x.push(a + 0.5 * side + 0.1 * (rng.random::<f32>() - 0.5) + 0.01 * r as f32);
                }
            }
            y.extend([a * 0.8, b * 0.8]);
        }
        (x, y)
    }

    fn trainer(opt: OptimizerKind, seed: u64) -> Trainer {
        Trainer::new(&spec(), LossKind::MseCcc, opt, Device::Cpu, seed).unwrap()
    }

    #[test]
    fn training_lowers_the_loss_with_adamw_and_sgd() {
        let (x, y) = batch(8, 1);
        for (opt, lr) in [
            (OptimizerKind::adamw_default(), 3e-3),
            (
                OptimizerKind::Sgd {
                    momentum: 0.9,
                    weight_decay: 1e-4,
                },
                2e-2,
            ),
        ] {
            let mut t = trainer(opt, 3);
            let first = t.step(&x, &y, 8, lr).unwrap().loss;
            let mut last = first;
            for _ in 0..30 {
                last = t.step(&x, &y, 8, lr).unwrap().loss;
            }
            assert!(
                first.is_finite() && last < 0.7 * first,
                "{opt:?}: {first} -> {last}"
            );
            assert_eq!(t.step_count(), 31);
        }
    }

    #[test]
    fn same_seed_gives_bit_identical_weights_and_resume_is_exact() {
        let (x, y) = batch(6, 2);
        let (x2, y2) = batch(3, 4);
        let run = |t: &mut Trainer, steps: usize| {
            for i in 0..steps {
                // Alternate two batch sizes: two sessions share the buffers.
                if i % 2 == 0 {
                    t.step(&x, &y, 6, 1e-3).unwrap()
                } else {
                    t.step(&x2, &y2, 3, 1e-3).unwrap()
                };
            }
        };
        let mut a = trainer(OptimizerKind::adamw_default(), 9);
        run(&mut a, 4);
        let mut b = trainer(OptimizerKind::adamw_default(), 9);
        run(&mut b, 4);
        assert_eq!(a.state(), b.state());

        // Stop after 2 steps, checkpoint to disk, resume in a trainer made with another seed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.bin");
        let mut c = trainer(OptimizerKind::adamw_default(), 9);
        run(&mut c, 2);
        c.state().save(&path).unwrap();
        let mut d = trainer(OptimizerKind::adamw_default(), 12345);
        d.load_state(TrainState::load(&path).unwrap()).unwrap();
        assert_eq!(d.step_count(), 2);
        // Steps 3 and 4 of `run` use the 6-image then the 3-image batch.
        d.step(&x, &y, 6, 1e-3).unwrap();
        d.step(&x2, &y2, 3, 1e-3).unwrap();
        assert_eq!(a.state(), d.state());

        // A different seed gives different weights.
        let mut e = trainer(OptimizerKind::adamw_default(), 10);
        run(&mut e, 4);
        assert_ne!(a.state(), e.state());
    }

    /// One whole-model AdamW step equals PyTorch's first AdamW step computed on the host from the
    /// gradient graph's gradients: p₁ = p₀(1 − lr·λ) − lr·g/(|g| + ε).
    #[test]
    fn first_adamw_step_matches_the_gradients() {
        use crate::ops::tests::{In, run};
        use prost::Message;
        let (x, y) = batch(4, 6);
        let (lr, wd, eps) = (1e-2f64, 0.01f64, 1e-8f64);
        let mut t = trainer(OptimizerKind::adamw_default(), 8);
        let before = t.state();
        t.step(&x, &y, 4, lr as f32).unwrap();
        let after = t.state();

        let model = t.arch.train_graph(4, LossKind::MseCcc, None, Device::Cpu);
        let (mut s, _) = runtime::session(&model.encode_to_vec(), Device::Cpu).unwrap();
        let mut ins = vec![
            In {
                name: names::IMAGE.into(),
                shape: vec![4, 1, 16, 16],
                data: x.clone(),
                check: false,
            },
            In {
                name: names::TARGETS.into(),
                shape: vec![4, 2],
                data: y.clone(),
                check: false,
            },
            In {
                name: names::SAMPLE_WEIGHTS.into(),
                shape: vec![4, 1],
                data: vec![1.0; 4],
                check: false,
            },
        ];
        for (i, (shape, data)) in noise_values(&t.arch, 8, 0, 4).into_iter().enumerate() {
            ins.push(In {
                name: names::noise(i),
                shape,
                data,
                check: false,
            });
        }
        for nt in &before.tensors {
            if t.arch
                .params
                .iter()
                .chain(&t.arch.running)
                .any(|p| p.name == nt.name)
            {
                ins.push(In {
                    name: nt.name.clone(),
                    shape: nt.shape.clone(),
                    data: nt.data.clone(),
                    check: false,
                });
            }
        }
        let grad_names: Vec<String> = t.arch.params.iter().map(|p| names::grad(&p.name)).collect();
        let refs: Vec<&str> = grad_names.iter().map(String::as_str).collect();
        let grads = run(&mut s, &ins, &refs);
        let find = |st: &TrainState, n: &str| {
            st.tensors
                .iter()
                .find(|t| t.name == n)
                .unwrap()
                .data
                .clone()
        };
        let mut checked = 0;
        for (p, g) in t.arch.params.iter().zip(&grads) {
            let (p0, p1) = (find(&before, &p.name), find(&after, &p.name));
            for i in 0..p0.len() {
                let g = f64::from(g[i]);
                // Near-zero gradients make g/|g| ill-conditioned; compare where |g| ≫ ε and rounding.
                if g.abs() < 1e-4 {
                    continue;
                }
                let expect = f64::from(p0[i]) * (1.0 - lr * wd) - lr * g / (g.abs() + eps);
                assert!(
                    (f64::from(p1[i]) - expect).abs() < 1e-6,
                    "{}[{i}]: {} vs {expect}",
                    p.name,
                    p1[i]
                );
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn facecnn_runs_steps_and_predicts() {
        let spec = ModelSpec {
            kind: ModelKind::FaceCnn,
            input_size: 8,
            channels: 3,
            outputs: 1,
            input: crate::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        };
        let mut t = Trainer::new(
            &spec,
            LossKind::Ccc,
            OptimizerKind::Sgd {
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            Device::Cpu,
            2,
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x: Vec<f32> = (0..4 * 3 * 64).map(|_| rng.random::<f32>()).collect();
        let y: Vec<f32> = (0..4).map(|_| rng.random::<f32>()).collect();
        let before = t.state();
        let out = t.step(&x, &y, 4, 1e-2).unwrap();
        assert!(out.loss.is_finite() && out.predictions.len() == 4);
        t.step(&x, &y, 4, 1e-2).unwrap();
        assert_ne!(before, t.state());
        let p = t.predict(&x, 4).unwrap();
        assert!(p.len() == 4 && p.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn load_state_rejects_mismatches() {
        let mut t = trainer(OptimizerKind::adamw_default(), 1);
        let sgd = trainer(
            OptimizerKind::Sgd {
                momentum: 0.9,
                weight_decay: 0.0,
            },
            1,
        );
        let err = t.load_state(sgd.state()).unwrap_err();
        assert!(matches!(err, EngineError::StateMismatch(_)));
        assert!(err.to_string().contains("adamw_m"), "{err}");
        let mut st = t.state();
        st.tensors[0].shape = vec![1];
        assert!(matches!(
            t.load_state(st),
            Err(EngineError::StateMismatch(_))
        ));
        assert!(matches!(
            t.step(&[0.0; 3], &[0.0; 2], 1, 1e-3),
            Err(EngineError::InvalidInput(_))
        ));
    }

    /// A network with an expression head learns its classes (the training loss, which holds the
    /// cross-entropy, falls), and its exported model gives both outputs: valence/arousal,
    /// clipped, as the eval session predicts them, and the expression logits.
    #[test]
    fn expression_head_trains_and_exports_both_outputs() {
        let head = crate::ExpressionHead {
            classes: 4,
            weight: 1.0,
        };
        let spec = ModelSpec {
            expression: Some(head),
            ..spec()
        };
        let (x, y) = batch(8, 5);
        // Class = the quadrant of the two targets, weights 1, 2, 1, 2; the last face has none.
        let mut e = vec![0.0; 8 * 4];
        for i in 0..7 {
            let c = usize::from(y[2 * i] > 0.0) * 2 + usize::from(y[2 * i + 1] > 0.0);
            e[i * 4 + c] = 1.0 + (c % 2) as f32;
        }
        let opt = OptimizerKind::adamw_default();
        let mut t = Trainer::new(&spec, LossKind::MseCcc, opt, Device::Cpu, 4).unwrap();
        let batch = Batch {
            expression: &e,
            ..Batch::new(&x, &y, 8)
        };
        let first = t.step_with(&batch, 1e-2).unwrap().loss;
        let mut last = first;
        for _ in 0..30 {
            last = t.step_with(&batch, 1e-2).unwrap().loss;
        }
        assert!(last < first * 0.5, "{first} → {last}");
        assert!(matches!(
            t.step(&x, &y, 8, 1e-2),
            Err(EngineError::InvalidInput(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        let info = ExportInfo {
            output_name: "valence_arousal".into(),
            clip: Some((-1.0, 1.0)),
            calibration: None,
            metadata: Vec::new(),
        };
        t.export_onnx_with(&path, &info).unwrap();
        let mine = t.predict(&x, 8).unwrap();
        let mut m = InferenceModel::load(&path, Device::Cpu).unwrap();
        assert_eq!((m.outputs(), m.expression_classes()), (2, 4));
        let (va, logits) = m.predict_with_expression(&x, 8).unwrap();
        assert_eq!(logits.len(), 8 * 4);
        for (a, b) in mine.iter().zip(&va) {
            assert!((a.clamp(-1.0, 1.0) - b).abs() <= 1e-5, "{a} vs {b}");
        }
        // The logits rank the trained classes first on most training faces.
        let right = (0..7)
            .filter(|&i| {
                let row = &logits[i * 4..i * 4 + 4];
                let best = (0..4).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                e[i * 4 + best] > 0.0
            })
            .count();
        assert!(right >= 5, "{right} of 7 faces classified as trained");
    }

    #[test]
    fn exported_model_matches_eval_predictions() {
        let (x, y) = batch(8, 5);
        let mut t = trainer(OptimizerKind::adamw_default(), 4);
        for _ in 0..3 {
            t.step(&x, &y, 8, 1e-2).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        t.export_onnx(&path).unwrap();
        let mine = t.predict(&x, 8).unwrap();
        let mut m = InferenceModel::load(&path, Device::Cpu).unwrap();
        assert_eq!((m.input_size(), m.channels(), m.outputs()), (16, 1, 2));
        let theirs = m.predict(&x, 8).unwrap();
        assert_eq!(mine.len(), 16);
        for (a, b) in mine.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
        // Eval mode differs from the training-mode predictions of the same batch (BatchNorm, dropout),
        // and is deterministic.
        assert_eq!(t.predict(&x, 8).unwrap(), mine);
        assert_eq!(m.predict(&x[..256], 1).unwrap(), theirs[..2].to_vec());
    }

    /// A calibration folded into the export gives `scale·predict + shift`, then the clip, per
    /// column: the map comes before the clip (the first column's is steep enough to need it),
    /// and a map of the wrong length is refused.
    #[test]
    fn exported_calibration_is_the_host_side_map_then_the_clip() {
        let (x, y) = batch(8, 5);
        let mut t = trainer(OptimizerKind::adamw_default(), 4);
        for _ in 0..3 {
            t.step(&x, &y, 8, 1e-2).unwrap();
        }
        let cal = vec![(2.5f32, 0.25f32), (-0.5, 0.125)];
        let info = ExportInfo {
            output_name: "valence_arousal".into(),
            clip: Some((-1.0, 1.0)),
            calibration: Some(cal.clone()),
            metadata: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        t.export_onnx_with(&path, &info).unwrap();
        let raw = t.predict(&x, 8).unwrap();
        let want: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (a, b) = cal[i % 2];
                (a * p + b).clamp(-1.0, 1.0)
            })
            .collect();
        let got = InferenceModel::load(&path, Device::Cpu)
            .unwrap()
            .predict(&x, 8)
            .unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5, "{g} vs {w}");
        }
        assert!(
            want.iter().step_by(2).any(|v| v.abs() == 1.0)
                && want.iter().step_by(2).any(|v| v.abs() < 1.0),
            "the test needs values on both sides of the clip: {want:?}"
        );
        let wrong = ExportInfo {
            calibration: Some(vec![(1.0, 0.0)]),
            ..info
        };
        let err = t.export_onnx_with(&path, &wrong).unwrap_err().to_string();
        assert!(
            err.contains("calibration") && err.contains("2 outputs"),
            "{err}"
        );
    }

    /// A network that folds `x·scale + shift` into its graphs trains and predicts exactly as
    /// the same network fed `x·scale + shift` itself (same seed, so the same weights), and its
    /// exported model carries the affine: it needs no statistics beside it.
    #[test]
    fn input_affine_is_the_same_as_transforming_the_input() {
        let affine = crate::InputAffine {
            scale: 2.5,
            shift: -0.75,
        };
        let folded_spec = ModelSpec {
            input: affine,
            ..spec()
        };
        let opt = OptimizerKind::adamw_default();
        let mut folded = Trainer::new(&folded_spec, LossKind::MseCcc, opt, Device::Cpu, 9).unwrap();
        let mut plain = Trainer::new(&spec(), LossKind::MseCcc, opt, Device::Cpu, 9).unwrap();
        let (x, y) = batch(8, 6);
        let xt: Vec<f32> = x.iter().map(|v| v * affine.scale + affine.shift).collect();
        let close = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "{p} vs {q}");
            }
        };
        for _ in 0..3 {
            let a = folded.step(&x, &y, 8, 1e-2).unwrap();
            let b = plain.step(&xt, &y, 8, 1e-2).unwrap();
            assert!((a.loss - b.loss).abs() <= 1e-4 * a.loss.abs().max(1.0));
        }
        let mine = folded.predict(&x, 8).unwrap();
        close(&mine, &plain.predict(&xt, 8).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        folded.export_onnx(&path).unwrap();
        let mut m = InferenceModel::load(&path, Device::Cpu).unwrap();
        close(&mine, &m.predict(&x, 8).unwrap());
    }

    /// Flip averaging predicts the mean of the network on the face and on its mirror image,
    /// in the trainer's eval mode and in the exported model alike.
    #[test]
    fn flip_average_is_the_mean_over_the_mirror_image() {
        let opt = OptimizerKind::adamw_default();
        let tta_spec = ModelSpec {
            flip_average: true,
            ..spec()
        };
        let mut tta = Trainer::new(&tta_spec, LossKind::MseCcc, opt, Device::Cpu, 3).unwrap();
        let mut plain = Trainer::new(&spec(), LossKind::MseCcc, opt, Device::Cpu, 3).unwrap();
        let (x, y) = batch(8, 2);
        for _ in 0..2 {
            tta.step(&x, &y, 8, 1e-2).unwrap();
            plain.step(&x, &y, 8, 1e-2).unwrap();
        }
        let side = spec().input_size;
        let mirrored: Vec<f32> = (0..x.len())
            .map(|k| {
                let (row, col) = (k / side, k % side);
                x[row * side + side - 1 - col]
            })
            .collect();
        let a = plain.predict(&x, 8).unwrap();
        let b = plain.predict(&mirrored, 8).unwrap();
        let mine = tta.predict(&x, 8).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        tta.export_onnx(&path).unwrap();
        let exported = InferenceModel::load(&path, Device::Cpu)
            .unwrap()
            .predict(&x, 8)
            .unwrap();
        for k in 0..a.len() {
            let want = 0.5 * (a[k] + b[k]);
            assert!((mine[k] - want).abs() <= 1e-5, "{} vs {want}", mine[k]);
            assert!(
                (exported[k] - want).abs() <= 1e-5,
                "{} vs {want}",
                exported[k]
            );
        }
        assert_ne!(
            a, b,
            "the test needs a network that tells a face from its mirror"
        );
    }

    /// The moving average starts at the starting weights, follows avg = d·avg + (1 − d)·w
    /// with timm's warm-up d = min(decay, (1 + t)/(10 + t)) after every step, and is what
    /// eval mode and the exported model use.
    #[test]
    fn weight_average_follows_its_recursion_and_is_what_predicts() {
        let decay = 0.9f32;
        let ema_spec = ModelSpec {
            ema: Some(decay),
            ..spec()
        };
        let opt = OptimizerKind::adamw_default();
        let mut t = Trainer::new(&ema_spec, LossKind::MseCcc, opt, Device::Cpu, 8).unwrap();
        let get = |st: &TrainState, name: &str| {
            st.tensors
                .iter()
                .find(|x| x.name == name)
                .map(|x| x.data.clone())
                .unwrap()
        };
        let names = ["conv1.weight", "fc2.bias", "bn1.running_var"];
        let st = t.try_state().unwrap();
        for n in names {
            assert_eq!(get(&st, n), get(&st, &names::ema(n)), "{n} at the start");
        }
        let (x, y) = batch(8, 4);
        for step in 0..3u32 {
            let before = t.try_state().unwrap();
            t.step(&x, &y, 8, 1e-2).unwrap();
            let after = t.try_state().unwrap();
            let d = decay.min((1.0 + step as f32) / (10.0 + step as f32));
            for n in names {
                let (avg0, w1, avg1) = (
                    get(&before, &names::ema(n)),
                    get(&after, n),
                    get(&after, &names::ema(n)),
                );
                for k in 0..w1.len() {
                    let want = avg0[k] * d + w1[k] * (1.0 - d);
                    assert!(
                        (avg1[k] - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{n}[{k}]"
                    );
                }
            }
        }
        // A plain trainer loaded with the averages predicts what the averaging one does.
        let st = t.try_state().unwrap();
        let mut plain = Trainer::new(&spec(), LossKind::MseCcc, opt, Device::Cpu, 8).unwrap();
        let mut loaded = plain.try_state().unwrap();
        for tensor in &mut loaded.tensors {
            if let Some(avg) = st
                .tensors
                .iter()
                .find(|x| x.name == names::ema(&tensor.name))
            {
                tensor.data = avg.data.clone();
            }
        }
        plain.load_state(loaded).unwrap();
        let want = plain.predict(&x, 8).unwrap();
        assert_eq!(t.predict(&x, 8).unwrap(), want);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        t.export_onnx(&path).unwrap();
        let exported = InferenceModel::load(&path, Device::Cpu)
            .unwrap()
            .predict(&x, 8)
            .unwrap();
        for (a, b) in exported.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
        // Checkpoints carry the averages: a reload continues bit for bit.
        let mut again = Trainer::new(&ema_spec, LossKind::MseCcc, opt, Device::Cpu, 8).unwrap();
        again.load_state(t.try_state().unwrap()).unwrap();
        t.step(&x, &y, 8, 1e-2).unwrap();
        again.step(&x, &y, 8, 1e-2).unwrap();
        assert_eq!(t.try_state().unwrap(), again.try_state().unwrap());
    }

    /// A spec of `kind` at its smallest multiple of 16 (so that every network fits), grey, two
    /// outputs.
    fn spec_of(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            kind,
            input_size: kind.input_multiple().max(16),
            ..spec()
        }
    }

    /// Random images and targets for `spec`.
    fn random_batch(spec: &ModelSpec, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let per = spec.channels * spec.input_size * spec.input_size;
        let x = (0..n * per)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        let y = (0..n * spec.outputs)
            .map(|_| rng.random::<f32>() * 1.6 - 0.8)
            .collect();
        (x, y)
    }

    /// Every network: the same seed gives bit-identical states, and a run stopped after two
    /// steps and resumed from its checkpoint (in a trainer made with another seed) ends bit for
    /// bit where the uninterrupted run does.
    #[test]
    fn every_network_is_deterministic_and_resumes_exactly() {
        for &kind in ModelKind::ALL {
            let spec = spec_of(kind);
            let (x, y) = random_batch(&spec, 4, 3);
            let opt = OptimizerKind::adamw_default();
            let make =
                |seed| Trainer::new(&spec, LossKind::MseCcc, opt, Device::Cpu, seed).unwrap();
            let mut a = make(5);
            let mut b = make(5);
            for _ in 0..3 {
                a.step(&x, &y, 4, 1e-3).unwrap();
                b.step(&x, &y, 4, 1e-3).unwrap();
            }
            assert_eq!(a.state(), b.state(), "{kind}: same seed");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ckpt.bin");
            let mut c = make(5);
            c.step(&x, &y, 4, 1e-3).unwrap();
            c.step(&x, &y, 4, 1e-3).unwrap();
            c.state().save(&path).unwrap();
            let mut d = make(77);
            d.load_state(TrainState::load(&path).unwrap()).unwrap();
            d.step(&x, &y, 4, 1e-3).unwrap();
            assert_eq!(a.state(), d.state(), "{kind}: resumed");
            assert_ne!(a.state(), make(6).state(), "{kind}: another seed");
        }
    }

    /// Every network, with a weight average: two steps on the trainer's one in-place copy of
    /// the state end bit for bit where the same training graph run with separate inputs and
    /// outputs does (no update overwrites a tensor that a later node of the step still reads).
    #[test]
    fn every_network_steps_in_place_exactly_as_out_of_place() {
        use crate::ops::tests::{In, run};
        use prost::Message;
        for &kind in ModelKind::ALL {
            let spec = ModelSpec {
                ema: Some(0.9),
                ..spec_of(kind)
            };
            let (x, y) = random_batch(&spec, 4, 9);
            let opt = OptimizerKind::adamw_default();
            let mut t = Trainer::new(&spec, LossKind::MseCcc, opt, Device::Cpu, 2).unwrap();
            let model = t
                .arch
                .train_graph(4, LossKind::MseCcc, Some(&opt), Device::Cpu);
            let mut session = runtime::session(&model.encode_to_vec(), Device::Cpu)
                .unwrap()
                .0;
            // The state less the dropout generator's seed, which the host keeps.
            let mut state: Vec<_> = t
                .state()
                .tensors
                .into_iter()
                .filter(|n| n.name != SEED_TENSOR)
                .collect();
            let plain = |name: &str, shape: &[usize], data: Vec<f32>| In {
                name: name.into(),
                shape: shape.to_vec(),
                data,
                check: false,
            };
            for step in 0..2u64 {
                let mut ins = vec![
                    plain(
                        names::IMAGE,
                        &[4, 1, spec.input_size, spec.input_size],
                        x.clone(),
                    ),
                    plain(names::TARGETS, &[4, 2], y.clone()),
                    plain(names::SAMPLE_WEIGHTS, &[4, 1], vec![1.0; 4]),
                    plain(names::LR, &[], vec![1e-3]),
                    plain(names::STEP, &[], vec![(step + 1) as f32]),
                    plain(
                        names::EMA_DECAY,
                        &[],
                        vec![0.9f32.min((1.0 + step as f32) / (10.0 + step as f32))],
                    ),
                ];
                for (i, (shape, data)) in noise_values(&t.arch, 2, step, 4).into_iter().enumerate()
                {
                    ins.push(plain(&names::noise(i), &shape, data));
                }
                ins.extend(
                    state
                        .iter()
                        .map(|n| plain(&n.name, &n.shape, n.data.clone())),
                );
                let outs: Vec<String> = state.iter().map(|n| names::new(&n.name)).collect();
                let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
                let values = run(&mut session, &ins, &refs);
                for (n, v) in state.iter_mut().zip(values) {
                    n.data = v;
                }
                t.step(&x, &y, 4, 1e-3).unwrap();
            }
            let in_place: Vec<_> = t
                .state()
                .tensors
                .into_iter()
                .filter(|n| n.name != SEED_TENSOR)
                .collect();
            assert_eq!(in_place.len(), state.len());
            for (a, b) in in_place.iter().zip(&state) {
                assert_eq!(a.name, b.name);
                let same = a
                    .data
                    .iter()
                    .zip(&b.data)
                    .all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "{kind}: {} differs after two steps", a.name);
            }
        }
    }

    /// Every network's exported model predicts what its eval mode does (here, in ONNX
    /// Runtime through valar, and in Python's onnxruntime from pip), with weight averaging and
    /// flip averaging on so the export carries both.
    #[test]
    fn every_exported_network_matches_eval_mode_here_and_in_python() {
        let python = std::env::var("VALAR_PYTHON").unwrap_or_else(|_| "python3".into());
        let has_ort = std::process::Command::new(&python)
            .args(["-c", "import numpy, onnxruntime"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !has_ort {
            println!(
                "skipping the Python half: `{python} -c 'import numpy, onnxruntime'` failed \
                 (pip install onnxruntime==1.31.1 numpy, or set VALAR_PYTHON)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        for &kind in ModelKind::ALL {
            let spec = ModelSpec {
                ema: Some(0.9),
                flip_average: true,
                ..spec_of(kind)
            };
            let (x, y) = random_batch(&spec, 6, 8);
            let opt = OptimizerKind::adamw_default();
            let mut t = Trainer::new(&spec, LossKind::MseCcc, opt, Device::Cpu, 2).unwrap();
            for _ in 0..3 {
                t.step(&x, &y, 6, 1e-2).unwrap();
            }
            let mine = t.predict(&x, 6).unwrap();
            let path = dir.path().join(format!("{kind}.onnx"));
            t.export_onnx(&path).unwrap();
            let mut m = InferenceModel::load(&path, Device::Cpu).unwrap();
            assert_eq!(
                (m.input_size(), m.channels(), m.outputs()),
                (spec.input_size, 1, 2)
            );
            let theirs = m.predict(&x, 6).unwrap();
            for (a, b) in mine.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                    "{kind}: {a} vs {b}"
                );
            }
            if !has_ort {
                continue;
            }
            let raw = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
            let xf = dir.path().join(format!("{kind}.x"));
            let ef = dir.path().join(format!("{kind}.want"));
            std::fs::write(&xf, raw(&x)).unwrap();
            std::fs::write(&ef, raw(&mine)).unwrap();
            let script = "import sys, numpy as np, onnxruntime as ort\n\
                model, xf, ef, side = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n\
                s = ort.InferenceSession(model, providers=['CPUExecutionProvider'])\n\
                x = np.fromfile(xf, dtype='<f4').reshape(-1, 1, side, side)\n\
                y = s.run(None, {s.get_inputs()[0].name: x})[0]\n\
                want = np.fromfile(ef, dtype='<f4').reshape(y.shape)\n\
                err = float(np.max(np.abs(y - want) / np.maximum(np.abs(want), 1.0)))\n\
                print(err)\n\
                sys.exit(0 if err <= 1e-5 else 1)\n";
            let out = std::process::Command::new(&python)
                .arg("-c")
                .arg(script)
                .arg(&path)
                .arg(&xf)
                .arg(&ef)
                .arg(spec.input_size.to_string())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{kind} in Python's onnxruntime: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn cuda_request_falls_back_to_cpu_with_a_reason() {
        let t = Trainer::new(
            &spec(),
            LossKind::Mse,
            OptimizerKind::adamw_default(),
            Device::Cuda,
            1,
        )
        .unwrap();
        if t.device() == Device::Cpu {
            assert!(crate::cuda_unavailable_reason().is_some());
        }
    }

    #[test]
    fn trainer_and_model_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Trainer>();
        send::<InferenceModel>();
        send::<TrainState>();
    }

    #[test]
    fn the_library_is_found() {
        let p = crate::ort_library().unwrap();
        assert!(p.ends_with("libonnxruntime.so.1.31.1"), "{}", p.display());
    }
}
