use crate::PrepError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use valar_core::{ColorMode, Dimension};
use valar_face::{Alignment, FaceSpec};

/// Where the samples come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// AffectNet's original release: `training.csv` or `validation.csv` (with or
    /// without a header row) and the folder its image paths are relative to.
    AffectNet {
        /// The CSV.
        csv: PathBuf,
        /// The image root (`Manually_Annotated_Images`).
        images: PathBuf,
    },
    /// AffectNet's newer release: a `train_set` or `val_set` folder holding
    /// `images/` and `annotations/`. Faces are already cropped: no box.
    AffectNetNewer {
        /// The set folder.
        dir: PathBuf,
    },
    /// A CSV with a header naming `path`, `valence`, `arousal`, and optionally
    /// `face_x`, `face_y`, `face_width`, `face_height` and `expression`.
    Generic {
        /// The CSV.
        csv: PathBuf,
        /// The folder image paths are relative to.
        images: PathBuf,
    },
    /// AFEW-VA: clip folders `001`…`600`, each with PNG frames and `NNN.json`.
    AfewVa {
        /// The folder holding the clip folders.
        dir: PathBuf,
    },
    /// Aff-Wild2's VA track: one annotation file per video, frames in a folder per video.
    AffWild2 {
        /// `VA_Estimation_Challenge` (with `Train_Set/`, `Validation_Set/`) or one set folder.
        annotations: PathBuf,
        /// The cropped or aligned frames: `<video>/<frame:05>.jpg`.
        frames: PathBuf,
    },
    /// A CSV of video frames with a header naming `video`, `frame`, `path`, `valence`,
    /// `arousal`, and optionally the four box columns, `split` and `subject`.
    VideoCsv {
        /// The CSV.
        csv: PathBuf,
        /// The folder frame paths are relative to.
        images: PathBuf,
    },
}

impl Input {
    /// A CSV input of any kind, told apart by its first line: a header with a
    /// `path` column is a generic CSV (a video CSV if it also names `video` and
    /// `frame`); anything else is AffectNet's file list (whose header may be missing).
    pub fn from_csv(csv: PathBuf, images: PathBuf) -> Result<Self, crate::PrepError> {
        use std::io::BufRead;
        valar_core::check_utf8_text(&csv)?;
        let file = std::fs::File::open(&csv).map_err(crate::PrepError::io(&csv))?;
        let mut first = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .map_err(crate::PrepError::io(&csv))?;
        // Excel's "CSV UTF-8" starts with a BOM; left on, it hid the `path` column and
        // a generic CSV was read as AffectNet's headerless list (every row malformed).
        let first = valar_core::strip_bom(&first);
        let generic = first
            .trim_end()
            .split(',')
            .any(|f| f.trim().trim_matches('"') == "path");
        let has = |name: &str| {
            first
                .trim_end()
                .split(',')
                .any(|f| f.trim().trim_matches('"') == name)
        };
        Ok(if generic && has("video") && has("frame") {
            Input::VideoCsv { csv, images }
        } else if generic {
            Input::Generic { csv, images }
        } else {
            Input::AffectNet { csv, images }
        })
    }

    /// The file or folder that row numbers in `rejects.csv` refer to.
    pub fn source(&self) -> &PathBuf {
        match self {
            Input::AffectNet { csv, .. } | Input::Generic { csv, .. } => csv,
            Input::AffectNetNewer { dir } => dir,
            Input::AfewVa { dir } => dir,
            Input::AffWild2 { annotations, .. } => annotations,
            Input::VideoCsv { csv, .. } => csv,
        }
    }
}

/// What the subset is balanced over: `valar prepare --stratify`, `stratify` in valar.toml's
/// `[prepare]`. Named `arousal`, `valence` or `grid` on the command line and in valar.toml;
/// `prep.json` keeps its original shape (`{"one": "arousal"}` or `"grid"`), which
/// deserializing also accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stratify {
    /// Equal intervals of one dimension.
    One(Dimension),
    /// A valence × arousal grid of equal cells.
    Grid,
}

impl Stratify {
    /// Every choice, in the order `--help` lists them.
    const ALL: [Stratify; 3] = [
        Stratify::One(Dimension::Arousal),
        Stratify::One(Dimension::Valence),
        Stratify::Grid,
    ];

