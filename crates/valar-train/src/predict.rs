//! `valar predict`: valence and arousal for image files, with the preprocessing of
//! `valar prepare` (valar-face).

use crate::TrainError;
use crate::data::normalize_pixel;
use crate::evaluate::{check_finite_predictions, load_model, model_targets};
use crate::expression::softmax;
use crate::model_meta::{EXPRESSION_CLASSES_KEY, ModelInfo};
use crate::outputs::into_label_range;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use valar_core::{
    ColorMode, Dimension, EXPRESSIONS, FaceBox, MARGINS, Targets, argmax, write_atomic,
};
use valar_engine::{Device, InferenceModel};
use valar_face::{Eyes, FaceSpec, load_aligned, load_face};

/// Images decoded (in parallel) and predicted per batch.
const BATCH: usize = 256;

/// The columns of predict's CSV output, in order. A model with an expression head adds, before
/// `error`, `expression` (the most likely class) and `p_<class>` (each class's softmax
/// probability), in its classes' order.
pub const PREDICT_COLUMNS: [&str; 4] = ["path", "valence", "arousal", "error"];

/// The images to predict.
#[derive(Debug, Clone, PartialEq)]
pub enum PredictInput {
    /// Image files, whole images.
    Images(Vec<PathBuf>),
    /// A CSV with a `path` column (or AffectNet's `subDirectory_filePath`) and optionally
    /// `face_x,face_y,face_width,face_height`; a row with all four uses that face box. For a
    /// model trained on aligned faces, a `facial_landmarks` column (AffectNet's 136 numbers,
    /// `x;y;…`) gives each row's eyes.
    Csv {
        /// The CSV file.
        file: PathBuf,
        /// The folder relative paths start from; `None`: the CSV's folder.
        root: Option<PathBuf>,
    },
}

/// What to predict with.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictOptions {
    /// An inference model (`model.onnx` of a run).
    pub model: PathBuf,
    /// The images.
    pub input: PredictInput,
    /// The dimensions the model predicts; `None`: as the model says (as for `evaluate`).
    pub targets: Option<Targets>,
    /// Where the model runs.
    pub device: Device,
    /// Context around a face box, as in `valar prepare --margin`; `None`: as the model says
    /// (0 for a model that does not say).
    pub margin: Option<f32>,
}

/// Predict's answer: a row per input, and what the caller should know about how they were made.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// One row per input image, in the input's order.
    pub rows: Vec<PredictRow>,
    /// Options that contradict the model's own description, or a model without one.
    pub notes: Vec<String>,
    /// The classes of the model's expression head, in output order; empty without one.
    pub classes: Vec<String>,
}

/// One image's prediction, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRow {
    /// The image, as the input named it.
    pub path: String,
    /// Predicted valence, if the model predicts it and the image could be used.
    pub valence: Option<f32>,
    /// Predicted arousal, likewise.
    pub arousal: Option<f32>,
    /// Each expression class's probability (softmax of the head's logits), for a model with an
    /// expression head and an image that could be used; empty otherwise.
    pub expression: Vec<f32>,
    /// Why the image could not be used (`reason: details`).
    pub error: Option<String>,
}

struct Job {
    path: String,
    file: PathBuf,
    face_box: Result<Option<FaceBox>, String>,
    /// The row's `facial_landmarks` text, from a CSV that has the column.
    landmarks: Option<String>,
}

/// Predicts every image; an image that cannot be read becomes a row with its error and the
/// others carry on. Rows keep the input's order.
pub fn predict(opts: &PredictOptions) -> Result<Predictions, TrainError> {
    let jobs = match &opts.input {
        PredictInput::Images(paths) => paths
            .iter()
            .map(|p| Job {
                path: p.display().to_string(),
                file: p.clone(),
                face_box: Ok(None),
                landmarks: None,
            })
            .collect(),
        PredictInput::Csv { file, root } => read_csv_jobs(file, root.as_deref())?,
    };
    let mut model = load_model(&opts.model, opts.device)?;
    let (targets, mut notes) = model_targets(&opts.model, &model, opts.targets)?;
    let spec = face_spec(opts, &model, &mut notes)?;
    let dims = targets.dimensions();
    let classes = expression_classes(&model);
    let mut rows = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(BATCH) {
        rows.extend(predict_batch(&mut model, &opts.model, chunk, &spec, dims)?);
    }
    Ok(Predictions {
        rows,
        notes,
        classes,
    })
}

