//! The resolved training configuration, its presets, and how a TOML file and flags override it.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use valar_core::Targets;
use valar_engine::{Device, LossKind, ModelKind, named_enum};

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleKind {
    /// Cosine decay from `lr` to `min_lr` over all steps of all epochs.
    #[serde(rename = "cosine")]
    Cosine,
    /// Cosine decay changed once per epoch, as PyTorch's `CosineAnnealingLR(T_max=epochs)`
    /// stepped after each epoch: epoch e (0-based) trains at
    /// `min_lr + (lr − min_lr)·(1 + cos(π·e/epochs))/2`.
    #[serde(rename = "cosine-epoch")]
    CosineEpoch,
    /// `lr · gamma^⌊epoch / step_size⌋`.
    #[serde(rename = "step")]
    Step,
    /// `lr` throughout.
    #[serde(rename = "constant")]
    Constant,
}
named_enum!(ScheduleKind, "schedule", Cosine => "cosine", CosineEpoch => "cosine-epoch", Step => "step", Constant => "constant");

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

/// How training faces are varied each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Augment {
    /// Every face as prepared.
    #[serde(rename = "none")]
    None,
    /// Random horizontal flips (probability 0.5), as torchvision's `RandomHorizontalFlip`.
    #[serde(rename = "flip")]
    Flip,
    /// Flips plus random shifts (±10%) and scales (0.9–1.1), resampled bilinearly.
    #[serde(rename = "full")]
    Full,
    /// Flips plus torchvision's `RandomAffine(degrees=10, translate=(0.08, 0.08),
    /// scale=(0.9, 1.1))` about the face centre: rotations in ±10°, shifts in ±8% of the side
    /// (rounded to whole pixels, as torchvision does) and scales in 0.9–1.1, resampled
    /// bilinearly; where the face is moved off its edge the border pixels repeat
    /// (torchvision fills with black and samples the nearest pixel).
    #[serde(rename = "affine")]
    Affine,
}
named_enum!(Augment, "augmentation", None => "none", Flip => "flip", Full => "full", Affine => "affine");

impl<'de> Deserialize<'de> for Augment {
    /// A name, or a boolean as earlier `config.toml` files wrote it (`true` was `full`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Augment::Full),
            Raw::Bool(false) => Ok(Augment::None),
            Raw::Name(n) => n.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How stored pixels become the network's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputNorm {
    /// `x / 127.5 − 1` ([`crate::normalize_pixel`]).
    #[serde(rename = "fixed")]
    Fixed,
    /// `(x/255 − mean) / sd` with the mean and standard deviation of the training split's
    /// pixels, as PyTorch users write it; the statistics are folded into `model.onnx`.
    #[serde(rename = "standardize")]
    Standardize,
}
named_enum!(InputNorm, "input normalization", Fixed => "fixed", Standardize => "standardize");

/// Which epoch's weights become `model.onnx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keep {
    /// The epoch with the best validation CCC.
    #[serde(rename = "best")]
    Best,
    /// The final epoch, as a plain PyTorch loop ends.
    #[serde(rename = "last")]
    Last,
}
named_enum!(Keep, "keep", Best => "best", Last => "last");

/// A named preset of training values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipe {
    /// The original recipe: facecnn trained on arousal alone (one output), MSE, AdamW with
    /// PyTorch's defaults (weight decay 0.01), learning rate 1e-4 held constant, batch 64,
    /// 20 epochs, no augmentation, no early stopping.
    #[serde(rename = "seed")]
    Seed,
    /// The PyTorch reference recipe of `scripts/quality_torch.py`: the `reference` network,
    /// MSE + CCC, AdamW 1e-3 with weight decay 1e-4, cosine stepped per epoch, batch 64,
    /// flips, inputs standardised by the training set, 25 epochs, the final epoch kept.
    #[serde(rename = "reference")]
    Reference,
}
named_enum!(Recipe, "recipe", Seed => "seed", Reference => "reference");

