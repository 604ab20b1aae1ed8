//! The resolved training configuration, its presets, and how a TOML file and flags override it.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use valar_core::Targets;

/// Implements `FromStr` and `Display` from one table of names, so the CLI, the TOML file and
/// error messages all spell the values the same way.
macro_rules! named_enum {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// The name used on the command line and in `config.toml`.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " `{}`: expected {}"),
                        other,
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

/// Which network to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelChoice {
    /// The original recipe's network (42.6M parameters at 48×48).
    #[serde(rename = "facecnn")]
    FaceCnn,
    /// A small network with global average pooling (~100k parameters); the default.
    #[serde(rename = "compact")]
    Compact,
}
named_enum!(ModelChoice, "model", FaceCnn => "facecnn", Compact => "compact");

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossChoice {
    /// Mean squared error.
    #[serde(rename = "mse")]
    Mse,
    /// Mean over the trained dimensions of 1 − CCC.
    #[serde(rename = "ccc")]
    Ccc,
    /// MSE + (1 − CCC): the default, far better CCC than MSE alone on AffectNet.
    #[serde(rename = "mse+ccc")]
    MseCcc,
}
named_enum!(LossChoice, "loss", Mse => "mse", Ccc => "ccc", MseCcc => "mse+ccc");

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleKind {
    /// Cosine decay from `lr` to `min_lr` over all steps of all epochs.
    #[serde(rename = "cosine")]
    Cosine,
    /// `lr · gamma^⌊epoch / step_size⌋`.
    #[serde(rename = "step")]
    Step,
    /// `lr` throughout.
    #[serde(rename = "constant")]
    Constant,
}
named_enum!(ScheduleKind, "schedule", Cosine => "cosine", Step => "step", Constant => "constant");

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimizerChoice {
    /// AdamW (β = 0.9, 0.999, ε = 1e-8) with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW,
    /// SGD with momentum and L2 weight decay.
    #[serde(rename = "sgd")]
    Sgd,
}
named_enum!(OptimizerChoice, "optimizer", AdamW => "adamw", Sgd => "sgd");

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// ONNX Runtime's CPU provider.
    #[serde(rename = "cpu")]
    Cpu,
    /// ONNX Runtime's CUDA provider (falls back to the CPU, with a message, when unusable).
    #[serde(rename = "cuda")]
    Cuda,
}
named_enum!(DeviceChoice, "device", Cpu => "cpu", Cuda => "cuda");

impl DeviceChoice {
    /// The engine's device.
    pub fn engine(self) -> valar_engine::Device {
        match self {
            DeviceChoice::Cpu => valar_engine::Device::Cpu,
            DeviceChoice::Cuda => valar_engine::Device::Cuda,
        }
    }
}

/// A named preset of training values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipe {
    /// The original recipe: facecnn, MSE, AdamW with PyTorch's defaults (weight decay 0.01),
    /// learning rate 1e-4 held constant, batch 64, 20 epochs, no augmentation, no early stopping.
    #[serde(rename = "seed")]
    Seed,
}
named_enum!(Recipe, "recipe", Seed => "seed");

/// Every value that decides a training run, as saved in the run's `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The preset the values started from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// The prepared dataset folder (faces.npy, manifest.csv).
    pub data: PathBuf,
    /// The network.
    pub model: ModelChoice,
    /// The dimensions to predict.
    pub targets: Targets,
    /// The loss.
    pub loss: LossChoice,
    /// The optimizer.
    pub optimizer: OptimizerChoice,
    /// Passes over the training split (an upper bound with early stopping).
    pub epochs: usize,
    /// Faces per optimizer step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: ScheduleKind,
    /// Final learning rate of the cosine schedule.
    pub min_lr: f64,
    /// Epochs between decays of the step schedule.
    pub step_size: usize,
    /// Factor of each decay of the step schedule.
    pub gamma: f64,
    /// Weight decay (decoupled for AdamW, L2 for SGD).
    pub weight_decay: f64,
    /// SGD momentum (unused by AdamW).
    pub momentum: f64,
    /// Epochs without a better validation CCC before stopping; 0 never stops early.
    pub patience: usize,
    /// Random horizontal flips, shifts (±10%) and scales (0.9–1.1) of training faces.
    pub augment: bool,
    /// Where the network runs.
    pub device: DeviceChoice,
    /// Seeds weights, shuffling, dropout and augmentation.
    pub seed: u64,
}

