//! Training state as named f32 tensors, and its checkpoint file (checksummed, written atomically).

use std::io::Write;
use std::path::{Path, PathBuf};
use valar_core::IoError;

use sha2::{Digest, Sha256};

use crate::EngineError;

/// One named tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Name, e.g. `conv1.weight`, `conv1.weight.adamw_m`, `bn1.running_mean`.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

/// Everything needed to continue training exactly: parameters, optimizer state, BatchNorm running
/// statistics, the step count, and the dropout generator's seed (tensor `dropout_rng.seed`; its position
/// is the step count).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Optimizer steps taken so far.
    pub step: u64,
    /// All state tensors.
    pub tensors: Vec<NamedTensor>,
}

const MAGIC: &[u8; 8] = b"VALARCK1";

impl TrainState {
    /// Writes the state to `path` atomically (temporary name, fsync, rename), ending with a SHA-256
    /// of everything before it so that a damaged file is detected on load.
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        // Sized once: grown by doubling, a checkpoint of a 10M-parameter network was copied
        // and faulted in again at every step up to its 200 MB.
        let body: usize = (self.tensors.iter())
            .map(|t| 24 + t.name.len() + 8 * t.shape.len() + 4 * t.data.len())
            .sum();
        let size = MAGIC.len() + 16 + body + 32;
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&self.step.to_le_bytes());
        buf.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        for t in &self.tensors {
            buf.extend_from_slice(&(t.name.len() as u64).to_le_bytes());
            buf.extend_from_slice(t.name.as_bytes());
            buf.extend_from_slice(&(t.shape.len() as u64).to_le_bytes());
            for &d in &t.shape {
                buf.extend_from_slice(&(d as u64).to_le_bytes());
            }
            buf.extend_from_slice(&(t.data.len() as u64).to_le_bytes());
            for v in &t.data {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        let digest = Sha256::digest(&buf);
        buf.extend_from_slice(&digest);
        debug_assert_eq!(
            buf.len(),
            size,
            "the checkpoint's size formula is out of date"
        );
        write_atomic(path, &buf)
    }

    /// Reads a state written by [`TrainState::save`]; a truncated or damaged file gives
    /// [`EngineError::CorruptCheckpoint`].
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path).map_err(IoError::at(path))?;
        let corrupt = |reason: &str| EngineError::CorruptCheckpoint {
            path: path.into(),
            reason: reason.into(),
        };
        if bytes.len() < MAGIC.len() + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a valar checkpoint (bad header)"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(corrupt(
                "checksum mismatch: the file is damaged or truncated",
            ));
        }
        let mut r = Reader {
            b: body,
            pos: MAGIC.len(),
        };
        let malformed = || corrupt("malformed contents despite a valid checksum");
        let step = r.u64().ok_or_else(malformed)?;
        let n = r.u64().ok_or_else(malformed)?;
        let mut tensors = Vec::new();
        for _ in 0..n {
            let len = r.len().ok_or_else(malformed)?;
            let name = String::from_utf8(r.take(len).ok_or_else(malformed)?.to_vec())
                .map_err(|_| malformed())?;
            let rank = r.len().ok_or_else(malformed)?;
            let shape = (0..rank)
                .map(|_| r.len())
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(malformed)?;
            let count = r.len().ok_or_else(malformed)?;
            if shape.iter().product::<usize>() != count {
                return Err(malformed());
            }
            let raw = r
                .take(count.checked_mul(4).ok_or_else(malformed)?)
                .ok_or_else(malformed)?;
            let data = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.push(NamedTensor { name, shape, data });
        }
        if r.pos != body.len() {
            return Err(malformed());
        }
        Ok(Self { step, tensors })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }
    fn len(&mut self) -> Option<usize> {
        self.u64().and_then(|v| usize::try_from(v).ok())
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(IoError::at(&tmp))?;
    f.write_all(bytes).map_err(IoError::at(&tmp))?;
    f.sync_all().map_err(IoError::at(&tmp))?;
    drop(f);
    Ok(std::fs::rename(&tmp, path).map_err(IoError::at(path))?)
}

/// Encodes a u64 as four f32 holding 16 bits each (exact: f32 has a 24-bit mantissa).
pub(crate) fn u64_to_f32s(v: u64) -> Vec<f32> {
    (0..4).map(|i| ((v >> (16 * i)) & 0xffff) as f32).collect()
}

/// The inverse of [`u64_to_f32s`]; `None` when the values are not 16-bit integers.
pub(crate) fn f32s_to_u64(v: &[f32]) -> Option<u64> {
    if v.len() != 4 {
        return None;
    }
    let mut out = 0u64;
    for (i, &x) in v.iter().enumerate() {
        if !(0.0..=65535.0).contains(&x) || x.fract() != 0.0 {
            return None;
        }
        out |= (x as u64) << (16 * i);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> TrainState {
        TrainState {
            step: 42,
            tensors: vec![
                NamedTensor {
                    name: "a".into(),
                    shape: vec![2, 3],
                    data: vec![1.0, -2.0, 3.5, 0.0, 1e-30, 7.0],
                },
                NamedTensor {
                    name: "b.c".into(),
                    shape: vec![],
                    data: vec![9.0],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.ckpt");
        let s = sample();
        s.save(&p).unwrap();
        assert_eq!(TrainState::load(&p).unwrap(), s);
        // Only the final file remains.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.ckpt");
        sample().save(&p).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(
            TrainState::load(&p),
            Err(EngineError::CorruptCheckpoint { .. })
        ));
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            TrainState::load(&p),
            Err(EngineError::CorruptCheckpoint { .. })
        ));
        std::fs::write(&p, b"hello").unwrap();
        assert!(matches!(
            TrainState::load(&p),
            Err(EngineError::CorruptCheckpoint { .. })
        ));
    }

    #[test]
    fn seed_encoding_is_exact() {
        for v in [0u64, 1, 0xdead_beef_cafe_f00d, u64::MAX] {
            assert_eq!(f32s_to_u64(&u64_to_f32s(v)), Some(v));
        }
        assert_eq!(f32s_to_u64(&[0.5, 0.0, 0.0, 0.0]), None);
    }
}
