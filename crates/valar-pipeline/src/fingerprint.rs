use crate::PipelineError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A stage's identity: what it was asked to do and what it read. Equal fingerprints
/// mean the stage's earlier output can be reused.
pub(crate) fn fingerprint(stage: &str, params: &impl Serialize, inputs: &[&Path]) -> String {
    let mut h = Sha256::new();
    h.update(stage.as_bytes());
    h.update(serde_json::to_vec(params).unwrap_or_default());
    for input in inputs {
        h.update(input.as_os_str().as_encoded_bytes());
        h.update(file_identity(input).as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// Size and modification time of a file or of a folder's stage record: cheap, and it
/// changes whenever the file is rewritten. Hashing AffectNet's 120 GB of images on
/// every run would cost more than the stages it could skip.
fn file_identity(path: &Path) -> String {
    let record = record_path(path);
    let target = if record.is_file() {
        record.as_path()
    } else {
        path
    };
    match std::fs::metadata(target) {
        Ok(m) => format!("{}:{:?}", m.len(), m.modified().ok()),
        Err(_) => "missing".into(),
    }
}

/// Where a stage's record lives: beside its output folder.
pub(crate) fn record_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".stage.json");
    output.with_file_name(name)
}

/// Whether `output` was made by a stage with this fingerprint.
pub(crate) fn is_current(output: &Path, fingerprint: &str) -> bool {
    output.exists()
        && std::fs::read_to_string(record_path(output))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v.get("fingerprint")
                    .and_then(|f| f.as_str())
                    .map(str::to_owned)
            })
            .is_some_and(|f| f == fingerprint)
}

/// Records that `output` is complete and was made with this fingerprint. Written last,
/// so a stage killed midway is never taken as done.
pub(crate) fn record(output: &Path, stage: &str, fingerprint: &str) -> Result<(), PipelineError> {
    let text = serde_json::json!({ "stage": stage, "fingerprint": fingerprint }).to_string();
    valar_core::write_atomic(&record_path(output), |w| w.write_all(text.as_bytes()))?;
    Ok(())
}

/// Forgets a stage's fingerprint before it reruns, so that a stage killed midway is never
/// taken as done; the record stays, without one, to say the folder is the pipeline's.
pub(crate) fn forget(output: &Path, stage: &str) -> Result<(), PipelineError> {
    let text = serde_json::json!({ "stage": stage, "fingerprint": null }).to_string();
    valar_core::write_atomic(&record_path(output), |w| w.write_all(text.as_bytes()))?;
    Ok(())
}

/// Whether `output` was made by the pipeline (it has a record, current or not), so that a
/// rerun may replace it without --force.
pub(crate) fn is_ours(output: &Path) -> bool {
    record_path(output).is_file()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_params_and_inputs_and_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "a").unwrap();
        let a = fingerprint("prepare", &("quota", 10), &[&input]);
        assert_eq!(a, fingerprint("prepare", &("quota", 10), &[&input]));
        assert_ne!(a, fingerprint("prepare", &("quota", 11), &[&input]));
        std::fs::write(&input, "ab").unwrap();
        assert_ne!(a, fingerprint("prepare", &("quota", 10), &[&input]));

        let out = dir.path().join("prepared");
        std::fs::create_dir_all(&out).unwrap();
        assert!(!is_current(&out, &a));
        record(&out, "prepare", &a).unwrap();
        assert!(is_current(&out, &a));
        assert!(!is_current(&out, "other"));
        forget(&out, "prepare").unwrap();
        assert!(!is_current(&out, &a));
        assert!(is_ours(&out));
    }
}
