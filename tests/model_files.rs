//! What a run hands on besides its weights: model.onnx's `valar.*` metadata (read by
//! `evaluate`, `predict` and the README's Python snippet) and MODEL_CARD.md.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{Data, Fixture, List, copy_dir, fails, ok, prepare_args, s, scratch, valar};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Margin the fixture prepares with: not prepare's default, so that a predict that ignored
/// the model's metadata would cut other faces.
const MARGIN: &str = "0.1";

/// Synthetic faces prepared with margin 0.1 (train/val, and a test folder `test` from the
/// validation list with `--all`) and a two-epoch run on them. Made once per build of the
/// binary; tests that change the run work on a copy.
fn fixture() -> Data {
    let prep = ["--quota", "15", "--seed", "5", "--margin", MARGIN];
    Fixture::synth(300, 40, 5)
        .prepare(&prep)
        .prepare_into(
            "test",
            List::Validation,
            &[&prep[..], &["--all", "--png"]].concat(),
        )
        .train(&["--epochs", "2", "--keep", "best"])
        .cached("fixture")
}

/// `python3` with the packages the README's Python needs, or a failure that says how to get them.
fn python(modules: &str) -> String {
    let python = std::env::var("VALAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{python} -c 'import {modules}'` failed: run `just setup` (it installs onnxruntime==1.31.1, \
         pillow, numpy and onnx), or set VALAR_PYTHON to a Python that has them: {:?}",
        out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
    python
}

/// Runs Python `code` with `args`; returns stdout.
fn run_python(python: &str, code: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// model.onnx's metadata as onnx itself reads it, and its output names and last node.
fn onnx_view(python: &str, model: &Path) -> (BTreeMap<String, String>, String) {
    let code = "import sys, onnx\n\
                m = onnx.load(sys.argv[1])\n\
                for p in m.metadata_props: print('meta', p.key, p.value, sep='\\t')\n\
                print('graph', ','.join(o.name for o in m.graph.output), m.graph.node[-1].op_type, sep='\\t')";
    let text = run_python(python, code, &[s(model)]);
    let mut meta = BTreeMap::new();
    let mut graph = String::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('\t').collect();
        match cells[0] {
            "meta" => {
                meta.insert(cells[1].to_string(), cells[2].to_string());
            }
            _ => graph = cells[1..].join(" "),
        }
    }
    (meta, graph)
}

/// The keys of the README's metadata table (its rows' first cells, `valar.…`).
fn readme_keys() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- metadata-keys:start -->").unwrap();
    let end = readme.find("<!-- metadata-keys:end -->").unwrap();
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_fresh_model_carries_every_documented_key_and_a_named_clipped_output() {
    let f = fixture();
    let python = python("onnx");
    let copy = scratch("fresh");
    std::fs::copy(f.run.join("model.onnx"), copy.join("model.onnx")).unwrap();
    let (meta, graph) = onnx_view(&python, &copy.join("model.onnx"));
    let documented = readme_keys();
    let written: Vec<String> = valar_train::EXPORT_KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    for key in &written {
        assert!(
            documented.contains(key),
            "{key} is not in the README's table"
        );
        assert!(meta.contains_key(key), "{key} missing from {meta:?}");
    }
    for key in &documented {
        // The device is known only once training starts; only a model with an expression head
        // names its classes, and `valar.calibration` is written only by `--calibrate`
        // (tests/calibrate.rs checks it); evaluate writes nothing into the model (its figures
        // go beside its predictions), so no `valar.test.*` key exists.
        let optional = [
            "valar.device",
            "valar.expression_classes",
            "valar.calibration",
        ];
        assert!(
            written.contains(key) || optional.contains(&key.as_str()),
            "the README documents {key}, which valar does not write"
        );
    }
    assert!(meta.contains_key("valar.device"), "{meta:?}");
    // The default recipe trains an expression head: its logits are the second output.
    assert_eq!(meta["valar.outputs"], "valence_arousal,expression");
    assert_eq!(meta["valar.targets"], "valence,arousal");
    assert_eq!(meta["valar.input_size"], "48");
    assert_eq!(meta["valar.channels"], "1");
    assert_eq!(meta["valar.crop.margin"], MARGIN);
    assert_eq!(meta["valar.crop.box_source"], "csv_box");
    assert_eq!(meta["valar.decode.scale_rule"], "jpeg_draft");
    let prep = std::fs::read(f.prepared.join("prep.json")).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&prep)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(meta["valar.prep_sha256"], sha);
    assert!(!meta.keys().any(|k| k.starts_with("valar.test.")));
    assert_eq!(graph, "valence_arousal,expression Clip");
}

