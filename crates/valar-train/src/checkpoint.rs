//! The run folder's layout and the loop's own checkpoint (`checkpoint/loop.json`).
//!
//! Each epoch writes the engine state to a new file named after the epoch, then
//! `loop.json` (atomically) naming it: `loop.json` is the commit point, so a run killed at
//! any moment resumes from a consistent pair. Files no longer named are deleted afterwards.

use crate::TrainError;
use crate::outputs::EpochRecord;
use crate::schedule::EarlyStopping;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use valar_core::write_atomic;

/// Version of `loop.json`'s layout.
const LOOP_FORMAT: u32 = 1;

/// Paths inside a run folder.
#[derive(Debug, Clone)]
pub(crate) struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub(crate) fn new(root: &Path) -> Self {
        RunDir {
            root: root.to_path_buf(),
        }
    }
    pub(crate) fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub(crate) fn model(&self) -> PathBuf {
        self.root.join("model.onnx")
    }
    pub(crate) fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub(crate) fn predictions(&self) -> PathBuf {
        self.root.join("predictions.csv")
    }
    pub(crate) fn checkpoints(&self) -> PathBuf {
        self.root.join(CHECKPOINT_DIR)
    }
    pub(crate) fn loop_state(&self) -> PathBuf {
        self.checkpoints().join("loop.json")
    }
    pub(crate) fn checkpoint_file(&self, name: &str) -> PathBuf {
        self.checkpoints().join(name)
    }
    pub(crate) fn model_card(&self) -> PathBuf {
        self.root.join(MODEL_CARD)
    }

    /// Whether `path` is one of the run's own files (or the folder itself): what train writes
    /// and evaluate reads, which no other output may replace. Compared through the existing
    /// part of each path, so `RUN/./config.toml` or a symlinked folder is still the run's.
    pub(crate) fn owns(&self, path: &Path) -> bool {
        let (Some(root), Some(path)) = (resolved(&self.root), resolved(path)) else {
            return false;
        };
        if path == root || path.starts_with(root.join(CHECKPOINT_DIR)) {
            return true;
        }
        let own_files = [
            self.config(),
            self.model(),
            self.metrics(),
            self.predictions(),
            self.model_card(),
        ];
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        path.parent() == Some(root.as_path())
            && (own_files.iter().any(|f| f.file_name() == path.file_name())
                || name.is_some_and(|n| n.starts_with(crate::tensorboard::EVENTS_PREFIX)))
    }
}

/// The run folder's checkpoint subfolder.
const CHECKPOINT_DIR: &str = "checkpoint";

/// The model card's file name, beside model.onnx. Declared with the run folder's other
/// names, so that `model_card` uses this module and not the other way round.
pub const MODEL_CARD: &str = "MODEL_CARD.md";

/// `path` absolute, each existing component resolved (symlinks) and `.`/`..` applied in
/// turn: the same file however it is spelled, whether or not it exists yet.
fn resolved(path: &Path) -> Option<PathBuf> {
    let mut cur = PathBuf::new();
    for c in std::path::absolute(path).ok()?.components() {
        match c {
            std::path::Component::ParentDir => {
                cur.pop();
            }
            std::path::Component::CurDir => {}
            other => {
                cur.push(other);
                if let Ok(real) = cur.canonicalize() {
                    cur = real;
                }
            }
        }
    }
    Some(cur)
}

/// File name of the engine state after `epoch` epochs.
pub(crate) fn state_name(epoch: usize) -> String {
    format!("state-{epoch:04}.ckpt")
}

/// File name of the best engine state, reached after `epoch` epochs.
pub(crate) fn best_name(epoch: usize) -> String {
    format!("best-{epoch:04}.ckpt")
}

/// Everything the loop needs, beside the engine state, to continue exactly where it stopped.
/// Shuffling and augmentation draw from generators keyed by (seed, epoch), so the epoch
/// count regenerates them; dropout draws from the engine's (seed, step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LoopState {
    pub format: u32,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken, checked against the engine state on resume.
    pub global_step: u64,
    pub early: EarlyStopping,
    pub history: Vec<EpochRecord>,
    /// The engine state after `epochs_done` epochs, inside `checkpoint/`.
    pub state_file: Option<String>,
    /// The engine state of the best epoch, inside `checkpoint/`.
    pub best_file: Option<String>,
    /// Why training ended, once it has.
    pub finished: Option<String>,
    /// The dataset's fingerprint (`Dataset::fingerprint`), checked on resume.
    #[serde(default)]
    pub data_sha256: Option<String>,
}

impl LoopState {
    pub(crate) fn fresh(patience: usize) -> Self {
        LoopState {
            format: LOOP_FORMAT,
            epochs_done: 0,
            global_step: 0,
            early: EarlyStopping::new(patience),
            history: Vec::new(),
            state_file: None,
            best_file: None,
            finished: None,
            data_sha256: None,
        }
    }

