//! End-to-end tests of `valar train`, `valar evaluate` and `valar predict`, run through the
//! binary on a small synthetic set (`valar synth` + `valar prepare`).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{Data, Fixture, fails, ok, prepare_args, s, scratch, serial, train_args, valar};

use std::path::{Path, PathBuf};

use std::sync::OnceLock;
use std::time::{Duration, Instant};
use valar_core::{Split, read_manifest};
use valar_engine::TrainState;

/// 1200 synthetic images, prepared with 80 faces per arousal interval: about 800 faces,
/// 718 train and 80 val. Made once per build of the binary and shared by the tests.
fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        Fixture::synth(1200, 10, 7)
            .prepare(&["--quota", "80", "--seed", "7"])
            .cached("data")
    })
}

/// A CSV file as a header and rows of cells (valar's CSVs here hold no quoted commas).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].parse().unwrap()).collect()
}

fn std_dev(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

const METRICS_HEADER: &str = "epoch,train_loss,val_loss,valence_rmse,valence_pcc,valence_ccc,valence_sagr,valence_baseline_rmse,arousal_rmse,arousal_pcc,arousal_ccc,arousal_sagr,arousal_baseline_rmse,lr,seconds";

/// The mean-prediction baseline's RMSE, computed here from the manifest alone: the train
/// rows' mean label predicted for every row of `split`.
fn baseline_rmse(manifest: &[valar_core::ManifestRow], split: Split, dim: &str) -> f64 {
    let label = |r: &valar_core::ManifestRow| {
        f64::from(if dim == "valence" {
            r.valence
        } else {
            r.arousal
        })
    };
    let train: Vec<f64> = manifest
        .iter()
        .filter(|r| r.split == Split::Train)
        .map(label)
        .collect();
    let mean = train.iter().sum::<f64>() / train.len() as f64;
    let scored: Vec<f64> = manifest
        .iter()
        .filter(|r| r.split == split)
        .map(label)
        .collect();
    (scored.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / scored.len() as f64).sqrt()
}

/// Every prediction cell of a CSV's `columns` parses and lies in the label range [−1, 1].
fn assert_in_label_range(path: &Path, columns: &[&str]) -> Vec<f64> {
    let (header, rows) = read_csv(path);
    let mut all = Vec::new();
    for c in columns {
        for v in column(&header, &rows, c) {
            assert!((-1.0..=1.0).contains(&v), "{}: {c} = {v}", path.display());
            all.push(v);
        }
    }
    assert!(!all.is_empty(), "{}: no predictions", path.display());
    all
}
const PREDICTIONS_HEADER: &str = "index,path,valence_true,valence_pred,arousal_true,arousal_pred";

/// Trains the compact model for 5 epochs on the CPU and checks it learned both dimensions;
/// then scores the exported model with `evaluate` and `predict`, which must agree with it.
#[test]
fn compact_model_learns_and_evaluate_and_predict_agree_with_training() {
    let data = data();
    let _serial = serial();
    let dir = scratch("learn");
    let run = dir.join("run");
    let started = Instant::now();
    // Flips alone: the default's affine augmentation and jitter pay over 50 epochs, not 5.
    // Uncalibrated, so that evaluate's figures are metrics.csv's (tests/calibrate.rs checks
    // a calibrated model against its predictions.csv).
    let extra = [
        "--epochs",
        "5",
        "--seed",
        "1",
        "--patience",
        "0",
        "--augment=flip",
        "--jitter",
        "0",
        "--calibrate=false",
    ];
    ok(&train_args(&data.prepared, &run, &extra));
    eprintln!("training took {:.1} s", started.elapsed().as_secs_f64());

    for f in [
        "model.onnx",
        "config.toml",
        "metrics.csv",
        "predictions.csv",
        "checkpoint/loop.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("model = \"compact\"") && config.contains("loss = \"mse+ccc\""),
        "{config}"
    );

    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().next().unwrap(), METRICS_HEADER);
    let (header, rows) = read_csv(&run.join("metrics.csv"));
    assert_eq!(rows.len(), 5);
    let v = column(&header, &rows, "valence_ccc");
    let a = column(&header, &rows, "arousal_ccc");
    // The baseline columns hold the validation RMSE of the training mean, on every row.
    let manifest = read_manifest(&data.prepared.join("manifest.csv")).unwrap();
    for dim in ["valence", "arousal"] {
        let expected = baseline_rmse(&manifest, Split::Val, dim);
        for b in column(&header, &rows, &format!("{dim}_baseline_rmse")) {
            assert!((b - expected).abs() < 1e-9, "{dim}: {b} vs {expected}");
        }
    }
    let best = (0..5)
        .max_by(|&i, &j| (v[i] + a[i]).total_cmp(&(v[j] + a[j])))
        .unwrap();
    // A model that learned nothing predicts a constant (CCC 0) or noise unrelated to the
    // labels; on 80 validation faces such a CCC has a standard deviation of about
    // 1/√80 ≈ 0.11, so 0.4 is over three and a half of them away. The synthetic faces carry
    // both labels visibly, and this run reaches about 0.75 (valence) and 0.92 (arousal).
    assert!(
        v[best] > 0.4 && a[best] > 0.4,
        "valence CCC {} arousal CCC {}",
        v[best],
        a[best]
    );

    // predictions.csv: the validation rows, predictions that vary.
    let text = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    assert_eq!(text.lines().next().unwrap(), PREDICTIONS_HEADER);
    let (ph, prow) = read_csv(&run.join("predictions.csv"));
    assert_in_label_range(
        &run.join("predictions.csv"),
        &["valence_pred", "arousal_pred"],
    );
    let val = manifest.iter().filter(|r| r.split == Split::Val).count();
    assert_eq!(prow.len(), val);
    for dim in ["valence", "arousal"] {
        let pred = column(&ph, &prow, &format!("{dim}_pred"));
        assert!(
            std_dev(&pred) > 0.1,
            "{dim} predictions are nearly constant"
        );
    }

    // evaluate on the validation split reproduces the training run's best-epoch numbers
    // through the exported model.onnx.
    let eval_csv = dir.join("eval.csv");
    let out = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&data.prepared),
        "--split",
        "val",
        "--out",
        s(&eval_csv),
    ]);
    assert!(out.contains("RMSE") && out.contains("SAGR"), "{out}");
    let line = out.lines().find(|l| l.starts_with("valence")).unwrap();
    let ccc: f64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(
        (ccc - v[best]).abs() < 1e-3,
        "evaluate CCC {ccc} vs training {}",
        v[best]
    );
    // Beside the model: the baseline, the training mean of the run's data on the same rows,
    // which this model beats, so no warning.
    let base: f64 = line.split_whitespace().nth(5).unwrap().parse().unwrap();
    let expected = baseline_rmse(&manifest, Split::Val, "valence");
    assert!(
        (base - expected).abs() < 1e-4,
        "{base} vs {expected}\n{out}"
    );
    assert!(
        out.contains("mean baseline: predicting the training mean"),
        "{out}"
    );
    assert!(!out.contains("worse than the mean"), "{out}");
    assert!(!out.contains("near zero"), "{out}");
    assert_in_label_range(&eval_csv, &["valence_pred", "arousal_pred"]);
    let eval_text = std::fs::read_to_string(&eval_csv).unwrap();
    assert_eq!(eval_text.lines().next().unwrap(), PREDICTIONS_HEADER);
    let (eh, erow) = read_csv(&eval_csv);
    assert_eq!(erow.len(), val);
    // The default split of a set without test rows is val.
    let out = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&data.prepared),
    ]);
    assert!(out.contains("split val"), "{out}");
    // A test set prepared without subsampling (every row split `test`) is scored by default.
    let test_set = dir.join("test-set");
    ok(&prepare_args(
        &data.csv.with_file_name("validation.csv"),
        &data.images,
        &test_set,
        &["--all"],
    ));
    let test_csv = dir.join("test.csv");
    let out = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&test_set),
        "--out",
        s(&test_csv),
    ]);
    assert!(out.contains("split test"), "{out}");
    // A test set alone has no train rows: the mean is the run's training data's, named
    // in the config.toml beside the model.
    assert!(
        out.contains(&format!(
            "train rows of {}",
            std::path::absolute(data.prepared.join("manifest.csv"))
                .unwrap()
                .display()
        )),
        "{out}"
    );
    let test_rows = read_manifest(&test_set.join("manifest.csv")).unwrap().len();
    assert!(test_rows > 0);
    assert_eq!(read_csv(&test_csv).1.len(), test_rows);

    // predict, given the manifest's face boxes, crops exactly what prepare cropped, so it
    // matches evaluate's predictions for the same faces.
    let val_rows: Vec<_> = manifest
        .iter()
        .filter(|r| r.split == Split::Val)
        .take(5)
        .collect();
    let mut list = common::face_box_list(&val_rows);
    list += "does/not/exist.jpg,,,,\n";
    let list_file = dir.join("list.csv");
    std::fs::write(&list_file, list).unwrap();
    let preds = dir.join("preds.csv");
    ok(&[
        "predict",
        "--model",
        s(&run.join("model.onnx")),
        "--csv",
        s(&list_file),
        "--images-root",
        s(&data.images),
        "--out",
        s(&preds),
    ]);
    let (hh, hrow) = read_csv(&preds);
    // The default recipe's expression head adds the likeliest class and a probability per
    // class between arousal and error.
    assert_eq!(hh[..4], ["path", "valence", "arousal", "expression"]);
    assert_eq!((hh.len(), hh[12].as_str()), (13, "error"));
    assert_eq!(hrow.len(), 6);
    let eval_v = column(&eh, &erow, "valence_pred");
    let eval_a = column(&eh, &erow, "arousal_pred");
    for (k, r) in val_rows.iter().enumerate() {
        let e = erow
            .iter()
            .position(|row| row[0] == r.index.to_string())
            .unwrap();
        assert_eq!(hrow[k][0], r.path);
        assert!(hrow[k][12].is_empty(), "{:?}", hrow[k]);
        let (pv, pa): (f64, f64) = (hrow[k][1].parse().unwrap(), hrow[k][2].parse().unwrap());
        assert!(
            (pv - eval_v[e]).abs() < 1e-4 && (pa - eval_a[e]).abs() < 1e-4,
            "{:?} vs {} {}",
            hrow[k],
            eval_v[e],
            eval_a[e]
        );
    }
    assert_eq!(hrow[5][0], "does/not/exist.jpg");
    assert!(
        hrow[5][1].is_empty() && hrow[5][12].starts_with("missing_file"),
        "{:?}",
        hrow[5]
    );

    // Whole images (of every shape synth draws) given on the command line go to standard
    // output, one row each, in order.
    let model = run.join("model.onnx");
    let images: Vec<PathBuf> = manifest
        .iter()
        .take(30)
        .map(|r| data.images.join(&r.path))
        .collect();
    let mut args = vec!["predict", "--model", s(&model)];
    args.extend(images.iter().map(|p| s(p)));
    let out = valar(&args);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 31, "{stdout}");
    for (line, image) in lines[1..].iter().zip(&images) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], s(image));
        assert!(
            cells[1].parse::<f32>().is_ok() && cells[2].parse::<f32>().is_ok(),
            "{line}"
        );
        assert!(cells[12].is_empty(), "{line}");
    }
}