impl TrainConfig {
    /// valar's defaults for a dataset folder.
    pub fn defaults(data: PathBuf) -> Self {
        TrainConfig {
            recipe: None,
            data,
            model: ModelChoice::Compact,
            targets: Targets::Both,
            loss: LossChoice::MseCcc,
            optimizer: OptimizerChoice::AdamW,
            epochs: 30,
            batch_size: 64,
            lr: 1e-3,
            schedule: ScheduleKind::Cosine,
            min_lr: 0.0,
            step_size: 10,
            gamma: 0.1,
            weight_decay: 1e-4,
            momentum: 0.9,
            patience: 5,
            augment: false,
            device: DeviceChoice::Cpu,
            seed: 0,
        }
    }

    /// The values of a preset.
    pub fn recipe(recipe: Recipe, data: PathBuf) -> Self {
        match recipe {
            Recipe::Seed => TrainConfig {
                recipe: Some(Recipe::Seed),
                model: ModelChoice::FaceCnn,
                loss: LossChoice::Mse,
                optimizer: OptimizerChoice::AdamW,
                epochs: 20,
                batch_size: 64,
                lr: 1e-4,
                schedule: ScheduleKind::Constant,
                weight_decay: 0.01,
                patience: 0,
                augment: false,
                ..TrainConfig::defaults(data)
            },
        }
    }

    /// Checks the values that no later step would catch with a clear message.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size < 2 {
            return bad(format!(
                "batch size must be at least 2 (BatchNorm needs it), not {}",
                self.batch_size
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be a positive number, not {}", self.lr));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad(format!("min_lr must lie in [0, lr], not {}", self.min_lr));
        }
        if self.step_size == 0 {
            return bad("step_size must be at least 1".into());
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0 && self.gamma <= 1.0) {
            return bad(format!("gamma must lie in (0, 1], not {}", self.gamma));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight_decay must be a non-negative number, not {}",
                self.weight_decay
            ));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return bad(format!(
                "momentum must lie in [0, 1), not {}",
                self.momentum
            ));
        }
        if i64::try_from(self.seed).is_err() {
            return bad(format!(
                "seed must be at most {} (TOML stores signed integers)",
                i64::MAX
            ));
        }
        Ok(())
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// Reads a `config.toml` written by [`TrainConfig::to_toml`].
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        let config: TrainConfig = toml::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }
}

/// Values given in a `valar.toml` file or on the command line; each one present overrides
/// the preset (or the defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the `TrainConfig` field of the same name.
pub struct TrainOverrides {
    pub recipe: Option<Recipe>,
    pub data: Option<PathBuf>,
    pub model: Option<ModelChoice>,
    pub targets: Option<Targets>,
    pub loss: Option<LossChoice>,
    pub optimizer: Option<OptimizerChoice>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub schedule: Option<ScheduleKind>,
    pub min_lr: Option<f64>,
    pub step_size: Option<usize>,
    pub gamma: Option<f64>,
    pub weight_decay: Option<f64>,
    pub momentum: Option<f64>,
    pub patience: Option<usize>,
    pub augment: Option<bool>,
    pub device: Option<DeviceChoice>,
    pub seed: Option<u64>,
}

