//! Each reader turns its input into the same table of samples, plus the rows it
//! could not parse. Columns: `row` (u64), `path` (str), `face_x`, `face_y`,
//! `face_width`, `face_height` (i64, null without a box), `expression` (i32, null
//! when unknown), `valence`, `arousal` (f64), then the eyes' centres [`EYE_COLUMNS`] (f64,
//! null where the input gives no landmarks or they were not asked for).

/// AFEW-VA: clip folders of PNG frames with one JSON of labels and landmarks each.
mod afew_va;
/// Aff-Wild2's VA track: one annotation text file per video.
mod aff_wild2;
/// Reading CSVs with polars and checking every row's fields.
mod csv;
/// The table of video frames that the video readers share.
mod frames;
/// AffectNet's original CSV split into lines and fields by hand, skipping the landmarks.
mod lines;
/// AffectNet's newer release: one image and four `.npy` files per sample.
mod newer;
/// One row's fields parsed into the sample table, for both CSV readers.
mod rows;
/// A generic CSV of video frames: video, frame, path, labels, optional box and split.
mod video_csv;

use crate::{Input, PrepError, Reject};
use polars::prelude::{Column, DataFrame, PolarsResult};
use serde::Deserialize;
use std::path::PathBuf;

/// Where the samples come from, as the user names it: `valar prepare`'s and `valar audit`'s
/// input flags, and the source keys of valar.toml's `[data]`. One of `csv` with `images`,
/// `set`, `afew_va`, or `aff_wild2` with `frames`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
pub struct SourceArgs {
    /// AffectNet's `training.csv`/`validation.csv` (header optional), or a CSV with
    /// columns path, valence, arousal [, face_x, face_y, face_width, face_height, expression],
    /// or a video CSV: video, frame, path, valence, arousal [, box, split, subject].
    #[arg(long, requires = "images")]
    pub csv: Option<PathBuf>,
    /// Folder the CSV's image paths are relative to (AffectNet: Manually_Annotated_Images).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// A `train_set` or `val_set` folder of AffectNet's newer release (images/ + annotations/).
    #[arg(long)]
    pub set: Option<PathBuf>,
    /// AFEW-VA: the folder of clip folders (001 … 600, each with PNG frames and NNN.json).
    #[arg(long)]
    pub afew_va: Option<PathBuf>,
    /// Aff-Wild2's VA annotations: VA_Estimation_Challenge (Train_Set/, Validation_Set/)
    /// or one folder of <video>.txt files.
    #[arg(long, requires = "frames")]
    pub aff_wild2: Option<PathBuf>,
    /// Aff-Wild2's cropped or aligned frames: <video>/<frame:05>.jpg.
    #[arg(long)]
    pub frames: Option<PathBuf>,
}

/// The source keys, in the order the rule in [`PrepError::SourceChoice`] names them.
pub const SOURCE_KEYS: [&str; 6] = ["csv", "images", "set", "afew_va", "aff_wild2", "frames"];

/// Which kind of source [`SourceArgs`] name, told from the keys given alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `csv` with `images`: AffectNet's list, a generic or a video CSV.
    Csv,
    /// `set`: AffectNet's newer release.
    Set,
    /// `afew_va`.
    AfewVa,
    /// `aff_wild2` with `frames`.
    AffWild2,
}

impl SourceArgs {
    /// The kind of source these name, without reading anything; `None` when they name
    /// none. The one place the rule of which keys go together is written.
    pub fn kind(&self) -> Result<Option<SourceKind>, PrepError> {
        let given: Vec<&'static str> = SOURCE_KEYS
            .into_iter()
            .zip(self.paths())
            .filter_map(|(key, path)| path.map(|_| key))
            .collect();
        Ok(Some(match given.as_slice() {
            [] => return Ok(None),
            ["csv", "images"] => SourceKind::Csv,
            ["set"] => SourceKind::Set,
            ["afew_va"] => SourceKind::AfewVa,
            ["aff_wild2", "frames"] => SourceKind::AffWild2,
            _ => return Err(PrepError::SourceChoice { given }),
        }))
    }

    /// The input these name; `None` when they name none. A CSV is told apart by its
    /// first line ([`Input::from_csv`]).
    pub fn input(&self) -> Result<Option<Input>, PrepError> {
        let input = match self.kind()? {
            None => return Ok(None),
            Some(SourceKind::Csv) => {
                Input::from_csv(self.path(&self.csv), self.path(&self.images))?
            }
            Some(SourceKind::Set) => Input::AffectNetNewer {
                dir: self.path(&self.set),
            },
            Some(SourceKind::AfewVa) => Input::AfewVa {
                dir: self.path(&self.afew_va),
            },
            Some(SourceKind::AffWild2) => Input::AffWild2 {
                annotations: self.path(&self.aff_wild2),
                frames: self.path(&self.frames),
            },
        };
        Ok(Some(input))
    }

    /// Every path given, in [`SOURCE_KEYS`] order (`None` where not given).
    pub fn paths(&self) -> [Option<&std::path::Path>; 6] {
        [
            &self.csv,
            &self.images,
            &self.set,
            &self.afew_va,
            &self.aff_wild2,
            &self.frames,
        ]
        .map(Option::as_deref)
    }

