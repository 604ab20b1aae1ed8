//! A prepared folder: every file name `valar prepare` (and `valar prepare-merge`) writes
//! there, spelled once.

use std::path::{Path, PathBuf};

/// Paths inside a prepared folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedDir {
    /// The prepared folder itself.
    pub root: PathBuf,
}

impl PreparedDir {
    /// One row per face.
    pub const MANIFEST: &str = "manifest.csv";
    /// The packed face tensor.
    pub const FACES: &str = "faces.npy";
    /// What prepare did.
    pub const PREP_JSON: &str = "prep.json";
    /// Seconds per phase of the run that wrote the folder: the one file that differs between
    /// two runs with the same seed and inputs.
    pub const TIMINGS: &str = "timings.json";
    /// One row per dropped source row.
    pub const REJECTS: &str = "rejects.csv";
    /// The subfolder of the faces as PNG files (`--png`).
    pub const PNG_DIR: &str = "png";

    /// The prepared folder `root`.
    pub fn new(root: &Path) -> Self {
        PreparedDir {
            root: root.to_path_buf(),
        }
    }
    /// `manifest.csv`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join(Self::MANIFEST)
    }
    /// `faces.npy`.
    pub fn faces(&self) -> PathBuf {
        self.root.join(Self::FACES)
    }
    /// `prep.json`.
    pub fn prep_json(&self) -> PathBuf {
        self.root.join(Self::PREP_JSON)
    }
    /// `timings.json`.
    pub fn timings(&self) -> PathBuf {
        self.root.join(Self::TIMINGS)
    }
    /// `rejects.csv`.
    pub fn rejects(&self) -> PathBuf {
        self.root.join(Self::REJECTS)
    }
    /// `png/interval_NNN/`: the PNG files of interval (grid cell) `cell`.
    pub fn png_interval(&self, cell: usize) -> PathBuf {
        self.root
            .join(Self::PNG_DIR)
            .join(format!("interval_{cell:03}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ones_users_see() {
        let p = PreparedDir::new(Path::new("out"));
        assert_eq!(p.manifest(), Path::new("out/manifest.csv"));
        assert_eq!(p.faces(), Path::new("out/faces.npy"));
        assert_eq!(p.prep_json(), Path::new("out/prep.json"));
        assert_eq!(p.rejects(), Path::new("out/rejects.csv"));
        assert_eq!(p.png_interval(7), Path::new("out/png/interval_007"));
    }
}
