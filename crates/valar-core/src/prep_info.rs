use crate::{CoreError, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The face sizes `valar prepare --size` accepts, in pixels: also the input sizes `predict`
/// and `evaluate` accept from a model, so that a foreign model cannot make them allocate
/// faces no prepared folder could hold.
pub const FACE_SIZES: std::ops::RangeInclusive<usize> = 8..=1024;

/// The margins `valar prepare --margin` accepts (context around the box, as a share of its
/// size): also the `valar.crop.margin` values a model may record.
pub const MARGINS: std::ops::RangeInclusive<f32> = 0.0..=1.0;

/// `prep.json`: everything `valar prepare` decided and counted, so a prepared
/// dataset can be explained (and reproduced) without the command line that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepInfo {
    /// valar's version.
    pub valar_version: String,
    /// The seed for sampling and splitting.
    pub seed: u64,
    /// Every parameter of the run, as resolved (input paths, quota, size, …).
    pub params: serde_json::Value,
    /// What was stratified: `"arousal"`, `"valence"` or `"grid"` (valence × arousal).
    pub stratify: String,
    /// Interval edges over [-1, 1] (for a grid, the edges of both axes).
    pub edges: Vec<f64>,
    /// Source rows read, valid or not.
    pub rows_read: usize,
    /// Faces written to `faces.npy`.
    pub faces: usize,
    /// Faces per split.
    pub splits: BTreeMap<String, usize>,
    /// Counts per interval (grid cell).
    pub intervals: Vec<IntervalCount>,
    /// Intervals that had fewer usable rows than the quota.
    pub short_intervals: Vec<i64>,
    /// Dropped rows per reason (the rows themselves are in `rejects.csv`).
    pub rejects_by_reason: BTreeMap<String, usize>,
    /// Wall-clock seconds per phase, and in total. Kept out of `prep.json`, in `timings.json`
    /// beside it ([`PrepInfo::write_timings`]): they change on every run, and `prep.json` (whose
    /// hash a model records) must be the same bytes for the same seed and inputs.
    #[serde(skip)]
    pub timings_s: BTreeMap<String, f64>,
    /// Label histograms of all valid source rows, before stratification.
    pub source_histograms: SourceHistograms,
}

/// Counts for one stratification interval (or grid cell).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalCount {
    /// Interval number: for a grid, `valence_bin * bins + arousal_bin`.
    pub interval: i64,
    /// Valence range `[lo, hi)` of the cell (the last one closed), if valence was stratified.
    pub valence: Option<[f64; 2]>,
    /// Arousal range of the cell, if arousal was stratified.
    pub arousal: Option<[f64; 2]>,
    /// Valid source rows that fell in it.
    pub available: usize,
    /// Faces wanted from it (`None` when the whole set was kept).
    pub quota: Option<usize>,
    /// Faces written from it.
    pub selected: usize,
    /// Chosen rows whose image could not be used, replaced by other rows where possible.
    pub image_rejects: usize,
}

/// Histograms over [-1, 1] of the valid source labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SourceHistograms {
    /// Bins per axis.
    pub bins: usize,
    /// Valence counts per bin.
    pub valence: Vec<u64>,
    /// Arousal counts per bin.
    pub arousal: Vec<u64>,
    /// Joint counts, `density[valence_bin][arousal_bin]`.
    pub density: Vec<Vec<u64>>,
}

impl PrepInfo {
    /// Writes `prep.json`, pretty-printed, atomically.
    pub fn write(&self, path: &Path) -> Result<(), CoreError> {
        write_atomic(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
    }

    /// Writes [`PrepInfo::timings_s`] to `path` (`timings.json`), pretty-printed, atomically.
    pub fn write_timings(&self, path: &Path) -> Result<(), CoreError> {
        write_atomic(path, |w| {
            serde_json::to_writer_pretty(&mut *w, &self.timings_s)
                .map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
    }

    /// Reads the timings [`PrepInfo::write_timings`] wrote; a folder without them (an older
    /// valar wrote the timings into `prep.json`) reads as none.
    pub fn read_timings(path: &Path) -> Result<BTreeMap<String, f64>, CoreError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| CoreError::format(path, e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(CoreError::io(path)(e)),
        }
    }

    /// Reads `prep.json` (without its timings: see [`PrepInfo::read_timings`]).
    pub fn read(path: &Path) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path).map_err(CoreError::io(path))?;
        serde_json::from_str(&text).map_err(|e| CoreError::format(path, e.to_string()))
    }