impl TrainOverrides {
    /// Reads a `valar.toml`: any subset of the `config.toml` keys. Relative `data` paths are
    /// taken relative to the file's folder.
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        let mut o: TrainOverrides = toml::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        if let (Some(data), Some(dir)) = (&o.data, path.parent())
            && data.is_relative()
        {
            o.data = Some(dir.join(data));
        }
        Ok(o)
    }

    /// These values, with `base` filling the ones not given here.
    pub fn over(self, base: TrainOverrides) -> TrainOverrides {
        TrainOverrides {
            recipe: self.recipe.or(base.recipe),
            data: self.data.or(base.data),
            model: self.model.or(base.model),
            targets: self.targets.or(base.targets),
            loss: self.loss.or(base.loss),
            optimizer: self.optimizer.or(base.optimizer),
            epochs: self.epochs.or(base.epochs),
            batch_size: self.batch_size.or(base.batch_size),
            lr: self.lr.or(base.lr),
            schedule: self.schedule.or(base.schedule),
            min_lr: self.min_lr.or(base.min_lr),
            step_size: self.step_size.or(base.step_size),
            gamma: self.gamma.or(base.gamma),
            weight_decay: self.weight_decay.or(base.weight_decay),
            momentum: self.momentum.or(base.momentum),
            patience: self.patience.or(base.patience),
            augment: self.augment.or(base.augment),
            device: self.device.or(base.device),
            seed: self.seed.or(base.seed),
        }
    }

    /// The full configuration: the preset (or the defaults), then every value given here.
    pub fn resolve(self) -> Result<TrainConfig, TrainError> {
        let data = self.data.ok_or_else(|| {
            TrainError::Config(
                "no dataset: pass --data PREPARED (or set `data` in the config file)".into(),
            )
        })?;
        let mut c = match self.recipe {
            Some(r) => TrainConfig::recipe(r, data),
            None => TrainConfig::defaults(data),
        };
        macro_rules! set {
            ($($field:ident),+) => { $(if let Some(v) = self.$field { c.$field = v; })+ };
        }
        set!(
            model,
            targets,
            loss,
            optimizer,
            epochs,
            batch_size,
            lr,
            schedule,
            min_lr,
            step_size,
            gamma,
            weight_decay,
            momentum,
            patience,
            augment,
            device,
            seed
        );
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("valar.toml");
        std::fs::write(
            &file,
            "recipe = \"seed\"\ndata = \"prep\"\nepochs = 7\nlr = 0.5\n",
        )
        .unwrap();
        let from_file = TrainOverrides::from_toml_file(&file).unwrap();
        let flags = TrainOverrides {
            lr: Some(0.01),
            ..Default::default()
        };
        let c = flags.over(from_file).resolve().unwrap();
        assert_eq!(c.recipe, Some(Recipe::Seed));
        assert_eq!(c.model, ModelChoice::FaceCnn);
        assert_eq!(c.loss, LossChoice::Mse);
        assert_eq!(c.epochs, 7);
        assert_eq!(c.lr, 0.01);
        assert_eq!(c.data, dir.path().join("prep"));
    }

    #[test]
    fn seed_recipe_is_the_original_recipe() {
        let c = TrainOverrides {
            recipe: Some(Recipe::Seed),
            data: Some("d".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (c.model, c.loss, c.optimizer, c.schedule),
            (
                ModelChoice::FaceCnn,
                LossChoice::Mse,
                OptimizerChoice::AdamW,
                ScheduleKind::Constant
            )
        );
        assert_eq!(
            (c.lr, c.weight_decay, c.batch_size, c.epochs),
            (1e-4, 0.01, 64, 20)
        );
        assert_eq!(
            (c.patience, c.augment, c.targets),
            (0, false, Targets::Both)
        );
        let d = TrainOverrides {
            data: Some("d".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (d.model, d.loss),
            (ModelChoice::Compact, LossChoice::MseCcc)
        );
    }

    #[test]
    fn config_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut c = TrainConfig::defaults(PathBuf::from("/data/prep"));
        c.targets = Targets::Arousal;
        c.loss = LossChoice::MseCcc;
        std::fs::write(&path, c.to_toml().unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("loss = \"mse+ccc\""), "{text}");
        assert_eq!(TrainConfig::read(&path).unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("valar.toml");
        std::fs::write(&file, "epochz = 3\n").unwrap();
        let err = TrainOverrides::from_toml_file(&file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochz"), "{err}");
        std::fs::write(&file, "model = \"resnet\"\n").unwrap();
        assert!(TrainOverrides::from_toml_file(&file).is_err());
        let err = "resnet".parse::<ModelChoice>().unwrap_err();
        assert!(err.contains("facecnn, compact"), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let o = TrainOverrides {
            data: Some("d".into()),
            batch_size: Some(1),
            ..Default::default()
        };
        assert!(o.resolve().unwrap_err().to_string().contains("batch size"));
        let o = TrainOverrides::default();
        assert!(o.resolve().unwrap_err().to_string().contains("--data"));
    }
}