    /// Each given path with `f` applied (valar.toml resolves them from its folder).
    pub fn map_paths(self, f: impl Fn(PathBuf) -> PathBuf) -> Self {
        SourceArgs {
            csv: self.csv.map(&f),
            images: self.images.map(&f),
            set: self.set.map(&f),
            afew_va: self.afew_va.map(&f),
            aff_wild2: self.aff_wild2.map(&f),
            frames: self.frames.map(&f),
        }
    }

    fn path(&self, p: &Option<PathBuf>) -> PathBuf {
        p.clone().unwrap_or_default()
    }
}

/// A parsed input.
pub(crate) struct Loaded {
    /// Rows that parsed, in input order.
    pub table: DataFrame,
    /// Rows that did not.
    pub rejects: Vec<Reject>,
    /// Data rows read, parsed or not.
    pub rows_read: usize,
    /// What relative image paths are joined to.
    pub image_root: PathBuf,
    /// What the input held, in words ("… holds 0 files, 3 folders"), for an error
    /// when nothing in it is usable.
    pub found: String,
}

/// The table's columns holding each row's eye centres, in full-image pixels.
pub(crate) const EYE_COLUMNS: [&str; 4] =
    ["eye_left_x", "eye_left_y", "eye_right_x", "eye_right_y"];

/// The [`EYE_COLUMNS`] of rows whose eyes are `eyes`.
pub(crate) fn eye_columns(eyes: &[Option<valar_face::Eyes>]) -> [Column; 4] {
    let part = |f: fn(&valar_face::Eyes) -> f64| -> Vec<Option<f64>> {
        eyes.iter().map(|e| e.as_ref().map(f)).collect()
    };
    [
        Column::new(EYE_COLUMNS[0].into(), part(|e| e.left[0])),
        Column::new(EYE_COLUMNS[1].into(), part(|e| e.left[1])),
        Column::new(EYE_COLUMNS[2].into(), part(|e| e.right[0])),
        Column::new(EYE_COLUMNS[3].into(), part(|e| e.right[1])),
    ]
}

/// Each row's eyes from a table's [`EYE_COLUMNS`], as [`eye_columns`] wrote them.
pub(crate) fn eyes_of(table: &DataFrame) -> PolarsResult<Vec<Option<valar_face::Eyes>>> {
    let column = |n: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(table.column(n)?.f64()?.iter().collect())
    };
    let [lx, ly, rx, ry] = EYE_COLUMNS.map(column);
    let (lx, ly, rx, ry) = (lx?, ly?, rx?, ry?);
    Ok((0..table.height())
        .map(|i| match (lx[i], ly[i], rx[i], ry[i]) {
            (Some(a), Some(b), Some(c), Some(d)) => Some(valar_face::Eyes {
                left: [a, b],
                right: [c, d],
            }),
            _ => None,
        })
        .collect())
}

/// Reads any input kind. With `landmarks` (`prepare --align`), every row kept has its eyes:
/// a row whose landmarks are missing or unusable is a `no_landmarks` reject, and an input
/// that never carries landmarks is an error. Without it, only inputs whose landmarks cost
/// nothing to read (AFEW-VA's) fill the eye columns.
pub(crate) fn load(input: &Input, landmarks: bool) -> Result<Loaded, PrepError> {
    if landmarks {
        let none = match input {
            Input::AffWild2 { .. } => Some("Aff-Wild2's VA annotations carry"),
            Input::VideoCsv { .. } => Some("a video CSV carries"),
            _ => None,
        };
        if let Some(what) = none {
            return Err(PrepError::Config(format!(
                "--align levels faces by the eyes of their 68 landmarks, and {what} none \
                 (AffectNet's both releases, AFEW-VA and a CSV with a facial_landmarks column do)"
            )));
        }
    }
    match input {
        Input::AffectNet { csv, images } => csv::load_affectnet(csv, images, landmarks),
        Input::Generic { csv, images } => csv::load_generic(csv, images, landmarks),
        Input::AffectNetNewer { dir } => newer::load(dir, landmarks),
        Input::AfewVa { dir } => afew_va::load(dir, landmarks),
        Input::AffWild2 {
            annotations,
            frames,
        } => aff_wild2::load(annotations, frames),
        Input::VideoCsv { csv, images } => video_csv::load(csv, images),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_tells_which_keys_go_together() {
        let p = |s: &str| Some(PathBuf::from(s));
        let none = SourceArgs::default();
        assert_eq!(none.kind().unwrap(), None);
        let set = SourceArgs {
            set: p("s"),
            ..SourceArgs::default()
        };
        assert_eq!(set.kind().unwrap(), Some(SourceKind::Set));
        assert_eq!(
            set.input().unwrap(),
            Some(Input::AffectNetNewer { dir: "s".into() })
        );
        let aff = SourceArgs {
            aff_wild2: p("a"),
            frames: p("f"),
            ..SourceArgs::default()
        };
        assert_eq!(aff.kind().unwrap(), Some(SourceKind::AffWild2));
        for bad in [
            SourceArgs {
                aff_wild2: p("a"),
                ..SourceArgs::default()
            },
            SourceArgs {
                set: p("s"),
                afew_va: p("a"),
                ..SourceArgs::default()
            },
        ] {
            let e = bad.kind().unwrap_err();
            let words = e.setting_message(&|k| format!("--{}", k.replace('_', "-")));
            assert!(
                words.unwrap().starts_with(
                    "give --csv with --images, --set, --afew-va, or --aff-wild2 with --frames"
                ),
                "{e}"
            );
        }
    }
}
