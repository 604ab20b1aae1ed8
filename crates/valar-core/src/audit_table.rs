use crate::{CoreError, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The columns of `audit.csv`, in order.
pub const AUDIT_COLUMNS: [&str; 9] = [
    "source",
    "row",
    "path",
    "kind",
    "group",
    "score",
    "split",
    "expression",
    "detail",
];

/// What an audit found about one face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// The same file bytes (SHA-256) as another member of its group.
    ExactDuplicate,
    /// The same decoded face as another member (re-encoded or resized), though the
    /// file bytes differ.
    SameFace,
    /// A perceptual-hash neighbour of another member (shifted, brightened, …).
    NearDuplicate,
    /// A member of a duplicate group that spans splits of one prepared folder, or
    /// the audited data and an `--against` folder.
    Leak,
    /// The face crop is dark.
    Dark,
    /// The face crop is overexposed.
    Light,
    /// The face crop has little edge energy.
    Blurry,
    /// The face crop's gray-level entropy is low.
    LowInformation,
    /// The face box is smaller than the prepared face size.
    SmallFace,
    /// The face box is much narrower or wider than it is tall.
    OddAspect,
    /// The source image holds no colour.
    Grayscale,
    /// The expression contradicts the valence or arousal.
    LabelConflict,
    /// A label outside [-1, 1] (other than AffectNet's −2 marks).
    LabelOutOfRange,
    /// A large residual of a trained run's prediction: a candidate label error.
    Residual,
}

impl AuditKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [AuditKind; 14] = [
        AuditKind::ExactDuplicate,
        AuditKind::SameFace,
        AuditKind::NearDuplicate,
        AuditKind::Leak,
        AuditKind::Dark,
        AuditKind::Light,
        AuditKind::Blurry,
        AuditKind::LowInformation,
        AuditKind::SmallFace,
        AuditKind::OddAspect,
        AuditKind::Grayscale,
        AuditKind::LabelConflict,
        AuditKind::LabelOutOfRange,
        AuditKind::Residual,
    ];

    /// The name written in `audit.csv` (and used as the reject reason).
    pub fn name(self) -> &'static str {
        match self {
            AuditKind::ExactDuplicate => "exact_duplicate",
            AuditKind::SameFace => "same_face",
            AuditKind::NearDuplicate => "near_duplicate",
            AuditKind::Leak => "leak",
            AuditKind::Dark => "dark",
            AuditKind::Light => "light",
            AuditKind::Blurry => "blurry",
            AuditKind::LowInformation => "low_information",
            AuditKind::SmallFace => "small_face",
            AuditKind::OddAspect => "odd_aspect",
            AuditKind::Grayscale => "grayscale",
            AuditKind::LabelConflict => "label_conflict",
            AuditKind::LabelOutOfRange => "label_out_of_range",
            AuditKind::Residual => "residual",
        }
    }

    /// The kind named `name` in `audit.csv`.
    pub fn from_name(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether findings of this kind come in groups of which one member may be kept.
    pub fn is_duplicate(self) -> bool {
        matches!(
            self,
            AuditKind::ExactDuplicate | AuditKind::SameFace | AuditKind::NearDuplicate
        )
    }
}

/// One row of `audit.csv`: one finding about one face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// The table `row` refers to: the input CSV (or newer-release folder), or a
    /// prepared folder's `manifest.csv`, or a run's `predictions.csv`.
    pub source: String,
    /// The row in `source`: the CSV line number as `rejects.csv` counts it, or the
    /// manifest's or predictions' `index`.
    pub row: u64,
    /// The image path as the source names it.
    pub path: String,
    /// What was found.
    pub kind: AuditKind,
    /// The duplicate or leak group, shared by its members; empty for flags.
    pub group: Option<u64>,
    /// How strongly: the measure the flag's threshold applies to (see `valar audit --help`).
    pub score: f64,
    /// The face's split, for faces of a prepared folder.
    pub split: Option<String>,
    /// The face's expression code, if known.
    pub expression: Option<i32>,
    /// A sentence for a human: the labels, the threshold, the other members.
    pub detail: String,
}

/// Writes `audit.csv` atomically, rows in the order given.
pub fn write_audit(path: &Path, rows: &[AuditRow]) -> Result<(), CoreError> {
    write_atomic(path, |w| {
        // The header is written by hand so that an audit with no findings still has one.
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(w);
        writer.write_record(AUDIT_COLUMNS)?;
        for row in rows {
            writer.serialize(row)?;
        }
        writer.flush()
    })
}

/// Reads `audit.csv`, checking its header; a bad row is named by its line.
pub fn read_audit(path: &Path) -> Result<Vec<AuditRow>, CoreError> {
    crate::check_utf8_text(path)?;
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| CoreError::format(path, e.to_string()))?;
    let header = reader
        .headers()
        .map_err(|e| CoreError::format(path, e.to_string()))?
        .clone();
    let found: Vec<&str> = header.iter().collect();
    if found != AUDIT_COLUMNS {
        return Err(CoreError::format(
            path,
            format!(
                "unexpected columns: found [{}], expected [{}]",
                found.join(", "),
                AUDIT_COLUMNS.join(", ")
            ),
        ));
    }
    reader
        .deserialize::<AuditRow>()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| CoreError::format(path, format!("line {}: {e}", i + 2))))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(kind: AuditKind, group: Option<u64>) -> AuditRow {
        AuditRow {
            source: "a.csv".into(),
            row: 7,
            path: "1/x, y.jpg".into(),
            kind,
            group,
            score: 0.25,
            split: None,
            expression: Some(1),
            detail: "valence 0.5, \"quoted\"".into(),
        }
    }

    #[test]
    fn rows_round_trip_with_commas_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.csv");
        let rows = vec![
            row(AuditKind::NearDuplicate, Some(3)),
            row(AuditKind::Dark, None),
        ];
        write_audit(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&AUDIT_COLUMNS.join(",")), "{text}");
        assert!(text.contains(",near_duplicate,3,"), "{text}");
        assert_eq!(read_audit(&path).unwrap(), rows);
    }

    #[test]
    fn an_unknown_kind_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.csv");
        std::fs::write(
            &path,
            format!(
                "{}\na.csv,2,x.jpg,dark,,0.1,,,ok\na.csv,3,y.jpg,fuzzy,,0.1,,,no\n",
                AUDIT_COLUMNS.join(",")
            ),
        )
        .unwrap();
        let err = read_audit(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::from_name(k.name()), Some(k));
        }
        assert_eq!(AuditKind::from_name("fuzzy"), None);
    }
}