/// The names of a model's expression classes: as its metadata lists them, else AffectNet's
/// eight for an 8-way head, else `class0`, `class1`, …
fn expression_classes(model: &InferenceModel) -> Vec<String> {
    let n = model.expression_classes();
    let listed: Vec<String> = model
        .metadata()
        .get(EXPRESSION_CLASSES_KEY)
        .map(|v| v.split(',').map(|c| c.trim().to_string()).collect())
        .unwrap_or_default();
    if listed.len() == n {
        listed
    } else if n == EXPRESSIONS.len() {
        EXPRESSIONS.iter().map(|c| c.to_string()).collect()
    } else {
        (0..n).map(|k| format!("class{k}")).collect()
    }
}

/// How faces are cut for `model`: as it records (its input size, colour, margin and
/// decode rule), with `--margin` overriding the margin; what contradicts the model goes in
/// `notes`.
fn face_spec(
    opts: &PredictOptions,
    model: &InferenceModel,
    notes: &mut Vec<String>,
) -> Result<FaceSpec, TrainError> {
    let crop = ModelInfo::read(&opts.model, model.metadata())?.crop;
    if let Some(m) = opts.margin
        && !MARGINS.contains(&m)
    {
        return Err(TrainError::Config(format!(
            "--margin {m}: a margin is a number from {} to {}, as `valar prepare --margin` takes",
            MARGINS.start(),
            MARGINS.end()
        )));
    }
    let margin = match (&crop, opts.margin) {
        (Some(c), Some(m)) => {
            if (c.margin - m).abs() > 1e-6 {
                notes.push(format!(
                    "--margin {m} overrides {}, whose faces were cut with margin {}",
                    opts.model.display(),
                    c.margin
                ));
            }
            m
        }
        (Some(c), None) => c.margin,
        (None, m) => {
            notes.push(format!(
                "{} does not record its preprocessing (a model from before valar wrote it): margin {}, JPEGs decoded at reduced scale",
                opts.model.display(),
                m.unwrap_or(0.0)
            ));
            m.unwrap_or(0.0)
        }
    };
    let color = match model.channels() {
        1 => ColorMode::Gray,
        3 => ColorMode::Rgb,
        c => {
            return Err(TrainError::data(
                &opts.model,
                format!("takes {c} input channels; valar models take 1 (gray) or 3 (RGB)"),
            ));
        }
    };
    Ok(FaceSpec {
        size: u32::try_from(model.input_size()).unwrap_or(u32::MAX),
        color,
        margin,
        full_scale: crop.as_ref().is_some_and(|c| c.scale_rule == "full"),
        align: crop.and_then(|c| c.alignment),
        ..FaceSpec::default()
    })
}

/// The eyes of a job, for a model trained on aligned faces: from the CSV's
/// `facial_landmarks`, else from AffectNet's newer layout beside the image
/// (`<set>/images/<id>.jpg` → `<set>/annotations/<id>_lnd.npy`); or why there are none.
fn job_eyes(job: &Job) -> Result<Eyes, String> {
    let refuse = |why: String| format!("no_landmarks: {why}");
    if let Some(text) = &job.landmarks {
        return Eyes::parse(text).map_err(|e| refuse(format!("facial_landmarks: {e}")));
    }
    match landmarks_beside(&job.file) {
        Some(lnd) if lnd.is_file() => Eyes::read_npy(&lnd).map_err(refuse),
        _ => Err(refuse(
            "the model was trained on faces aligned by their eyes (valar.crop.alignment), and \
             this image has no landmarks: give a CSV with a facial_landmarks column, or \
             AffectNet's annotations/<id>_lnd.npy beside images/"
                .into(),
        )),
    }
}

/// Where AffectNet's newer layout keeps an image's landmarks:
/// `<set>/images/<id>.jpg` → `<set>/annotations/<id>_lnd.npy`.
fn landmarks_beside(image: &Path) -> Option<PathBuf> {
    image
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "images"))
        .and_then(Path::parent)
        .zip(image.file_stem())
        .map(|(set, id)| {
            set.join("annotations")
                .join(format!("{}_lnd.npy", id.to_string_lossy()))
        })
}