/// A run killed with SIGKILL in the middle of an epoch, then resumed, ends with exactly the
/// weights, model and predictions of an uninterrupted run with the same seed.
#[test]
fn killed_and_resumed_run_matches_an_uninterrupted_run() {
    let data = data();
    let _serial = serial();
    let dir = scratch("resume");
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--data",
            s(&data.prepared),
            "--out",
            s(out),
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--seed",
            "5",
            "--augment",
        ]
        .map(String::from)
        .to_vec()
    };
    let whole = dir.join("whole");
    let whole_args = args(&whole);
    ok(&whole_args.iter().map(String::as_str).collect::<Vec<_>>());
    let (mh, mrows) = read_csv(&whole.join("metrics.csv"));
    let epoch_secs = column(&mh, &mrows, "seconds")[1];

    let killed = dir.join("killed");
    let killed_args = args(&killed);
    // Killed half-way through the second epoch.
    common::kill_after_first_checkpoint(
        &killed_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &killed,
        Duration::from_secs_f64(epoch_secs / 2.0),
    );
    let loop_state = killed.join("checkpoint/loop.json");
    let state = std::fs::read_to_string(&loop_state).unwrap();
    assert!(
        state.contains("\"finished\": null"),
        "the run finished before it was killed:\n{state}"
    );

    // A damaged checkpoint is refused with a clear message, and the run is left as it was.
    let damaged = dir.join("damaged");
    std::fs::create_dir_all(damaged.join("checkpoint")).unwrap();
    for entry in std::fs::read_dir(&killed)
        .unwrap()
        .chain(std::fs::read_dir(killed.join("checkpoint")).unwrap())
    {
        let p = entry.unwrap().path();
        if p.is_file() {
            let rel = p.strip_prefix(&killed).unwrap();
            std::fs::copy(&p, damaged.join(rel)).unwrap();
        }
    }
    let ckpt = std::fs::read_dir(damaged.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("state-")
        })
        .unwrap();
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&ckpt, bytes).unwrap();
    let err = fails(&["train", "--resume", s(&damaged)]);
    assert!(
        err.contains("corrupt checkpoint") && err.contains("checksum"),
        "{err}"
    );

    let out = ok(&["train", "--resume", s(&killed)]);
    assert!(out.contains("resuming at epoch"), "{out}");

    // The final training state: same step count, same tensors, same values. ONNX Runtime's
    // CPU kernels can round the last bit differently when threads are scheduled differently
    // (seen in validation predictions on a loaded machine), so values may differ by a few
    // ULPs, which over 3 epochs stays far below 1e-5. A real resume bug (a skipped or
    // repeated batch, a different shuffle, augmentation or dropout draw) moves weights by
    // about one AdamW step, around the learning rate (here 1e-3 falling to 2.5e-4), and the
    // optimizer's moment estimates by as much or more.
    let a = TrainState::load(&whole.join("checkpoint/state-0003.ckpt")).unwrap();
    let b = TrainState::load(&killed.join("checkpoint/state-0003.ckpt")).unwrap();
    assert_eq!(a.step, b.step);
    assert_eq!(a.tensors.len(), b.tensors.len());
    let mut worst = 0.0f32;
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!((&x.name, &x.shape), (&y.name, &y.shape));
        for (u, v) in x.data.iter().zip(&y.data) {
            worst = worst.max((u - v).abs());
        }
    }
    eprintln!("largest difference between the resumed and the uninterrupted state: {worst:e}");
    assert!(worst <= 1e-5, "resumed weights differ by up to {worst}");

    // metrics.csv and predictions.csv agree too (seconds aside), to the same rounding.
    for f in ["metrics.csv", "predictions.csv"] {
        let ((ha, ra), (hb, rb)) = (read_csv(&whole.join(f)), read_csv(&killed.join(f)));
        assert_eq!(ha, hb);
        assert_eq!(ra.len(), rb.len(), "{f}");
        for (x, y) in ra.iter().zip(&rb) {
            for ((name, u), v) in ha.iter().zip(x).zip(y) {
                if name == "seconds" || u == v {
                    continue;
                }
                let (u, v): (f64, f64) = (u.parse().unwrap(), v.parse().unwrap());
                assert!((u - v).abs() < 1e-4, "{f}: {name} {u} vs {v}");
            }
        }
    }
    // Resuming a finished run does nothing.
    let out = ok(&["train", "--resume", s(&killed)]);
    assert!(out.contains("already finished"), "{out}");
}

