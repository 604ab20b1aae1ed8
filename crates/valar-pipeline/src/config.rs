use crate::PipelineError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use valar_prep::{PrepError, PrepareOverrides, PrepareSettings, SourceArgs, SourceKind};
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

/// `[prepare]` in `valar.toml`: any of `valar prepare`'s settings, by the same names
/// (declared once, in valar-prep); the rest come from the recipe (AffectNet) or the
/// demo's defaults (synthetic data).
pub type PrepareSection = PrepareOverrides;

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

/// `[data]` as written in the file: a source as `valar prepare` names it, or none for
/// synthetic faces, and the test set beside it.
#[derive(Debug, Default, Deserialize)]
struct DataSection {
    #[serde(flatten)]
    source: SourceArgs,
    test_csv: Option<PathBuf>,
    test_set: Option<PathBuf>,
    synth_n: Option<usize>,
    synth_test_n: Option<usize>,
    synth_seed: Option<u64>,
    /// Keys neither of the above knows (serde's `deny_unknown_fields` does not work
    /// beside `flatten`): refused by [`PipelineConfig::read`].
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
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
        let data = data_source(file.data, &abs).map_err(err)?;
        let synthetic = matches!(data, DataSource::Synthetic { .. });
        // Checked now, before any stage runs, in the file's own terms.
        prepare_settings(&file.prepare, synthetic)
            .validate()
            .map_err(|e| err(in_toml_words(e)))?;
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

/// The data source `[data]` names, its paths taken from the file's folder.
fn data_source(d: DataSection, abs: &dyn Fn(PathBuf) -> PathBuf) -> Result<DataSource, String> {
    if let Some(key) = d.unknown.keys().next() {
        return Err(format!("[data] has no key `{key}`"));
    }
    let s = d.source.map_paths(abs);
    let kind = s.kind().map_err(|_| takes_one_source())?;
    // A test set goes with the source it is a split of.
    let stray_test = match kind {
        Some(SourceKind::Csv) => d.test_set.is_some(),
        Some(SourceKind::Set) => d.test_csv.is_some(),
        _ => d.test_csv.is_some() || d.test_set.is_some(),
    };
    if stray_test {
        return Err(takes_one_source());
    }
    let path = |p: Option<PathBuf>| p.unwrap_or_default();
    Ok(match kind {
        None => DataSource::Synthetic {
            n: d.synth_n.unwrap_or(DEMO_N),
            test_n: d.synth_test_n.unwrap_or(DEMO_TEST_N),
            seed: d.synth_seed.unwrap_or(0),
        },
        Some(SourceKind::Csv) => DataSource::AffectNet {
            csv: path(s.csv),
            images: path(s.images),
            test_csv: d.test_csv.map(abs),
        },
        Some(SourceKind::Set) => DataSource::AffectNetNewer {
            set: path(s.set),
            test_set: d.test_set.map(abs),
        },
        Some(SourceKind::AfewVa) => DataSource::AfewVa {
            dir: path(s.afew_va),
        },
        Some(SourceKind::AffWild2) => DataSource::AffWild2 {
            annotations: path(s.aff_wild2),
            frames: path(s.frames),
        },
    })
}

/// Which `[data]` keys go together (the rule itself is [`SourceArgs::kind`]'s).
fn takes_one_source() -> String {
    "[data] takes one source: `csv` with `images` (AffectNet's original release, a generic \
     or a video CSV; `test_csv` beside it), `set` (its newer release; `test_set` beside it), \
     `afew_va`, `aff_wild2` with `frames` (the frame folder), or none (synthetic faces)"
        .into()
}

/// `valar prepare`'s settings for a pipeline: `[prepare]` over the defaults. The demo's
/// quota fits its [`DEMO_N`] synthetic images; AffectNet gets the recipe's.
pub(crate) fn prepare_settings(p: &PrepareSection, synthetic: bool) -> PrepareSettings {
    let mut base = PrepareSettings::DEFAULT;
    if synthetic {
        base.quota = 250;
    }
    p.clone().over(base)
}

/// A setting error in valar.toml's terms (`prepare.quota must be at least 1`).
pub(crate) fn in_toml_words(e: PrepError) -> String {
    e.setting_message(&|key| format!("prepare.{key}"))
        .unwrap_or_else(|| e.to_string())
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
        assert_eq!(c.prepare.frames_per_video, Some(Some(40)));
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
        assert!(read("[data]\nsett = \"b\"\n").is_err());
        // `valar run` keeps its test set whole and its training set sampled.
        assert!(read("[prepare]\nall = true\n").is_err());
        let err = read("[prepare]\nquota = 0\n").unwrap_err().to_string();
        assert!(
            err.contains("valar.toml: prepare.quota must be at least 1"),
            "{err}"
        );
        let c = read("[prepare]\npng = true\nfull_scale = true\nstratify = \"grid\"\n").unwrap();
        let s = prepare_settings(&c.prepare, true);
        assert!(s.png && s.full_scale && s.quota == 250);
        assert_eq!(s.stratify, valar_prep::Stratify::Grid);
        let err = read("[prepare]\nstratify = \"expression\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("valar.toml") && err.contains("expected arousal"),
            "{err}"
        );
    }
}
