//! Issue 19's "silently wrong" probes of `valar evaluate` and `valar predict`, each reproduced
//! as the issue wrote it: a garbled model, a truncated or empty one, a run where no input could
//! be used, a `nan` face box, a short CSV row.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{Fixture, fails, ok, s, scratch, valar};

use std::path::{Path, PathBuf};

/// A small synthetic set, prepared, and a one-epoch run on it: (training.csv, images,
/// prepared folder, run folder). Made once per build of the binary and shared by the tests;
/// the tests write only beside it.
fn trained() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let d = Fixture::synth(300, 10, 3)
        .prepare(&["--quota", "15", "--seed", "3"])
        .train(&["--epochs", "1"])
        .cached("fixture");
    (d.csv, d.images, d.prepared, d.run)
}

/// The first `n` rows of AffectNet's training.csv as `path,face_x,…` lines (no header).
fn image_rows(csv: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(csv).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn a_model_with_garbled_weights_fails_evaluate_and_predict_naming_it() {
    let (csv, images, prepared, run) = trained();
    let model = run.join("model.onnx");
    let run = scratch("garbled");
    // The probe: weight bytes overwritten. 0xFF bytes are NaN as f32; the weights are most of
    // the file, so its middle is inside one of them.
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].fill(0xFF);
    let garbled = run.join("garbled.onnx");
    std::fs::write(&garbled, &bytes).unwrap();

    let err = fails(&[
        "evaluate",
        "--model",
        s(&garbled),
        "--data",
        s(&prepared),
        "--split",
        "val",
        "--out",
        s(&run.join("eval.csv")),
    ]);
    assert!(
        err.contains("garbled.onnx") && err.contains("non-finite"),
        "{err}"
    );
    assert!(!run.join("eval.csv").exists(), "no predictions file of NaN");

    let first = image_rows(&csv, 1)[0]
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let out = valar(&["predict", "--model", s(&garbled), s(&images.join(first))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "predict exit 0 with a NaN model");
    assert!(
        err.contains("garbled.onnx") && err.contains("non-finite"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("NaN"), "{stdout}");
}

#[test]
fn a_truncated_or_empty_model_is_named_in_the_error() {
    let (_, _, prepared, trained_run) = trained();
    let bytes = std::fs::read(trained_run.join("model.onnx")).unwrap();
    let run = scratch("truncated");
    let cut = run.join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let empty = run.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    // The specific reason, not predict's generic "no input could be used with MODEL".
    for (model, name, reason) in [
        (
            &cut,
            "cut.onnx",
            "not an ONNX model (truncated or damaged?)",
        ),
        (&empty, "empty.onnx", "the file is empty"),
    ] {
        let err = fails(&["evaluate", "--model", s(model), "--data", s(&prepared)]);
        assert!(err.contains(name) && err.contains(reason), "{err}");
        let err = fails(&["predict", "--model", s(model), "a.jpg"]);
        assert!(err.contains(name) && err.contains(reason), "{err}");
        assert!(!err.contains("no input could be used"), "{err}");
    }
}

#[test]
fn predict_csv_problems_are_per_row_and_nothing_usable_is_an_error() {
    let (csv, images, _, trained_run) = trained();
    let model = trained_run.join("model.onnx");
    let run = scratch("predict-rows");
    let rows = image_rows(&csv, 3);
    let list = run.join("list.csv");
    let (path0, path1) = (
        rows[0].split(',').next().unwrap(),
        rows[1].split(',').next().unwrap(),
    );
    // Row 1 good, row 2 a `nan` box (prepare refuses it), row 3 short of cells.
    std::fs::write(
        &list,
        format!(
            "path,face_x,face_y,face_width,face_height\n{}\n{path1},nan,0,10,10\n{path0},1\n",
            rows[0]
        ),
    )
    .unwrap();
    let out_csv = run.join("pred.csv");
    ok(&[
        "predict",
        "--model",
        s(&model),
        "--csv",
        s(&list),
        "--images-root",
        s(&images),
        "--out",
        s(&out_csv),
    ]);
    let text = std::fs::read_to_string(&out_csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].ends_with(','), "the good row has no error: {text}");
    assert!(lines[2].contains("bad_box"), "{text}");
    assert!(
        lines[3].contains("malformed_row") && lines[3].contains("row 3"),
        "{text}"
    );

    // Nothing usable: a missing file and a nan box. Exit 1, the CSV still says why.
    std::fs::write(
        &list,
        format!(
            "path,face_x,face_y,face_width,face_height\nmissing.jpg,,,,\n{path1},nan,0,10,10\n"
        ),
    )
    .unwrap();
    let err = fails(&[
        "predict",
        "--model",
        s(&model),
        "--csv",
        s(&list),
        "--images-root",
        s(&images),
        "--out",
        s(&out_csv),
    ]);
    assert!(
        err.contains("no input could be used") && err.contains("model.onnx"),
        "{err}"
    );
    let text = std::fs::read_to_string(&out_csv).unwrap();
    assert!(
        text.contains("missing_file") && text.contains("bad_box"),
        "{text}"
    );
    let err = fails(&["predict", "--model", s(&model), s(&run.join("nope.jpg"))]);
    assert!(err.contains("no input could be used"), "{err}");
}