    /// The parameters later stages read, typed: see [`PrepParams`].
    pub fn prep_params(&self) -> PrepParams {
        PrepParams::of(&self.params)
    }
}

/// The parameters of `prep.json` that later stages read (the crop rule a model records, the
/// source named in a model card). A key that is missing or of another type reads as `None`
/// (as unknown), not as an error: the folder may come from an older valar or a hand edit, and
/// none of these keys is needed to use its faces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepParams {
    /// The input source (`params.input`).
    pub input: Option<InputParams>,
    /// The margin around each face box (`params.margin`).
    pub margin: Option<f64>,
    /// Whether images were decoded at full scale (`params.full_scale`).
    pub full_scale: Option<bool>,
    /// Where aligned faces put the eyes (`params.align_eye_distance` and
    /// `params.align_eye_y`, shares of the side); `None` when faces were cut from boxes.
    pub align: Option<(f64, f64)>,
}

/// `params.input` of `prep.json`: which kind of source, and its paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputParams {
    /// The source kind (`affect_net`, `afew_va`, …); empty if not recorded.
    pub kind: String,
    /// The source's other keys (its paths), in the file's key order, each as text (empty
    /// when not a string).
    pub paths: Vec<(String, String)>,
}

impl PrepParams {
    /// Reads the typed parameters from the untyped `params` of a `prep.json`.
    pub fn of(params: &serde_json::Value) -> Self {
        let input = params
            .get("input")
            .and_then(|i| i.as_object())
            .map(|o| InputParams {
                kind: o
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or_default()
                    .to_string(),
                paths: o
                    .iter()
                    .filter(|(k, _)| *k != "kind")
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
            });
        PrepParams {
            input,
            margin: params.get("margin").and_then(serde_json::Value::as_f64),
            align: params
                .get("align_eye_distance")
                .and_then(serde_json::Value::as_f64)
                .zip(
                    params
                        .get("align_eye_y")
                        .and_then(serde_json::Value::as_f64),
                ),
            full_scale: params
                .get("full_scale")
                .and_then(serde_json::Value::as_bool),
        }
    }

    /// The source kind, empty when not recorded.
    pub fn input_kind(&self) -> &str {
        self.input.as_ref().map_or("", |i| i.kind.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prep.json");
        let info = PrepInfo {
            valar_version: crate::VERSION.into(),
            seed: 7,
            params: serde_json::json!({"quota": 10}),
            stratify: "arousal".into(),
            edges: vec![-1.0, 0.0, 1.0],
            rows_read: 30,
            faces: 18,
            splits: BTreeMap::from([("train".into(), 16), ("val".into(), 2)]),
            intervals: vec![IntervalCount {
                interval: 0,
                valence: None,
                arousal: Some([-1.0, 0.0]),
                available: 8,
                quota: Some(10),
                selected: 8,
                image_rejects: 1,
            }],
            short_intervals: vec![0],
            rejects_by_reason: BTreeMap::from([("missing_file".into(), 1)]),
            timings_s: BTreeMap::from([("total".into(), 1.5)]),
            source_histograms: SourceHistograms::default(),
        };
        info.write(&path).unwrap();
        let timings = dir.path().join("timings.json");
        info.write_timings(&timings).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("timings"));
        let mut back = PrepInfo::read(&path).unwrap();
        assert!(
            back.timings_s.is_empty(),
            "the timings are not in prep.json"
        );
        back.timings_s = PrepInfo::read_timings(&timings).unwrap();
        assert_eq!(back, info);
        let missing = PrepInfo::read_timings(&dir.path().join("none.json")).unwrap();
        assert!(
            missing.is_empty(),
            "an older folder without timings.json reads as none"
        );
    }

    #[test]
    fn params_read_typed_and_unknown_when_missing_or_mistyped() {
        let p = PrepParams::of(&serde_json::json!({
            "input": {"kind": "afew_va", "root": "data/afew", "extra": 3},
            "margin": 0.25,
            "full_scale": true,
            "quota": 10
        }));
        assert_eq!(p.input_kind(), "afew_va");
        assert_eq!(
            p.input.unwrap().paths,
            [
                ("extra".to_string(), String::new()),
                ("root".to_string(), "data/afew".to_string())
            ]
        );
        assert_eq!((p.margin, p.full_scale), (Some(0.25), Some(true)));

        let odd = PrepParams::of(&serde_json::json!({"input": "x", "margin": "wide"}));
        assert_eq!(odd, PrepParams::default());
        assert_eq!(odd.input_kind(), "");
    }
}