/// Declares every training setting once. From this one list come the resolved
/// [`TrainConfig`] field, the optional [`TrainOverrides`] field (a `valar.toml` key and a
/// `valar train` flag, with this doc comment as its help) and the code that lays overrides
/// over a preset. A new setting is one entry here plus its value in
/// [`TrainConfig::defaults`].
macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty $([$($arg:tt)*])? ;)+) => {
        /// Every value that decides a training run, as saved in the run's `config.toml`.
        /// A key missing from an older file takes [`TrainConfig::before_settings`]'s value:
        /// what that run did before the setting existed.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default = "TrainConfig::before_settings")]
        pub struct TrainConfig {
            /// The preset the values started from, if any.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub recipe: Option<Recipe>,
            /// The prepared dataset folder (faces.npy, manifest.csv).
            pub data: PathBuf,
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        /// Values given in a `valar.toml` file or as `valar train` flags; each one present
        /// overrides the preset (or the defaults).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct TrainOverrides {
            /// A preset: `seed` (the original arousal-only facecnn recipe) or `reference`
            /// (the PyTorch reference recipe of scripts/quality_torch.py).
            #[arg(long)]
            pub recipe: Option<Recipe>,
            /// A prepared dataset folder (from `valar prepare`).
            #[arg(long)]
            pub data: Option<PathBuf>,
            $( $(#[doc = $doc])+ #[arg(long $(, $($arg)*)?)] pub $name: Option<$ty>, )+
        }

        impl TrainOverrides {
            /// These values, with `base` filling the ones not given here.
            pub fn over(self, base: TrainOverrides) -> TrainOverrides {
                TrainOverrides {
                    recipe: self.recipe.or(base.recipe),
                    data: self.data.or(base.data),
                    $( $name: self.$name.or(base.$name), )+
                }
            }

            /// Writes every value given here into `c`.
            fn apply(self, c: &mut TrainConfig) {
                $( if let Some(v) = self.$name { c.$name = v; } )+
            }
        }
    };
}

settings! {
    /// The network: facecnn, compact, reference, vgg, resnet or mobilenet (each takes faces
    /// whose side is a multiple of its total stride).
    model: ModelKind;
    /// The dimensions to predict: valence, arousal or both.
    targets: Targets;
    /// The loss: mse, ccc or mse+ccc.
    loss: LossKind;
    /// The optimizer: adamw or sgd.
    optimizer: OptimizerChoice;
    /// Passes over the training faces (an upper bound with early stopping).
    epochs: usize;
    /// Faces per optimizer step.
    batch_size: usize;
    /// Peak learning rate.
    lr: f64;
    /// Learning-rate schedule: cosine (per step), cosine-epoch (per epoch, as PyTorch's
    /// CosineAnnealingLR), step or constant.
    schedule: ScheduleKind;
    /// Final learning rate of the cosine schedules.
    min_lr: f64;
    /// Epochs between decays of the step schedule.
    step_size: usize;
    /// Decay factor of the step schedule.
    gamma: f64;
    /// Weight decay (decoupled for AdamW, L2 for SGD).
    weight_decay: f64;
    /// SGD momentum (unused by AdamW).
    momentum: f64;
    /// Epochs without a better validation CCC before stopping; 0 never stops early.
    patience: usize;
    /// Augmentation of training faces: none, flip, full (flips, shifts ±10%, scales 0.9–1.1)
    /// or affine (flips, rotations ±10°, shifts ±8%, scales 0.9–1.1); `--augment` alone means
    /// full, `--augment=none` turns a file's value off.
    augment: Augment [num_args = 0..=1, require_equals = true, default_missing_value = "full"];
    /// Brightness and contrast jitter j, as torchvision's ColorJitter(brightness=j,
    /// contrast=j): each face's pixels times b, and blended with its mean grey by c, both
    /// drawn in [1 − j, 1 + j], in random order; 0 turns it off.
    jitter: f64;
    /// Probability of random erasing per face, as torchvision's RandomErasing (a box of 2–33%
    /// of the face, aspect 0.3–3.3, set to mid grey); 0 turns it off.
    erasing: f64;
    /// Mixup's α: each batch is mixed with a shuffled copy of itself, images and labels alike,
    /// by λ ~ Beta(α, α); 0 turns it off.
    mixup: f64;
    /// Epochs of linear learning-rate warm-up: step k of the first warmup × steps-per-epoch
    /// steps trains at (k + 1)/(those steps) of the schedule's rate; 0 turns it off.
    warmup: usize;
    /// Input scaling: fixed (x/127.5 − 1) or standardize (by the training split's pixel
    /// mean and sd, folded into model.onnx).
    normalize: InputNorm;
    /// Which weights become model.onnx: best (validation CCC) or last (the final epoch).
    keep: Keep;
    /// Decay per step of a moving average of the weights that validation and model.onnx use
    /// (as timm's ModelEma, with its warm-up); 0 turns it off.
    ema: f64;
    /// Test-time flip averaging: validation and model.onnx predict the mean over the face and
    /// its mirror image; `--tta` alone turns it on, `--tta=false` off.
    tta: bool [num_args = 0..=1, require_equals = true, default_missing_value = "true"];
    /// Weight of an 8-way expression head's class-weighted cross-entropy beside the
    /// valence/arousal loss (multi-task learning; faces without one of AffectNet's codes 0–7
    /// add nothing); 0 trains no head. model.onnx then has a second output, `expression`.
    expression_weight: f64;
    /// Label-distribution smoothing: weight each training face's squared error by the inverse
    /// square root of its label's smoothed density (Yang et al. 2021; bins of 0.1, Gaussian
    /// kernel of 5 bins, σ = 2, weights averaging 1); `--lds` alone turns it on.
    lds: bool [num_args = 0..=1, require_equals = true, default_missing_value = "true"];
    /// Calibrate the outputs: fit per dimension, on the validation predictions of the epoch
    /// that becomes model.onnx, the affine map that raises CCC while keeping RMSE under the
    /// training mean's (README, "Calibration"), and fold it into model.onnx before the clip;
    /// metrics.csv keeps the raw network's figures. Needs a val split. `--calibrate` alone
    /// turns it on, `--calibrate=false` off.
    calibrate: bool [num_args = 0..=1, require_equals = true, default_missing_value = "true"];
    /// Where to run: cpu or cuda (allowed with --resume).
    device: Device;
    /// Seeds weights, shuffling, dropout and augmentation.
    seed: u64;
}

impl TrainConfig {
    /// valar's defaults for a dataset folder: the reference recipe, plus weight averaging,
    /// test-time flips, an expression head (weight 0.5), affine augmentation with
    /// brightness/contrast jitter over 50 epochs after a one-epoch warm-up, and calibration on
    /// the val split (see README,
    /// "On real faces", for the bench-quality rows behind each choice; dropout in the head,
    /// model `vgg`, scored lower on the hard synthetic set and is not the default). A folder
    /// without expression classes or validation faces trains without the head or the
    /// calibration, with a note.
    pub fn defaults(data: PathBuf) -> Self {
        TrainConfig {
            recipe: None,
            data,
            model: ModelKind::Reference,
            targets: Targets::Both,
            loss: LossKind::MseCcc,
            optimizer: OptimizerChoice::AdamW,
            // Augmentation needs the longer schedule to pay (README, "On real faces").
            epochs: 50,
            batch_size: 64,
            lr: 1e-3,
            schedule: ScheduleKind::CosineEpoch,
            min_lr: 0.0,
            step_size: 10,
            gamma: 0.1,
            weight_decay: 1e-4,
            momentum: 0.9,
            // Early stopping fired on the noise of a 300-face validation split (issue 8);
            // the cosine schedule ends training instead.
            patience: 0,
            augment: Augment::Affine,
            jitter: 0.2,
            erasing: 0.0,
            mixup: 0.0,
            // AdamW's first steps at the full rate blow the loss up; one epoch of warm-up
            // added +0.03 / +0.02 CCC to this default on real faces (3 seeds, README).
            warmup: 1,
            normalize: InputNorm::Standardize,
            keep: Keep::Last,
            ema: 0.999,
            tta: true,
            expression_weight: 0.5,
            lds: false,
            calibrate: true,
            device: Device::Cpu,
            seed: 0,
        }
    }

    /// What a run did before `normalize`, `keep`, `ema`, `tta`, `jitter`, `erasing`, `mixup`
    /// and `warmup` existed (fixed inputs, the best epoch, no averaging, no flips, none of the
    /// later augmentations, no warm-up), so that run folders written by an earlier valar still
    /// resume and evaluate. Every other key was always written.
    pub fn before_settings() -> Self {
        TrainConfig {
            jitter: 0.0,
            erasing: 0.0,
            mixup: 0.0,
            warmup: 0,
            normalize: InputNorm::Fixed,
            keep: Keep::Best,
            ema: 0.0,
            tta: false,
            expression_weight: 0.0,
            lds: false,
            calibrate: false,
            ..TrainConfig::defaults(PathBuf::new())
        }
    }

    /// The values of a preset.
    pub fn recipe(recipe: Recipe, data: PathBuf) -> Self {
        match recipe {
            Recipe::Seed => TrainConfig {
                recipe: Some(Recipe::Seed),
                model: ModelKind::FaceCnn,
                targets: Targets::Arousal,
                loss: LossKind::Mse,
                optimizer: OptimizerChoice::AdamW,
                epochs: 20,
                batch_size: 64,
                lr: 1e-4,
                schedule: ScheduleKind::Constant,
                weight_decay: 0.01,
                patience: 0,
                augment: Augment::None,
                jitter: 0.0,
                erasing: 0.0,
                mixup: 0.0,
                warmup: 0,
                normalize: InputNorm::Fixed,
                keep: Keep::Best,
                ema: 0.0,
                tta: false,
                expression_weight: 0.0,
                lds: false,
                calibrate: false,
                ..TrainConfig::defaults(data)
            },
            Recipe::Reference => TrainConfig {
                recipe: Some(Recipe::Reference),
                model: ModelKind::Reference,
                targets: Targets::Both,
                loss: LossKind::MseCcc,
                optimizer: OptimizerChoice::AdamW,
                epochs: 25,
                batch_size: 64,
                lr: 1e-3,
                schedule: ScheduleKind::CosineEpoch,
                min_lr: 0.0,
                weight_decay: 1e-4,
                patience: 0,
                augment: Augment::Flip,
                jitter: 0.0,
                erasing: 0.0,
                mixup: 0.0,
                warmup: 0,
                normalize: InputNorm::Standardize,
                keep: Keep::Last,
                ema: 0.0,
                tta: false,
                expression_weight: 0.0,
                lds: false,
                calibrate: false,
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
        if !(self.ema.is_finite() && (0.0..1.0).contains(&self.ema)) {
            return bad(format!("ema must lie in [0, 1), not {}", self.ema));
        }
        if !(self.expression_weight.is_finite() && self.expression_weight >= 0.0) {
            return bad(format!(
                "expression_weight must be a non-negative number (0 trains no expression head), not {}",
                self.expression_weight
            ));
        }
        self.validate_augmentation()?;
        if i64::try_from(self.seed).is_err() {
            return bad(format!(
                "seed must be at most {} (TOML stores signed integers)",
                i64::MAX
            ));
        }
        Ok(())
    }

    /// Checks the augmentation and warm-up settings.
    fn validate_augmentation(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        // A factor range reaching 0 could black a face out entirely.
        if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
            return bad(format!(
                "jitter must lie in [0, 1) (factors are drawn in [1 − j, 1 + j]), not {}",
                self.jitter
            ));
        }
        if !(self.erasing.is_finite() && (0.0..=1.0).contains(&self.erasing)) {
            return bad(format!(
                "erasing is a probability and must lie in [0, 1], not {}",
                self.erasing
            ));
        }
        if !(self.mixup.is_finite() && self.mixup >= 0.0) {
            return bad(format!(
                "mixup is Beta(α, α)'s α and must be 0 (off) or positive, not {}",
                self.mixup
            ));
        }
        if self.warmup > self.epochs {
            return bad(format!(
                "warmup ({} epochs) must not exceed epochs ({}): the rate would never reach lr",
                self.warmup, self.epochs
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
        if config.data.as_os_str().is_empty() {
            return Err(TrainError::Config(format!(
                "{}: no `data` key (the prepared dataset the run trained on)",
                path.display()
            )));
        }
        config.validate()?;
        Ok(config)
    }
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

    /// The keys given here, in declaration order (for messages such as "--resume takes its
    /// settings from the run").
    pub fn given(&self) -> Vec<String> {
        match toml::Value::try_from(self) {
            Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The full configuration: the preset (or the defaults), then every value given here.
    pub fn resolve(mut self) -> Result<TrainConfig, TrainError> {
        let data = self.data.take().ok_or_else(|| {
            TrainError::Config(
                "no dataset: pass --data PREPARED (or set `data` in the config file)".into(),
            )
        })?;
        let mut c = match self.recipe {
            Some(r) => TrainConfig::recipe(r, data),
            None => TrainConfig::defaults(data),
        };
        self.apply(&mut c);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use valar_core::RunDir;

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
        assert_eq!(c.model, ModelKind::FaceCnn);
        assert_eq!(c.loss, LossKind::Mse);
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
                ModelKind::FaceCnn,
                LossKind::Mse,
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
            (0, Augment::None, Targets::Arousal)
        );
        let d = TrainOverrides {
            data: Some("d".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (d.model, d.loss, d.ema, d.tta),
            (ModelKind::Reference, LossKind::MseCcc, 0.999, true)
        );
    }

    #[test]
    fn reference_recipe_is_the_pytorch_reference() {
        let c = TrainOverrides {
            recipe: Some(Recipe::Reference),
            data: Some("d".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (c.model, c.loss, c.optimizer, c.schedule, c.targets),
            (
                ModelKind::Reference,
                LossKind::MseCcc,
                OptimizerChoice::AdamW,
                ScheduleKind::CosineEpoch,
                Targets::Both
            )
        );
        assert_eq!(
            (c.lr, c.weight_decay, c.batch_size, c.epochs, c.min_lr),
            (1e-3, 1e-4, 64, 25, 0.0)
        );
        assert_eq!(
            (c.patience, c.augment, c.normalize, c.keep),
            (0, Augment::Flip, InputNorm::Standardize, Keep::Last)
        );
    }

    /// Augmentation is named; `config.toml` files written before it was (`augment = true`)
    /// still read, as the full augmentation they meant.
    #[test]
    fn augment_reads_names_and_old_booleans() {
        let read = |text: &str| toml::from_str::<TrainOverrides>(text).map(|o| o.augment);
        assert_eq!(read("augment = true").unwrap(), Some(Augment::Full));
        assert_eq!(read("augment = false").unwrap(), Some(Augment::None));
        assert_eq!(read("augment = \"flip\"").unwrap(), Some(Augment::Flip));
        let err = read("augment = \"rotate\"").unwrap_err().to_string();
        assert!(err.contains("none, flip, full"), "{err}");
    }

    #[test]
    fn config_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::new(dir.path()).config();
        let mut c = TrainConfig::defaults(PathBuf::from("/data/prep"));
        c.targets = Targets::Arousal;
        c.loss = LossKind::MseCcc;
        std::fs::write(&path, c.to_toml().unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("loss = \"mse+ccc\""), "{text}");
        assert_eq!(TrainConfig::read(&path).unwrap(), c);
    }

    /// A config.toml written before the newer settings existed reads as what that run did.
    #[test]
    fn config_from_before_the_newer_settings_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::new(dir.path()).config();
        let old = "data = \"/data/prep\"\nmodel = \"compact\"\ntargets = \"both\"\n\
                   loss = \"mse+ccc\"\noptimizer = \"adamw\"\nepochs = 30\nbatch_size = 64\n\
                   lr = 0.001\nschedule = \"cosine\"\nmin_lr = 0.0\nstep_size = 10\ngamma = 0.1\n\
                   weight_decay = 0.0001\nmomentum = 0.9\npatience = 5\naugment = true\n\
                   device = \"cpu\"\nseed = 3\n";
        std::fs::write(&path, old).unwrap();
        let c = TrainConfig::read(&path).unwrap();
        assert_eq!(
            (c.model, c.augment, c.patience, c.seed),
            (ModelKind::Compact, Augment::Full, 5, 3)
        );
        assert_eq!(
            (c.normalize, c.keep, c.ema, c.tta),
            (InputNorm::Fixed, Keep::Best, 0.0, false)
        );
        assert_eq!((c.jitter, c.erasing, c.mixup, c.warmup), (0.0, 0.0, 0.0, 0));
        std::fs::write(&path, "epochs = 3\n").unwrap();
        let err = TrainConfig::read(&path).unwrap_err().to_string();
        assert!(err.contains("no `data` key"), "{err}");
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
        std::fs::write(&file, "model = \"densenet\"\n").unwrap();
        assert!(TrainOverrides::from_toml_file(&file).is_err());
        let err = "densenet".parse::<ModelKind>().unwrap_err();
        assert!(err.contains("facecnn, compact, reference, vgg"), "{err}");
    }

    /// Every network the engine registers is a model choice by its name, in flags and in
    /// `config.toml` alike, with no list of its own here.
    #[test]
    fn every_engine_network_is_a_model_choice() {
        for &kind in ModelKind::ALL {
            let c: ModelKind = kind.name().parse().unwrap();
            assert_eq!(c, kind);
            let o: TrainOverrides = toml::from_str(&format!("model = \"{kind}\"\n")).unwrap();
            assert_eq!(o.model, Some(c));
            assert!(
                toml::to_string(&o)
                    .unwrap()
                    .contains(&format!("model = \"{kind}\""))
            );
        }
        assert!("ResNet".parse::<ModelKind>().is_err());
    }

    /// The augmentation settings and the warm-up are off in both presets; the defaults jitter
    /// by 0.2 and warm up for one epoch, and nothing else; out-of-range values are refused
    /// naming the setting and its range.
    #[test]
    fn augmentation_settings_are_as_documented_and_checked() {
        for (recipe, jitter, warmup) in [
            (None, 0.2, 1),
            (Some(Recipe::Seed), 0.0, 0),
            (Some(Recipe::Reference), 0.0, 0),
        ] {
            let c = TrainOverrides {
                recipe,
                data: Some("d".into()),
                ..Default::default()
            }
            .resolve()
            .unwrap();
            assert_eq!(
                (c.jitter, c.erasing, c.mixup, c.warmup),
                (jitter, 0.0, 0.0, warmup)
            );
        }
        let refused = |o: TrainOverrides| {
            TrainOverrides {
                data: Some("d".into()),
                ..o
            }
            .resolve()
            .unwrap_err()
            .to_string()
        };
        let err = refused(TrainOverrides {
            jitter: Some(1.0),
            ..Default::default()
        });
        assert!(err.contains("jitter must lie in [0, 1)"), "{err}");
        let err = refused(TrainOverrides {
            erasing: Some(1.5),
            ..Default::default()
        });
        assert!(err.contains("erasing") && err.contains("[0, 1]"), "{err}");
        let err = refused(TrainOverrides {
            mixup: Some(-0.2),
            ..Default::default()
        });
        assert!(err.contains("mixup"), "{err}");
        let err = refused(TrainOverrides {
            epochs: Some(3),
            warmup: Some(4),
            ..Default::default()
        });
        assert!(err.contains("warmup (4 epochs)"), "{err}");
        let ok = TrainOverrides {
            data: Some("d".into()),
            augment: Some(Augment::Affine),
            jitter: Some(0.2),
            erasing: Some(1.0),
            mixup: Some(0.2),
            warmup: Some(25),
            ..Default::default()
        };
        assert_eq!(ok.resolve().unwrap().augment, Augment::Affine);
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
