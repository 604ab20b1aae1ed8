//! End-to-end tests of `valar report`, run through the binary: on a folder written by
//! `valar synth` + `valar prepare`, and on a run folder that names it in its config.toml.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{Fixture, ok, s, valar};
use valar_core::{Split, read_manifest};

use std::path::Path;

fn pngs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names
}

/// A run folder as `valar train` leaves it, with hand-made tables: training needs
/// ONNX Runtime, which this test does not.
fn fake_run(run: &Path, data: &Path) {
    std::fs::create_dir_all(run).unwrap();
    let mut metrics = String::from(
        "epoch,train_loss,val_loss,valence_rmse,valence_pcc,valence_ccc,valence_sagr,valence_baseline_rmse,arousal_rmse,arousal_pcc,arousal_ccc,arousal_sagr,arousal_baseline_rmse,lr,seconds\n",
    );
    for e in 1..=5 {
        let f = f64::from(e);
        metrics.push_str(&format!(
            "{e},{},{},,,,,,{},{},{},{},0.55,0.001,3.0\n",
            0.6 / f,
            0.5 / f.sqrt(),
            0.5 - 0.04 * f,
            0.1 * f,
            0.09 * f,
            0.5 + 0.05 * f
        ));
    }
    std::fs::write(run.join("metrics.csv"), metrics).unwrap();
    let mut preds =
        String::from("index,path,valence_true,valence_pred,arousal_true,arousal_pred\n");
    for i in 0..60 {
        let t = (i as f32 / 59.0) * 2.0 - 1.0;
        let p = 0.6 * t + 0.1 * ((i % 7) as f32 / 7.0 - 0.5);
        preds.push_str(&format!("{i},img/{i}.jpg,,,{t},{p}\n"));
    }
    std::fs::write(run.join("predictions.csv"), preds).unwrap();
    std::fs::write(
        run.join("config.toml"),
        format!(
            "data = \"{}\"\ntargets = \"arousal\"\nepochs = 5\n",
            s(data)
        ),
    )
    .unwrap();
}

#[test]
fn report_on_prepared_data_and_on_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = Fixture::synth(300, 40, 3)
        .prepare(&["--quota", "10"])
        .make_in(dir.path())
        .prepared;

    // Data only, default output folder inside the prepared folder.
    let text = ok(&["report", "--data", s(&prepared)]);
    let out = prepared.join("report");
    assert!(text.contains("report.md"), "{text}");
    let data_pngs = pngs(&out);
    assert!(data_pngs.len() >= 4, "{data_pngs:?}");
    assert!(
        data_pngs.iter().all(|n| n.starts_with("data_")),
        "{data_pngs:?}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for png in &data_pngs {
        assert!(
            md.contains(&format!("](<{png}>)")),
            "report.md misses {png}"
        );
        let img = image::open(out.join(png)).unwrap();
        assert_eq!(img.width(), 1800, "{png}");
    }

    // A run only: the data figures come through its config.toml, arousal only.
    let run = dir.path().join("run");
    fake_run(&run, &prepared);
    let text = ok(&["report", "--run", s(&run)]);
    assert!(text.contains("config.toml"), "{text}");
    let all = pngs(&run.join("report"));
    for expected in [
        "training_loss.png",
        "training_ccc.png",
        "errors_scatter.png",
        "errors_by_interval.png",
        "errors_residuals.png",
    ] {
        assert!(all.contains(&expected.to_string()), "{all:?}");
    }
    assert_eq!(all.len(), data_pngs.len() + 5, "{all:?}");
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    assert!(md.contains("| arousal | model | 60 |"), "{md}");
    assert!(!md.contains("| valence |"), "{md}");
    // metrics.csv's baseline sits beside the model; validation CCC reached 0.45, RMSE 0.3
    // against the baseline's 0.55: no warning.
    assert!(md.contains("| arousal | mean baseline | 0.5500 |"), "{md}");
    assert!(!md.contains("worse than the mean"), "{md}");
    assert!(!md.contains("test_errors"), "{md}");

    // A test evaluation beside the model (valar evaluate's default name): on the prepared
    // folder's validation faces, a good model first, then one that predicts −0.9 always.
    let manifest = read_manifest(&prepared.join("manifest.csv")).unwrap();
    let faces: Vec<_> = manifest.iter().filter(|r| r.split == Split::Val).collect();
    let write_test = |pred: &dyn Fn(f32) -> f32| {
        let mut csv =
            String::from("index,path,valence_true,valence_pred,arousal_true,arousal_pred\n");
        for r in &faces {
            csv.push_str(&format!(
                "{},{},,,{},{}\n",
                r.index,
                r.path,
                r.arousal,
                pred(r.arousal)
            ));
        }
        std::fs::write(run.join("predictions-test.csv"), csv).unwrap();
    };
    write_test(&|a| 0.9 * a);
    ok(&["report", "--run", s(&run)]);
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    let test = &md[md.find("## Test evaluation").unwrap()..];
    // The baseline: the mean arousal of the train rows, predicted for every test face.
    let train: Vec<f64> = manifest
        .iter()
        .filter(|r| r.split == Split::Train)
        .map(|r| f64::from(r.arousal))
        .collect();
    let mean = train.iter().sum::<f64>() / train.len() as f64;
    let rmse = (faces
        .iter()
        .map(|r| (f64::from(r.arousal) - mean).powi(2))
        .sum::<f64>()
        / faces.len() as f64)
        .sqrt();
    let cell = format!("{rmse:.4}").replace('-', "\u{2212}");
    assert!(
        test.contains(&format!(
            "| arousal | mean baseline | {} | {cell} | \u{2014} | 0.0000 |",
            faces.len()
        )),
        "{cell}\n{test}"
    );
    assert!(
        md.contains("On the test set, the model beats the mean baseline"),
        "{md}"
    );
    assert!(!md.contains("worse than the mean"), "{md}");
    let with_test = pngs(&run.join("report"));
    for f in [
        "test_errors_scatter.png",
        "test_errors_by_interval.png",
        "test_errors_residuals.png",
    ] {
        assert!(with_test.contains(&f.to_string()), "{with_test:?}");
    }

    write_test(&|_| -0.9);
    ok(&["report", "--run", s(&run)]);
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    assert!(
        md.contains("**arousal on the test set: RMSE")
            && md.contains("the model is worse than the mean.**"),
        "{md}"
    );
    assert!(
        md.contains("arousal on the test set: CCC 0.000 is near zero"),
        "{md}"
    );
    std::fs::remove_file(run.join("predictions-test.csv")).unwrap();

    // Explicit output folder; nothing given at all is a usage error.
    let custom = dir.path().join("custom");
    ok(&[
        "report",
        "--data",
        s(&prepared),
        "--run",
        s(&run),
        "--out",
        s(&custom),
    ]);
    assert_eq!(pngs(&custom), all);
    assert!(!valar(&["report"]).status.success());

    // A broken table is named with its row.
    std::fs::write(
        run.join("predictions.csv"),
        "index,path,valence_true,valence_pred,arousal_true,arousal_pred\n0,a.jpg,,,0.5,x\n",
    )
    .unwrap();
    let out = valar(&["report", "--run", s(&run)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("predictions.csv") && err.contains("row 1"),
        "{err}"
    );
}
