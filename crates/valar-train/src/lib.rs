//! valar train, evaluate and predict: the training loop, checkpoints and metrics on top of valar-engine.
