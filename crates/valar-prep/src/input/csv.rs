use super::Loaded;
use super::rows::{Mapping, ParsedRows, RowFields, affectnet_mapping};
use crate::PrepError;
use polars::prelude::*;
use std::io::BufRead;
use std::path::Path;

/// AffectNet's original columns, in file order.
const AFFECTNET_COLUMNS: [&str; 9] = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
];

/// Catches rows with more fields than the header: polars puts the surplus here
/// instead of failing the whole file.
const EXTRA: &str = "__extra";
const ROW: &str = "__row";

/// Reads AffectNet's `training.csv` or `validation.csv`, with or without a header row.
/// With `landmarks`, each row's eyes come from `facial_landmarks` (see [`super::load`]).
pub(super) fn load_affectnet(
    csv: &Path,
    images: &Path,
    landmarks: bool,
) -> Result<Loaded, PrepError> {
    let first = first_line(csv)?;
    let fields = split_fields(&first);
    // Some copies of validation.csv have no header. A header is recognised by
    // AffectNet's first column name, or by non-numeric label columns that name a label.
    let has_header = fields.first().is_some_and(|f| f == "subDirectory_filePath")
        || (fields.len() >= 9
            && fields[7].parse::<f64>().is_err()
            && fields.iter().any(|f| f == "valence" || f == "arousal"));
    let names: Vec<String> = if has_header {
        fields
    } else {
        AFFECTNET_COLUMNS.iter().map(|s| s.to_string()).collect()
    };
    let needed: Vec<&str> = AFFECTNET_COLUMNS
        .iter()
        .copied()
        .filter(|&c| landmarks || c != "facial_landmarks")
        .collect();
    require(csv, &names, &needed, &AFFECTNET_COLUMNS)?;
    let mapping = Mapping {
        landmarks: landmarks.then_some("facial_landmarks"),
        ..affectnet_mapping()
    };
    if names == AFFECTNET_COLUMNS
        && let Some(rows) = super::lines::read(csv, has_header, &mapping)?
    {
        return rows.into_loaded(csv, images);
    }
    read_rows(csv, images, &names, has_header, &mapping)
}

/// Reads a CSV with a header naming `path`, `valence`, `arousal` and, optionally,
/// the four box columns and `expression`. Other columns are ignored.
/// With `landmarks`, each row's eyes come from a `facial_landmarks` column, then required.
pub(super) fn load_generic(
    csv: &Path,
    images: &Path,
    landmarks: bool,
) -> Result<Loaded, PrepError> {
    const BOX: [&str; 4] = ["face_x", "face_y", "face_width", "face_height"];
    let expected = [
        "path",
        "valence",
        "arousal",
        "face_x (optional)",
        "face_y (optional)",
        "face_width (optional)",
        "face_height (optional)",
        "expression (optional)",
        "facial_landmarks (with --align)",
    ];
    let names = split_fields(&first_line(csv)?);
    let mut needed = vec!["path", "valence", "arousal"];
    if landmarks {
        needed.push("facial_landmarks");
    }
    let box_count = BOX.iter().filter(|c| names.iter().any(|n| n == *c)).count();
    if box_count > 0 {
        // Half a box is a broken file, not an optional column.
        needed.extend(BOX);
    }
    require(csv, &names, &needed, &expected)?;
    let has = |c: &str| names.iter().any(|n| n == c);
    let mapping = Mapping {
        path: "path",
        boxes: (box_count > 0).then_some(BOX),
        box_required: false,
        expression: has("expression").then_some("expression"),
        valence: "valence",
        arousal: "arousal",
        landmarks: landmarks.then_some("facial_landmarks"),
    };
    read_rows(csv, images, &names, true, &mapping)
}

fn first_line(path: &Path) -> Result<String, PrepError> {
    valar_core::check_utf8_text(path)?;
    let file = std::fs::File::open(path).map_err(PrepError::io(path))?;
    let mut line = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .map_err(PrepError::io(path))?;
    Ok(line
        .trim_end_matches(['\n', '\r'])
        .trim_start_matches('\u{feff}')
        .to_string())
}

fn split_fields(line: &str) -> Vec<String> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').to_string())
        .collect()
}

fn require(
    path: &Path,
    found: &[String],
    needed: &[&str],
    expected: &[&str],
) -> Result<(), PrepError> {
    let missing: Vec<String> = needed
        .iter()
        .filter(|c| !found.iter().any(|f| f == *c))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(PrepError::MissingColumns {
        path: path.to_path_buf(),
        missing,
        found: found.to_vec(),
        expected: expected.iter().map(|s| s.to_string()).collect(),
    })
}