#[test]
fn evaluate_refuses_data_cut_otherwise_than_the_model_naming_both() {
    let f = fixture();
    let dir = scratch("refuse");
    // Folder names free of the sizes and margins, so that only the message can match.
    for (name, extra, expect) in [
        ("bigger", ["--size", "64"], ["1×64×64", "1×48×48"]),
        (
            "uncut",
            ["--margin", "0"],
            ["margin 0.1 (model)", "vs 0 (data)"],
        ),
    ] {
        let out = dir.join(name);
        let mut args = prepare_args(&f.csv, &f.images, &out, &["--quota", "3", "--seed", "5"]);
        args.extend_from_slice(&extra);
        ok(&args);
        let err = fails(&[
            "evaluate",
            "--model",
            s(&f.run.join("model.onnx")),
            "--data",
            s(&out),
            "--split",
            "all",
            "--out",
            s(&dir.join("p.csv")),
        ]);
        for e in expect {
            assert!(err.contains(e), "{name}: {e} not in {err}");
        }
    }
}

/// predict's CSV as path → (valence, arousal).
fn predicted(text: &str) -> BTreeMap<String, (f64, f64)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].to_string(),
                (c[1].parse().unwrap(), c[2].parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn predict_takes_margin_and_targets_from_the_model_and_says_when_overridden() {
    let f = fixture();
    let dir = scratch("predict");
    let text = std::fs::read_to_string(&f.csv).unwrap();
    let rows: Vec<String> = text
        .lines()
        .take(9)
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
        .collect();
    let list = dir.join("list.csv");
    std::fs::write(&list, rows.join("\n") + "\n").unwrap();
    let model = f.run.join("model.onnx");
    let base = [
        "predict",
        "--model",
        s(&model),
        "--csv",
        s(&list),
        "--images-root",
        s(&f.images),
    ];
    let by_model = valar(&base);
    assert!(by_model.status.success());
    let stderr = String::from_utf8_lossy(&by_model.stderr);
    assert!(!stderr.contains("note:"), "{stderr}");
    let mut explicit = base.to_vec();
    explicit.extend(["--margin", MARGIN]);
    let same = valar(&explicit);
    assert_eq!(by_model.stdout, same.stdout, "no flag = the model's margin");

    let mut other = base.to_vec();
    other.extend(["--margin", "0", "--targets", "both"]);
    let overridden = valar(&other);
    let stderr = String::from_utf8_lossy(&overridden.stderr);
    assert!(
        stderr.contains("--margin 0 overrides") && stderr.contains("margin 0.1"),
        "{stderr}"
    );
    assert_ne!(by_model.stdout, overridden.stdout, "the override is used");
    let mut contradicting = base.to_vec();
    contradicting.extend(["--targets", "valence"]);
    let err = fails(&contradicting);
    assert!(
        err.contains("--targets valence overrides") || err.contains("need 1"),
        "{err}"
    );
}

/// The README's Python, extracted between its markers, so the README cannot drift from what
/// this test runs.
fn readme_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- python-snippet:start -->").unwrap();
    let end = readme.find("<!-- python-snippet:end -->").unwrap();
    let block = &readme[start..end];
    let code_start = block.find("```python\n").unwrap() + "```python\n".len();
    let code_end = block[code_start..].find("```").unwrap();
    block[code_start..code_start + code_end].to_string()
}

