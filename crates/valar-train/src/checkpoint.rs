//! The run folder's layout and the loop's own checkpoint (`checkpoint/loop.json`).
//!
//! Each epoch writes the engine state to a new file named after the epoch, then
//! `loop.json` (atomically) naming it: `loop.json` is the commit point, so a run killed at
//! any moment resumes from a consistent pair. Files no longer named are deleted afterwards.

use crate::TrainError;
use crate::outputs::EpochRecord;
use crate::schedule::EarlyStopping;
use valar_core::RunDir;

/// Version of `loop.json`'s layout.
const LOOP_FORMAT: u32 = 1;

/// File name of the engine state after `epoch` epochs.
pub(crate) fn state_name(epoch: usize) -> String {
    format!("state-{epoch:04}.ckpt")
}

/// File name of the best engine state, reached after `epoch` epochs.
pub(crate) fn best_name(epoch: usize) -> String {
    format!("best-{epoch:04}.ckpt")
}

/// The loop state with the trainer's own per-epoch record and early-stopping state.
/// Shuffling and augmentation draw from generators keyed by (seed, epoch), so the epoch
/// count regenerates them; dropout draws from the engine's (seed, step).
pub(crate) type LoopState = valar_core::LoopState<EpochRecord, EarlyStopping>;

/// What training does with its loop state beyond reading and writing it: start one, commit
/// it (pruning engine states no longer named), and load it for a resume, checked.
pub(crate) trait Resumable: Sized {
    /// The state of a run that has not finished an epoch.
    fn fresh(patience: usize) -> Self;
    /// Writes `loop.json` atomically, then deletes checkpoint files it no longer names.
    fn commit(&self, run: &RunDir) -> Result<(), TrainError>;
    /// Reads `loop.json`; `None` if the run never finished an epoch.
    fn load(run: &RunDir) -> Result<Option<Self>, TrainError>;
}

impl Resumable for LoopState {
    fn fresh(patience: usize) -> Self {
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

    fn commit(&self, run: &RunDir) -> Result<(), TrainError> {
        self.write(run)?;
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

    fn load(run: &RunDir) -> Result<Option<Self>, TrainError> {
        let path = run.loop_state();
        let Some(state) = LoopState::read(run)? else {
            return Ok(None);
        };
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
                val_loss: Some(1.0),
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
            val_loss: Some(1.0),
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