/// Reads every field as text with polars, then parses the fields valar uses; a row
/// with a missing, surplus or unparseable field becomes a `malformed_row` reject.
fn read_rows(
    csv: &Path,
    images: &Path,
    names: &[String],
    has_header: bool,
    m: &Mapping,
) -> Result<Loaded, PrepError> {
    let table_err = PrepError::table(csv);
    let mut all: Vec<String> = names.to_vec();
    all.push(EXTRA.to_string());
    let schema: Schema = all
        .iter()
        .map(|n| Field::new(n.as_str().into(), DataType::String))
        .collect();
    let mut used: Vec<&str> = vec![m.path, m.valence, m.arousal];
    used.extend(m.boxes.iter().flatten());
    used.extend(m.expression);
    used.extend(m.landmarks);
    used.push(EXTRA);
    let projection: Arc<[PlSmallStr]> = used.iter().map(|&c| PlSmallStr::from(c)).collect();
    let raw = CsvReadOptions::default()
        .with_has_header(false)
        .with_skip_rows(usize::from(has_header))
        .with_schema(Some(Arc::new(schema)))
        .with_columns(Some(projection))
        .map_parse_options(|o| o.with_truncate_ragged_lines(true))
        .with_row_index(Some(RowIndex {
            name: ROW.into(),
            // Line numbers as an editor shows them.
            offset: if has_header { 2 } else { 1 },
        }))
        .try_into_reader_with_file_path(Some(csv.to_path_buf()))
        .map_err(PrepError::table(csv))?
        .finish();
    let raw = match raw {
        // A header and nothing else: no rows, which the caller explains, rather than
        // polars' "empty CSV".
        Err(PolarsError::NoData(_)) => {
            return ParsedRows::with_capacity(0).into_loaded(csv, images);
        }
        other => other.map_err(table_err)?,
    };
    parse_rows(csv, images, raw, m)
}