    /// The name written to `prep.json`, and taken by `--stratify` and valar.toml.
    pub fn name(self) -> &'static str {
        match self {
            Stratify::One(d) => d.name(),
            Stratify::Grid => "grid",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Stratify::One(Dimension::Arousal) => "Equal intervals of arousal (the classic recipe)",
            Stratify::One(Dimension::Valence) => "Equal intervals of valence",
            Stratify::Grid => "A valence × arousal grid",
        }
    }
}

impl std::str::FromStr for Stratify {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Stratify::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| format!("`{s}`: expected arousal, valence or grid"))
    }
}

impl clap::ValueEnum for Stratify {
    fn value_variants<'a>() -> &'a [Self] {
        &Stratify::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.help()))
    }
}

impl<'de> Deserialize<'de> for Stratify {
    /// A name (valar.toml), or the `{"one": "arousal"}` / `"grid"` of `prep.json`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            One { one: String },
        }
        let name = match Raw::deserialize(d)? {
            Raw::Name(n) | Raw::One { one: n } => n,
        };
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything `valar prepare` needs to know.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareConfig {
    /// The input.
    pub input: Input,
    /// The output folder (written as `<out>.partial`, renamed when complete).
    pub out: PathBuf,
    /// Replace an existing output folder.
    pub force: bool,
    /// What to balance over.
    pub stratify: Stratify,
    /// Intervals over [-1, 1] (per axis, for a grid).
    pub intervals: usize,
    /// Faces per interval (grid cell). Ignored with `keep_all`.
    pub quota: usize,
    /// Keep every valid row as a test set, without sampling or a validation split.
    pub keep_all: bool,
    /// Share of each interval held out for validation.
    pub val_fraction: f64,
    /// Seed for sampling and splitting.
    pub seed: u64,
    /// Face size, colour, margin, pixel limit and decoding scale: flat in `prep.json`.
    #[serde(flatten)]
    pub face: FaceSpec,
    /// Also write every face as a PNG, in a folder per interval.
    pub png: bool,
    /// Which frames of a video input to use (ignored for images).
    pub frames: crate::FrameSampling,
    /// Preprocess only this shard's share of the plan (`valar prepare --shard K/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::Shard>,
    /// An `audit.csv` whose rows are dropped before stratification.
    pub exclude: Option<PathBuf>,
    /// Only these kinds of finding are acted on (all when empty).
    pub exclude_kinds: Vec<valar_core::AuditKind>,
}

/// The most intervals per dimension: 0.02 wide on [-1, 1], far finer than annotators
/// agree (RMSE about 0.34), and a grid of this many already has 10,000 cells, each
/// listed in prep.json.
pub const MAX_INTERVALS: usize = 100;