/// Inputs valar cannot use are refused before any training, with a message that says why.
#[test]
fn bad_inputs_are_refused_with_clear_errors() {
    let data = data();
    let _serial = serial();
    let dir = scratch("bad");
    let err = fails(&[
        "train",
        "--data",
        s(&dir.join("nope")),
        "--out",
        s(&dir.join("r")),
    ]);
    assert!(err.contains("valar prepare"), "{err}");
    let err = fails(&[
        "train",
        "--data",
        s(&data.prepared),
        "--out",
        s(&dir.join("r")),
        "--model",
        "densenet",
    ]);
    assert!(err.contains("facecnn, compact"), "{err}");
    let err = fails(&["train", "--resume", s(&dir)]);
    assert!(err.contains("config.toml"), "{err}");

    // --force deletes only a folder a run wrote.
    let precious = dir.join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "…").unwrap();
    let err = fails(&[
        "train",
        "--data",
        s(&data.prepared),
        "--out",
        s(&precious),
        "--force",
    ]);
    assert!(err.contains("refusing to delete"), "{err}");
    assert!(precious.join("thesis.tex").is_file());

    // A dataset whose faces are not the model's size, and one without validation rows.
    let small = dir.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let manifest = std::fs::read_to_string(data.prepared.join("manifest.csv")).unwrap();
    std::fs::write(
        small.join("manifest.csv"),
        manifest.replace(",val,", ",train,"),
    )
    .unwrap();
    std::fs::copy(data.prepared.join("faces.npy"), small.join("faces.npy")).unwrap();
    // Without validation rows only a run that keeps its last epoch trains (see
    // a_folder_without_val_faces_trains_on_every_face_and_says_no_validation_ran).
    let err = fails(&[
        "train",
        "--data",
        s(&small),
        "--out",
        s(&dir.join("r")),
        "--keep",
        "best",
    ]);
    assert!(err.contains("val split is empty"), "{err}");
    let err = fails(&[
        "evaluate",
        "--model",
        s(&dir.join("missing.onnx")),
        "--data",
        s(&data.prepared),
    ]);
    assert!(err.contains("no such model file"), "{err}");

    // A model trained on 32×32 faces cannot score 48×48 ones.
    let p32 = dir.join("p32");
    ok(&prepare_args(
        &data.csv,
        &data.images,
        &p32,
        &["--quota", "8", "--size", "32", "--seed", "1"],
    ));
    let run32 = dir.join("run32");
    ok(&[
        "train",
        "--data",
        s(&p32),
        "--out",
        s(&run32),
        "--epochs",
        "1",
        "--batch-size",
        "16",
    ]);
    let err = fails(&[
        "evaluate",
        "--model",
        s(&run32.join("model.onnx")),
        "--data",
        s(&data.prepared),
    ]);
    assert!(
        err.contains("faces are 1×48×48") && err.contains("takes 1×32×32"),
        "{err}"
    );
}