fn parse_rows(csv: &Path, images: &Path, raw: DataFrame, m: &Mapping) -> Result<Loaded, PrepError> {
    let err = |e| PrepError::Table {
        path: csv.to_path_buf(),
        source: e,
    };
    let text = |name: &str| -> Result<StringChunked, PrepError> {
        Ok(raw.column(name).map_err(err)?.str().map_err(err)?.clone())
    };
    let rows: Vec<u64> = raw
        .column(ROW)
        .map_err(err)?
        .cast(&DataType::UInt64)
        .map_err(err)?
        .u64()
        .map_err(err)?
        .into_no_null_iter()
        .collect();
    let path = text(m.path)?;
    let extra = text(EXTRA)?;
    let valence = text(m.valence)?;
    let arousal = text(m.arousal)?;
    let boxes = match m.boxes {
        Some(cols) => Some(cols.map(&text).into_iter().collect::<Result<Vec<_>, _>>()?),
        None => None,
    };
    let expression = m.expression.map(text).transpose()?;
    let landmarks = m.landmarks.map(text).transpose()?;
    let mut parsed = ParsedRows::with_capacity(rows.len());
    for (i, &row) in rows.iter().enumerate() {
        let mut f = RowFields {
            path: path.get(i),
            valence: valence.get(i),
            arousal: arousal.get(i),
            expression: expression.as_ref().and_then(|e| e.get(i)),
            landmarks: landmarks.as_ref().and_then(|l| l.get(i)),
            extra: extra.get(i),
            ..RowFields::default()
        };
        if let Some(b) = &boxes {
            f.boxes = [b[0].get(i), b[1].get(i), b[2].get(i), b[3].get(i)];
        }
        parsed.push(row, m, &f);
    }
    parsed.into_loaded(csv, images)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal";

    fn load(text: &str, generic: bool) -> Result<Loaded, PrepError> {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, text).unwrap();
        if generic {
            load_generic(&csv, dir.path(), false)
        } else {
            load_affectnet(&csv, dir.path(), false)
        }
    }

    fn column_f64(l: &Loaded, name: &str) -> Vec<f64> {
        l.table
            .column(name)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect()
    }

    #[test]
    fn with_landmarks_each_row_gets_its_eyes_or_a_no_landmarks_reject() {
        // Eyes at (10, 20) and (30, 24); every other point at the origin.
        let points: Vec<String> = (0..68)
            .map(|i| match i {
                36..=41 => "10;20".to_string(),
                42..=47 => "30;24".to_string(),
                _ => "0;0".to_string(),
            })
            .collect();
        let lm = points.join(";");
        let rows = format!(
            "1/a.jpg,10,20,30,30,{lm},1,0.5,-0.25\n2/b.jpg,0,0,40,40,,2,-0.75,0.125\n3/c.jpg,0,0,40,40,1;2;3,2,0.1,0.1\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, format!("{HEADER}\n{rows}")).unwrap();
        // The fast reader and polars' (a quote sends a file to the latter) agree.
        let quoted = dir.path().join("q.csv");
        std::fs::write(&quoted, format!("{HEADER}\n\"1/a.jpg\"{}", &rows[7..])).unwrap();
        for file in [&csv, &quoted] {
            let l = load_affectnet(file, dir.path(), true).unwrap();
            assert_eq!(column_f64(&l, "eye_left_x"), [10.0]);
            assert_eq!(column_f64(&l, "eye_right_y"), [24.0]);
            let why: Vec<(u64, &str)> = l.rejects.iter().map(|r| (r.row, r.reason)).collect();
            assert_eq!(why, [(3, "no_landmarks"), (4, "no_landmarks")]);
            assert!(
                l.rejects[1].detail.contains("3 numbers"),
                "{}",
                l.rejects[1].detail
            );
            // Without --align the same rows are kept and the eye columns stay empty.
            let plain = load_affectnet(file, dir.path(), false).unwrap();
            assert_eq!(plain.table.height(), 3);
            assert!(column_f64(&plain, "eye_left_x").is_empty());
        }
        // A generic CSV must then have the column.
        let generic = dir.path().join("g.csv");
        std::fs::write(&generic, "path,valence,arousal\na.jpg,0.1,0.2\n").unwrap();
        let err = load_generic(&generic, dir.path(), true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("facial_landmarks"), "{err}");
    }

    #[test]
    fn affectnet_with_and_without_header() {
        let rows = "1/a.jpg,10,20,30,30,1.0;2.0,1,0.5,-0.25\n2/b.jpg,0,0,40,40,,2,-0.75,0.125\n";
        let with = load(&format!("{HEADER}\n{rows}"), false).unwrap();
        let without = load(rows, false).unwrap();
        assert_eq!(with.rows_read, 2);
        assert_eq!(column_f64(&with, "valence"), [0.5, -0.75]);
        assert_eq!(column_f64(&without, "arousal"), [-0.25, 0.125]);
        // Line numbers: the header takes line 1 when present.
        let lines = |l: &Loaded| {
            l.table
                .column("row")
                .unwrap()
                .u64()
                .unwrap()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&with), [2, 3]);
        assert_eq!(lines(&without), [1, 2]);
        let widths: Vec<i64> = with
            .table
            .column("face_width")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(widths, [30, 40]);
    }

    #[test]
    fn malformed_rows_are_rejected_with_their_line_and_the_rest_kept() {
        let text = format!(
            "{HEADER}\n1/a.jpg,10,20,30,30,,1,0.5,0.5\n1/b.jpg,10,20,30,30,,1,abc,0.5\n1/c.jpg,10,20\n1/d.jpg,10,20,30,30,,1,0.5,0.5,extra\n1/e.jpg,1.5,20,30,30,,1,0.5,0.5\n1/f.jpg,10,20,30,30,,1,0.1,0.2\n"
        );
        let l = load(&text, false).unwrap();
        assert_eq!(l.rows_read, 6);
        assert_eq!(column_f64(&l, "valence"), [0.5, 0.1]);
        let got: Vec<(u64, &str)> = l.rejects.iter().map(|r| (r.row, r.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (3, "1/b.jpg"),
                (4, "1/c.jpg"),
                (5, "1/d.jpg"),
                (6, "1/e.jpg")
            ]
        );
        assert!(l.rejects.iter().all(|r| r.reason == "malformed_row"));
        assert!(
            l.rejects[0].detail.contains("`valence` is `abc`"),
            "{}",
            l.rejects[0].detail
        );
        assert!(
            l.rejects[2].detail.contains("more fields"),
            "{}",
            l.rejects[2].detail
        );
    }

    /// Both readers of AffectNet's CSV on the same text: (fast, general).
    fn both_readers(text: &str) -> (Loaded, Loaded) {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, text).unwrap();
        let has_header = text
            .trim_start_matches('\u{feff}')
            .starts_with("subDirectory");
        let names: Vec<String> = AFFECTNET_COLUMNS.iter().map(|s| s.to_string()).collect();
        let mapping = affectnet_mapping();
        let fast = super::super::lines::read(&csv, has_header, &mapping)
            .unwrap()
            .expect("the fast reader takes this file")
            .into_loaded(&csv, dir.path())
            .unwrap();
        let general = read_rows(&csv, dir.path(), &names, has_header, &mapping).unwrap();
        (fast, general)
    }

    #[test]
    fn the_landmark_skipping_reader_gives_the_general_readers_table() {
        let body = "1/a.jpg,10,20,30,30,1.0;2.0;3.5,1,0.5,-0.25\n\
                    2/b.jpg,0,0,40,40,,2,-0.75,0.125\n\
                    3/c.jpg,1,2,3,4,1;2,7,abc,0.5\n\
                    4/d.jpg,1.5,2,3,4,1;2,7,0.5,0.5\n\
                    5/e.jpg,1,2,3,4,1;2,,0.5,0.5\n\
                    6/f.jpg,1,2,3,4,1;2,x,0.5,0.5\n\
                    ,1,2,3,4,1;2,1,0.5,0.5\n\
                    7/g.jpg, 1 ,2,3,4,1;2,1, 0.5 ,inf\n\
                    8/h.jpg,1,2,3,4,1;2,1,-2,-2\n\
                    9/i.jpg,1,2,3,,1;2,1,0.1,0.2\n";
        let crlf = body.replace('\n', "\r\n");
        let no_final_newline = body.trim_end();
        for text in [
            format!("{HEADER}\n{body}"),
            body.to_string(),
            format!("\u{feff}{HEADER}\n{body}"),
            format!("{HEADER}\r\n{crlf}"),
            no_final_newline.to_string(),
            format!("{HEADER}\n"),
            // Enough rows for several chunks per thread.
            format!("{HEADER}\n{}", body.repeat(500)),
        ] {
            let (fast, general) = both_readers(&text);
            assert_eq!(fast.rows_read, general.rows_read, "{text:?}");
            assert!(
                fast.table.equals_missing(&general.table),
                "{text:?}\nfast {}\ngeneral {}",
                fast.table,
                general.table
            );
            let rejects = |l: &Loaded| {
                l.rejects
                    .iter()
                    .map(|r| (r.row, r.path.clone(), r.reason, r.detail.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(rejects(&fast), rejects(&general), "{text:?}");
        }
    }

    #[test]
    fn files_the_fast_reader_is_unsure_of_go_to_the_general_one() {
        let mapping = affectnet_mapping();
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        for text in [
            "\"1/a.jpg\",1,2,3,4,1;2,1,0.5,0.5\n",
            "1/a.jpg,1,2,3,4,1;2,1,0.5,0.5\n\n1/b.jpg,1,2,3,4,1;2,1,0.5,0.5\n",
            "1/a.jpg,1,2,3,4,1;2,1,0.5\n",
            "1/a.jpg,1,2,3,4,1;2,1,0.5,0.5,extra\n",
        ] {
            std::fs::write(&csv, text).unwrap();
            assert!(
                super::super::lines::read(&csv, false, &mapping)
                    .unwrap()
                    .is_none(),
                "{text:?}"
            );
            // And the whole load still reads it.
            assert!(load_affectnet(&csv, dir.path(), false).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn missing_columns_are_listed_with_the_found_ones() {
        let err = load(
            "subDirectory_filePath,face_x,valence\n1/a.jpg,1,0.5\n",
            false,
        )
        .err()
        .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("found [subDirectory_filePath, face_x, valence]"),
            "{msg}"
        );
        assert!(
            msg.contains("arousal") && msg.contains("expected ["),
            "{msg}"
        );
        let err = load("path,arousal\na.jpg,0.5\n", true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("[\"valence\"]"), "{err}");
    }

    #[test]
    fn generic_csv_boxes_and_expression_are_optional() {
        let l = load(
            "path,valence,arousal,notes\na.jpg,0.5,0.5,hello\nb.jpg,-1,1,\n",
            true,
        )
        .unwrap();
        assert_eq!(l.table.height(), 2);
        assert_eq!(l.table.column("face_x").unwrap().null_count(), 2);
        assert_eq!(l.table.column("expression").unwrap().null_count(), 2);
        let l = load(
            "path,face_x,face_y,face_width,face_height,valence,arousal,expression\na.jpg,1,2,3,4,0.5,0.5,3\nb.jpg,,,,,0.1,0.1,\nc.jpg,1,,3,4,0.1,0.1,1\n",
            true,
        )
        .unwrap();
        assert_eq!(l.table.height(), 2, "a row with a partial box is malformed");
        assert_eq!(l.rejects[0].row, 4);
        let exprs: Vec<Option<i32>> = l
            .table
            .column("expression")
            .unwrap()
            .i32()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(exprs, [Some(3), None]);
        assert!(
            load("path,face_x,valence,arousal\na.jpg,1,0.5,0.5\n", true).is_err(),
            "half a box header"
        );
    }
}