#[test]
fn the_readme_python_snippet_reproduces_valar_predict() {
    let f = fixture();
    let python = python("numpy, onnxruntime, PIL");
    let code = readme_snippet();
    assert!(
        code.lines().filter(|l| !l.trim().is_empty()).count() <= 16,
        "the snippet should stay short:\n{code}"
    );
    let model = f.run.join("model.onnx");
    let compare = |images: &[PathBuf], tolerance: f64| {
        let mut args = vec!["predict", "--model", s(&model)];
        args.extend(images.iter().map(|p| s(p)));
        let ours = predicted(
            &ok(&args)
                .lines()
                .filter(|l| !l.contains("images predicted"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let mut py_args = vec![s(&model)];
        py_args.extend(images.iter().map(|p| s(p)));
        let theirs = predicted(&run_python(&python, &code, &py_args));
        assert_eq!(ours.len(), images.len());
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>()
        );
        let mut worst = 0.0f64;
        for (path, (v, a)) in &ours {
            let (pv, pa) = theirs[path];
            worst = worst.max((v - pv).abs()).max((a - pa).abs());
            assert!(
                (v - pv).abs() < tolerance && (a - pa).abs() < tolerance,
                "{path}: valar ({v}, {a}) vs Python ({pv}, {pa})"
            );
        }
        eprintln!("largest difference {worst:e} (tolerance {tolerance:e})");
    };
    // Faces as prepare cut them (`--png`), at the model's size: the same pixels on both sides,
    // so what is checked is the reading of the metadata, the scaling and the output.
    let faces: Vec<PathBuf> = walk_png(&f.at("test").join("png"))
        .into_iter()
        .take(12)
        .collect();
    assert_eq!(faces.len(), 12);
    compare(&faces, 1e-5);
    // Whole JPEGs, resized by each side's bicubic: Pillow rounds its two passes otherwise
    // than valar's resizer, by one grey level in about a fifth of the pixels.
    let text = std::fs::read_to_string(&f.csv).unwrap();
    let images: Vec<PathBuf> = text
        .lines()
        .skip(1)
        .take(12)
        .map(|l| f.images.join(l.split(',').next().unwrap()))
        .collect();
    compare(&images, 1e-3);
}

fn walk_png(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(walk_png(&p));
        } else if p.extension().is_some_and(|e| e == "png") {
            out.push(p);
        }
    }
    out
}

/// The value after `| dim |` in a card's table under `section`, column `col` (0 = CCC).
fn card_cell(card: &str, section: &str, dim: &str, col: usize) -> String {
    let start = card.find(section).unwrap();
    let line = card[start..]
        .lines()
        .find(|l| l.starts_with(&format!("| {dim} |")))
        .unwrap();
    line.split('|')
        .map(str::trim)
        .nth(2 + col)
        .unwrap()
        .to_string()
}

