//! Seeded synthetic AffectNet-format datasets whose faces encode their labels.
//!
//! [`synthesize`] writes N images in AffectNet's original layout (CSV file lists,
//! full images with a square face box and 68 landmarks) or its newer layout (cropped
//! faces with `.npy` string-scalar labels). Each face's mouth curvature follows its
//! valence; eye opening, mouth opening and brow height follow its arousal, strongly
//! enough that a small CNN on 48×48 grayscale crops can learn both. The same seed
//! gives byte-identical output on any number of threads.
//!
//! [`Difficulty::Hard`] makes faces as hard to read as AffectNet's instead: labels
//! with one annotator's noise, AffectNet's label distribution, and nuisance (identity,
//! pose, lighting, clutter, occlusion, blur, JPEG quality) that dominates a subtler
//! affect cue. It is calibrated so that a careful small CNN scores about what it
//! scores on real faces (see the README's "Hard synthetic faces").

mod config;
mod dataset;
mod error;
mod face;
mod hard;
mod labels;
mod picture;
mod render;
/// Video datasets in AFEW-VA's and Aff-Wild2's layouts.
mod video;

pub use config::{DatasetLayout, Difficulty, Layout, SynthConfig};
pub use dataset::{CSV_HEADER, SynthSummary, synthesize};
pub use error::SynthError;
pub use video::{VideoLayout, VideoSynthConfig, VideoSynthSummary, synthesize_video};
