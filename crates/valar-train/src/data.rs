//! The prepared dataset: faces, labels and splits, and the fixed input normalization.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use valar_core::{
    Dimension, Faces, ManifestRow, PreparedDir, Split, Targets, read_faces, read_manifest,
};
use valar_engine::InputAffine;

/// Maps a stored pixel to the network's input: `x / 127.5 − 1`, so 0 → −1 and 255 → +1.
///
/// Fixed rather than fitted to the training set, so an exported `model.onnx` needs no
/// statistics beside it; train, evaluate and predict all use this one function.
pub fn normalize_pixel(p: u8) -> f32 {
    f32::from(p) / 127.5 - 1.0
}

/// Which rows of a prepared dataset to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitChoice {
    /// The training rows.
    Train,
    /// The validation rows.
    Val,
    /// The test rows.
    Test,
    /// Every row.
    All,
}

impl SplitChoice {
    /// Whether a row of split `s` is included.
    pub fn includes(self, s: Split) -> bool {
        match self {
            SplitChoice::Train => s == Split::Train,
            SplitChoice::Val => s == Split::Val,
            SplitChoice::Test => s == Split::Test,
            SplitChoice::All => true,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SplitChoice::Train => "train",
            SplitChoice::Val => "val",
            SplitChoice::Test => "test",
            SplitChoice::All => "all",
        }
    }
}

impl fmt::Display for SplitChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SplitChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(SplitChoice::Train),
            "val" => Ok(SplitChoice::Val),
            "test" => Ok(SplitChoice::Test),
            "all" => Ok(SplitChoice::All),
            other => Err(format!(
                "unknown split `{other}`: expected train, val, test or all"
            )),
        }
    }
}

/// A prepared dataset in memory.
#[derive(Debug)]
pub(crate) struct Dataset {
    pub dir: PathBuf,
    pub faces: Faces,
    pub rows: Vec<ManifestRow>,
}

