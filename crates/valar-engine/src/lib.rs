//! valar's training engine: forward, backward and optimizer as one ONNX graph, run by ONNX Runtime.
