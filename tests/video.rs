//! End-to-end tests of the video datasets: `valar synth --layout afew-va|aff-wild2`, then
//! `valar prepare`, `valar train` (tiny), `valar evaluate` and `valar report`.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{fails, ok, prepare_args, s, split_per_video, train_args};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use valar_core::{Split, read_manifest};

/// A CSV file as a header and rows of cells, with a column lookup.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &Path) -> Table {
        let mut r = csv::Reader::from_path(path).unwrap();
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect())
            .collect();
        Table { header, rows }
    }

    fn col(&self, name: &str) -> Vec<&str> {
        let i = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header));
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    fn num(&self, name: &str) -> Vec<f32> {
        self.col(name).iter().map(|c| c.parse().unwrap()).collect()
    }
}

/// `valar synth` of a video layout; returns what it printed.
fn synth(layout: &str, clips: &str, frames: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "synth",
        "--layout",
        layout,
        "--clips",
        clips,
        "--frames",
        frames,
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// Trains a tiny model on `prepared` and evaluates it on its validation split; returns
/// what `valar evaluate` printed and the run folder.
fn train_and_evaluate(dir: &Path, prepared: &Path) -> (String, std::path::PathBuf) {
    let run = dir.join("run");
    let extra = ["--epochs", "3", "--seed", "1", "--patience", "0"];
    ok(&train_args(prepared, &run, &extra));
    let printed = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(prepared),
        "--split",
        "val",
    ]);
    (printed, run)
}

/// The per-video file agrees with CCC recomputed from the per-frame file, every scored
/// frame is there once, and the printed P_VA is the mean of the pooled CCCs.
fn check_video_metrics(run: &Path, prepared: &Path, printed: &str) {
    let videos = Table::read(&run.join("predictions-val-videos.csv"));
    let frames = Table::read(&run.join("predictions-val-frames.csv"));
    let manifest = read_manifest(&prepared.join("manifest.csv")).unwrap();
    let val: Vec<_> = manifest.iter().filter(|r| r.split == Split::Val).collect();
    assert_eq!(frames.rows.len(), val.len());
    let val_videos: BTreeSet<&str> = val.iter().filter_map(|r| r.video.as_deref()).collect();
    let listed: BTreeSet<&str> = videos.col("video").into_iter().collect();
    assert_eq!(listed, val_videos);
    let frame_video = frames.col("video");
    for (i, video) in videos.col("video").iter().enumerate() {
        let pick = |name: &str| -> Vec<f32> {
            let all = frames.num(name);
            (0..all.len())
                .filter(|&k| frame_video[k] == *video)
                .map(|k| all[k])
                .collect()
        };
        assert_eq!(videos.num("frames")[i] as usize, pick("valence_true").len());
        for dim in ["valence", "arousal"] {
            let truth = pick(&format!("{dim}_true"));
            let expect = valar_core::ccc(&truth, &pick(&format!("{dim}_smoothed")));
            let got = videos.num(&format!("{dim}_ccc"))[i];
            assert!(
                (f64::from(got) - expect).abs() < 1e-4,
                "{video} {dim}: file {got}, recomputed {expect}"
            );
            let raw = valar_core::ccc(&truth, &pick(&format!("{dim}_pred")));
            assert!((f64::from(videos.num(&format!("{dim}_ccc_raw"))[i]) - raw).abs() < 1e-4);
        }
        // Frames of a video are listed in frame order.
        let order: Vec<u64> = frames
            .col("frame")
            .iter()
            .zip(&frame_video)
            .filter(|(_, v)| **v == *video)
            .map(|(f, _)| f.parse().unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{video}: {order:?}");
    }
    // The pooled CCC and P_VA printed are those of the frames file.
    let pooled = |dim: &str| {
        valar_core::ccc(
            &frames.num(&format!("{dim}_true")),
            &frames.num(&format!("{dim}_smoothed")),
        )
    };
    let p_va = (pooled("valence") + pooled("arousal")) / 2.0;
    let line = printed
        .lines()
        .find(|l| l.trim_start().starts_with("P_VA"))
        .unwrap_or_else(|| panic!("no P_VA line in:\n{printed}"));
    let shown: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        (shown - p_va).abs() < 1e-4,
        "printed {shown}, recomputed {p_va}"
    );
    // The sweep tried no smoothing and marked the window it chose.
    let sweep = Table::read(&run.join("predictions-val-smoothing.csv"));
    assert_eq!(sweep.col("window")[0], "1");
    assert_eq!(
        sweep.col("chosen").iter().filter(|c| **c == "true").count(),
        1
    );
    assert!(printed.contains("<- chosen"), "{printed}");
}

