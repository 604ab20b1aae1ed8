//! A small ONNX graph builder: fresh names, constants, nodes, inputs and outputs.

use std::collections::{HashMap, HashSet};

use crate::proto::{
    self, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use crate::runtime::Device;

/// A tensor dimension in a graph signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    /// Known at build time.
    Fixed(usize),
    /// The symbolic batch dimension of exported models.
    Batch,
}

/// A node attribute value.
pub(crate) enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Str(String),
}

/// Builds one ONNX graph for one device (ops whose best form differs by device ask it).
pub(crate) struct GraphBuilder {
    device: Device,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
}

fn value_info(name: &str, elem_type: i32, shape: &[Dim]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Dimension {
                dim_value: Some(*n as i64),
                dim_param: None,
            },
            Dim::Batch => Dimension {
                dim_value: None,
                dim_param: Some("batch".into()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// Every node of `nodes` that `value` is computed from, its producer included.
pub(crate) fn ancestors_in(nodes: &[NodeProto], value: &str) -> HashSet<usize> {
    let producer: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut seen = HashSet::new();
    let mut todo: Vec<&str> = vec![value];
    while let Some(v) = todo.pop() {
        if let Some(&i) = producer.get(v)
            && seen.insert(i)
        {
            todo.extend(nodes[i].input.iter().map(String::as_str));
        }
    }
    seen
}

/// The nodes of `nodes` that read `value`, in graph order.
pub(crate) fn consumers_in(nodes: &[NodeProto], value: &str) -> Vec<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.input.iter().any(|i| i == value))
        .map(|(i, _)| i)
        .collect()
}

/// Fixed dimensions from sizes.
pub(crate) fn fixed(shape: &[usize]) -> Vec<Dim> {
    shape.iter().map(|&n| Dim::Fixed(n)).collect()
}

impl GraphBuilder {
    /// A graph for the CPU execution provider.
    pub(crate) fn new() -> Self {
        Self::for_device(Device::Cpu)
    }

    /// A graph for `device`: the one place a training graph's device is set.
    pub(crate) fn for_device(device: Device) -> Self {
        Self {
            device,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            counter: 0,
        }
    }

    /// The device this graph is emitted for.
    pub(crate) fn device(&self) -> Device {
        self.device
    }

    /// A name no other value in this graph has.
    pub(crate) fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("_{hint}{}", self.counter)
    }

    pub(crate) fn input(&mut self, name: &str, shape: &[Dim]) {
        self.inputs.push(value_info(name, proto::FLOAT, shape));
    }

    pub(crate) fn output(&mut self, name: &str, shape: &[Dim]) {
        self.outputs.push(value_info(name, proto::FLOAT, shape));
    }

    /// A named f32 initializer (used for exported weights).
    pub(crate) fn initializer(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: proto::FLOAT,
            name: name.to_string(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }

    /// An f32 constant of the given shape.
    pub(crate) fn const_f32(&mut self, shape: &[usize], data: &[f32]) -> String {
        let name = self.fresh("c");
        self.initializer(&name, shape, data);
        name
    }

    /// A scalar f32 constant.
    pub(crate) fn scalar(&mut self, v: f32) -> String {
        self.const_f32(&[], &[v])
    }

    /// A 1-D int64 constant (shapes, axes, pads, slice bounds).
    pub(crate) fn const_i64(&mut self, data: &[i64]) -> String {
        let name = self.fresh("i");
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: proto::INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Adds a node writing the given outputs.
    pub(crate) fn node_to(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) {
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = AttributeProto {
                    name: name.to_string(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => {
                        p.i = i;
                        p.r#type = proto::attr_type::INT;
                    }
                    Attr::Float(f) => {
                        p.f = f;
                        p.r#type = proto::attr_type::FLOAT;
                    }
                    Attr::Ints(v) => {
                        p.ints = v;
                        p.r#type = proto::attr_type::INTS;
                    }
                    Attr::Str(v) => {
                        p.s = v.into_bytes();
                        p.r#type = proto::attr_type::STRING;
                    }
                }
                p
            })
            .collect();
        let name = format!("n{}", self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op.to_string(),
            attribute,
            domain: String::new(),
        });
    }

    /// Adds a node with one fresh output and returns that output's name.
    pub(crate) fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.node_to(op, inputs, &[&out], attrs);
        out
    }

    /// A binary elementwise op, written to `out` when given.
    pub(crate) fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        self.node(op, &[a, b], vec![])
    }

    pub(crate) fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.const_i64(shape);
        self.node("Reshape", &[x, &s], vec![])
    }

    pub(crate) fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.node("Transpose", &[x], vec![("perm", Attr::Ints(perm.to_vec()))])
    }

    /// `op` (ReduceSum, ReduceMean, ...) over `axes`; opset 18 takes axes as an input.
    pub(crate) fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
        let a = self.const_i64(axes);
        self.node(op, &[x, &a], vec![("keepdims", Attr::Int(keepdims as i64))])
    }

    /// Renames a value everywhere it is produced or consumed. Graph outputs are produced by renaming
    /// the producing node's output, because an Identity node feeding an output makes a real copy.
    pub(crate) fn rename(&mut self, old: &str, new: &str) {
        for n in &mut self.nodes {
            for v in n.input.iter_mut().chain(n.output.iter_mut()) {
                if v == old {
                    *v = new.to_string();
                }
            }
        }
    }

    /// Every node `value` is computed from, its producer included (indices into the node list).
    pub(crate) fn ancestors(&self, value: &str) -> HashSet<usize> {
        ancestors_in(&self.nodes, value)
    }

    /// The nodes that read `value`, in graph order.
    pub(crate) fn consumers(&self, value: &str) -> Vec<usize> {
        consumers_in(&self.nodes, value)
    }

    /// The first output of node `i`.
    pub(crate) fn node_output(&self, i: usize) -> &str {
        &self.nodes[i].output[0]
    }

    /// A scalar zero that ONNX Runtime can only compute after every value in `after` exists:
    /// 0 · (the sum of each value's first element). Adding it to a scalar leaves the scalar's
    /// bits unchanged (x + ±0 = x for finite x) and makes whatever reads the sum wait for
    /// `after`; ONNX has no control edges, so this is how an order is imposed with data alone.
    /// It reads one element of each value, so the cost is a few tiny nodes. A non-finite first
    /// element makes the sum NaN; the values waited for are a lower layer's gradient, whose own
    /// update is then non-finite too, and the run stops on its loss either way.
    pub(crate) fn zero_after(&mut self, after: &[String]) -> String {
        let firsts: Vec<String> = after
            .iter()
            .map(|v| {
                let flat = self.reshape(v, &[-1]);
                let start = self.const_i64(&[0]);
                let end = self.const_i64(&[1]);
                self.node("Slice", &[&flat, &start, &end], vec![])
            })
            .collect();
        let joined = match firsts.as_slice() {
            [one] => one.clone(),
            _ => {
                let refs: Vec<&str> = firsts.iter().map(String::as_str).collect();
                self.node("Concat", &refs, vec![("axis", Attr::Int(0))])
            }
        };
        let sum = self.reduce("ReduceSum", &joined, &[0], false);
        let zero = self.scalar(0.0);
        self.bin("Mul", &sum, &zero)
    }

    pub(crate) fn finish(self, name: &str) -> ModelProto {
        ModelProto {
            ir_version: proto::IR_VERSION,
            producer_name: "valar-engine".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: name.into(),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: proto::OPSET,
            }],
            metadata_props: Vec::new(),
        }
    }
}