/// A model whose outputs lie far outside [−1, 1]: made by adding 50 to the output layer's
/// bias in a one-epoch run's checkpoint and letting `--resume` export it. No prediction may
/// leave valar outside the label range (validation, evaluate, predict), and evaluate says
/// plainly that this model is worse than predicting the training mean.
#[test]
fn predictions_are_clipped_to_the_label_range_and_a_model_worse_than_the_mean_says_so() {
    let data = data();
    let _serial = serial();
    let dir = scratch("clip");
    let run = dir.join("run");
    ok(&[
        "train",
        "--data",
        s(&data.prepared),
        "--out",
        s(&run),
        "--model",
        "compact",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--seed",
        "3",
        "--patience",
        "0",
        // The output layer alone then has one value per target (no expression logits), and
        // no calibration pulls the pushed outputs back into the range.
        "--expression-weight",
        "0",
        "--calibrate=false",
    ]);
    let loop_json = run.join("checkpoint/loop.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&loop_json).unwrap()).unwrap();
    let ckpt = run
        .join("checkpoint")
        .join(state["state_file"].as_str().unwrap());
    let mut weights = TrainState::load(&ckpt).unwrap();
    // Only the output layer (and its optimizer moments, unused here) has one value per target.
    let mut pushed = 0;
    for t in &mut weights.tensors {
        if t.shape == [2] {
            t.data.iter_mut().for_each(|v| *v += 50.0);
            pushed += 1;
        }
    }
    assert!(pushed > 0, "no output-sized tensor in the checkpoint");
    weights.save(&ckpt).unwrap();
    // An unfinished run with every epoch done: resume runs none and exports the weights.
    state["finished"] = serde_json::Value::Null;
    std::fs::write(&loop_json, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    std::fs::remove_file(run.join("model.onnx")).unwrap();
    ok(&["train", "--resume", s(&run)]);

    // Validation predictions written by training: all at the top of the range.
    let preds = assert_in_label_range(
        &run.join("predictions.csv"),
        &["valence_pred", "arousal_pred"],
    );
    assert!(preds.iter().all(|&p| p == 1.0), "{preds:?}");

    let eval_csv = dir.join("eval.csv");
    let out = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&data.prepared),
        "--split",
        "val",
        "--out",
        s(&eval_csv),
    ]);
    let preds = assert_in_label_range(&eval_csv, &["valence_pred", "arousal_pred"]);
    assert!(preds.iter().all(|&p| p == 1.0), "{preds:?}");
    // The printed RMSE is that of the clipped predictions (all 1), computed here.
    let manifest = read_manifest(&data.prepared.join("manifest.csv")).unwrap();
    let val: Vec<_> = manifest.iter().filter(|r| r.split == Split::Val).collect();
    let line = out.lines().find(|l| l.starts_with("valence")).unwrap();
    let rmse: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let expected = (val
        .iter()
        .map(|r| (f64::from(r.valence) - 1.0).powi(2))
        .sum::<f64>()
        / val.len() as f64)
        .sqrt();
    assert!(
        (rmse - expected).abs() < 1e-4,
        "{rmse} vs {expected}\n{out}"
    );
    for dim in ["valence", "arousal"] {
        assert!(
            out.lines().any(
                |l| l.starts_with(&format!("warning: {dim} on the val split: RMSE"))
                    && l.ends_with("the model is worse than the mean.")
            ),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "warning: {dim} on the val split: CCC 0.000 is near zero"
            )),
            "{out}"
        );
    }

    let images: Vec<PathBuf> = val
        .iter()
        .take(4)
        .map(|r| data.images.join(&r.path))
        .collect();
    let model = run.join("model.onnx");
    let predict_csv = dir.join("predict.csv");
    let mut args = vec!["predict", "--model", s(&model), "--out", s(&predict_csv)];
    args.extend(images.iter().map(|p| s(p)));
    ok(&args);
    let preds = assert_in_label_range(&predict_csv, &["valence", "arousal"]);
    assert_eq!(preds.len(), 8);
    assert!(preds.iter().all(|&p| p == 1.0), "{preds:?}");
}

