//! Training state as named f32 tensors, and its checkpoint file (checksummed, written atomically).

use std::io::Write;
use std::path::Path;
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
    ///
    /// It streams: a checkpoint of a 10M-parameter network is 161 MB, written every epoch, and
    /// laid out in memory first it cost a copy of itself and its page faults each time.
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let stream = |w: &mut dyn Write| {
            let mut out = Hashing {
                inner: w,
                hash: Sha256::new(),
            };
            out.write_all(MAGIC)?;
            out.write_all(&self.step.to_le_bytes())?;
            out.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
            let mut bytes = Vec::with_capacity(4 * FLOATS_AT_ONCE);
            for t in &self.tensors {
                out.write_all(&(t.name.len() as u64).to_le_bytes())?;
                out.write_all(t.name.as_bytes())?;
                out.write_all(&(t.shape.len() as u64).to_le_bytes())?;
                for &d in &t.shape {
                    out.write_all(&(d as u64).to_le_bytes())?;
                }
                out.write_all(&(t.data.len() as u64).to_le_bytes())?;
                for part in t.data.chunks(FLOATS_AT_ONCE) {
                    bytes.clear();
                    bytes.extend(part.iter().flat_map(|v| v.to_le_bytes()));
                    out.write_all(&bytes)?;
                }
            }
            let digest = out.hash.finalize();
            out.inner.write_all(&digest)
        };
        valar_core::write_atomic(path, stream).map_err(|e| core_error(path, e))
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

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`; a
/// failed write (a full disk) leaves no temporary file behind.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    valar_core::write_atomic(path, |w| w.write_all(bytes)).map_err(|e| core_error(path, e))
}

/// Floats converted to bytes at a time while a checkpoint streams out.
const FLOATS_AT_ONCE: usize = 16 * 1024;

/// A writer that hashes what passes through it.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    hash: Sha256,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// valar-core's atomic write fails only on I/O; anything else it may say is kept, with `path`.
fn core_error(path: &Path, e: valar_core::CoreError) -> EngineError {
    match e {
        valar_core::CoreError::Io(e) => EngineError::Io(e),
        other => EngineError::Io(IoError::at(path)(std::io::Error::other(other.to_string()))),
    }
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
