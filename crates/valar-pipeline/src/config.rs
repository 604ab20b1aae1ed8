use crate::PipelineError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use valar_train::TrainOverrides;

/// Where the faces come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// valar's seeded synthetic faces (the default): quick, and their labels are learnable.
    Synthetic {
        /// Training images.
        n: usize,
        /// Images of the separate test set.
        test_n: usize,
        /// Seed.
        seed: u64,
    },
    /// AffectNet's original release: a file list and the image root, and optionally
    /// `validation.csv` to prepare whole as the test set.
    AffectNet {
        /// `training.csv`, or a generic CSV.
        csv: PathBuf,
        /// `Manually_Annotated_Images`.
        images: PathBuf,
        /// `validation.csv`.
        test_csv: Option<PathBuf>,
    },
    /// AffectNet's newer release: `train_set/`, and optionally `val_set/` as the test set.
    AffectNetNewer {
        /// `train_set`.
        set: PathBuf,
        /// `val_set`.
        test_set: Option<PathBuf>,
    },
    /// AFEW-VA's clip folders. Splits are drawn per actor; the validation split is scored.
    AfewVa {
        /// The folder holding `001` … `600`.
        dir: PathBuf,
    },
    /// Aff-Wild2's VA track. Train_Set and Validation_Set become the training and
    /// validation splits; the validation split is scored.
    AffWild2 {
        /// `VA_Estimation_Challenge`, or one set folder.
        annotations: PathBuf,
        /// The cropped or aligned frames: `<video>/<frame:05>.jpg`.
        frames: PathBuf,
    },
}

/// `[prepare]` in `valar.toml`: any of `valar prepare`'s settings; the rest come from
/// the recipe (AffectNet) or the demo's defaults (synthetic data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the `valar prepare` flag of the same name.
pub struct PrepareSection {
    pub stratify: Option<String>,
    pub intervals: Option<usize>,
    pub quota: Option<usize>,
    pub val_fraction: Option<f64>,
    pub seed: Option<u64>,
    pub size: Option<u32>,
    pub rgb: Option<bool>,
    pub margin: Option<f32>,
    pub max_pixels: Option<u64>,
    pub frame_step: Option<usize>,
    pub frames_per_video: Option<usize>,
}

/// The whole pipeline's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// The data.
    pub data: DataSource,
    /// Preparation settings.
    pub prepare: PrepareSection,
    /// Training settings, over the defaults of the data source.
    pub train: TrainOverrides,
}

/// `[data]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSection {
    csv: Option<PathBuf>,
    images: Option<PathBuf>,
    test_csv: Option<PathBuf>,
    set: Option<PathBuf>,
    test_set: Option<PathBuf>,
    synth_n: Option<usize>,
    synth_test_n: Option<usize>,
    synth_seed: Option<u64>,
    afew_va: Option<PathBuf>,
    aff_wild2: Option<PathBuf>,
    frames: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    data: DataSection,
    #[serde(default)]
    prepare: PrepareSection,
    #[serde(default)]
    train: TrainOverrides,
}

/// Synthetic faces for the demo: enough for every interval to fill its quota, few
/// enough that the whole pipeline takes minutes on two cores.
const DEMO_N: usize = 4000;
const DEMO_TEST_N: usize = 600;

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            data: DataSource::Synthetic {
                n: DEMO_N,
                test_n: DEMO_TEST_N,
                seed: 0,
            },
            prepare: PrepareSection::default(),
            train: TrainOverrides::default(),
        }
    }
}