/// Declares every setting of `valar prepare` that valar.toml's `[prepare]` shares, once:
/// its doc (the `--help` line), its type, where it goes in [`PrepareConfig`] (with a
/// conversion where the flag and the resolved value differ) and its clap attributes. From
/// the list come [`PrepareSettings`] (the flags, defaults from [`PrepareSettings::DEFAULT`]),
/// [`PrepareOverrides`] (the valar.toml section: every key optional) and the code that lays
/// one over the other and writes the result into a [`PrepareConfig`]. `prep.json` and the
/// fingerprints serialize the [`PrepareConfig`], so they follow without a list of their own.
macro_rules! prepare_settings {
    ($(
        $(#[doc = $doc:literal])+
        $(#[serde($($serde:tt)*)])?
        $name:ident : $ty:ty => $($field:ident).+ $(via $conv:path, $back:path)? [$($arg:tt)*];
    )+) => {
        /// `valar prepare`'s settings, each with its value: the flags, and what
        /// [`PrepareOverrides`] resolve to.
        #[derive(Debug, Clone, PartialEq, clap::Args)]
        pub struct PrepareSettings {
            $( $(#[doc = $doc])+ #[arg($($arg)*)] pub $name: $ty, )+
        }

        /// `[prepare]` in valar.toml: any of [`PrepareSettings`], by the flag's name
        /// (`val_fraction` for `--val-fraction`); the rest keep their defaults.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct PrepareOverrides {
            $( $(#[doc = $doc])+ $(#[serde($($serde)*)])? pub $name: Option<$ty>, )+
        }

        impl PrepareOverrides {
            /// These values, with `base` filling the ones not given here.
            pub fn over(self, base: PrepareSettings) -> PrepareSettings {
                PrepareSettings { $( $name: self.$name.unwrap_or(base.$name), )+ }
            }
        }

        impl PrepareSettings {
            /// Writes every value into `cfg`.
            pub fn apply(self, cfg: &mut PrepareConfig) {
                $( cfg.$($field).+ = prepare_settings!(@conv self.$name $(, $conv)?); )+
            }

            /// The values `cfg` holds (what [`PrepareSettings::apply`] wrote).
            pub fn of(cfg: &PrepareConfig) -> Self {
                PrepareSettings { $( $name: prepare_settings!(@conv cfg.$($field).+ $(, $back)?), )+ }
            }
        }
    };
    (@conv $v:expr) => { $v };
    (@conv $v:expr, $conv:path) => { $conv($v) };
}

/// Shorthand for the defaults in the clap attributes below.
const D: PrepareSettings = PrepareSettings::DEFAULT;

prepare_settings! {
    /// What to balance over.
    stratify: Stratify => stratify [long, value_enum, default_value_t = D.stratify];
    /// Equal intervals over [-1, 1] (per axis for the grid).
    intervals: usize => intervals [long, default_value_t = D.intervals];
    /// Faces drawn per interval (grid cell).
    quota: usize => quota [long, default_value_t = D.quota];
    /// Keep every usable row as a test set: no sampling, no validation split.
    #[serde(skip)] // `valar run` decides this per stage: its test set is kept whole.
    all: bool => keep_all [long, default_value_t = D.all];
    /// Share of each interval held out for validation.
    val_fraction: f64 => val_fraction [long, default_value_t = D.val_fraction];
    /// Seed for sampling and splitting.
    seed: u64 => seed [long, default_value_t = D.seed];
    /// Face side length in pixels.
    size: u32 => face.size [long, default_value_t = D.size];
    /// Keep colour (3 channels) instead of converting to gray.
    rgb: bool => face.color via color_mode, is_rgb [long, default_value_t = D.rgb];
    /// Context added around the box on each side, as a share of its size.
    margin: f32 => face.margin [long, default_value_t = D.margin];
    /// Refuse images with more pixels than this (a decompression-bomb guard; Pillow's default).
    max_pixels: u64 => face.max_pixels [long, default_value_t = D.max_pixels];
    /// Decode JPEGs at full size. By default each is decoded at the smallest DCT scale
    /// (1/8 to 1) that keeps the face at least --size pixels across, as Pillow's
    /// `draft` does: several times faster, and within a gray level or so on average.
    full_scale: bool => face.full_scale [long, default_value_t = D.full_scale];
    /// Level and place each face by its eyes, from the 68 landmarks the input carries
    /// (AffectNet's, AFEW-VA's), instead of cutting its box: the eyes 0.37 of the side apart
    /// on the row at 0.38 of it.
    align: bool => face.align via alignment, is_aligned [long, default_value_t = D.align];
    /// Also write every face as a PNG, in a folder per interval.
    png: bool => png [long, default_value_t = D.png];
    /// Video inputs: use every k-th frame of each video.
    frame_step: usize => frames.step [long, default_value_t = D.frame_step];
    /// Video inputs: then at most N frames per video, a seeded draw.
    frames_per_video: Option<usize> => frames.per_video [long];
}

fn alignment(on: bool) -> Option<Alignment> {
    on.then_some(Alignment::DEFAULT)
}

fn is_aligned(align: Option<Alignment>) -> bool {
    align.is_some()
}

fn color_mode(rgb: bool) -> ColorMode {
    if rgb { ColorMode::Rgb } else { ColorMode::Gray }
}

fn is_rgb(color: ColorMode) -> bool {
    color == ColorMode::Rgb
}

impl PrepareSettings {
    /// The classic recipe, the one place prepare's defaults are written: arousal in ten
    /// intervals of 1000 faces, a 90/10 split, faces as [`FaceSpec::DEFAULT`].
    pub const DEFAULT: PrepareSettings = PrepareSettings {
        stratify: Stratify::One(Dimension::Arousal),
        intervals: 10,
        quota: 1000,
        all: false,
        val_fraction: 0.1,
        seed: 0,
        size: FaceSpec::DEFAULT.size,
        rgb: matches!(FaceSpec::DEFAULT.color, ColorMode::Rgb),
        margin: FaceSpec::DEFAULT.margin,
        max_pixels: FaceSpec::DEFAULT.max_pixels,
        full_scale: FaceSpec::DEFAULT.full_scale,
        align: false,
        png: false,
        frame_step: 1,
        frames_per_video: None,
    };

    /// Checks each value on its own, naming the setting in the error: what a valar.toml
    /// can be checked for before any stage runs.
    pub fn validate(&self) -> Result<(), PrepError> {
        let bad =
            |key: &'static str, reason: String| Err(PrepError::InvalidSetting { key, reason });
        if self.intervals == 0 {
            return bad("intervals", "must be at least 1".into());
        }
        if self.intervals > MAX_INTERVALS {
            // Checked before anything is allocated: a grid holds intervals² cells.
            return bad(
                "intervals",
                format!(
                    "{} is over the limit of {MAX_INTERVALS} ({MAX_INTERVALS} intervals are \
                     0.02 wide on [-1, 1]; a grid of them has {} cells)",
                    self.intervals,
                    MAX_INTERVALS * MAX_INTERVALS
                ),
            );
        }
        if !self.all && self.quota == 0 {
            return bad("quota", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("val_fraction", "must be in [0, 1)".into());
        }
        // The same ranges predict and evaluate hold a model's metadata to.
        let (sizes, margins) = (valar_core::FACE_SIZES, valar_core::MARGINS);
        if !sizes.contains(&(self.size as usize)) {
            let range = format!("must be between {} and {}", sizes.start(), sizes.end());
            return bad("size", range);
        }
        if !margins.contains(&self.margin) {
            let range = format!("must be between {} and {}", margins.start(), margins.end());
            return bad("margin", range);
        }
        if self.align && self.margin != 0.0 {
            // An aligned face is framed by its eyes, not its box: a margin would say nothing.
            return Err(PrepError::Conflict {
                key: "align",
                other: "margin",
                why: "an aligned face is framed by its eyes, not a box".into(),
            });
        }
        if self.frame_step == 0 {
            return bad("frame_step", "must be at least 1".into());
        }
        if self.frames_per_video == Some(0) {
            return bad("frames_per_video", "must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for PrepareSettings {
    fn default() -> Self {
        PrepareSettings::DEFAULT
    }
}

impl PrepareConfig {
    /// `settings` applied to `input` and `out`, as one process (no shard), nothing excluded.
    pub fn new(input: Input, out: PathBuf, settings: PrepareSettings) -> Self {
        // The settings' fields start at the defaults and are all written by `apply`.
        let mut cfg = PrepareConfig {
            input,
            out,
            force: false,
            stratify: D.stratify,
            intervals: D.intervals,
            quota: D.quota,
            keep_all: D.all,
            val_fraction: D.val_fraction,
            seed: D.seed,
            face: FaceSpec::DEFAULT,
            png: D.png,
            frames: crate::FrameSampling::default(),
            shard: None,
            exclude: None,
            exclude_kinds: Vec::new(),
        };
        settings.apply(&mut cfg);
        cfg
    }

    /// The classic recipe's settings ([`PrepareSettings::DEFAULT`]) for `input`.
    pub fn recipe(input: Input, out: PathBuf) -> Self {
        PrepareConfig::new(input, out, PrepareSettings::DEFAULT)
    }

    /// Refuses settings that make no sense, each error naming its setting.
    pub fn validate(&self) -> Result<(), PrepError> {
        PrepareSettings::of(self).validate()?;
        crate::shard::validate(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        s: PrepareSettings,
    }

    #[test]
    fn flags_default_to_the_recipe_and_valar_toml_overrides_by_the_same_names() {
        assert_eq!(
            Flags::try_parse_from(["x"]).unwrap().s,
            PrepareSettings::DEFAULT
        );
        let f = Flags::try_parse_from([
            "x",
            "--stratify",
            "grid",
            "--rgb",
            "--frames-per-video",
            "3",
        ])
        .unwrap()
        .s;
        assert_eq!(f.stratify, Stratify::Grid);
        assert!(f.rgb);
        assert_eq!(f.frames_per_video, Some(3));
        let o: PrepareOverrides =
            serde_json::from_str(r#"{"stratify": "valence", "size": 64, "png": true}"#).unwrap();
        let s = o.over(PrepareSettings::DEFAULT);
        assert_eq!(s.stratify, Stratify::One(Dimension::Valence));
        assert_eq!((s.size, s.png, s.quota), (64, true, 1000));
        assert!(serde_json::from_str::<PrepareOverrides>(r#"{"all": true}"#).is_err());
    }

    #[test]
    fn settings_round_trip_through_the_config() {
        let s = PrepareSettings {
            rgb: true,
            margin: 0.25,
            full_scale: true,
            frames_per_video: Some(7),
            ..PrepareSettings::DEFAULT
        };
        let cfg = PrepareConfig::new(Input::AfewVa { dir: "a".into() }, "o".into(), s.clone());
        assert_eq!(cfg.face.color, ColorMode::Rgb);
        assert_eq!(cfg.frames.per_video, Some(7));
        assert_eq!(PrepareSettings::of(&cfg), s);
    }

    #[test]
    fn params_are_what_prep_json_always_held() {
        let mut cfg = PrepareConfig::recipe(Input::AfewVa { dir: "a".into() }, "o".into());
        cfg.face.margin = 0.1;
        cfg.face.full_scale = true;
        // The earlier recipe: the config without `face`, the face's values inserted after.
        let mut legacy = serde_json::to_value(&cfg).unwrap();
        let obj = legacy.as_object_mut().unwrap();
        for key in ["size", "color", "margin", "max_pixels", "full_scale"] {
            obj.remove(key);
        }
        obj.insert("size".into(), cfg.face.size.into());
        obj.insert(
            "color".into(),
            serde_json::to_value(cfg.face.color).unwrap(),
        );
        obj.insert("margin".into(), f64::from(cfg.face.margin).into());
        obj.insert("max_pixels".into(), cfg.face.max_pixels.into());
        obj.insert("full_scale".into(), cfg.face.full_scale.into());
        let now = serde_json::to_value(&cfg).unwrap();
        assert_eq!(now, legacy);
        assert_eq!(
            serde_json::to_string(&now).unwrap(),
            serde_json::to_string(&legacy).unwrap()
        );
        assert_eq!(now["stratify"], serde_json::json!({"one": "arousal"}));
        assert!(now.to_string().contains("\"margin\":0.10000000149011612"));
    }

    #[test]
    fn stratify_reads_names_and_prep_json_shapes() {
        for s in Stratify::ALL {
            assert_eq!(s.name().parse::<Stratify>().unwrap(), s);
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(serde_json::from_value::<Stratify>(json).unwrap(), s);
            let name = serde_json::Value::from(s.name());
            assert_eq!(serde_json::from_value::<Stratify>(name).unwrap(), s);
        }
        let err = "expression".parse::<Stratify>().unwrap_err();
        assert!(err.contains("expected arousal, valence or grid"), "{err}");
    }

    #[test]
    fn errors_name_the_setting_and_each_front_end_words_it() {
        let s = PrepareSettings {
            val_fraction: 1.5,
            ..PrepareSettings::DEFAULT
        };
        let e = s.validate().unwrap_err();
        assert!(matches!(
            e,
            PrepError::InvalidSetting {
                key: "val_fraction",
                ..
            }
        ));
        let flag = |k: &str| format!("--{}", k.replace('_', "-"));
        assert_eq!(
            e.setting_message(&flag).unwrap(),
            "--val-fraction must be in [0, 1)"
        );
        assert_eq!(
            e.setting_message(&|k| format!("prepare.{k}")).unwrap(),
            "prepare.val_fraction must be in [0, 1)"
        );
        let mut cfg = PrepareConfig::recipe(Input::AfewVa { dir: "a".into() }, "o".into());
        cfg.png = true;
        cfg.shard = Some(crate::Shard { index: 0, count: 2 });
        let e = cfg.validate().unwrap_err();
        assert!(
            e.setting_message(&flag)
                .unwrap()
                .starts_with("--png cannot be combined with --shard")
        );
    }
}
