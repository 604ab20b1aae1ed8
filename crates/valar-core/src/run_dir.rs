//! A training run's folder: every file name `valar train` writes there, spelled once, and
//! typed readers for the files other stages read (the loop state, the configuration).

use crate::{CoreError, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Paths inside a run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run folder itself.
    pub root: PathBuf,
}

impl RunDir {
    /// The run's configuration, as resolved.
    pub const CONFIG: &str = "config.toml";
    /// The trained model.
    pub const MODEL: &str = "model.onnx";
    /// One row per epoch.
    pub const METRICS: &str = "metrics.csv";
    /// The validation predictions of the kept model.
    pub const PREDICTIONS: &str = "predictions.csv";
    /// What the model is, on what data and how well it does.
    pub const MODEL_CARD: &str = "MODEL_CARD.md";
    /// Where the last training process spent its time (not part of the model's outputs:
    /// its figures differ from run to run).
    pub const TIMINGS: &str = "timings.json";
    /// The subfolder of the loop state and engine states.
    pub const CHECKPOINT_DIR: &str = "checkpoint";
    /// The loop state inside [`RunDir::CHECKPOINT_DIR`].
    pub const LOOP_STATE: &str = "loop.json";
    /// How TensorBoard event files' names begin.
    pub const EVENTS_PREFIX: &str = "events.out.tfevents.";

    /// The run folder `root`.
    pub fn new(root: &Path) -> Self {
        RunDir {
            root: root.to_path_buf(),
        }
    }
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join(Self::CONFIG)
    }
    /// `model.onnx`.
    pub fn model(&self) -> PathBuf {
        self.root.join(Self::MODEL)
    }
    /// `metrics.csv`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join(Self::METRICS)
    }
    /// `predictions.csv`.
    pub fn predictions(&self) -> PathBuf {
        self.root.join(Self::PREDICTIONS)
    }
    /// `checkpoint/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join(Self::CHECKPOINT_DIR)
    }
    /// `checkpoint/loop.json`.
    pub fn loop_state(&self) -> PathBuf {
        self.checkpoints().join(Self::LOOP_STATE)
    }
    /// The file `name` inside `checkpoint/`.
    pub fn checkpoint_file(&self, name: &str) -> PathBuf {
        self.checkpoints().join(name)
    }
    /// `MODEL_CARD.md`.
    pub fn model_card(&self) -> PathBuf {
        self.root.join(Self::MODEL_CARD)
    }
    /// `timings.json`.
    pub fn timings(&self) -> PathBuf {
        self.root.join(Self::TIMINGS)
    }

    /// Whether `path` is one of the run's own files (or the folder itself): what train writes
    /// and evaluate reads, which no other output may replace. Compared through the existing
    /// part of each path, so `RUN/./config.toml` or a symlinked folder is still the run's.
    pub fn owns(&self, path: &Path) -> bool {
        let (Some(root), Some(path)) = (resolved(&self.root), resolved(path)) else {
            return false;
        };
        if path == root || path.starts_with(root.join(Self::CHECKPOINT_DIR)) {
            return true;
        }
        let own_files = [
            Self::CONFIG,
            Self::MODEL,
            Self::METRICS,
            Self::PREDICTIONS,
            Self::MODEL_CARD,
            Self::TIMINGS,
        ];
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        path.parent() == Some(root.as_path())
            && name.is_some_and(|n| {
                own_files.contains(&n.as_str()) || n.starts_with(Self::EVENTS_PREFIX)
            })
    }

    /// Reads what other stages need of `config.toml` (see [`RunConfigSummary`]).
    pub fn read_config_summary(&self) -> Result<RunConfigSummary, CoreError> {
        RunConfigSummary::read(&self.config())
    }
}

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

/// `checkpoint/loop.json`: everything the training loop needs, beside the engine state, to
/// continue exactly where it stopped, and what tells a finished run from a killed one.
///
/// The per-epoch record and the early-stopping state are the trainer's own types, so they are
/// parameters here: valar-train reads and writes the whole state, while a reader that only
/// asks whether the run finished can pass [`serde::de::IgnoredAny`] for both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState<Record, Early> {
    /// Version of the file's layout.
    pub format: u32,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken, checked against the engine state on resume.
    pub global_step: u64,
    /// The early-stopping state.
    pub early: Early,
    /// One record per completed epoch.
    pub history: Vec<Record>,
    /// The engine state after `epochs_done` epochs, inside `checkpoint/`.
    pub state_file: Option<String>,
    /// The engine state of the best epoch, inside `checkpoint/`.
    pub best_file: Option<String>,
    /// Why training ended, once it has.
    pub finished: Option<String>,
    /// The dataset's fingerprint, checked on resume.
    #[serde(default)]
    pub data_sha256: Option<String>,
}