impl PipelineConfig {
    /// Reads `valar.toml`. Relative paths are taken from the file's folder.
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        let err = |reason: String| PipelineError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: File = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let d = file.data;
        let video = (d.afew_va, d.aff_wild2, d.frames);
        let data = match (d.csv, d.images, d.set) {
            (None, None, None) if video != (None, None, None) => match video {
                (Some(dir), None, None) => DataSource::AfewVa { dir: abs(dir) },
                (None, Some(annotations), Some(frames)) => DataSource::AffWild2 {
                    annotations: abs(annotations),
                    frames: abs(frames),
                },
                _ => {
                    return Err(err(
                        "[data] takes `afew_va` alone, or `aff_wild2` with `frames` (the frame folder)".into(),
                    ));
                }
            },
            (Some(csv), Some(images), None) if video == (None, None, None) => {
                DataSource::AffectNet {
                    csv: abs(csv),
                    images: abs(images),
                    test_csv: d.test_csv.map(abs),
                }
            }
            (None, None, Some(set)) if video == (None, None, None) => DataSource::AffectNetNewer {
                set: abs(set),
                test_set: d.test_set.map(abs),
            },
            (None, None, None) => DataSource::Synthetic {
                n: d.synth_n.unwrap_or(DEMO_N),
                test_n: d.synth_test_n.unwrap_or(DEMO_TEST_N),
                seed: d.synth_seed.unwrap_or(0),
            },
            _ => {
                return Err(err(
                    "[data] takes one source: `csv` with `images` (AffectNet's original release, a generic or a video CSV), `set` (its newer release), `afew_va`, `aff_wild2` with `frames`, or none (synthetic faces)".into(),
                ));
            }
        };
        if let Some(how) = &file.prepare.stratify
            && !["arousal", "valence", "grid"].contains(&how.as_str())
        {
            return Err(err(format!(
                "[prepare] stratify = \"{how}\": expected arousal, valence or grid"
            )));
        }
        let mut train = file.train;
        if let Some(d) = &train.data {
            train.data = Some(abs(d.clone()));
        }
        Ok(PipelineConfig {
            data,
            prepare: file.prepare,
            train,
        })
    }

    /// Whether this is the built-in synthetic default.
    pub fn is_synthetic(&self) -> bool {
        matches!(self.data, DataSource::Synthetic { .. })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<PipelineConfig, PipelineError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("valar.toml");
        std::fs::write(&path, text).unwrap();
        PipelineConfig::read(&path)
    }

    #[test]
    fn video_sources_and_frame_sampling_are_read() {
        let c = read(
            "[data]\nafew_va = \"AFEW-VA\"\n[prepare]\nframe_step = 3\nframes_per_video = 40\n",
        )
        .unwrap();
        match c.data {
            DataSource::AfewVa { dir } => assert!(dir.ends_with("AFEW-VA") && dir.is_absolute()),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.prepare.frame_step, Some(3));
        assert_eq!(c.prepare.frames_per_video, Some(40));
        let c = read("[data]\naff_wild2 = \"ann\"\nframes = \"/f\"\n").unwrap();
        assert!(matches!(c.data, DataSource::AffWild2 { frames, .. } if frames == Path::new("/f")));
        for bad in [
            "[data]\naff_wild2 = \"ann\"\n",
            "[data]\nafew_va = \"a\"\nset = \"s\"\n",
            "[data]\nafew_va = \"a\"\nframes = \"f\"\n",
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains("[data] takes"), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_file_is_the_synthetic_default() {
        assert_eq!(read("").unwrap(), PipelineConfig::default());
    }

    #[test]
    fn affectnet_paths_are_resolved_from_the_file() {
        let c = read("[data]\ncsv = \"lists/training.csv\"\nimages = \"/abs/images\"\n[prepare]\nquota = 500\n[train]\nepochs = 3\n").unwrap();
        match c.data {
            DataSource::AffectNet {
                csv,
                images,
                test_csv,
            } => {
                assert!(csv.ends_with("lists/training.csv") && csv.is_absolute());
                assert_eq!(images, PathBuf::from("/abs/images"));
                assert!(test_csv.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.prepare.quota, Some(500));
        assert_eq!(c.train.epochs, Some(3));
    }

    #[test]
    fn mixed_or_unknown_keys_are_refused() {
        assert!(read("[data]\ncsv = \"a.csv\"\nset = \"b\"\n").is_err());
        assert!(read("[data]\ncsv = \"a.csv\"\n").is_err());
        assert!(read("[prepare]\nquotaa = 3\n").is_err());
        let err = read("[prepare]\nstratify = \"expression\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("valar.toml") && err.contains("expected arousal"),
            "{err}"
        );
    }
}