#[test]
fn afew_va_frames_splits_by_actor_and_per_video_scores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("afew");
    let made = synth("afew-va", "8", "30", &data, &["--seed", "3"]);
    assert!(made.contains("240 annotated frames"), "{made}");
    let prepare = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "prepare",
            "--afew-va",
            s(&data),
            "--out",
            s(out),
            "--quota",
            "100000",
            "--intervals",
            "4",
            "--size",
            "24",
            "--val-fraction",
            "0.25",
            "--seed",
            "2",
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };

    // Every frame is kept: AFEW-VA has no invalid frames, and the synth wrote them all.
    let all = dir.path().join("all");
    prepare(&all, &[]);
    let rows = read_manifest(&all.join("manifest.csv")).unwrap();
    assert_eq!(rows.len(), 240);
    let mut per_video: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &rows {
        assert!((-1.0..=1.0).contains(&r.valence));
        // Labels were integers in −10…10, divided by 10.
        assert!(((r.valence * 10.0).round() - r.valence * 10.0).abs() < 1e-4);
        // The box from the landmarks, clamped to the frame.
        assert!(r.face_width > 24 && r.face_height > 24, "{r:?}");
        per_video
            .entry(r.video.clone().unwrap())
            .or_default()
            .push(r.frame.unwrap());
    }
    assert_eq!(per_video.len(), 8);
    for frames in per_video.values_mut() {
        frames.sort();
        assert_eq!(*frames, (0..30).collect::<Vec<u64>>());
    }
    // No video on two sides, and the two clips of each actor (001+002, …) on the same.
    let splits = split_per_video(&all);
    for pair in ["001", "002", "003", "004", "005", "006", "007", "008"].chunks(2) {
        assert_eq!(splits[pair[0]], splits[pair[1]], "{pair:?}: {splits:?}");
    }
    assert!(splits.values().any(|s| *s == Split::Val));
    assert!(splits.values().any(|s| *s == Split::Train));
    // The same seed gives the same dataset.
    let again = dir.path().join("again");
    prepare(&again, &[]);
    assert_eq!(
        std::fs::read(all.join("manifest.csv")).unwrap(),
        std::fs::read(again.join("manifest.csv")).unwrap()
    );

    // Frame sampling: every third frame, then at most 4 per video.
    let step = dir.path().join("step");
    prepare(&step, &["--frame-step", "3"]);
    let rows = read_manifest(&step.join("manifest.csv")).unwrap();
    assert_eq!(rows.len(), 80);
    assert!(rows.iter().all(|r| r.frame.unwrap() % 3 == 0));
    let capped = dir.path().join("capped");
    prepare(&capped, &["--frame-step", "3", "--frames-per-video", "4"]);
    let rows = read_manifest(&capped.join("manifest.csv")).unwrap();
    assert_eq!(rows.len(), 32);
    split_per_video(&capped);

    let (printed, run) = train_and_evaluate(dir.path(), &all);
    check_video_metrics(&run, &all, &printed);
    let report = dir.path().join("report");
    ok(&["report", "--run", s(&run), "--out", s(&report)]);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("## Videos") && md.contains("video_ccc.png"),
        "{md}"
    );
    for png in ["video_ccc.png", "video_traces.png"] {
        let img = image::open(report.join(png)).unwrap();
        assert_eq!((img.width(), img.height()), (1800, 1200));
    }
}