impl<Record: Serialize, Early: Serialize> LoopState<Record, Early> {
    /// Writes `checkpoint/loop.json` of `run`, pretty-printed, atomically: the loop's commit
    /// point.
    pub fn write(&self, run: &RunDir) -> Result<(), CoreError> {
        let path = run.loop_state();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CoreError::format(&path, e.to_string()))?;
        write_atomic(&path, |w| w.write_all(text.as_bytes()))
    }
}

impl<Record: serde::de::DeserializeOwned, Early: serde::de::DeserializeOwned>
    LoopState<Record, Early>
{
    /// Reads `checkpoint/loop.json` of `run`; `None` if there is none (the run never finished
    /// an epoch, or was not written by valar). Checks nothing beyond the layout: resuming
    /// checks more.
    pub fn read(run: &RunDir) -> Result<Option<Self>, CoreError> {
        let path = run.loop_state();
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(CoreError::io(&path))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CoreError::format(&path, format!("corrupt loop state: {e}")))
    }
}

/// What stages other than training read of a run's `config.toml`: its text (shown as it is),
/// the prepared folder it trained on and the epochs it was configured for. The file itself
/// is valar-train's `TrainConfig`; this reads only these keys, so a report or an evaluation
/// does not depend on the trainer's every setting.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfigSummary {
    /// The file's text.
    pub text: String,
    /// The `data` key: the prepared folder, as written.
    pub data: Option<PathBuf>,
    /// The `epochs` key.
    pub epochs: Option<usize>,
}

impl RunConfigSummary {
    /// Reads `path` (a run's `config.toml`).
    pub fn read(path: &Path) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path).map_err(CoreError::io(path))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| CoreError::format(path, e.to_string()))?;
        let data = match table.get("data") {
            None => None,
            Some(toml::Value::String(s)) => Some(PathBuf::from(s)),
            Some(other) => {
                return Err(CoreError::format(
                    path,
                    format!(
                        "key `data` should be a path string, found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        let epochs = table
            .get("epochs")
            .and_then(toml::Value::as_integer)
            .and_then(|e| usize::try_from(e).ok());
        Ok(RunConfigSummary { text, data, epochs })
    }

    /// The prepared folder the run trained on: `data` as written, else relative to the run
    /// folder `run`; `None` when neither is a folder.
    pub fn prepared(&self, run: &Path) -> Option<PathBuf> {
        let data = self.data.as_ref()?;
        [data.clone(), run.join(data)]
            .into_iter()
            .find(|p| p.is_dir())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

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
    fn loop_state_keeps_its_field_order_and_reads_without_the_trainers_types() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert!(
            LoopState::<IgnoredAny, IgnoredAny>::read(&run)
                .unwrap()
                .is_none()
        );
        std::fs::create_dir_all(run.checkpoints()).unwrap();
        let state = LoopState {
            format: 1,
            epochs_done: 2,
            global_step: 20,
            early: (),
            history: vec![1, 2],
            state_file: Some("state-0002.ckpt".into()),
            best_file: None,
            finished: Some("all epochs done".into()),
            data_sha256: None,
        };
        state.write(&run).unwrap();
        let text = std::fs::read_to_string(run.loop_state()).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "format",
                "epochs_done",
                "global_step",
                "early",
                "history",
                "state_file",
                "best_file",
                "finished",
                "data_sha256"
            ]
        );
        assert_eq!(LoopState::read(&run).unwrap(), Some(state));
        let outcome = LoopState::<IgnoredAny, IgnoredAny>::read(&run)
            .unwrap()
            .unwrap();
        assert_eq!(
            (outcome.epochs_done, outcome.finished.as_deref()),
            (2, Some("all epochs done"))
        );

        std::fs::write(run.loop_state(), b"{\"format\": 1, \"epochs_").unwrap();
        let err = LoopState::<IgnoredAny, IgnoredAny>::read(&run)
            .unwrap_err()
            .to_string();
        assert!(err.contains("loop.json: corrupt loop state"), "{err}");
    }

    #[test]
    fn config_summary_reads_data_and_epochs_and_names_a_bad_data_key() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::write(run.config(), "data = \"prepared\"\nepochs = 3\nlr = 0.1\n").unwrap();
        let summary = run.read_config_summary().unwrap();
        assert_eq!(summary.data, Some(PathBuf::from("prepared")));
        assert_eq!(summary.epochs, Some(3));
        assert_eq!(summary.prepared(dir.path()), None);
        std::fs::create_dir(dir.path().join("prepared")).unwrap();
        assert_eq!(
            summary.prepared(dir.path()),
            Some(dir.path().join("prepared"))
        );

        std::fs::write(run.config(), "epochs = 3\n").unwrap();
        assert_eq!(run.read_config_summary().unwrap().data, None);
        std::fs::write(run.config(), "data = \n").unwrap();
        let err = run.read_config_summary().unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");

        std::fs::write(run.config(), "data = 3\n").unwrap();
        let err = run.read_config_summary().unwrap_err().to_string();
        assert!(
            err.contains("config.toml") && err.contains("key `data` should be a path string"),
            "{err}"
        );
    }
}
