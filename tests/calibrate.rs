//! End-to-end tests of `valar train --calibrate`: the map fitted on the validation split is in
//! model.onnx (graph and metadata) and its model card, and everything that reads the model
//! (`evaluate`, `predict`, Python's onnxruntime) gets the calibrated predictions that the
//! run's predictions.csv holds.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{Data, Fixture, fails, number, ok, rows_by_key, s, scratch, serial, train_args};

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use valar_core::{Split, read_manifest};
use valar_train::Calibration;

/// About 400 synthetic faces (a tenth of them val) and a two-epoch calibrated run on them.
fn fixture() -> Data {
    Fixture::synth(600, 10, 11)
        .prepare(&["--quota", "40", "--seed", "3"])
        .train(&["--epochs", "2", "--seed", "2", "--calibrate"])
        .cached("fixture")
}

fn calibration(model: &Path) -> Calibration {
    let meta = valar_engine::read_metadata(model).unwrap();
    let text = meta
        .get(Calibration::KEY)
        .unwrap_or_else(|| panic!("no {} in {meta:?}", Calibration::KEY));
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_calibration_is_in_the_model_and_evaluate_and_predict_reproduce_predictions_csv() {
    let f = fixture();
    let model = f.run.join("model.onnx");
    let cal = calibration(&model);
    eprintln!("{cal:#?}");
    assert_eq!(cal.epoch, 2);
    let dims: Vec<&str> = cal.dimensions.iter().map(|d| d.dimension.name()).collect();
    assert_eq!(dims, ["valence", "arousal"]);
    // The "before" figures are the kept (last) epoch's metrics.csv row: the raw network's.
    let metrics = rows_by_key(&f.run.join("metrics.csv"));
    let last = &metrics["2"];
    for d in &cal.dimensions {
        let want_k = if d.r > 0.0 { (1.6 * d.r).min(1.0) } else { 0.0 };
        assert!((d.k - want_k).abs() < 1e-12, "{d:?}");
        let n = d.dimension.name();
        let close = |x: Option<f64>, col: &str| (x.unwrap() - number(last, col)).abs() < 1e-9;
        assert!(close(d.ccc_before, &format!("{n}_ccc")), "{d:?} {last:?}");
        assert!(close(d.rmse_before, &format!("{n}_rmse")), "{d:?} {last:?}");
        let base = number(last, &format!("{n}_baseline_rmse"));
        assert!((d.mean_rmse.unwrap() - base).abs() < 1e-6, "{d:?}");
        // What the rule promises on the faces it was fitted on: RMSE² = σ²·(1 − 0.64·r²) for
        // r < 0.625 and σ²·(2 − 2r) above, plus terms from the val labels' mean and spread
        // differing from the training ones; on 40 faces, a safe margin needs r > 0.5.
        if d.r > 0.5 {
            assert!(d.rmse_after.unwrap() < base, "{d:?}");
        }
    }

    // evaluate on the val split runs model.onnx: the calibrated predictions of predictions.csv.
    let dir = scratch("agree");
    let eval_csv = dir.join("eval.csv");
    ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&f.prepared),
        "--split",
        "val",
        "--out",
        s(&eval_csv),
    ]);
    let trained = rows_by_key(&f.run.join("predictions.csv"));
    let evaluated = rows_by_key(&eval_csv);
    assert_eq!(
        trained.keys().collect::<Vec<_>>(),
        evaluated.keys().collect::<Vec<_>>()
    );
    for (key, t) in &trained {
        for col in ["valence_pred", "arousal_pred"] {
            let (a, b) = (number(t, col), number(&evaluated[key], col));
            assert!((a - b).abs() < 1e-4, "row {key} {col}: {a} vs {b}");
        }
    }
    assert!(
        cal.dimensions
            .iter()
            .any(|d| d.scale != 1.0 || d.shift != 0.0),
        "the test needs a map that moves something: {cal:?}"
    );

    // predict, given the manifest's face boxes, cuts what prepare cut: the same predictions.
    let manifest = read_manifest(&f.prepared.join("manifest.csv")).unwrap();
    let val: Vec<_> = manifest
        .iter()
        .filter(|r| r.split == Split::Val)
        .take(6)
        .collect();
    let list = common::face_box_list(&val);
    let list_file = dir.join("list.csv");
    std::fs::write(&list_file, list).unwrap();
    let preds = dir.join("preds.csv");
    ok(&[
        "predict",
        "--model",
        s(&model),
        "--csv",
        s(&list_file),
        "--images-root",
        s(&f.images),
        "--out",
        s(&preds),
    ]);
    let predicted = rows_by_key(&preds);
    for r in &val {
        let p = &predicted[&r.path];
        let t = &trained[&r.index.to_string()];
        for n in ["valence", "arousal"] {
            let (a, b) = (number(p, n), number(t, &format!("{n}_pred")));
            assert!(
                (a - b).abs() < 1e-4,
                "{} {n}: predict {a} vs training {b}",
                r.path
            );
        }
    }

    // The model card shows the map and its figures.
    let card = std::fs::read_to_string(f.run.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("## Calibration"), "{card}");
    for d in &cal.dimensions {
        let row = format!("| {} | {:.4} | {:.4} |", d.dimension.name(), d.r, d.k);
        assert!(card.contains(&row), "{row}\n{card}");
    }
}

