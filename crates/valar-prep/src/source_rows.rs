use crate::{Input, PrepError, Reject, input};
use polars::prelude::*;
use std::path::PathBuf;
use valar_core::FaceBox;

/// One parsed row of an input, before any exclusion rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// The row number `rejects.csv` gives it (CSV line, or image position for the newer release).
    pub row: u64,
    /// The image path as the input names it.
    pub path: String,
    /// The face box, if the input has one for this row.
    pub face_box: Option<FaceBox>,
    /// AffectNet's expression code, if known.
    pub expression: Option<i32>,
    /// Valence label.
    pub valence: f64,
    /// Arousal label.
    pub arousal: f64,
}

/// An input read exactly as `valar prepare` reads it.
#[derive(Debug, Clone)]
pub struct SourceRows {
    /// The rows that parsed, in input order.
    pub rows: Vec<SourceRow>,
    /// The rows that did not, with why.
    pub rejects: Vec<Reject>,
    /// What relative image paths are joined to.
    pub image_root: PathBuf,
}

/// Reads any input kind into plain rows, for stages (such as `valar audit`) that
/// must see the same rows, row numbers and boxes as `prepare`.
pub fn read_source(input: &Input) -> Result<SourceRows, PrepError> {
    let loaded = input::load(input, false)?;
    let rows = to_rows(&loaded.table).map_err(PrepError::table(input.source()))?;
    Ok(SourceRows {
        rows,
        rejects: loaded.rejects,
        image_root: loaded.image_root,
    })
}

fn to_rows(t: &DataFrame) -> PolarsResult<Vec<SourceRow>> {
    let int =
        |n: &str| -> PolarsResult<Vec<Option<i64>>> { Ok(t.column(n)?.i64()?.iter().collect()) };
    let (x, y, w, h) = (
        int("face_x")?,
        int("face_y")?,
        int("face_width")?,
        int("face_height")?,
    );
    let row = t.column("row")?.u64()?;
    let path = t.column("path")?.str()?;
    let expression = t.column("expression")?.i32()?;
    let valence = t.column("valence")?.f64()?;
    let arousal = t.column("arousal")?.f64()?;
    Ok((0..t.height())
        .map(|i| SourceRow {
            row: row.get(i).unwrap_or_default(),
            path: path.get(i).unwrap_or_default().to_string(),
            face_box: match (x[i], y[i], w[i], h[i]) {
                (Some(x), Some(y), Some(width), Some(height)) => Some(FaceBox {
                    x,
                    y,
                    width,
                    height,
                }),
                _ => None,
            },
            expression: expression.get(i),
            valence: valence.get(i).unwrap_or(f64::NAN),
            arousal: arousal.get(i).unwrap_or(f64::NAN),
        })
        .collect())
}
