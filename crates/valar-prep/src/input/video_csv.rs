use super::Loaded;
use super::frames::{FrameRow, Frames};
use crate::rejects::reason;
use crate::{PrepError, Reject};
use std::collections::HashMap;
use std::path::Path;
use valar_core::FaceBox;

/// The columns a video CSV must have.
const REQUIRED: [&str; 5] = ["video", "frame", "path", "valence", "arousal"];
/// The columns it may have.
const OPTIONAL: [&str; 6] = [
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "split",
    "subject",
];

/// Reads a generic video CSV: `video`, `frame`, `path`, `valence`, `arousal`, and
/// optionally a box (`face_x`, `face_y`, `face_width`, `face_height`), a `split` (train,
/// val or test; one video, or one subject, may not have two) and a `subject` that keeps
/// that person's videos on one side of the split. Other columns are ignored.
pub(super) fn load(csv_path: &Path, images: &Path) -> Result<Loaded, PrepError> {
    valar_core::check_utf8_text(csv_path)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(csv_path)
        .map_err(|e| PrepError::io(csv_path)(std::io::Error::other(e)))?;
    let at = columns(csv_path, &mut reader)?;
    let mut out = Frames::default();
    for record in reader.records() {
        out.rows_read += 1;
        match record {
            Ok(record) => {
                let verdict = read_record(&record, &at, images, out.rows_read);
                out.take(verdict);
            }
            Err(e) => {
                let line = e.position().map_or(out.rows_read as u64 + 1, |p| p.line());
                out.rejects.push(Reject {
                    row: line,
                    path: String::new(),
                    reason: reason::MALFORMED,
                    detail: e.to_string(),
                });
            }
        }
    }
    let found = format!("{} holds {} data rows", csv_path.display(), out.rows_read);
    out.into_loaded(csv_path, images, found)
}

/// Each column's position by name, once the header is checked to hold every
/// [`REQUIRED`] column.
fn columns(
    csv_path: &Path,
    reader: &mut csv::Reader<std::fs::File>,
) -> Result<HashMap<String, usize>, PrepError> {
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| PrepError::io(csv_path)(std::io::Error::other(e)))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let at: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|c| !at.contains_key(**c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(PrepError::MissingColumns {
            path: csv_path.to_path_buf(),
            missing,
            found: header,
            expected: REQUIRED
                .iter()
                .chain(&OPTIONAL)
                .map(|c| c.to_string())
                .collect(),
        });
    }
    Ok(at)
}

/// One data row (the `rows_read`-th) as a frame whose image is on disk, or why not;
/// its row in `rejects.csv` is its line in the file.
fn read_record(
    record: &csv::StringRecord,
    at: &HashMap<String, usize>,
    images: &Path,
    rows_read: usize,
) -> Result<FrameRow, Reject> {
    let line = record.position().map_or(rows_read as u64 + 1, |p| p.line());
    let field = |name: &str| {
        at.get(name)
            .and_then(|&i| record.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let path = field("path").unwrap_or("").to_string();
    let reject = |reason, detail: String| Reject {
        row: line,
        path: path.clone(),
        reason,
        detail,
    };
    match parse_row(&field) {
        Err(why) => Err(reject(reason::MALFORMED, why)),
        Ok(_) if !images.join(&path).is_file() => Err(reject(
            reason::MISSING_FRAME,
            format!("{} is not on disk", images.join(&path).display()),
        )),
        Ok(row) => Ok(FrameRow {
            row: line,
            path,
            ..row
        }),
    }
}

/// A row's fields, checked; `row` and `path` are filled in by the caller.
fn parse_row<'a>(field: &dyn Fn(&str) -> Option<&'a str>) -> Result<FrameRow, String> {
    let text = |name: &str| field(name).ok_or_else(|| format!("`{name}` is empty"));
    let number = |name: &str| -> Result<f64, String> {
        let s = text(name)?;
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{name} `{s}` is not a number"))
    };
    let video = text("video")?.to_string();
    let frame = text("frame")?;
    let frame = frame
        .parse::<u64>()
        .map_err(|_| format!("frame `{frame}` is not a frame number"))?;
    let face_box = match ["face_x", "face_y", "face_width", "face_height"].map(field) {
        [None, None, None, None] => None,
        [Some(_), Some(_), Some(_), Some(_)] => {
            let n = |name: &str| -> Result<i64, String> {
                let s = text(name)?;
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|v| v.round() as i64)
                    .ok_or_else(|| format!("{name} `{s}` is not a number"))
            };
            Some(FaceBox {
                x: n("face_x")?,
                y: n("face_y")?,
                width: n("face_width")?,
                height: n("face_height")?,
            })
        }
        _ => return Err("the box needs all of face_x, face_y, face_width, face_height".into()),
    };
    let given_split = match field("split") {
        None => None,
        Some("train") => Some("train"),
        Some("val" | "validation") => Some("val"),
        Some("test") => Some("test"),
        Some(other) => return Err(format!("split `{other}` is not train, val or test")),
    };
    let group = field("subject").map_or_else(|| video.clone(), |s| format!("subject:{s}"));
    Ok(FrameRow {
        row: 0,
        path: String::new(),
        face_box,
        eyes: None,
        valence: number("valence")?,
        arousal: number("arousal")?,
        video,
        frame,
        group,
        given_split,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_videos_boxes_splits_and_rejects_bad_rows_by_line() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a/1.png", "a/2.png", "b/1.png"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let csv = dir.path().join("v.csv");
        std::fs::write(
            &csv,
            "video,frame,path,valence,arousal,split,subject\n\
             a,1,a/1.png,0.5,-0.5,train,s1\n\
             a,2,a/2.png,x,0,train,s1\n\
             b,1,b/1.png,0.1,0.2,validation,\n\
             b,2,b/2.png,0.1,0.2,val,\n\
             b,3,b/3.png,0.1,0.2,holdout,\n",
        )
        .unwrap();
        let l = load(&csv, dir.path()).unwrap();
        assert_eq!(l.rows_read, 5);
        let col = |n: &str| -> Vec<String> {
            let c = l.table.column(n).unwrap().str().unwrap().clone();
            c.iter().flatten().map(String::from).collect()
        };
        assert_eq!(col("path"), ["a/1.png", "b/1.png"]);
        assert_eq!(col("given_split"), ["train", "val"]);
        assert_eq!(col("group"), ["subject:s1", "b"]);
        let rejected: Vec<(u64, &str)> = l.rejects.iter().map(|r| (r.row, r.reason)).collect();
        assert_eq!(
            rejected,
            [
                (3, reason::MALFORMED),
                (5, reason::MISSING_FRAME),
                (6, reason::MALFORMED)
            ]
        );
        assert!(l.rejects[2].detail.contains("holdout"));
    }

    #[test]
    fn missing_columns_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("v.csv");
        std::fs::write(&csv, "video,path,valence,arousal\n").unwrap();
        let err = load(&csv, dir.path()).err().unwrap().to_string();
        assert!(err.contains("\"frame\""), "{err}");
    }
}