#[test]
fn the_model_card_shows_the_run_and_its_test_evaluation() {
    let f = fixture();
    let run = scratch("card").join("run");
    copy_dir(&f.run, &run);
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(card.starts_with("---\nlibrary_name: valar\n"), "{card}");
    for needle in [
        "datasets:\n  - AffectNet",
        "## Data",
        "## Recipe",
        "## Validation",
        "## Test",
        "## Limitations",
        "Not evaluated yet",
        "licence",
        "single-annotator",
        "| model | \"compact\" |",
    ] {
        assert!(card.contains(needle), "{needle} not in:\n{card}");
    }
    // Validation figures: metrics.csv's row of the epoch in model.onnx (the best mean CCC).
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = metrics
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|c| c.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let best = rows
        .iter()
        .fold(None::<&Vec<f64>>, |b, r| {
            let score = |r: &Vec<f64>| r[col("valence_ccc")] + r[col("arousal_ccc")];
            match b {
                Some(b) if score(b) >= score(r) => Some(b),
                _ => Some(r),
            }
        })
        .unwrap();
    assert!(
        card.contains(&format!("epoch {} of {} run", best[0], rows.len())),
        "{card}"
    );
    for dim in ["valence", "arousal"] {
        for (i, m) in ["ccc", "pcc", "rmse", "sagr"].iter().enumerate() {
            let v = best[col(&format!("{dim}_{m}"))];
            assert_eq!(card_cell(&card, "## Validation", dim, i), format!("{v:.4}"));
        }
        let b = best[col(&format!("{dim}_baseline_rmse"))];
        assert_eq!(card_cell(&card, "## Validation", dim, 4), format!("{b:.4}"));
    }

    // evaluate on a test folder fills the test section with what it printed.
    let out = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&f.at("test")),
    ]);
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(!card.contains("Not evaluated yet"), "{card}");
    assert!(card.contains("split: test"), "{card}");
    for dim in ["valence", "arousal"] {
        // evaluate's table: dim RMSE PCC CCC SAGR, base RMSE …
        let line = out
            .lines()
            .find(|l| l.starts_with(dim))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>();
        let (rmse, pcc, ccc, sagr, base) = (line[1], line[2], line[3], line[4], line[5]);
        assert_eq!(card_cell(&card, "## Test", dim, 0), ccc, "{out}\n{card}");
        assert_eq!(card_cell(&card, "## Test", dim, 1), pcc);
        assert_eq!(card_cell(&card, "## Test", dim, 2), rmse);
        assert_eq!(card_cell(&card, "## Test", dim, 3), sagr);
        assert_eq!(card_cell(&card, "## Test", dim, 4), base);
    }
    // The figures are beside the predictions; the model itself is untouched.
    assert_eq!(
        std::fs::read(run.join("model.onnx")).unwrap(),
        std::fs::read(f.run.join("model.onnx")).unwrap()
    );
    let python = python("onnx");
    let (meta, _) = onnx_view(&python, &run.join("model.onnx"));
    assert!(
        !meta.keys().any(|k| k.starts_with("valar.test.")),
        "{meta:?}"
    );
    let record = std::fs::read_to_string(run.join("predictions-test.model.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["split"], "test");
    assert!(record["metrics"]["valence"]["ccc"].is_number(), "{record}");
}

#[test]
fn tensorboard_events_read_back_equal_metrics_csv() {
    let f = fixture();
    let python = python("tensorboard");
    let code = "import sys, glob\n\
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
                acc = EventAccumulator(sys.argv[1]); acc.Reload()\n\
                for tag in sorted(acc.Tags()['scalars']):\n\
                \x20   for e in acc.Scalars(tag): print(tag, e.step, repr(e.value), sep='\\t')\n\
                print('files', len(glob.glob(sys.argv[1] + '/events.out.tfevents.*')), sep='\\t')";
    let text = run_python(&python, code, &[s(&f.run)]);
    let mut got: BTreeMap<(String, usize), f64> = BTreeMap::new();
    for line in text.lines() {
        let c: Vec<&str> = line.split('\t').collect();
        if c[0] == "files" {
            assert_eq!(c[1], "1", "one event file per training process");
        } else {
            got.insert(
                (c[0].to_string(), c[1].parse().unwrap()),
                c[2].parse().unwrap(),
            );
        }
    }
    let metrics = std::fs::read_to_string(f.run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let columns = [
        ("train_loss", "loss/train"),
        ("val_loss", "loss/val"),
        ("lr", "lr"),
        ("valence_ccc", "valence/ccc"),
        ("valence_rmse", "valence/rmse"),
        ("valence_pcc", "valence/pcc"),
        ("valence_sagr", "valence/sagr"),
        ("valence_baseline_rmse", "valence/baseline_rmse"),
        ("arousal_ccc", "arousal/ccc"),
        ("arousal_rmse", "arousal/rmse"),
        ("arousal_pcc", "arousal/pcc"),
        ("arousal_sagr", "arousal/sagr"),
        ("arousal_baseline_rmse", "arousal/baseline_rmse"),
    ];
    let mut checked = 0;
    for line in metrics.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let epoch: usize = cells[0].parse().unwrap();
        for (column, tag) in columns {
            let i = header.iter().position(|h| *h == column).unwrap();
            let want: f64 = cells[i].parse().unwrap();
            let have = got[&(tag.to_string(), epoch)];
            // Summaries hold f32.
            assert_eq!(have, f64::from(want as f32), "{tag} epoch {epoch}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * columns.len());
    assert_eq!(
        got.len(),
        checked,
        "no scalar beyond metrics.csv's: {got:?}"
    );
}

/// A run with an expression head: model.onnx has two outputs (valence/arousal clipped, then the
/// expression logits) that ONNX Runtime in Python reads as valar does; `valar predict` gives each
/// class's probability, `valar evaluate` scores the classes and records the confusion matrix,
/// the model card says so and the report draws it.
#[test]
fn an_expression_head_gives_a_second_output_that_python_predict_evaluate_and_report_read() {
    let f = fixture();
    let python = python("numpy, onnxruntime, PIL, onnx");
    let root = scratch("expression");
    let run = root.join("run");
    ok(&common::train_args(
        &f.prepared,
        &run,
        &["--epochs", "2", "--expression-weight", "0.5"],
    ));
    let model = run.join("model.onnx");
    let (meta, graph) = onnx_view(&python, &model);
    assert_eq!(graph, "valence_arousal,expression Clip", "{graph}");
    assert_eq!(meta["valar.outputs"], "valence_arousal,expression");
    assert_eq!(
        meta["valar.expression_classes"],
        "Neutral,Happy,Sad,Surprise,Fear,Disgust,Anger,Contempt"
    );
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("A second output, `expression`"), "{card}");

    // predict: the likeliest class and a probability per class, as Python computes them.
    let faces: Vec<PathBuf> = walk_png(&f.at("test").join("png"))
        .into_iter()
        .take(6)
        .collect();
    let mut args = vec!["predict", "--model", s(&model)];
    args.extend(faces.iter().map(|p| s(p)));
    let text = ok(&args);
    let mut lines = text.lines().filter(|l| !l.contains("images predicted"));
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..4], ["path", "valence", "arousal", "expression"]);
    assert_eq!(header[4], "p_Neutral");
    assert_eq!(*header.last().unwrap(), "error");
    let code = "import sys, numpy as np, onnxruntime as ort\n\
                from PIL import Image\n\
                s = ort.InferenceSession(sys.argv[1])\n\
                print(','.join(o.name for o in s.get_outputs()))\n\
                for p in sys.argv[2:]:\n\
                \x20   x = np.asarray(Image.open(p).convert('L'), np.float32)[None, None] / 127.5 - 1\n\
                \x20   va, z = s.run(None, {s.get_inputs()[0].name: x})\n\
                \x20   e = np.exp(z[0] - z[0].max()); e /= e.sum()\n\
                \x20   print(p, *va[0], *e, sep=',')";
    let mut py_args = vec![s(&model)];
    py_args.extend(faces.iter().map(|p| s(p)));
    let py = run_python(&python, code, &py_args);
    let mut py_lines = py.lines();
    assert_eq!(py_lines.next().unwrap(), "valence_arousal,expression");
    for (ours, theirs) in lines.zip(py_lines) {
        let ours: Vec<&str> = ours.split(',').collect();
        let theirs: Vec<&str> = theirs.split(',').collect();
        assert_eq!(ours[0], theirs[0]);
        let num = |c: &str| c.parse::<f64>().unwrap();
        let probs: Vec<f64> = ours[4..12].iter().map(|c| num(c)).collect();
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{probs:?}");
        let best = (0..8)
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap();
        assert_eq!(ours[3], header[4 + best].trim_start_matches("p_"));
        // valar's columns 1, 2 (valence, arousal) and 4–11 (probabilities) are Python's 1–10.
        let ours_numbers = ours[1..3].iter().chain(&ours[4..12]);
        for (k, (a, b)) in ours_numbers.zip(&theirs[1..]).enumerate() {
            let (a, b) = (num(a), num(b));
            assert!((a - b).abs() < 1e-5, "value {k}: valar {a} vs Python {b}");
        }
    }

    // evaluate: accuracy, balanced accuracy and the confusion matrix, printed and recorded.
    let printed = ok(&["evaluate", "--model", s(&model), "--data", s(&f.at("test"))]);
    assert!(printed.contains("expression: accuracy"), "{printed}");
    assert!(printed.contains("balanced accuracy"), "{printed}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("predictions-test.model.json")).unwrap(),
    )
    .unwrap();
    let e = &record["expression"];
    let confusion = e["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 8);
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, e["faces"].as_u64().unwrap());
    assert!(total > 0);
    let acc = e["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("Expression head: accuracy"), "{card}");

    // report: the confusion figure beside the test figures.
    let report = root.join("report");
    ok(&["report", "--run", s(&run), "--out", s(&report)]);
    assert!(report.join("test_expression_confusion.png").is_file());
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("test_expression_confusion.png"), "{md}");
}
