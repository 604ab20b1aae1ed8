//! End-to-end test of `valar run` on a tiny synthetic dataset.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{cached, split_per_video};

use std::process::Command;

#[test]
fn run_writes_every_stage_and_a_report_linking_each_png_then_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("valar.toml");
    std::fs::write(
        &config,
        "[data]\nsynth_n = 300\nsynth_test_n = 60\n[prepare]\nquota = 20\n[train]\nepochs = 2\nbatch_size = 32\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let valar = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_valar"))
            .args(&args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "valar run failed:\n{text}");
        text
    };
    let first = valar(&[]);

    for file in [
        "synth/Manually_Annotated_file_lists/training.csv",
        "prepared/faces.npy",
        "prepared/manifest.csv",
        "prepared/rejects.csv",
        "prepared/prep.json",
        "test/faces.npy",
        "test/manifest.csv",
        "train/model.onnx",
        "train/metrics.csv",
        "train/predictions.csv",
        "train/config.toml",
        "evaluation/predictions.csv",
        "report/report.md",
    ] {
        assert!(out.join(file).is_file(), "{file} missing; output:\n{first}");
    }
    // The run's model card carries the test evaluation beside the mean baseline (what
    // `just demo` shows), and the run has TensorBoard curves.
    let card = std::fs::read_to_string(out.join("train/MODEL_CARD.md")).unwrap();
    let test = &card[card.find("## Test").unwrap()..card.find("## Training").unwrap()];
    assert!(
        test.contains("mean baseline RMSE")
            && test.contains("| valence | ")
            && !test.contains("| — |"),
        "{card}"
    );
    assert!(card.contains("split: test, dimension: arousal"), "{card}");
    assert!(
        std::fs::read_dir(out.join("train")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("events.out.tfevents.")),
        "no TensorBoard events in train/"
    );
    let report = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    let pngs: Vec<_> = std::fs::read_dir(out.join("report"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".png"))
        .collect();
    for expected in [
        "data_arousal_histogram.png",
        "training_loss.png",
        "training_ccc.png",
        "errors_scatter.png",
    ] {
        assert!(
            pngs.iter().any(|p| p == expected),
            "{expected} not drawn: {pngs:?}"
        );
    }
    for png in &pngs {
        let linked =
            report.contains(&format!("](<{png}>)")) || report.contains(&format!("]({png})"));
        assert!(linked, "report.md does not link {png}:\n{report}");
    }
    assert!(first.contains("CCC"), "{first}");
    // The demo says that its easy faces are not what real faces give.
    assert!(
        first.contains("note: these are easy synthetic faces") && first.contains("0.4"),
        "{first}"
    );

    // Nothing changed: every stage but the quick evaluation is reused.
    let second = valar(&[]);
    for stage in ["synth", "prepare", "train", "report"] {
        assert!(
            second.contains(&format!("==> {stage}: up to date, reused")),
            "{stage} rerun:\n{second}"
        );
    }
    // --force reruns them.
    let third = valar(&["--force"]);
    assert!(!third.contains("reused"), "{third}");
}

/// `valar run` on a video dataset (synthetic AFEW-VA): the frames are sampled and split per
/// actor, and the evaluation scores each video.
#[test]
fn run_takes_a_video_dataset_from_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("afew");
    let synth = Command::new(env!("CARGO_BIN_EXE_valar"))
        .args([
            "synth", "--layout", "afew-va", "--clips", "8", "--frames", "16",
        ])
        .args(["--seed", "1", "--out", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(synth.status.success(), "{synth:?}");
    let config = dir.path().join("valar.toml");
    std::fs::write(
        &config,
        "[data]\nafew_va = \"afew\"\n[prepare]\nframe_step = 2\nintervals = 4\nquota = 1000\nsize = 24\nval_fraction = 0.25\n[train]\nepochs = 1\nbatch_size = 16\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_valar"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "valar run failed:\n{text}");

    // Every second frame of 8 × 16, each video's frames on one side.
    let manifest = std::fs::read_to_string(out.join("prepared/manifest.csv")).unwrap();
    assert_eq!(manifest.lines().count() - 1, 64, "{manifest}");
    let side = split_per_video(&out.join("prepared"));
    assert_eq!(side.len(), 8, "{side:?}");
    // The evaluation scored every validation video, beside its per-frame predictions.
    let videos = std::fs::read_to_string(out.join("evaluation/predictions-videos.csv")).unwrap();
    let val_videos = side.values().filter(|s| s.name() == "val").count();
    assert!(val_videos > 0, "{side:?}");
    assert!(videos.lines().count() > val_videos, "{videos}");
    // And says so: the pooled and per-video scores, with P_VA.
    assert!(text.contains("P_VA"), "{text}");
}

/// The shared fixture cache (tests/common/fixture.rs) makes a folder once per build of the
/// binary, reuses it while the done file names this build, and starts over from an empty
/// folder when it names another.
#[test]
fn a_cached_fixture_is_made_once_per_build_of_the_binary() {
    let name = "cache-probe";
    let _ = std::fs::remove_file(common::fixture::root().join(format!("{name}.done")));
    let made = std::cell::Cell::new(0);
    let make = |dir: &std::path::Path| {
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "not empty");
        std::fs::write(dir.join("x"), b"x").unwrap();
        made.set(made.get() + 1);
    };
    let first = cached(name, make);
    assert_eq!(cached(name, make), first);
    assert_eq!(made.get(), 1, "made again for the same build");
    assert!(first.join("x").is_file());

    let done = common::fixture::root().join(format!("{name}.done"));
    std::fs::write(&done, "an older binary").unwrap();
    cached(name, make);
    assert_eq!(made.get(), 2, "not made again for another build");
    std::fs::remove_dir_all(&first).unwrap();
    std::fs::remove_file(&done).unwrap();
}
