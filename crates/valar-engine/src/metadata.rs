//! What an exported model.onnx says about itself: its output's name, the clip to the label
//! range, and free-form `metadata_props` (the caller's keys; the engine gives them no meaning).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use valar_core::IoError;

use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

use crate::EngineError;
use crate::proto::{ModelMetadataOnly, StringStringEntryProto};

/// Field number of `ModelProto.metadata_props`.
const METADATA_FIELD: u32 = 14;

/// How [`crate::Trainer::export_onnx_with`] finishes the inference model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportInfo {
    /// The output's name; empty keeps the engine's own (`predictions`).
    pub output_name: String,
    /// Clip every output to `[lo, hi]` inside the graph (ONNX `Clip`, which keeps NaN as NaN).
    pub clip: Option<(f32, f32)>,
    /// An affine map `(scale, shift)` per column of the first output (the predicted
    /// dimensions), applied as `scale·x + shift` before the clip; other outputs are untouched.
    pub calibration: Option<Vec<(f32, f32)>>,
    /// `metadata_props` entries, written in this order.
    pub metadata: Vec<(String, String)>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidModel {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, EngineError> {
    Ok(std::fs::read(path).map_err(IoError::at(path))?)
}

/// The `metadata_props` of an ONNX model file (empty for a model without any). A later entry
/// with the same key wins, as in onnxruntime.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, EngineError> {
    metadata_of(path, &read_bytes(path)?)
}

pub(crate) fn metadata_of(
    path: &Path,
    bytes: &[u8],
) -> Result<BTreeMap<String, String>, EngineError> {
    if bytes.is_empty() {
        return Err(invalid(path, "the file is empty"));
    }
    let m = ModelMetadataOnly::decode(bytes).map_err(|e| {
        invalid(
            path,
            format!("not an ONNX model (truncated or damaged?): {e}"),
        )
    })?;
    Ok(m.metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

/// Rewrites the model file at `path` (atomically) with `set` added to its metadata, replacing
/// entries with the same keys and dropping every key that starts with `drop_prefix`. The rest of
/// the file is copied byte for byte, so models written by other tools keep fields valar does
/// not know.
///
/// No valar command calls it on a model it was given: an input is never modified (`evaluate`
/// keeps its figures beside its predictions). It is for tools and tests that make models.
pub fn update_metadata(
    path: &Path,
    set: &[(String, String)],
    drop_prefix: Option<&str>,
) -> Result<(), EngineError> {
    let bytes = read_bytes(path)?;
    let mut out = Vec::with_capacity(bytes.len() + 1024);
    let mut buf: &[u8] = &bytes;
    let damaged = |e: prost::DecodeError| invalid(path, format!("damaged ONNX file: {e}"));
    while !buf.is_empty() {
        let start = bytes.len() - buf.len();
        let (tag, wire) = decode_key(&mut buf).map_err(damaged)?;
        let len = match wire {
            WireType::Varint => {
                decode_varint(&mut buf).map_err(damaged)?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                usize::try_from(decode_varint(&mut buf).map_err(damaged)?).unwrap_or(usize::MAX)
            }
            _ => return Err(invalid(path, "damaged ONNX file: group fields")),
        };
        if len > buf.len() {
            return Err(invalid(path, "truncated ONNX file"));
        }
        let body = &buf[..len];
        buf = &buf[len..];
        let end = bytes.len() - buf.len();
        if tag == METADATA_FIELD && wire == WireType::LengthDelimited {
            let e = StringStringEntryProto::decode(body).map_err(damaged)?;
            let replaced = set.iter().any(|(k, _)| *k == e.key);
            let dropped = drop_prefix.is_some_and(|p| e.key.starts_with(p));
            if replaced || dropped {
                continue;
            }
        }
        out.extend_from_slice(&bytes[start..end]);
    }
    for (key, value) in set {
        encode_entry(&mut out, key, value);
    }
    crate::state::write_atomic(path, &out)
}

/// Appends one `metadata_props` entry; repeated fields may appear anywhere in a message.
pub(crate) fn encode_entry(out: &mut Vec<u8>, key: &str, value: &str) {
    let entry = StringStringEntryProto {
        key: key.to_string(),
        value: value.to_string(),
    }
    .encode_to_vec();
    encode_key(METADATA_FIELD, WireType::LengthDelimited, out);
    encode_varint(entry.len() as u64, out);
    out.extend_from_slice(&entry);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::ModelProto;

    #[test]
    fn update_replaces_drops_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        let mut bytes = ModelProto {
            ir_version: 8,
            producer_name: "x".into(),
            ..Default::default()
        }
        .encode_to_vec();
        encode_entry(&mut bytes, "a", "1");
        encode_entry(&mut bytes, "t.x", "2");
        encode_entry(&mut bytes, "b", "3");
        std::fs::write(&path, &bytes).unwrap();
        update_metadata(&path, &[("a".into(), "9".into())], Some("t.")).unwrap();
        let m = read_metadata(&path).unwrap();
        assert_eq!(
            m,
            BTreeMap::from([("a".into(), "9".into()), ("b".into(), "3".into())])
        );
        let p = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        assert_eq!((p.ir_version, p.producer_name.as_str()), (8, "x"));

        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = update_metadata(&path, &[], None).unwrap_err().to_string();
        assert!(err.contains("m.onnx"), "{err}");
        std::fs::write(&path, b"").unwrap();
        let err = read_metadata(&path).unwrap_err().to_string();
        assert!(err.contains("m.onnx") && err.contains("empty"), "{err}");
    }
}