/// A folder prepared with `--val-fraction 0` trains on every face when the run keeps its last
/// epoch and stops on no patience (the defaults), as a PyTorch script that trains on all its
/// faces does; the model card says no validation ran, and `--keep best` is refused, naming
/// why and both ways out. The model then scores on a test set and the run draws its report.
#[test]
fn a_folder_without_val_faces_trains_on_every_face_and_says_no_validation_ran() {
    let d = data();
    let root = scratch("no-val");
    let prepared = root.join("prepared");
    ok(&prepare_args(
        &d.csv,
        &d.images,
        &prepared,
        &["--quota", "20", "--seed", "7", "--val-fraction", "0"],
    ));
    let manifest = read_manifest(&prepared.join("manifest.csv")).unwrap();
    assert!(manifest.len() > 40);
    assert!(manifest.iter().all(|r| r.split == Split::Train));

    let best = root.join("best");
    let refused = fails(&train_args(
        &prepared,
        &best,
        &["--epochs", "1", "--keep", "best"],
    ));
    assert!(
        refused.contains("val split is empty")
            && refused.contains("--keep last --patience 0")
            && refused.contains("--val-fraction"),
        "{refused}"
    );
    assert!(!best.join("model.onnx").exists());

    let run = root.join("run");
    let _serial = serial();
    ok(&train_args(
        &prepared,
        &run,
        &["--epochs", "2", "--keep", "last", "--patience", "0"],
    ));
    let (header, rows) = read_csv(&run.join("metrics.csv"));
    assert_eq!(rows.len(), 2, "one row per epoch");
    let val_loss = header.iter().position(|h| h == "val_loss").unwrap();
    assert!(rows.iter().all(|r| r[val_loss].is_empty()), "{rows:?}");
    let train_loss = column(&header, &rows, "train_loss");
    assert!(train_loss.iter().all(|l| l.is_finite() && *l > 0.0));
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("No validation was run"), "{card}");

    let test = root.join("test");
    ok(&prepare_args(&d.val_csv, &d.images, &test, &["--all"]));
    let preds = root.join("predictions-test.csv");
    ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&test),
        "--out",
        s(&preds),
    ]);
    assert_in_label_range(&preds, &["valence_pred", "arousal_pred"]);
    ok(&["report", "--run", s(&run), "--out", s(&root.join("report"))]);
    assert!(root.join("report/report.md").is_file());
}

