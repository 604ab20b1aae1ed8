//! TensorBoard event files: one scalar per metric per epoch, so `tensorboard --logdir runs/`
//! draws every run and sweep cell side by side.
//!
//! The format is small and fixed: a file of TFRecord records (length, masked CRC-32C of the
//! length, bytes, masked CRC-32C of the bytes), each an `Event` protobuf. The Rust crates that
//! write it pull in a second protobuf stack or TensorFlow's whole tree; here it is prost (already
//! valar's) and the `crc32c` crate. Each process writes its own file, as TensorFlow does, so a
//! resumed run adds a file beside the first and TensorBoard joins them by step.
//!
//! An epoch's events are written just before its loop state is committed; a run killed between
//! the two has events for an epoch it will run again. A resumed run therefore first cuts every
//! earlier event file back to the epochs committed ([`drop_uncommitted`]), so that no epoch is
//! in two files.

use crate::TrainError;
use crate::outputs::EpochRecord;
use prost::Message;
use std::fs::File;
use std::io::Write;

/// How every event file's name starts.
pub(crate) const EVENTS_PREFIX: &str = valar_core::RunDir::EVENTS_PREFIX;
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
            "{EVENTS_PREFIX}{}.{host}.{}",
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
        let mut scalars = vec![("loss/train", r.train_loss)];
        scalars.extend(r.val_loss.map(|v| ("loss/val", v)));
        scalars.push(("lr", r.lr));
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

/// The events of one file, each with the byte offset just past it, up to the first record
/// that is torn (a kill mid-write) or fails its checksum.
fn read_events(bytes: &[u8]) -> Vec<(Event, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 12) {
        let (len, len_crc) = header.split_at(8);
        let ok_len = u32::from_le_bytes(len_crc.try_into().unwrap_or_default()) == masked_crc(len);
        let n = u64::from_le_bytes(len.try_into().unwrap_or_default());
        let Some(end) = usize::try_from(n)
            .ok()
            .and_then(|n| (at + 12).checked_add(n))
        else {
            break;
        };
        let (Some(data), Some(crc)) = (bytes.get(at + 12..end), bytes.get(end..end + 4)) else {
            break;
        };
        let ok_data = u32::from_le_bytes(crc.try_into().unwrap_or_default()) == masked_crc(data);
        match Event::decode(data) {
            Ok(event) if ok_len && ok_data => out.push((event, end + 4)),
            _ => break,
        }
        at = end + 4;
    }
    out
}

/// Cuts each event file in `dir` back to the epochs a resumed run has committed
/// (`epochs_done`): the events of a later epoch were written by a process killed before it
/// committed that epoch, which the resumed run writes again. A torn last record goes too.
pub(crate) fn drop_uncommitted(dir: &Path, epochs_done: usize) -> Result<(), TrainError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::io(dir)(e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.starts_with(EVENTS_PREFIX) || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(TrainError::io(&path))?;
        let keep = read_events(&bytes)
            .into_iter()
            .take_while(|(e, _)| e.summary.is_none() || e.step <= epochs_done as i64)
            .last()
            .map_or(0, |(_, end)| end);
        if keep < bytes.len() {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(TrainError::io(&path))?;
            file.set_len(keep as u64).map_err(TrainError::io(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Two records written by TensorBoard's own writer
    /// (`tensorboard.summary.writer.record_writer.RecordWriter`, tensorboard 2.21): the
    /// file-version event at wall time 1700000000.5, then step 3 with the scalar
    /// `loss/train` = 0.25 at 1700000001.25.
    const TENSORBOARD_RECORDS: &[u8] = b"\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7f\x4b\x22\x09\x00\x00\x20\x40\xfc\x54\xd9\x41\x1a\x0d\x62\x72\x61\x69\x6e\x2e\x45\x76\x65\x6e\x74\x3a\x32\x2b\x35\x31\x10\x20\x00\x00\x00\x00\x00\x00\x00\x29\xed\xa9\x50\x09\x00\x00\x50\x40\xfc\x54\xd9\x41\x10\x03\x2a\x13\x0a\x11\x0a\x0a\x6c\x6f\x73\x73\x2f\x74\x72\x61\x69\x6e\x15\x00\x00\x80\x3e\xce\x02\xa9\xe8";

    fn fixture_events() -> [Event; 2] {
        [
            Event {
                wall_time: 1_700_000_000.5,
                step: 0,
                file_version: Some("brain.Event:2".into()),
                summary: None,
            },
            Event {
                wall_time: 1_700_000_001.25,
                step: 3,
                file_version: None,
                summary: Some(Summary {
                    value: vec![SummaryValue {
                        tag: "loss/train".into(),
                        simple_value: Some(0.25),
                    }],
                }),
            },
        ]
    }

    #[test]
    fn records_are_framed_byte_for_byte_as_tensorboard_frames_them() {
        let ours: Vec<u8> = fixture_events()
            .iter()
            .flat_map(|e| record(&e.encode_to_vec()))
            .collect();
        assert_eq!(ours, TENSORBOARD_RECORDS);
        let read: Vec<Event> = read_events(TENSORBOARD_RECORDS)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        assert_eq!(read, fixture_events());
    }

    #[test]
    fn a_resumed_run_cuts_uncommitted_epochs_and_torn_records() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = |n: usize| Event {
            wall_time: n as f64,
            step: n as i64,
            file_version: None,
            summary: Some(Summary { value: vec![] }),
        };
        let path = dir.path().join(format!("{EVENTS_PREFIX}1.h.1"));
        let mut bytes: Vec<u8> = fixture_events()[..1]
            .iter()
            .chain(&[epoch(1), epoch(2)])
            .flat_map(|e| record(&e.encode_to_vec()))
            .collect();
        let two_epochs = bytes.len();
        bytes.extend_from_slice(&record(&epoch(3).encode_to_vec()));
        std::fs::write(&path, &bytes).unwrap();
        drop_uncommitted(dir.path(), 2).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[..two_epochs]);
        // A record cut short by a kill is dropped with everything after it.
        let torn = &bytes[..bytes.len() - 3];
        std::fs::write(&path, torn).unwrap();
        drop_uncommitted(dir.path(), 5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[..two_epochs]);
        // Nothing committed: only the file-version record stays.
        drop_uncommitted(dir.path(), 0).unwrap();
        let steps: Vec<i64> = read_events(&std::fs::read(&path).unwrap())
            .iter()
            .map(|(e, _)| e.step)
            .collect();
        assert_eq!(steps, vec![0]);
    }
}
