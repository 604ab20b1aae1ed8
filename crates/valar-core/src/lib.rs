//! Shared types, file formats and metrics for valar.