/// Cuts the faces of `jobs` (in parallel) and predicts those that could be cut, one row per
/// job, in order; `model_path` names the model in errors.
fn predict_batch(
    model: &mut InferenceModel,
    model_path: &Path,
    jobs: &[Job],
    spec: &FaceSpec,
    dims: &[Dimension],
) -> Result<Vec<PredictRow>, TrainError> {
    let faces: Vec<Result<Vec<u8>, String>> = jobs
        .par_iter()
        .map(|job| {
            let face_box = job.face_box.clone()?;
            let face = match spec.align {
                Some(_) => load_aligned(&job.file, job_eyes(job)?, spec),
                None => load_face(&job.file, face_box, spec),
            };
            face.map(|f| f.pixels)
                .map_err(|e| format!("{}: {e}", e.reason()))
        })
        .collect();
    let x: Vec<f32> = faces
        .iter()
        .flatten()
        .flat_map(|px| px.iter().map(|&p| normalize_pixel(p)))
        .collect();
    let ok = faces.iter().filter(|f| f.is_ok()).count();
    let (pred, logits) = if ok > 0 {
        let (va, logits) = model.predict_with_expression(&x, ok)?;
        (into_label_range(va), logits)
    } else {
        (Vec::new(), Vec::new())
    };
    let classes = model.expression_classes();
    check_finite_predictions(model_path, &pred)?;
    let mut next = 0;
    let mut rows = Vec::with_capacity(jobs.len());
    for (job, face) in jobs.iter().zip(&faces) {
        let mut row = PredictRow {
            path: job.path.clone(),
            valence: None,
            arousal: None,
            expression: Vec::new(),
            error: None,
        };
        match face {
            Ok(_) => {
                for (d, &dim) in dims.iter().enumerate() {
                    let v = pred[next * dims.len() + d];
                    match dim {
                        Dimension::Valence => row.valence = Some(v),
                        Dimension::Arousal => row.arousal = Some(v),
                    }
                }
                if classes > 0 {
                    row.expression = softmax(&logits[next * classes..(next + 1) * classes]);
                }
                next += 1;
            }
            Err(e) => row.error = Some(e.clone()),
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Reads a predict CSV's jobs: each row's path (from `root`, else the CSV's folder) and face
/// box; a row that cannot be used becomes a job carrying why.
fn read_csv_jobs(file: &Path, root: Option<&Path>) -> Result<Vec<Job>, TrainError> {
    let bad = |reason: String| TrainError::data(file, reason);
    valar_core::check_utf8_text(file)?;
    // Flexible: a row with too few or too many cells is reported on its own row of the
    // output rather than ending the run.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .map_err(|e| bad(e.to_string()))?;
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let path_col = col("path")
        .or_else(|| col("subDirectory_filePath"))
        .ok_or_else(|| {
            bad(format!(
                "has no `path` column (found: {})",
                header.iter().collect::<Vec<_>>().join(", ")
            ))
        })?;
    let box_cols = [
        col("face_x"),
        col("face_y"),
        col("face_width"),
        col("face_height"),
    ];
    let landmarks_col = col("facial_landmarks");
    let root = root
        .map(Path::to_path_buf)
        .or_else(|| file.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut jobs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", i + 1)))?;
        let path = record.get(path_col).unwrap_or("").trim().to_string();
        if record.len() != header.len() {
            jobs.push(Job {
                file: PathBuf::from(&path),
                face_box: Err(format!(
                    "malformed_row: row {} of {} has {} cells, the header {}",
                    i + 1,
                    file.display(),
                    record.len(),
                    header.len()
                )),
                path,
                landmarks: None,
            });
            continue;
        }
        let cells: Vec<&str> = box_cols
            .iter()
            .map(|c| c.and_then(|c| record.get(c)).unwrap_or("").trim())
            .collect();
        let rel = PathBuf::from(&path);
        let file = if rel.is_absolute() {
            rel
        } else {
            root.join(rel)
        };
        jobs.push(Job {
            path,
            file,
            face_box: face_box(&cells),
            // An empty cell is no landmarks, which the image's annotations may still give.
            landmarks: landmarks_col
                .and_then(|c| record.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        });
    }
    Ok(jobs)
}

/// The face box of a row's four box cells: none when all are empty, else four finite
/// numbers (as prepare reads them), or why not.
fn face_box(cells: &[&str]) -> Result<Option<FaceBox>, String> {
    if cells.iter().all(|c| c.is_empty()) {
        return Ok(None);
    }
    // As prepare: a box cell must be a finite number (`nan` and `inf` parse as f64).
    let nums: Option<Vec<i64>> = cells
        .iter()
        .map(|c| {
            c.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v.round() as i64)
        })
        .collect();
    match nums {
        Some(n) => Ok(Some(FaceBox {
            x: n[0],
            y: n[1],
            width: n[2],
            height: n[3],
        })),
        None => Err(format!(
            "bad_box: face box cells are not all finite numbers: {}",
            cells.join(",")
        )),
    }
}

/// Every file `input` reads: the images, or the CSV and each image its rows name (resolved
/// as [`predict`] resolves them), and any landmarks file beside an image in AffectNet's
/// newer layout, so that an output can be checked against all of them.
pub fn input_files(input: &PredictInput) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = match input {
        PredictInput::Images(paths) => paths.clone(),
        PredictInput::Csv { file, root } => std::iter::once(file.clone())
            .chain(
                read_csv_jobs(file, root.as_deref())?
                    .into_iter()
                    .map(|job| job.file),
            )
            .collect(),
    };
    // A model trained on aligned faces reads each image's landmarks file beside it.
    let landmarks: Vec<PathBuf> = (files.iter())
        .filter_map(|f| landmarks_beside(f))
        .filter(|l| l.is_file())
        .collect();
    files.extend(landmarks);
    Ok(files)
}

/// Writes predict's CSV (`path,valence,arousal,error`; empty cells for what is missing).
pub fn write_predict_csv(w: &mut dyn Write, p: &Predictions) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    let mut header: Vec<String> = PREDICT_COLUMNS[..3].iter().map(|c| c.to_string()).collect();
    if !p.classes.is_empty() {
        header.push("expression".into());
        header.extend(p.classes.iter().map(|c| format!("p_{c}")));
    }
    header.push(PREDICT_COLUMNS[3].into());
    out.write_record(&header)?;
    let cell = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in &p.rows {
        let mut record = vec![r.path.clone(), cell(r.valence), cell(r.arousal)];
        if !p.classes.is_empty() {
            let best = (!r.expression.is_empty()).then(|| argmax(&r.expression));
            record.push(best.map(|k| p.classes[k].clone()).unwrap_or_default());
            record.extend((0..p.classes.len()).map(|k| cell(r.expression.get(k).copied())));
        }
        record.push(r.error.clone().unwrap_or_default());
        out.write_record(&record)?;
    }
    out.flush()
}

/// Writes predict's CSV to a file, atomically.
pub fn save_predict_csv(path: &Path, p: &Predictions) -> Result<(), TrainError> {
    Ok(write_atomic(path, |w| write_predict_csv(w, p))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_face_box_is_four_finite_numbers_or_none() {
        assert_eq!(face_box(&["", "", "", ""]), Ok(None));
        assert_eq!(
            face_box(&["1.4", "2", "30", "40.6"]),
            Ok(Some(FaceBox {
                x: 1,
                y: 2,
                width: 30,
                height: 41
            }))
        );
        for cells in [
            ["1", "nan", "3", "4"],
            ["1", "", "3", "4"],
            ["1", "2", "inf", "x"],
        ] {
            let err = face_box(&cells).unwrap_err();
            assert!(err.starts_with("bad_box: "), "{err}");
        }
    }

    #[test]
    fn csv_rows_with_and_without_boxes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("list.csv");
        std::fs::write(
            &file,
            "path,face_x,face_y,face_width,face_height\na.jpg,1,2,30,40\nsub/b.png,,,,\nc.jpg,1,x,3,4\n/abs/d.jpg,,,,\n",
        )
        .unwrap();
        let jobs = read_csv_jobs(&file, None).unwrap();
        assert_eq!(jobs.len(), 4);
        assert_eq!(jobs[0].file, dir.path().join("a.jpg"));
        assert_eq!(
            jobs[0].face_box,
            Ok(Some(FaceBox {
                x: 1,
                y: 2,
                width: 30,
                height: 40
            }))
        );
        assert_eq!(jobs[1].face_box, Ok(None));
        assert_eq!(jobs[1].file, dir.path().join("sub/b.png"));
        assert!(
            jobs[2]
                .face_box
                .as_ref()
                .unwrap_err()
                .starts_with("bad_box")
        );
        assert_eq!(jobs[3].file, PathBuf::from("/abs/d.jpg"));
        let jobs = read_csv_jobs(&file, Some(Path::new("/images"))).unwrap();
        assert_eq!(jobs[0].file, PathBuf::from("/images/a.jpg"));

        std::fs::write(&file, "file\na.jpg\n").unwrap();
        let err = read_csv_jobs(&file, None).err().unwrap().to_string();
        assert!(err.contains("no `path` column"), "{err}");
    }

    #[test]
    fn predict_csv_has_empty_cells_for_what_is_missing() {
        let rows = vec![
            PredictRow {
                path: "a.jpg".into(),
                valence: Some(0.5),
                arousal: Some(-0.25),
                expression: Vec::new(),
                error: None,
            },
            PredictRow {
                path: "b,c.jpg".into(),
                valence: None,
                arousal: None,
                expression: Vec::new(),
                error: Some("missing_file: file not found".into()),
            },
        ];
        let mut p = Predictions {
            rows,
            notes: Vec::new(),
            classes: Vec::new(),
        };
        let mut buf = Vec::new();
        write_predict_csv(&mut buf, &p).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "path,valence,arousal,error\na.jpg,0.5,-0.25,\n\"b,c.jpg\",,,missing_file: file not found\n"
        );
        // With an expression head: the likeliest class and each class's probability.
        p.classes = vec!["Sad".into(), "Happy".into()];
        p.rows[0].expression = vec![0.25, 0.75];
        let mut buf = Vec::new();
        write_predict_csv(&mut buf, &p).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "path,valence,arousal,expression,p_Sad,p_Happy,error\na.jpg,0.5,-0.25,Happy,0.25,0.75,\n\"b,c.jpg\",,,,,,missing_file: file not found\n"
        );
    }
}
