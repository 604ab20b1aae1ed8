//! One row's fields parsed into the sample table, whichever CSV reader split them: polars
//! ([`super::csv`]) or the hand-split AffectNet lines ([`super::lines`]). Its own module so
//! that both readers use it without using each other.

use super::Loaded;
use crate::rejects::reason;
use crate::{PrepError, Reject};
use polars::prelude::*;
use std::path::Path;
use valar_face::Eyes;

/// Which input column feeds each sample field.
pub(super) struct Mapping<'a> {
    pub path: &'a str,
    pub boxes: Option<[&'a str; 4]>,
    /// AffectNet needs a box on every row; a generic CSV may leave a row's box empty.
    pub box_required: bool,
    pub expression: Option<&'a str>,
    pub valence: &'a str,
    pub arousal: &'a str,
    /// The 68 landmarks' column, read only when faces are aligned (`prepare --align`).
    pub landmarks: Option<&'a str>,
}

/// Where AffectNet's fields are: every row has a box.
pub(super) fn affectnet_mapping() -> Mapping<'static> {
    Mapping {
        path: "subDirectory_filePath",
        boxes: Some(["face_x", "face_y", "face_width", "face_height"]),
        box_required: true,
        expression: Some("expression"),
        valence: "valence",
        arousal: "arousal",
        landmarks: None,
    }
}

/// Rows as they parse, column by column, and the rows that did not.
pub(super) struct ParsedRows {
    /// Data rows seen, parsed or not.
    pub read: usize,
    pub row: Vec<u64>,
    pub path: Vec<String>,
    pub valence: Vec<f64>,
    arousal: Vec<f64>,
    boxes: [Vec<Option<i64>>; 4],
    expression: Vec<Option<i32>>,
    eyes: Vec<Option<Eyes>>,
    pub rejects: Vec<Reject>,
}

impl ParsedRows {
    pub(super) fn with_capacity(n: usize) -> Self {
        ParsedRows {
            read: 0,
            row: Vec::with_capacity(n),
            path: Vec::with_capacity(n),
            valence: Vec::with_capacity(n),
            arousal: Vec::with_capacity(n),
            boxes: std::array::from_fn(|_| Vec::with_capacity(n)),
            expression: Vec::with_capacity(n),
            eyes: Vec::with_capacity(n),
            rejects: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, row: u64, m: &Mapping, f: &RowFields) {
        self.read += 1;
        let path = f.path.unwrap_or("").to_string();
        let eyes = match m.landmarks {
            None => Ok(None),
            Some(name) => landmarks(f.landmarks, name).map(Some),
        };
        let parsed = match (parse_one(m, f), eyes) {
            (Ok(p), Ok(eyes)) => Ok((p, eyes)),
            (Err(detail), _) => Err((reason::MALFORMED, detail)),
            (Ok(_), Err(detail)) => Err((reason::NO_LANDMARKS, detail)),
        };
        match parsed {
            Ok(((v, a, b, e), eyes)) => {
                self.row.push(row);
                self.path.push(path);
                self.valence.push(v);
                self.arousal.push(a);
                for k in 0..4 {
                    self.boxes[k].push(b.map(|b| b[k]));
                }
                self.expression.push(e);
                self.eyes.push(eyes);
            }
            Err((reason, detail)) => self.rejects.push(Reject {
                row,
                path,
                reason,
                detail,
            }),
        }
    }

    /// Appends `other`, whose rows come after these.
    pub(super) fn append(&mut self, other: ParsedRows) {
        self.read += other.read;
        self.row.extend(other.row);
        self.path.extend(other.path);
        self.valence.extend(other.valence);
        self.arousal.extend(other.arousal);
        for (mine, theirs) in self.boxes.iter_mut().zip(other.boxes) {
            mine.extend(theirs);
        }
        self.expression.extend(other.expression);
        self.eyes.extend(other.eyes);
        self.rejects.extend(other.rejects);
    }

    pub(super) fn into_loaded(self, csv: &Path, images: &Path) -> Result<Loaded, PrepError> {
        let rows_read = self.read;
        let [bx, by, bw, bh] = self.boxes;
        let n = self.row.len();
        let mut columns = vec![
            Column::new("row".into(), self.row),
            Column::new("path".into(), self.path),
            Column::new("face_x".into(), bx),
            Column::new("face_y".into(), by),
            Column::new("face_width".into(), bw),
            Column::new("face_height".into(), bh),
            Column::new("expression".into(), self.expression),
            Column::new("valence".into(), self.valence),
            Column::new("arousal".into(), self.arousal),
        ];
        columns.extend(super::eye_columns(&self.eyes));
        let table = DataFrame::new(n, columns).map_err(PrepError::table(csv))?;
        Ok(Loaded {
            table,
            rejects: self.rejects,
            rows_read,
            image_root: images.to_path_buf(),
            found: format!("{} has {rows_read} data rows", csv.display()),
        })
    }
}

type Parsed = (f64, f64, Option<[i64; 4]>, Option<i32>);

/// The fields of one row that valar reads, wherever they came from.
#[derive(Clone, Copy, Default)]
pub(super) struct RowFields<'a> {
    pub path: Option<&'a str>,
    pub valence: Option<&'a str>,
    pub arousal: Option<&'a str>,
    pub boxes: [Option<&'a str>; 4],
    pub expression: Option<&'a str>,
    /// The 68 landmarks, `x;y;x;y;…`.
    pub landmarks: Option<&'a str>,
    /// Text past the header's last column: the row has too many fields.
    pub extra: Option<&'a str>,
}

/// A field's trimmed text, or why it is missing.
fn field<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, String> {
    match value.map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("field `{name}` is missing or empty")),
    }
}

fn number(value: Option<&str>, name: &str) -> Result<f64, String> {
    let s = field(value, name)?;
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("field `{name}` is `{s}`, not a number"))
}

fn integer(value: Option<&str>, name: &str) -> Result<i64, String> {
    let s = field(value, name)?;
    s.parse::<i64>()
        .map_err(|_| format!("field `{name}` is `{s}`, not an integer"))
}

/// The eyes of a row's landmarks field, or why it cannot place them.
fn landmarks(value: Option<&str>, name: &str) -> Result<Eyes, String> {
    let text = field(value, name).map_err(|e| format!("{e}: --align needs the 68 landmarks"))?;
    Eyes::parse(text).map_err(|e| format!("field `{name}`: {e}"))
}

/// Parses one row's fields, or says in a sentence why they are malformed.
fn parse_one(m: &Mapping, f: &RowFields) -> Result<Parsed, String> {
    if let Some(surplus) = f.extra {
        return Err(format!(
            "more fields than the header has (surplus starts with `{surplus}`)"
        ));
    }
    field(f.path, m.path)?;
    let v = number(f.valence, m.valence)?;
    let a = number(f.arousal, m.arousal)?;
    let b = match m.boxes {
        Some(names) => {
            let empty = f
                .boxes
                .iter()
                .all(|b| b.is_none_or(|s| s.trim().is_empty()));
            if empty && !m.box_required {
                None
            } else {
                let mut out = [0i64; 4];
                for k in 0..4 {
                    out[k] = integer(f.boxes[k], names[k])?;
                }
                Some(out)
            }
        }
        None => None,
    };
    let e = match m.expression {
        Some(name) => match f.expression.map(str::trim) {
            Some(s) if !s.is_empty() => Some(
                s.parse::<i32>()
                    .map_err(|_| format!("field `{name}` is `{s}`, not an expression code"))?,
            ),
            _ => None,
        },
        None => None,
    };
    Ok((v, a, b, e))
}
