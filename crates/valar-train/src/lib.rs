//! valar's training engine: the whole training step as one ONNX graph, run by ONNX Runtime.
