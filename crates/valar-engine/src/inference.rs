//! Inference with an exported model.onnx.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use valar_core::IoError;

use ort::session::Session;
use ort::value::{Tensor, ValueType};

use crate::EngineError;
use crate::runtime::{self, Device};

/// A loaded inference model: input `[batch, channels, size, size]`, output `[batch, outputs]`.
pub struct InferenceModel {
    session: Session,
    input_name: String,
    output_name: String,
    input_size: usize,
    channels: usize,
    outputs: usize,
    /// The expression logits' output and its class count, when the model has that head.
    expression: Option<(String, usize)>,
    device: Device,
    metadata: BTreeMap<String, String>,
}

fn dims(t: &ValueType) -> Option<Vec<i64>> {
    match t {
        ValueType::Tensor { shape, .. } => Some(shape.to_vec()),
        _ => None,
    }
}

impl InferenceModel {
    /// Loads a model written by [`crate::Trainer::export_onnx`] (or any model with the same signature).
    pub fn load(path: &Path, device: Device) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path).map_err(IoError::at(path))?;
        let bad = |reason: String| EngineError::InvalidModel {
            path: PathBuf::from(path),
            reason,
        };
        // Read first: it names the file when the bytes are empty or cut short, where ONNX
        // Runtime only says that protobuf parsing failed.
        let metadata = crate::metadata::metadata_of(path, &bytes)?;
        let (session, used) = runtime::session(&bytes, device).map_err(|e| match e {
            EngineError::Ort(e) => bad(format!("ONNX Runtime cannot load it: {e}")),
            other => other,
        })?;
        let (input, output) = match (session.inputs().first(), session.outputs().first()) {
            (Some(i), Some(o)) if session.inputs().len() == 1 => (i, o),
            _ => {
                return Err(bad(
                    "expected exactly one input and at least one output".into()
                ));
            }
        };
        let ins = dims(input.dtype()).unwrap_or_default();
        let outs = dims(output.dtype()).unwrap_or_default();
        let ok_in = ins.len() == 4 && ins[1] > 0 && ins[2] > 0 && ins[2] == ins[3];
        let ok_out = outs.len() == 2 && outs[1] > 0;
        if !ok_in || !ok_out {
            return Err(bad(format!(
                "expected input [batch, channels, size, size] and output [batch, outputs], found {ins:?} and {outs:?}"
            )));
        }
        // A second output named `expression` of shape [batch, classes]: the expression head.
        let expression = session
            .outputs()
            .iter()
            .skip(1)
            .find(|o| o.name() == crate::names::EXPRESSION)
            .and_then(|o| match dims(o.dtype()).as_deref() {
                Some([_, c]) if *c > 0 => Some((o.name().to_string(), *c as usize)),
                _ => None,
            });
        Ok(Self {
            expression,
            input_name: input.name().to_string(),
            output_name: output.name().to_string(),
            input_size: ins[2] as usize,
            channels: ins[1] as usize,
            outputs: outs[1] as usize,
            device: used,
            metadata,
            session,
        })
    }

    /// The model's `metadata_props` (empty for a model written without any).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The name of the output read by [`InferenceModel::predict`] (the graph's first).
    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    /// Side of the square input image.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Input channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Outputs per image.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Expression classes of the model's expression head (its second output, logits); 0 for a
    /// model without one.
    pub fn expression_classes(&self) -> usize {
        self.expression.as_ref().map_or(0, |e| e.1)
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Predictions for `batch` images (`batch × channels × size × size`, row-major), `batch × outputs`.
    pub fn predict(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>, EngineError> {
        Ok(self.predict_with_expression(x, batch)?.0)
    }

    /// [`InferenceModel::predict`], with the expression logits (`batch × classes`) of a model
    /// with an expression head (empty without one).
    pub fn predict_with_expression(
        &mut self,
        x: &[f32],
        batch: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), EngineError> {
        let per = self.channels * self.input_size * self.input_size;
        if batch == 0 || x.len() != batch * per {
            return Err(EngineError::InvalidInput(format!(
                "batch {batch} needs {} input values, got {}",
                batch * per,
                x.len()
            )));
        }
        let shape = [
            batch as i64,
            self.channels as i64,
            self.input_size as i64,
            self.input_size as i64,
        ];
        let xt = Tensor::from_array((shape, x.to_vec().into_boxed_slice()))?;
        let out = self
            .session
            .run(ort::inputs![self.input_name.as_str() => xt])?;
        let read = |name: &str| -> Result<Vec<f32>, EngineError> {
            let (_, data) = out
                .get(name)
                .ok_or_else(|| EngineError::Runtime(format!("the model returned no `{name}`")))?
                .try_extract_tensor::<f32>()?;
            Ok(data.to_vec())
        };
        let va = read(&self.output_name)?;
        let expression = match &self.expression {
            Some((name, _)) => read(name)?,
            None => Vec::new(),
        };
        Ok((va, expression))
    }
}
