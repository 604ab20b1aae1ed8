use crate::Reject;
use crate::rejects::reason;
use polars::prelude::*;
use valar_face::{FaceError, check_relative};

/// AffectNet's names for the expression codes valar excludes.
fn expression_name(code: i32) -> Option<&'static str> {
    match code {
        8 => Some("None"),
        9 => Some("Uncertain"),
        10 => Some("Non-Face"),
        _ => None,
    }
}

/// Drops rows that can never be used, whatever the images hold: −2 labels,
/// expressions 8–10, labels outside [-1, 1], paths that escape the image root and
/// boxes without area. Each dropped row becomes one reject with its reason.
pub(crate) fn exclude(table: &DataFrame, rejects: &mut Vec<Reject>) -> PolarsResult<DataFrame> {
    let rows = table.column("row")?.u64()?;
    let paths = table.column("path")?.str()?;
    let valence = table.column("valence")?.f64()?;
    let arousal = table.column("arousal")?.f64()?;
    let expression = table.column("expression")?.i32()?;
    let width = table.column("face_width")?.i64()?;
    let height = table.column("face_height")?.i64()?;

    let mut keep = Vec::with_capacity(table.height());
    for i in 0..table.height() {
        let v = valence.get(i).unwrap_or(f64::NAN);
        let a = arousal.get(i).unwrap_or(f64::NAN);
        let path = paths.get(i).unwrap_or("");
        let verdict: Option<(&'static str, String)> = if v == -2.0 || a == -2.0 {
            Some((
                reason::NO_LABEL,
                format!(
                    "valence {v}, arousal {a}: −2 marks AffectNet's Uncertain and Non-Face rows"
                ),
            ))
        } else if let Some(name) = expression.get(i).and_then(expression_name) {
            Some((
                reason::EXPRESSION,
                format!(
                    "expression {} ({name}) is excluded",
                    expression.get(i).unwrap_or_default()
                ),
            ))
        } else if !(-1.0..=1.0).contains(&v) || !(-1.0..=1.0).contains(&a) {
            Some((
                reason::OUT_OF_RANGE,
                format!("valence {v}, arousal {a}: labels must lie in [-1, 1]"),
            ))
        } else if let Err(e) = check_relative(path) {
            Some((e.reason(), format!("`{path}` {e}")))
        } else if let (Some(w), Some(h)) = (width.get(i), height.get(i))
            && (w <= 0 || h <= 0)
        {
            let e = FaceError::EmptyBox(valar_core::FaceBox {
                x: 0,
                y: 0,
                width: w,
                height: h,
            });
            Some((e.reason(), format!("face box is {w}×{h}: it has no area")))
        } else {
            None
        };
        match verdict {
            None => keep.push(true),
            Some((reason, detail)) => {
                keep.push(false);
                rejects.push(Reject {
                    row: rows.get(i).unwrap_or_default(),
                    path: path.to_string(),
                    reason,
                    detail,
                });
            }
        }
    }
    table.filter(&BooleanChunked::from_slice("keep".into(), &keep))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(rows: &[(&str, f64, f64, Option<i32>, i64)]) -> DataFrame {
        let n = rows.len();
        DataFrame::new(
            n,
            vec![
                Column::new("row".into(), (1..=n as u64).collect::<Vec<_>>()),
                Column::new("path".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("face_x".into(), vec![Some(0i64); n]),
                Column::new("face_y".into(), vec![Some(0i64); n]),
                Column::new(
                    "face_width".into(),
                    rows.iter().map(|r| Some(r.4)).collect::<Vec<_>>(),
                ),
                Column::new("face_height".into(), vec![Some(10i64); n]),
                Column::new(
                    "expression".into(),
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                ),
                Column::new(
                    "valence".into(),
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                ),
                Column::new(
                    "arousal".into(),
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn each_rule_drops_its_rows_with_its_reason() {
        let t = table(&[
            ("ok.jpg", 0.5, -0.5, Some(1), 10),
            ("a.jpg", -2.0, -2.0, Some(9), 10),
            ("b.jpg", 0.1, 0.1, Some(8), 10),
            ("c.jpg", 0.1, 0.1, Some(10), 10),
            ("d.jpg", 1.5, 0.0, Some(1), 10),
            ("../e.jpg", 0.0, 0.0, None, 10),
            ("/etc/f.jpg", 0.0, 0.0, None, 10),
            ("g.jpg", 0.0, 0.0, None, 0),
            ("h.jpg", -1.0, 1.0, Some(0), 10),
        ]);
        let mut rejects = Vec::new();
        let kept = exclude(&t, &mut rejects).unwrap();
        let kept_paths: Vec<_> = kept
            .column("path")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(kept_paths, ["ok.jpg", "h.jpg"]);
        let reasons: Vec<_> = rejects.iter().map(|r| (r.row, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (2, "no_label"),
                (3, "excluded_expression"),
                (4, "excluded_expression"),
                (5, "label_out_of_range"),
                (6, "path_escapes_root"),
                (7, "path_escapes_root"),
                (8, "bad_box"),
            ]
        );
        assert!(rejects[1].detail.contains("None"));
    }
}