/// In Python's onnxruntime, the model's output is its own uncalibrated value (read from the
/// graph) mapped by the metadata's scale and shift, then clipped: a consumer that reads the
/// file sees what valar documents.
#[test]
fn python_onnxruntime_sees_the_map_before_the_clip() {
    let f = fixture();
    let python = std::env::var("VALAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&python)
        .args(["-c", "import numpy, onnx, onnxruntime"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has,
        "`{python} -c 'import numpy, onnx, onnxruntime'` failed: run `just setup`, or set \
         VALAR_PYTHON to a Python that has them"
    );
    let model = f.run.join("model.onnx");
    let code = "import sys, json, numpy as np, onnx, onnxruntime as ort\n\
        m = onnx.load(sys.argv[1])\n\
        meta = {p.key: p.value for p in m.metadata_props}\n\
        cal = json.loads(meta['valar.calibration'])['dimensions']\n\
        a = np.array([d['scale'] for d in cal], dtype=np.float32)\n\
        b = np.array([d['shift'] for d in cal], dtype=np.float32)\n\
        assert [n.op_type for n in m.graph.node[-3:]] == ['Mul', 'Add', 'Clip'], m.graph.node[-3:]\n\
        raw_name = m.graph.node[-3].input[0]\n\
        m.graph.output.append(onnx.helper.make_tensor_value_info(raw_name, onnx.TensorProto.FLOAT, None))\n\
        s = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])\n\
        i = s.get_inputs()[0]\n\
        x = np.random.default_rng(0).standard_normal((16, i.shape[1], i.shape[2], i.shape[3])).astype(np.float32) * 2\n\
        y, raw = s.run([s.get_outputs()[0].name, raw_name], {i.name: x})\n\
        want = np.clip(raw * a + b, -1, 1)\n\
        err = float(np.max(np.abs(y - want)))\n\
        print(err, int(np.sum(np.abs(y) == 1)))\n\
        sys.exit(0 if err <= 1e-5 else 1)\n";
    let out = Command::new(&python)
        .arg("-c")
        .arg(code)
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "largest difference, faces clipped: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A calibrated run killed in its second (last) epoch and resumed fits its map on the same
/// predictions as an uninterrupted run: the same model.onnx (to the rounding that ONNX
/// Runtime's thread scheduling allows in the weights themselves, see tests/train.rs).
#[test]
fn a_killed_and_resumed_calibrated_run_matches_an_uninterrupted_one() {
    let f = fixture();
    let _serial = serial();
    let dir = scratch("resume");
    let extra = ["--epochs", "2", "--seed", "4", "--calibrate", "--augment"];
    let whole = dir.join("whole");
    ok(&train_args(&f.prepared, &whole, &extra));

    let killed = dir.join("killed");
    common::kill_after_first_checkpoint(
        &train_args(&f.prepared, &killed, &extra),
        &killed,
        Duration::ZERO,
    );
    let loop_state = killed.join("checkpoint/loop.json");
    let state = std::fs::read_to_string(&loop_state).unwrap();
    assert!(
        state.contains("\"finished\": null"),
        "the run finished before it was killed:\n{state}"
    );
    let out = ok(&["train", "--resume", s(&killed)]);
    assert!(out.contains("resuming at epoch"), "{out}");

    let (a, b) = (
        std::fs::read(whole.join("model.onnx")).unwrap(),
        std::fs::read(killed.join("model.onnx")).unwrap(),
    );
    eprintln!("model.onnx byte-identical: {}", a == b);
    let (ca, cb) = (
        calibration(&whole.join("model.onnx")),
        calibration(&killed.join("model.onnx")),
    );
    assert_eq!((ca.epoch, cb.epoch), (2, 2));
    for (x, y) in ca.dimensions.iter().zip(&cb.dimensions) {
        let close = |u: f64, v: f64| (u - v).abs() < 1e-5;
        assert!(
            close(x.r, y.r)
                && close(x.k, y.k)
                && close(x.scale.into(), y.scale.into())
                && close(x.shift.into(), y.shift.into()),
            "{x:?} vs {y:?}"
        );
    }
    let (pa, pb) = (
        rows_by_key(&whole.join("predictions.csv")),
        rows_by_key(&killed.join("predictions.csv")),
    );
    assert_eq!(pa.len(), pb.len());
    for (key, r) in &pa {
        for col in ["valence_pred", "arousal_pred"] {
            let (u, v) = (number(r, col), number(&pb[key], col));
            assert!((u - v).abs() < 1e-4, "row {key} {col}: {u} vs {v}");
        }
    }
}

/// `--calibrate=false` and `--calibrate` parse; any other value is refused by the flag parser.
#[test]
fn the_flag_takes_a_boolean_or_nothing() {
    let f = fixture();
    let dir = scratch("flag");
    let out = dir.join("run");
    for flag in ["--calibrate", "--calibrate=false", "--calibrate=true"] {
        // epochs 0 fails after the flags parsed, before any training.
        let err = fails(&train_args(&f.prepared, &out, &[flag, "--epochs", "0"]));
        assert!(err.contains("epochs must be at least 1"), "{flag}: {err}");
    }
    let err = fails(&train_args(&f.prepared, &out, &["--calibrate=maybe"]));
    assert!(err.contains("--calibrate"), "{err}");
}
