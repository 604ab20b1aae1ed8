//! Seeded synthetic AffectNet-format datasets whose faces encode their labels.
//!
//! [`synthesize`] writes N images in AffectNet's original layout (CSV file lists,
//! full images with a square face box and 68 landmarks) or its newer layout (cropped
//! faces with `.npy` string-scalar labels). Each face's mouth curvature follows its
//! valence; eye opening, mouth opening and brow height follow its arousal, strongly
//! enough that a small CNN on 48×48 grayscale crops can learn both. The same seed
//! gives byte-identical output on any number of threads.

mod config;
mod dataset;
mod error;
mod face;
mod labels;
mod render;

pub use config::{Layout, SynthConfig};
pub use dataset::{CSV_HEADER, SynthSummary, synthesize};
pub use error::SynthError;