    /// Writes `loop.json` atomically, then deletes checkpoint files it no longer names.
    pub(crate) fn commit(&self, run: &RunDir) -> Result<(), TrainError> {
        let path = run.loop_state();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| TrainError::checkpoint(&path, e.to_string()))?;
        write_atomic(&path, |w| w.write_all(text.as_bytes()))?;
        let dir = run.checkpoints();
        let entries = std::fs::read_dir(&dir).map_err(TrainError::io(&dir))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let named =
                Some(&name) == self.state_file.as_ref() || Some(&name) == self.best_file.as_ref();
            if name.ends_with(".ckpt") && !named {
                // Failing to delete a stale file loses nothing; the next commit retries.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Reads `loop.json`; `None` if the run never finished an epoch.
    pub(crate) fn load(run: &RunDir) -> Result<Option<Self>, TrainError> {
        let path = run.loop_state();
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
        let state: LoopState = serde_json::from_str(&text)
            .map_err(|e| TrainError::checkpoint(&path, format!("corrupt loop state: {e}")))?;
        if state.format != LOOP_FORMAT {
            return Err(TrainError::checkpoint(
                &path,
                format!(
                    "written by another valar (format {}, expected {LOOP_FORMAT})",
                    state.format
                ),
            ));
        }
        if state.history.len() != state.epochs_done {
            return Err(TrainError::checkpoint(
                &path,
                format!(
                    "corrupt loop state: {} epochs done but {} history rows",
                    state.epochs_done,
                    state.history.len()
                ),
            ));
        }
        for name in [&state.state_file, &state.best_file].into_iter().flatten() {
            let file = run.checkpoint_file(name);
            if !file.is_file() {
                return Err(TrainError::checkpoint(
                    &file,
                    "is missing: the checkpoint folder is incomplete, so the run cannot be resumed",
                ));
            }
        }
        Ok(Some(state))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_run_owns_its_files_however_spelled_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(&dir.path().join("run"));
        std::fs::create_dir_all(run.checkpoints()).unwrap();
        let r = &run.root;
        for own in [
            run.config(),
            run.model(),
            run.metrics(),
            run.predictions(),
            run.model_card(),
            run.loop_state(),
            run.checkpoint_file("state-0003.ckpt"),
            r.join("events.out.tfevents.1.host.2"),
            r.join("./checkpoint/../config.toml"),
            r.join("nope/../metrics.csv"),
            r.clone(),
        ] {
            assert!(run.owns(&own), "{}", own.display());
        }
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(r, &link).unwrap();
            assert!(run.owns(&link.join("config.toml")));
        }
        for other in [
            r.join("predictions-test.csv"),
            r.join("predictions-test.model.json"),
            r.join("report/report.md"),
            dir.path().join("config.toml"),
            dir.path().join("run.lock"),
        ] {
            assert!(!run.owns(&other), "{}", other.display());
        }
    }

    #[test]
    fn commit_round_trips_and_prunes_unnamed_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::create_dir_all(run.checkpoints()).unwrap();
        for name in ["state-0001.ckpt", "state-0002.ckpt", "best-0001.ckpt"] {
            std::fs::write(run.checkpoint_file(name), b"x").unwrap();
        }
        let mut s = LoopState::fresh(3);
        s.epochs_done = 2;
        s.global_step = 20;
        s.early.record(1, 0.5);
        s.early.record(2, 0.25);
        s.history = (1..=2)
            .map(|epoch| EpochRecord {
                epoch,
                train_loss: 1.0,
                val_loss: 1.0,
                valence: None,
                arousal: None,
                valence_baseline_rmse: None,
                arousal_baseline_rmse: None,
                lr: 0.1,
                seconds: 1.0,
            })
            .collect();
        s.state_file = Some(state_name(2));
        s.best_file = Some(best_name(1));
        s.commit(&run).unwrap();
        assert_eq!(LoopState::load(&run).unwrap(), Some(s));
        assert!(!run.checkpoint_file("state-0001.ckpt").exists());
        assert!(run.checkpoint_file("best-0001.ckpt").exists());
    }

    #[test]
    fn missing_or_damaged_loop_state_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::create_dir_all(run.checkpoints()).unwrap();
        assert_eq!(LoopState::load(&run).unwrap(), None);

        let mut s = LoopState::fresh(0);
        s.state_file = Some(state_name(1));
        s.epochs_done = 1;
        s.history.push(EpochRecord {
            epoch: 1,
            train_loss: 1.0,
            val_loss: 1.0,
            valence: None,
            arousal: None,
            valence_baseline_rmse: Some(0.5),
            arousal_baseline_rmse: None,
            lr: 0.1,
            seconds: 1.0,
        });
        s.commit(&run).unwrap();
        let err = LoopState::load(&run).unwrap_err().to_string();
        assert!(
            err.contains("state-0001.ckpt") && err.contains("missing"),
            "{err}"
        );

        std::fs::write(run.loop_state(), b"{\"format\": 1, \"epochs_").unwrap();
        let err = LoopState::load(&run).unwrap_err().to_string();
        assert!(err.contains("corrupt loop state"), "{err}");
    }
}
