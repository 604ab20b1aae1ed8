//! What to generate: sizes, seed, layout and image quality.

use crate::SynthError;

/// Which AffectNet release's folder layout to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The original release: CSV file lists plus full images with a face box.
    #[default]
    Original,
    /// The newer release: cropped faces with one `.npy` string scalar per label.
    Newer,
}

/// Every layout `valar synth --layout` writes: an AffectNet release ([`Layout`], written by
/// [`crate::synthesize`]) or a video dataset ([`crate::VideoLayout`], written by
/// [`crate::synthesize_video`]). Each value's doc is its line in `valar synth --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DatasetLayout {
    /// CSV file lists and full images with face boxes.
    #[default]
    Original,
    /// train_set/ and val_set/ with cropped faces and .npy labels.
    Newer,
    /// AFEW-VA: clip folders of PNG frames with NNN.json (labels −10…10, 68 landmarks).
    AfewVa,
    /// Aff-Wild2's VA track: annotation .txt per video (−5 invalid frames, as a share
    /// of --invalid-fraction) and cropped_aligned/ frames, some missing.
    AffWild2,
}

impl DatasetLayout {
    /// The image layout ([`crate::synthesize`]), or the video layout ([`crate::synthesize_video`]).
    pub fn image_or_video(self) -> Result<Layout, crate::VideoLayout> {
        match self {
            DatasetLayout::Original => Ok(Layout::Original),
            DatasetLayout::Newer => Ok(Layout::Newer),
            DatasetLayout::AfewVa => Err(crate::VideoLayout::AfewVa),
            DatasetLayout::AffWild2 => Err(crate::VideoLayout::AffWild2),
        }
    }
}

/// How hard the faces are to read. Each value's first paragraph is its line in
/// `valar synth --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Difficulty {
    /// Clean faces whose labels are exactly what they show (a small CNN reaches CCC ≈ 0.96).
    ///
    /// Labels spread evenly over the valence/arousal square: for demos and tests of the
    /// pipeline's plumbing.
    #[default]
    Easy,
    /// Faces as hard as AffectNet's (the PyTorch reference recipe scores CCC ≈ 0.3–0.5).
    ///
    /// One noisy annotator's labels, AffectNet's label distribution (skewed training split,
    /// expression-balanced validation split), a subtle affect cue under identity, pose,
    /// lighting, clutter, occlusion, blur, JPEG quality and grayscale nuisance. For judging
    /// training recipes.
    Hard,
}

/// Settings for [`crate::synthesize`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of training images.
    pub n: usize,
    /// Number of validation images (may be 0).
    pub val_n: usize,
    /// Seed; the same seed and settings give byte-identical output.
    pub seed: u64,
    /// Folder layout to write.
    pub layout: Layout,
    /// Share of rows that are unusable like AffectNet's (expression 8-10, labels -2).
    pub invalid_fraction: f64,
    /// JPEG quality, 1-100; hard faces draw each image's quality up to this.
    pub quality: u8,
    /// Easy or hard faces.
    pub difficulty: Difficulty,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            n: 1000,
            val_n: 100,
            seed: 0,
            layout: Layout::Original,
            invalid_fraction: 0.03,
            quality: 90,
            difficulty: Difficulty::Easy,
        }
    }
}

impl SynthConfig {
    /// Rejects settings that cannot produce a sensible dataset.
    pub(crate) fn validate(&self) -> Result<(), SynthError> {
        if self.n == 0 {
            return Err(SynthError::Config(
                "n (training images) must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.invalid_fraction) {
            return Err(SynthError::Config(format!(
                "invalid_fraction must lie in [0, 1], got {}",
                self.invalid_fraction
            )));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(SynthError::Config(format!(
                "JPEG quality must lie in 1..=100, got {}",
                self.quality
            )));
        }
        // Ids and file names are derived from 40-bit indices.
        if self.n.saturating_add(self.val_n) >= 1 << 40 {
            return Err(SynthError::Config("too many images requested".into()));
        }
        Ok(())
    }
}
