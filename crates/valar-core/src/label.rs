use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the two continuous affect dimensions, each in [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// Unpleasant (-1) to pleasant (+1).
    Valence,
    /// Calm (-1) to excited (+1).
    Arousal,
}

impl Dimension {
    /// Both dimensions, in the order valar stores them (valence, then arousal).
    pub const ALL: [Dimension; 2] = [Dimension::Valence, Dimension::Arousal];

    /// The lowercase name used in files and column names.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Valence => "valence",
            Dimension::Arousal => "arousal",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which dimensions a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Targets {
    /// Valence only.
    Valence,
    /// Arousal only.
    Arousal,
    /// Valence and arousal, in that order.
    #[default]
    Both,
}

impl Targets {
    /// The dimensions, in output order.
    pub fn dimensions(self) -> &'static [Dimension] {
        match self {
            Targets::Valence => &[Dimension::Valence],
            Targets::Arousal => &[Dimension::Arousal],
            Targets::Both => &Dimension::ALL,
        }
    }
}

impl FromStr for Targets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "valence" => Ok(Targets::Valence),
            "arousal" => Ok(Targets::Arousal),
            "both" => Ok(Targets::Both),
            other => Err(format!(
                "unknown targets `{other}`: expected valence, arousal or both"
            )),
        }
    }
}

/// Which part of a prepared dataset a face belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Used to fit the model.
    Train,
    /// Held out from the same subset, for early stopping and model choice.
    Val,
    /// A whole set prepared without subsampling, for final evaluation.
    Test,
}

impl Split {
    /// The name written in `manifest.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether faces are stored as one gray channel or three RGB channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One channel, ITU-R BT.601 luma (what Pillow's `convert("L")` gives).
    #[default]
    Gray,
    /// Three channels, R, G, B.
    Rgb,
}

impl ColorMode {
    /// The number of channels.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Gray => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// A face box in full-image pixel coordinates: top-left corner and size.
///
/// Signed, because source files contain negative and zero boxes that must be
/// reported rather than silently wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaceBox {
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
}

impl FaceBox {
    /// The whole image as a box.
    pub fn whole(width: u32, height: u32) -> Self {
        FaceBox {
            x: 0,
            y: 0,
            width: i64::from(width),
            height: i64::from(height),
        }
    }
}

impl fmt::Display for FaceBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "x={} y={} w={} h={}",
            self.x, self.y, self.width, self.height
        )
    }
}
