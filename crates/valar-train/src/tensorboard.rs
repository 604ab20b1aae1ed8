//! TensorBoard event files: one scalar per metric per epoch, so `tensorboard --logdir runs/`
//! draws every run and sweep cell side by side.
//!
//! The format is small and fixed: a file of TFRecord records (length, masked CRC-32C of the
//! length, bytes, masked CRC-32C of the bytes), each an `Event` protobuf. The Rust crates that
//! write it pull in a second protobuf stack or TensorFlow's whole tree; here it is prost (already
//! valar's) and the `crc32c` crate. Each process writes its own file, as TensorFlow does, so a
//! resumed run adds a file beside the first and TensorBoard joins them by step.

use crate::TrainError;
use crate::outputs::EpochRecord;
use prost::Message;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `tensorflow.Event`, with the fields valar writes.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` with a `simple_value` (a scalar).
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// TFRecord's checksum: CRC-32C, rotated and offset so that a CRC of data holding CRCs stays
/// meaningful.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord around `data`.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An open event file in a run folder.
pub(crate) struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Starts a new event file in `dir`, named as TensorFlow names them
    /// (`events.out.tfevents.<seconds>.<host>.<pid>`).
    pub(crate) fn create(dir: &Path) -> Result<Self, TrainError> {
        let wall = now();
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .unwrap_or_else(|| "valar".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}",
            wall as u64,
            std::process::id()
        ));
        let file = File::create(&path).map_err(TrainError::io(&path))?;
        let mut w = EventWriter { path, file };
        w.write(&Event {
            wall_time: wall,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        })?;
        Ok(w)
    }

    fn write(&mut self, event: &Event) -> Result<(), TrainError> {
        let bytes = record(&event.encode_to_vec());
        // Flushed per epoch, so TensorBoard shows a running job's curves as they come.
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .map_err(TrainError::io(&self.path))
    }

    /// One epoch's row of metrics.csv, as scalars at step = epoch.
    pub(crate) fn epoch(&mut self, r: &EpochRecord) -> Result<(), TrainError> {
        let mut scalars = vec![
            ("loss/train", r.train_loss),
            ("loss/val", r.val_loss),
            ("lr", r.lr),
        ];
        let dims = [
            ("valence", r.valence.as_ref(), r.valence_baseline_rmse),
            ("arousal", r.arousal.as_ref(), r.arousal_baseline_rmse),
        ];
        let mut named = Vec::new();
        for (dim, m, base) in dims {
            if let Some(m) = m {
                named.push((format!("{dim}/ccc"), m.ccc));
                named.push((format!("{dim}/rmse"), m.rmse));
                named.push((format!("{dim}/pcc"), m.pcc));
                named.push((format!("{dim}/sagr"), m.sagr));
            }
            if let Some(b) = base {
                named.push((format!("{dim}/baseline_rmse"), b));
            }
        }
        let value = scalars
            .drain(..)
            .map(|(t, v)| (t.to_string(), v))
            .chain(named)
            .map(|(tag, v)| SummaryValue {
                tag,
                simple_value: Some(v as f32),
            })
            .collect();
        self.write(&Event {
            wall_time: now(),
            step: r.epoch as i64,
            file_version: None,
            summary: Some(Summary { value }),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_with_masked_crc32c() {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720's check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        let tail = u32::from_le_bytes(r[15..19].try_into().unwrap());
        assert_eq!(tail, masked_crc(b"abc"));
        assert_ne!(tail, crc32c::crc32c(b"abc"));
    }
}