impl Dataset {
    /// Reads `faces.npy` and `manifest.csv` from a prepared folder and checks they agree.
    pub(crate) fn load(dir: &Path) -> Result<Self, TrainError> {
        if !dir.is_dir() {
            return Err(TrainError::data(
                dir,
                "is not a prepared dataset folder (run `valar prepare` first)",
            ));
        }
        let prepared = PreparedDir::new(dir);
        let manifest = prepared.manifest();
        let faces_path = prepared.faces();
        for p in [&manifest, &faces_path] {
            if !p.is_file() {
                return Err(TrainError::data(
                    dir,
                    format!(
                        "has no {} (is it a folder written by `valar prepare`?)",
                        p.file_name()
                            .map(|n| n.to_string_lossy())
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        let rows = read_manifest(&manifest)?;
        let faces = read_faces(&faces_path)?;
        if faces.n != rows.len() {
            return Err(TrainError::data(
                dir,
                format!(
                    "faces.npy holds {} faces but manifest.csv has {} rows",
                    faces.n,
                    rows.len()
                ),
            ));
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            faces,
            rows,
        })
    }

    /// SHA-256 of the faces (shape and pixels) and of `manifest.csv`'s bytes: what a resumed
    /// run checks to be sure it continues on the data it started with.
    pub(crate) fn fingerprint(&self) -> Result<String, TrainError> {
        use sha2::{Digest, Sha256};
        let manifest = PreparedDir::new(&self.dir).manifest();
        let bytes = std::fs::read(&manifest).map_err(TrainError::io(&manifest))?;
        let mut h = Sha256::new();
        for d in [self.faces.n, self.faces.channels, self.faces.size] {
            h.update((d as u64).to_le_bytes());
        }
        h.update(&self.faces.data);
        h.update(&bytes);
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Row indices of the rows `choice` includes, in manifest order.
    pub(crate) fn split_indices(&self, choice: SplitChoice) -> Vec<usize> {
        (0..self.rows.len())
            .filter(|&i| choice.includes(self.rows[i].split))
            .collect()
    }

    /// The label of one row.
    pub(crate) fn label(&self, row: usize, dim: Dimension) -> f32 {
        match dim {
            Dimension::Valence => self.rows[row].valence,
            Dimension::Arousal => self.rows[row].arousal,
        }
    }

    /// Checks that every row in `indices` has a usable label (finite, in [−1, 1]) for each
    /// trained dimension, so a dataset without (say) arousal labels fails before training.
    pub(crate) fn check_labels(
        &self,
        indices: &[usize],
        targets: Targets,
    ) -> Result<(), TrainError> {
        for &dim in targets.dimensions() {
            let bad: Vec<usize> = indices
                .iter()
                .copied()
                .filter(|&i| {
                    let v = self.label(i, dim);
                    !(v.is_finite() && (-1.0..=1.0).contains(&v))
                })
                .collect();
            if let Some(&first) = bad.first() {
                return Err(TrainError::data(
                    &self.dir,
                    format!(
                        "{} of {} rows have no usable {dim} label (first: index {first}, value {}); \
                         train other --targets or prepare the data again",
                        bad.len(),
                        indices.len(),
                        self.label(first, dim)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The input affine that standardises pixels the way PyTorch users write it,
    /// `(p/255 − mean)/sd` with the mean and (population) standard deviation of every pixel
    /// of `rows`, expressed on valar's fixed input `x = p/127.5 − 1` (so `p/255 = (x + 1)/2`).
    /// Summed in integers, so the result does not depend on the order of the rows.
    pub(crate) fn standardizer(&self, rows: &[usize]) -> Result<InputAffine, TrainError> {
        let (mut sum, mut sum_sq, mut n) = (0u128, 0u128, 0u128);
        for &r in rows {
            for &p in self.faces.face(r) {
                sum += u128::from(p);
                sum_sq += u128::from(p) * u128::from(p);
                n += 1;
            }
        }
        let nf = n.max(1) as f64;
        let mean = sum as f64 / nf / 255.0;
        let var = (sum_sq as f64 / nf) / (255.0 * 255.0) - mean * mean;
        let sd = var.max(0.0).sqrt();
        if sd < 1e-6 {
            return Err(TrainError::data(
                &self.dir,
                "every training pixel has the same value, so inputs cannot be standardised; use --normalize fixed",
            ));
        }
        Ok(InputAffine {
            scale: (1.0 / (2.0 * sd)) as f32,
            shift: ((0.5 - mean) / sd) as f32,
        })
    }

    /// Labels of `rows` for the trained dimensions, row-major `rows × dims`.
    pub(crate) fn labels(&self, rows: &[usize], targets: Targets) -> Vec<f32> {
        let dims = targets.dimensions();
        let mut out = Vec::with_capacity(rows.len() * dims.len());
        for &r in rows {
            out.extend(dims.iter().map(|&d| self.label(r, d)));
        }
        out
    }

    /// Normalized inputs of `rows`, `rows × C × S × S`, appended to `out` (cleared first).
    pub(crate) fn inputs(&self, rows: &[usize], out: &mut Vec<f32>) {
        out.clear();
        for &r in rows {
            out.extend(self.faces.face(r).iter().map(|&p| normalize_pixel(p)));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use valar_core::{MANIFEST_COLUMNS, write_faces};

    /// Writes a prepared folder with `n` faces of size 8: label = f(row), split by `split(row)`.
    pub(crate) fn write_dataset(
        dir: &Path,
        n: usize,
        labels: impl Fn(usize) -> (f32, f32),
        split: impl Fn(usize) -> &'static str,
        pixels: impl Fn(usize, usize) -> u8,
    ) {
        std::fs::create_dir_all(dir).unwrap();
        let size = 8;
        let data = (0..n)
            .flat_map(|i| (0..size * size).map(move |k| (i, k)))
            .map(|(i, k)| pixels(i, k))
            .collect();
        write_faces(
            &PreparedDir::new(dir).faces(),
            &Faces {
                n,
                channels: 1,
                size,
                data,
            },
        )
        .unwrap();
        let mut text = MANIFEST_COLUMNS.join(",") + "\n";
        for i in 0..n {
            let (v, a) = labels(i);
            text += &format!("{i},img/{i}.jpg,{v},{a},1,0,{},0,0,8,8,ab,,\n", split(i));
        }
        std::fs::write(PreparedDir::new(dir).manifest(), text).unwrap();
    }

    #[test]
    fn normalization_maps_the_byte_range_onto_minus_one_one() {
        assert_eq!(normalize_pixel(0), -1.0);
        assert_eq!(normalize_pixel(255), 1.0);
        assert!(normalize_pixel(127).abs() < 0.01);
    }

    #[test]
    fn loads_splits_labels_and_inputs() {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(
            dir.path(),
            5,
            |i| (i as f32 / 10.0, -(i as f32) / 10.0),
            |i| if i < 3 { "train" } else { "val" },
            |i, _| i as u8 * 50,
        );
        let d = Dataset::load(dir.path()).unwrap();
        assert_eq!(d.split_indices(SplitChoice::Train), vec![0, 1, 2]);
        assert_eq!(d.split_indices(SplitChoice::Val), vec![3, 4]);
        assert!(d.split_indices(SplitChoice::Test).is_empty());
        assert_eq!(d.split_indices(SplitChoice::All).len(), 5);
        assert_eq!(d.labels(&[1, 4], Targets::Both), vec![0.1, -0.1, 0.4, -0.4]);
        assert_eq!(d.labels(&[1, 4], Targets::Arousal), vec![-0.1, -0.4]);
        let mut x = Vec::new();
        d.inputs(&[0, 2], &mut x);
        assert_eq!(x.len(), 2 * 64);
        assert_eq!(x[0], -1.0);
        assert_eq!(x[64], normalize_pixel(100));
    }

    /// On valar's fixed input, the standardiser gives what a PyTorch user computes,
    /// `(p/255 − mean)/sd` over the training rows only, and refuses a constant image set.
    #[test]
    fn standardizer_matches_the_pytorch_formula() {
        let dir = tempfile::tempdir().unwrap();
        let pixel = |i: usize, k: usize| ((i * 37 + k * 11) % 256) as u8;
        write_dataset(
            dir.path(),
            6,
            |_| (0.0, 0.0),
            |i| if i < 4 { "train" } else { "val" },
            pixel,
        );
        let d = Dataset::load(dir.path()).unwrap();
        let train = d.split_indices(SplitChoice::Train);
        let a = d.standardizer(&train).unwrap();
        let scaled: Vec<f64> = (0..4)
            .flat_map(|i| (0..64).map(move |k| f64::from(pixel(i, k)) / 255.0))
            .collect();
        let n = scaled.len() as f64;
        let mean = scaled.iter().sum::<f64>() / n;
        let sd = (scaled.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        for p in [0u8, 1, 77, 128, 254, 255] {
            let want = (f64::from(p) / 255.0 - mean) / sd;
            let got = f64::from(normalize_pixel(p) * a.scale + a.shift);
            assert!((got - want).abs() < 1e-5, "pixel {p}: {got} vs {want}");
        }
        write_dataset(dir.path(), 3, |_| (0.0, 0.0), |_| "train", |_, _| 9);
        let d = Dataset::load(dir.path()).unwrap();
        let err = d.standardizer(&[0, 1, 2]).unwrap_err().to_string();
        assert!(err.contains("--normalize fixed"), "{err}");
    }

    #[test]
    fn missing_labels_and_mismatched_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(
            dir.path(),
            4,
            |i| (0.0, if i == 2 { -2.0 } else { 0.5 }),
            |_| "train",
            |_, _| 0,
        );
        let d = Dataset::load(dir.path()).unwrap();
        let all = d.split_indices(SplitChoice::All);
        assert!(d.check_labels(&all, Targets::Valence).is_ok());
        let err = d.check_labels(&all, Targets::Both).unwrap_err().to_string();
        assert!(err.contains("arousal") && err.contains("index 2"), "{err}");

        write_dataset(dir.path(), 3, |_| (0.0, 0.0), |_| "train", |_, _| 0);
        let faces = read_faces(&PreparedDir::new(dir.path()).faces()).unwrap();
        write_faces(
            &PreparedDir::new(dir.path()).faces(),
            &Faces {
                n: 2,
                data: faces.data[..128].to_vec(),
                ..faces
            },
        )
        .unwrap();
        let err = Dataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("2 faces") && err.contains("3 rows"), "{err}");
        let err = Dataset::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("valar prepare"), "{err}");
    }
}
