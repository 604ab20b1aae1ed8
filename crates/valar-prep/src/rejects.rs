use polars::prelude::*;
use std::path::Path;

/// A dropped input row, as written to `rejects.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Line number in the CSV (1 = the first line, header included), or the
    /// 1-based position of the image for AffectNet's newer release.
    pub row: u64,
    /// The image path as the input gave it.
    pub path: String,
    /// A short, stable code.
    pub reason: &'static str,
    /// A sentence for a human.
    pub detail: String,
}

/// Reason codes for rows dropped before any image is opened.
pub(crate) mod reason {
    /// Wrong number of fields, or a field that is not a number.
    pub const MALFORMED: &str = "malformed_row";
    /// `--align` was asked for and the row's 68 landmarks are missing or cannot place the eyes.
    pub const NO_LANDMARKS: &str = "no_landmarks";
    /// Valence or arousal is −2: AffectNet's mark for Uncertain and Non-Face.
    pub const NO_LABEL: &str = "no_label";
    /// Expression 8 (None), 9 (Uncertain) or 10 (Non-Face).
    pub const EXPRESSION: &str = "excluded_expression";
    /// A label outside [-1, 1].
    pub const OUT_OF_RANGE: &str = "label_out_of_range";
    /// A video frame annotated −5 (Aff-Wild2's mark for an invalid frame).
    pub const INVALID_FRAME: &str = "invalid_frame";
    /// A video frame with a label but no image on disk.
    pub const MISSING_FRAME: &str = "missing_frame";
    /// Frames on disk past the last line of their video's annotation file.
    pub const UNLABELLED_FRAMES: &str = "unlabelled_frames";
    /// An annotation file with its header and no frame lines.
    pub const NO_FRAME_LINES: &str = "no_frame_lines";
}

/// Writes `rejects.csv`: `source,row,path,reason,detail`, sorted by row.
pub(crate) fn write_rejects(
    path: &Path,
    source: &Path,
    rejects: &mut [Reject],
) -> PolarsResult<DataFrame> {
    rejects.sort_by(|a, b| a.row.cmp(&b.row).then(a.reason.cmp(b.reason)));
    let n = rejects.len();
    let source = source.display().to_string();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("source".into(), vec![source.as_str(); n]),
            Column::new(
                "row".into(),
                rejects.iter().map(|r| r.row).collect::<Vec<_>>(),
            ),
            Column::new(
                "path".into(),
                rejects.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "reason".into(),
                rejects.iter().map(|r| r.reason).collect::<Vec<_>>(),
            ),
            Column::new(
                "detail".into(),
                rejects
                    .iter()
                    .map(|r| r.detail.as_str())
                    .collect::<Vec<_>>(),
            ),
        ],
    )?;
    crate::write::write_csv(path, &mut df)?;
    Ok(df)
}