/// `--lds` and `--expression-weight` train like any other setting and are saved in the run's
/// config.toml; on a folder whose training faces have no expression class the run trains
/// without the head, says so, and its config.toml and model.onnx record what it did.
#[test]
fn lds_and_the_expression_head_train_and_are_saved() {
    let d = data();
    let root = scratch("lds-expression");
    let run = root.join("run");
    let _serial = serial();
    ok(&train_args(
        &d.prepared,
        &run,
        &["--epochs", "1", "--lds", "--expression-weight", "0.5"],
    ));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("lds = true"), "{config}");
    assert!(config.contains("expression_weight = 0.5"), "{config}");
    let (header, rows) = read_csv(&run.join("metrics.csv"));
    assert!(
        column(&header, &rows, "train_loss")
            .iter()
            .all(|l| l.is_finite())
    );

    // The same faces with every expression code replaced by 9 (Uncertain): no class to learn.
    let unlabelled = root.join("unlabelled");
    common::copy_dir(&d.prepared, &unlabelled);
    let manifest = unlabelled.join("manifest.csv");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_string()];
    for line in lines {
        let mut cells: Vec<&str> = line.split(',').collect();
        cells[4] = "9";
        out.push(cells.join(","));
    }
    std::fs::write(&manifest, out.join("\n") + "\n").unwrap();
    let plain = root.join("plain");
    let out = ok(&train_args(
        &unlabelled,
        &plain,
        &["--epochs", "1", "--expression-weight", "0.5"],
    ));
    assert!(
        out.contains("note: no training face has an expression class"),
        "{out}"
    );
    let config = std::fs::read_to_string(plain.join("config.toml")).unwrap();
    assert!(config.contains("expression_weight = 0.0"), "{config}");
    let meta = valar_engine::read_metadata(&plain.join("model.onnx")).unwrap();
    assert!(!meta.contains_key("valar.expression_classes"), "{meta:?}");
}

