//! valar prepare: read AffectNet or a generic CSV, stratify, preprocess faces, write a packed dataset.