#[test]
fn aff_wild2_drops_invalid_frames_reports_missing_ones_and_keeps_the_given_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aw");
    let made = synth(
        "aff-wild2",
        "8",
        "40",
        &data,
        &[
            "--seed",
            "4",
            "--invalid-fraction",
            "0.1",
            "--missing-fraction",
            "0.05",
        ],
    );
    // "Wrote 8 clips, 320 annotated frames (N marked -5, M not on disk)"
    let count = |before: &str| -> usize {
        let at = made.find(before).unwrap();
        made[..at]
            .rsplit(['(', ' '])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (invalid, missing) = (count(" marked -5"), count(" not on disk"));
    assert!(invalid > 0 && missing > 0, "{made}");

    let annotations = data.join("annotations/VA_Estimation_Challenge");
    let prepared = dir.path().join("prepared");
    let printed = ok(&[
        "prepare",
        "--aff-wild2",
        s(&annotations),
        "--frames",
        s(&data.join("cropped_aligned")),
        "--out",
        s(&prepared),
        "--quota",
        "100000",
        "--intervals",
        "4",
        "--size",
        "24",
    ]);
    assert!(
        printed.contains(&format!("{missing} annotated frames are not on disk")),
        "{printed}"
    );
    let rows = read_manifest(&prepared.join("manifest.csv")).unwrap();
    assert_eq!(rows.len(), 320 - invalid - missing);
    let rejects = Table::read(&prepared.join("rejects.csv"));
    let reasons = rejects.col("reason");
    assert_eq!(
        reasons.iter().filter(|r| **r == "invalid_frame").count(),
        invalid
    );
    assert_eq!(
        reasons.iter().filter(|r| **r == "missing_frame").count(),
        missing
    );
    assert_eq!(reasons.len(), invalid + missing);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(prepared.join("prep.json")).unwrap())
            .unwrap();
    assert_eq!(info["rows_read"], 320);
    assert_eq!(info["rejects_by_reason"]["invalid_frame"], invalid);

    // Train_Set is train and Validation_Set is val; the _left/_right pair stays together.
    let splits = split_per_video(&prepared);
    for (video, split) in &splits {
        let set = if *split == Split::Train {
            "Train_Set"
        } else {
            "Validation_Set"
        };
        assert!(
            annotations.join(set).join(format!("{video}.txt")).is_file(),
            "{video}"
        );
    }
    assert_eq!(splits["video000_left"], splits["video000_right"]);

    let (printed, run) = train_and_evaluate(dir.path(), &prepared);
    check_video_metrics(&run, &prepared, &printed);

    // One set folder, whole, as a test set: its window is chosen on the val split of the
    // data the model trained on.
    let test = dir.path().join("test");
    ok(&[
        "prepare",
        "--aff-wild2",
        s(&annotations.join("Validation_Set")),
        "--frames",
        s(&data.join("cropped_aligned")),
        "--all",
        "--size",
        "24",
        "--out",
        s(&test),
    ]);
    assert!(split_per_video(&test).values().all(|s| *s == Split::Test));
    let printed = ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(&test),
    ]);
    assert!(
        printed.contains(&format!(
            "chosen on the val split of {}",
            prepared.display()
        )),
        "{printed}"
    );
    let sweep = Table::read(&run.join("predictions-test-smoothing.csv"));
    assert_eq!(sweep.rows.len(), 11);
}

#[test]
fn a_video_on_both_sides_of_the_split_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aw");
    synth("aff-wild2", "4", "5", &data, &[]);
    let sets = data.join("annotations/VA_Estimation_Challenge");
    std::fs::copy(
        sets.join("Train_Set/video002.txt"),
        sets.join("Validation_Set/video002.txt"),
    )
    .unwrap();
    let out = dir.path().join("prepared");
    let err = fails(&[
        "prepare",
        "--aff-wild2",
        s(&sets),
        "--frames",
        s(&data.join("cropped_aligned")),
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("video `video002` would be in two splits"),
        "{err}"
    );
    assert!(
        err.contains("Train_Set") && err.contains("Validation_Set"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_video_csv_is_split_per_video_and_a_split_column_that_splits_a_video_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("afew");
    synth("afew-va", "6", "10", &data, &[]);
    let csv_with = |split: &dyn Fn(usize, usize) -> &'static str| {
        let mut text = String::from("video,frame,path,valence,arousal,split\n");
        for clip in 1..=6 {
            for f in 0..10 {
                let v = (clip as f64 - 3.5) / 5.0;
                text += &format!(
                    "clip{clip},{f},{clip:03}/{f:05}.png,{v},0.1,{}\n",
                    split(clip, f)
                );
            }
        }
        text
    };
    // No split given: whole videos are drawn to each side.
    let csv = dir.path().join("frames.csv");
    std::fs::write(&csv, csv_with(&|_, _| "")).unwrap();
    let prepared = dir.path().join("prepared");
    ok(&prepare_args(
        &csv,
        &data,
        &prepared,
        &["--size", "24", "--val-fraction", "0.3"],
    ));
    let splits = split_per_video(&prepared);
    assert_eq!(splits.len(), 6);
    assert!(splits.values().any(|s| *s == Split::Val));

    // A split column that puts frames 5–9 of clip4 in validation and its others in training.
    std::fs::write(
        &csv,
        csv_with(&|clip, f| {
            if clip == 4 && f >= 5 || clip == 6 {
                "val"
            } else {
                "train"
            }
        }),
    )
    .unwrap();
    let out = dir.path().join("leaky");
    let err = fails(&prepare_args(&csv, &data, &out, &[]));
    assert!(
        err.contains("video `clip4` would be in two splits"),
        "{err}"
    );
    assert!(!out.exists());

    // A split given for clip1 only would be honoured for clip1 alone: refused, naming the
    // first row without one (clip2's first frame: line 12, the header being line 1).
    std::fs::write(
        &csv,
        csv_with(&|clip, _| if clip == 1 { "train" } else { "" }),
    )
    .unwrap();
    let err = fails(&prepare_args(&csv, &data, &out, &[]));
    assert!(err.contains("row 12 (video `clip2`) has no split"), "{err}");
    assert!(err.contains("gives `train`"), "{err}");
    assert!(!out.exists());
}