/// Every augmentation and the warm-up together: the run finishes, its config.toml holds the
/// values it trained with, and the first epoch's rate is warm-up's first step, far below the
/// second epoch's. `--augment` takes its value after `=` (alone it means `full`).
#[test]
fn a_run_with_every_augmentation_and_warm_up_finishes_and_records_them() {
    let data = data();
    let _serial = serial();
    let run = scratch("augment").join("run");
    let out = ok(&train_args(
        &data.prepared,
        &run,
        &[
            "--epochs",
            "2",
            "--augment=affine",
            "--jitter",
            "0.2",
            "--erasing",
            "0.25",
            "--mixup",
            "0.2",
            "--warmup",
            "1",
        ],
    ));
    assert!(run.join("model.onnx").is_file(), "{out}");
    let state = std::fs::read_to_string(run.join("checkpoint/loop.json")).unwrap();
    assert!(!state.contains("\"finished\": null"), "{state}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for line in [
        "augment = \"affine\"",
        "jitter = 0.2",
        "erasing = 0.25",
        "mixup = 0.2",
        "warmup = 1",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "{line} not in:\n{config}"
        );
    }
    let (header, rows) = read_csv(&run.join("metrics.csv"));
    assert_eq!(rows.len(), 2);
    assert!(
        column(&header, &rows, "train_loss")
            .iter()
            .all(|l| l.is_finite())
    );
    let lr = column(&header, &rows, "lr");
    assert!(lr[0] < lr[1] / 5.0, "warm-up's first step: {lr:?}");
}
