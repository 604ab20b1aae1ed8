//! End-to-end rendering of small hand-made prepared and run folders.
//!
//! Set `VALAR_REPORT_KEEP=DIR` to keep a copy of the full report (or, for the grid
//! test, `DIR-grid`) and look at the figures.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use valar_core::{IntervalCount, MANIFEST_COLUMNS, PrepInfo, SourceHistograms};
use valar_report::{METRICS_COLUMNS, PREDICTIONS_COLUMNS, ReportError, ReportInputs, report};

/// A label in [-1, 1] from a fixed sequence: spread out, reproducible, not uniform.
fn label(i: usize, phase: f64) -> f32 {
    let x = ((i as f64 * 0.618_034 + phase).fract() * 2.0 - 1.0) * 0.95;
    (x * x.abs().sqrt()) as f32
}

fn write_prepared(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let bins = 20;
    let bump = |b: usize| {
        let c = (b as f64 + 0.5) / bins as f64 * 2.0 - 1.0;
        (1000.0 * (-c * c * 4.0).exp()).round() as u64 + 3
    };
    let valence: Vec<u64> = (0..bins).map(bump).collect();
    let arousal: Vec<u64> = (0..bins).map(|b| bump((b + 3) % bins)).collect();
    let density: Vec<Vec<u64>> = (0..bins)
        .map(|v| (0..bins).map(|a| bump(v) * bump(a) / 800).collect())
        .collect();
    let edges = vec![-1.0, -0.6, -0.2, 0.2, 0.6, 1.0];
    let intervals = (0..5)
        .map(|i| IntervalCount {
            interval: i,
            valence: None,
            arousal: Some([edges[i as usize], edges[i as usize + 1]]),
            available: [30, 900, 4000, 2500, 120][i as usize],
            quota: Some(60),
            selected: [30, 60, 60, 60, 60][i as usize],
            image_rejects: 1,
        })
        .collect();
    let info = PrepInfo {
        valar_version: valar_core::VERSION.into(),
        seed: 7,
        params: serde_json::json!({"quota": 60}),
        stratify: "arousal".into(),
        edges,
        rows_read: 7700,
        faces: 270,
        splits: BTreeMap::from([("train".into(), 240), ("val".into(), 30)]),
        intervals,
        short_intervals: vec![0],
        rejects_by_reason: BTreeMap::from([
            ("missing_file".into(), 12),
            ("label_out_of_range".into(), 140),
            ("face_too_small".into(), 3),
        ]),
        timings_s: BTreeMap::from([("total".into(), 1.5)]),
        source_histograms: SourceHistograms {
            bins,
            valence,
            arousal,
            density,
        },
    };
    info.write(&dir.join("prep.json")).unwrap();
    let mut manifest = format!("{}\n", MANIFEST_COLUMNS.join(","));
    for i in 0..270 {
        let split = if i % 9 == 0 { "val" } else { "train" };
        manifest.push_str(&format!(
            "{i},img/{i}.jpg,{},{},1,{},{split},0,0,64,64,ab,,\n",
            label(i, 0.1),
            label(i * 7 + 3, 0.4),
            i % 5
        ));
    }
    std::fs::write(dir.join("manifest.csv"), manifest).unwrap();
}

/// A grid-stratified variant: linear interval counts, one reject reason, a test split.
fn write_grid_prepared(dir: &Path) {
    write_prepared(dir);
    let path = dir.join("prep.json");
    let mut info = PrepInfo::read(&path).unwrap();
    info.stratify = "grid".into();
    info.edges = vec![-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0];
    info.intervals = (0..9)
        .map(|i| {
            let range = |b: usize| [info.edges[b], info.edges[b + 1]];
            IntervalCount {
                interval: i as i64,
                valence: Some(range(i / 3)),
                arousal: Some(range(i % 3)),
                available: 40 + 7 * i,
                quota: Some(45),
                selected: (40 + 7 * i).min(45),
                image_rejects: 0,
            }
        })
        .collect();
    info.short_intervals = vec![0];
    info.rejects_by_reason = BTreeMap::from([("missing_file".into(), 4)]);
    info.write(&path).unwrap();
    let mut manifest = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
    for i in 270..400 {
        manifest.push_str(&format!(
            "{i},test/{i}.jpg,{},{},,0,test,0,0,64,64,cd,,\n",
            label(i, 0.5),
            label(i * 5, 0.9)
        ));
    }
    std::fs::write(dir.join("manifest.csv"), manifest).unwrap();
}

/// The validation RMSE of the mean baseline that `write_run`'s metrics.csv records.
const VALENCE_BASELINE: f64 = 0.52;
const AROUSAL_BASELINE: f64 = 0.47;

fn write_run(dir: &Path, data: Option<&Path>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut metrics = format!("{}\n", METRICS_COLUMNS.join(","));
    for e in 1..=8 {
        let f = e as f64;
        metrics.push_str(&format!(
            "{e},{},{},{},{},{},{},{VALENCE_BASELINE},{},{},{},{},{AROUSAL_BASELINE},0.001,12.5\n",
            0.5 / f + 0.05,
            0.4 / f.sqrt() + 0.02 * (f - 5.0).max(0.0),
            0.5 - 0.03 * f,
            0.2 + 0.07 * f,
            // CCC peaks at epoch 6, the epoch valar train would keep.
            0.6 - 0.02 * (f - 6.0).powi(2),
            0.6 + 0.03 * f,
            0.55 - 0.02 * f,
            0.1 + 0.05 * f,
            0.45 - 0.015 * (f - 6.0).powi(2),
            0.55 + 0.02 * f,
        ));
    }
    std::fs::write(dir.join("metrics.csv"), metrics).unwrap();
    let mut preds = format!("{}\n", PREDICTIONS_COLUMNS.join(","));
    for i in 0..400 {
        let (v, a) = (label(i, 0.2), label(i * 3 + 1, 0.7));
        let noise = |k: usize| label(k * 13 + 5, 0.3) * 0.3;
        preds.push_str(&format!(
            "{i},img/{i}.jpg,{v},{},{a},{}\n",
            (0.7 * v + noise(i)).clamp(-1.0, 1.0),
            (0.5 * a + 0.1 + noise(i + 1000)).clamp(-1.0, 1.0)
        ));
    }
    std::fs::write(dir.join("predictions.csv"), preds).unwrap();
    let mut config = String::from("epochs = 8\nlr = 0.001\ntargets = \"both\"\n");
    if let Some(d) = data {
        config = format!("data = \"{}\"\n{config}", d.display());
    }
    std::fs::write(dir.join("config.toml"), config).unwrap();
}

/// Decodes a PNG and checks it is a full-size figure with real content.
fn check_png(path: &Path) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    // 1800 × 1200, or 1800 × 1000 for the figures with two square panels.
    let (w, h) = img.dimensions();
    assert!(
        w == 1800 && (h == 1200 || h == 1000),
        "{}: {w}×{h}",
        path.display()
    );
    let distinct: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let share = ink as f64 / (f64::from(w) * f64::from(h));
    assert!(
        distinct.len() > 40,
        "{}: {} colours",
        path.display(),
        distinct.len()
    );
    assert!(
        share > 0.02,
        "{}: only {share:.4} non-white",
        path.display()
    );
    // Text is drawn with the embedded font: anti-aliased greys appear.
    assert!(
        distinct
            .iter()
            .any(|c| c[0] == c[1] && c[1] == c[2] && (60..200).contains(&c[0])),
        "{}: no grey anti-aliasing",
        path.display()
    );
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn check_markdown(markdown: &Path, pngs: &[PathBuf]) -> String {
    let text = std::fs::read_to_string(markdown).unwrap();
    for png in pngs {
        assert!(png.is_file(), "{}", png.display());
        assert_eq!(png.parent(), markdown.parent());
        let name = png.file_name().unwrap().to_string_lossy();
        assert!(
            text.contains(&format!("](<{name}>)")),
            "report.md misses {name}"
        );
    }
    // And nothing else: every PNG in the folder is one the report links.
    let on_disk: Vec<String> = std::fs::read_dir(markdown.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(on_disk.len(), pngs.len(), "{on_disk:?}");
    text
}

#[test]
fn run_with_prepared_data_draws_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let prepared = tmp.path().join("prepared");
    let run = tmp.path().join("run");
    write_prepared(&prepared);
    write_run(&run, None);
    let out = tmp.path().join("report");
    let inputs = ReportInputs {
        prepared: Some(prepared.clone()),
        run: Some(run.clone()),
        evaluation: None,
    };
    let summary = report(&inputs, &out).unwrap();
    if let Ok(keep) = std::env::var("VALAR_REPORT_KEEP") {
        report(&inputs, Path::new(&keep)).unwrap();
    }
    assert_eq!(
        names(&summary.pngs),
        [
            "data_valence_histogram.png",
            "data_arousal_histogram.png",
            "data_density.png",
            "data_intervals.png",
            "data_rejects.png",
            "training_loss.png",
            "training_ccc.png",
            "errors_scatter.png",
            "errors_by_interval.png",
            "errors_residuals.png",
        ]
    );
    for png in &summary.pngs {
        check_png(png);
    }
    let text = check_markdown(&summary.markdown, &summary.pngs);
    assert!(text.contains("```toml\nepochs = 8"), "{text}");
    assert!(text.contains("| Faces written | 270 |"), "{text}");
    assert!(text.contains("| Short intervals | 0 |"), "{text}");
    assert!(text.contains("best (6)"), "{text}");
    assert!(
        text.contains("Best epoch (highest mean validation CCC): 6"),
        "{text}"
    );
    assert!(text.contains("final (8)"), "{text}");
    assert!(text.contains("## Errors"), "{text}");
    assert!(summary.notes.is_empty(), "{:?}", summary.notes);

    // Same inputs, byte-identical figures.
    let again = report(&inputs, &tmp.path().join("again")).unwrap();
    for (a, b) in summary.pngs.iter().zip(&again.pngs) {
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{}",
            a.display()
        );
    }

    // A later prepared-only report into the same folder drops the run's figures.
    let data_only = ReportInputs {
        prepared: Some(prepared),
        run: None,
        evaluation: None,
    };
    let summary = report(&data_only, &out).unwrap();
    check_markdown(&summary.markdown, &summary.pngs);
}

#[test]
fn prepared_only_draws_only_data_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let prepared = tmp.path().join("prepared");
    write_prepared(&prepared);
    let out = tmp.path().join("report");
    let summary = report(
        &ReportInputs {
            prepared: Some(prepared.clone()),
            run: None,
            evaluation: None,
        },
        &out,
    )
    .unwrap();
    assert_eq!(summary.pngs.len(), 5);
    assert!(names(&summary.pngs).iter().all(|n| n.starts_with("data_")));
    for png in &summary.pngs {
        check_png(png);
    }
    let text = check_markdown(&summary.markdown, &summary.pngs);
    assert!(!text.contains("## Training") && !text.contains("## Errors"));
    assert_eq!(summary.prepared, Some(prepared));
}

#[test]
fn grid_stratification_with_a_test_split() {
    let tmp = tempfile::tempdir().unwrap();
    let prepared = tmp.path().join("prepared");
    write_grid_prepared(&prepared);
    let inputs = ReportInputs {
        prepared: Some(prepared),
        run: None,
        evaluation: None,
    };
    let out = tmp.path().join("report");
    let summary = report(&inputs, &out).unwrap();
    if let Ok(keep) = std::env::var("VALAR_REPORT_KEEP") {
        report(&inputs, Path::new(&format!("{keep}-grid"))).unwrap();
    }
    assert_eq!(summary.pngs.len(), 5);
    for png in &summary.pngs {
        check_png(png);
    }
    let text = check_markdown(&summary.markdown, &summary.pngs);
    assert!(
        text.contains("| Stratified by | grid (9 intervals) |"),
        "{text}"
    );
    assert!(text.contains("| Quota per interval | 45 |"), "{text}");
}

#[test]
fn run_only_finds_data_through_its_config() {
    let tmp = tempfile::tempdir().unwrap();
    let prepared = tmp.path().join("prepared");
    let run = tmp.path().join("run");
    write_prepared(&prepared);
    write_run(&run, Some(&prepared));
    let summary = report(
        &ReportInputs {
            prepared: None,
            run: Some(run.clone()),
            evaluation: None,
        },
        &tmp.path().join("out"),
    )
    .unwrap();
    assert_eq!(summary.prepared, Some(prepared));
    assert_eq!(summary.pngs.len(), 10);

    // Without a `data` key: training and error figures, and a note saying why no data.
    let bare = tmp.path().join("bare");
    write_run(&bare, None);
    std::fs::remove_file(bare.join("predictions.csv")).unwrap();
    let summary = report(
        &ReportInputs {
            prepared: None,
            run: Some(bare),
            evaluation: None,
        },
        &tmp.path().join("out2"),
    )
    .unwrap();
    assert_eq!(
        names(&summary.pngs),
        ["training_loss.png", "training_ccc.png"]
    );
    assert_eq!(summary.notes.len(), 2, "{:?}", summary.notes);
    let text = check_markdown(&summary.markdown, &summary.pngs);
    assert!(text.contains("no `data` key"), "{text}");
    assert!(text.contains("predictions.csv not found"), "{text}");
}

#[test]
fn missing_and_malformed_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert!(matches!(
        report(&ReportInputs::default(), &out),
        Err(ReportError::NoInputs)
    ));

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = report(
        &ReportInputs {
            prepared: Some(empty.clone()),
            run: None,
            evaluation: None,
        },
        &out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("prep.json"), "{err}");
    let err = report(
        &ReportInputs {
            prepared: None,
            run: Some(empty),
            evaluation: None,
        },
        &out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("metrics.csv"), "{err}");

    let run = tmp.path().join("run");
    write_run(&run, None);
    let preds = run.join("predictions.csv");
    let mut text = std::fs::read_to_string(&preds).unwrap();
    text.push_str("400,x.jpg,0.5,nope,0.1,0.2\n");
    std::fs::write(&preds, text).unwrap();
    let err = report(
        &ReportInputs {
            prepared: None,
            run: Some(run),
            evaluation: None,
        },
        &out,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("predictions.csv") && err.contains("row 401"),
        "{err}"
    );
    assert!(!out.join("report.md").exists());
}

/// A run folder holding `valar evaluate`'s test predictions (its default name): the report
/// shows that evaluation, with the mean baseline computed from the training rows of the
/// run's data, and says plainly when the model is worse than the mean.
#[test]
fn test_evaluation_in_the_run_folder_is_reported_beside_the_mean_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let prepared = tmp.path().join("prepared");
    let run = tmp.path().join("run");
    write_prepared(&prepared);
    write_run(&run, Some(&prepared));
    // A model that predicts −0.9 for every test face: CCC 0, RMSE far above the mean's.
    let mut preds = format!("{}\n", PREDICTIONS_COLUMNS.join(","));
    let truth: Vec<(f32, f32)> = (0..120)
        .map(|i| (label(i, 0.3), label(i * 5, 0.8)))
        .collect();
    for (i, (v, a)) in truth.iter().enumerate() {
        preds.push_str(&format!("{i},test/{i}.jpg,{v},-0.9,{a},-0.9\n"));
    }
    std::fs::write(run.join("predictions-test.csv"), preds).unwrap();

    let out = tmp.path().join("report");
    let inputs = ReportInputs {
        prepared: None,
        run: Some(run.clone()),
        evaluation: None,
    };
    let summary = report(&inputs, &out).unwrap();
    let pngs = names(&summary.pngs);
    for f in [
        "test_errors_scatter.png",
        "test_errors_by_interval.png",
        "test_errors_residuals.png",
    ] {
        assert!(pngs.contains(&f.to_string()), "{pngs:?}");
        check_png(&out.join(f));
    }
    let text = check_markdown(&summary.markdown, &summary.pngs);

    // The baseline, computed here from the manifest: the train rows' mean, then the RMSE of
    // predicting it for every test face.
    let manifest = valar_core::read_manifest(&prepared.join("manifest.csv")).unwrap();
    let train: Vec<_> = manifest
        .iter()
        .filter(|r| r.split == valar_core::Split::Train)
        .collect();
    let mean_v = train.iter().map(|r| f64::from(r.valence)).sum::<f64>() / train.len() as f64;
    let rmse_v = (truth
        .iter()
        .map(|(v, _)| (f64::from(*v) - mean_v).powi(2))
        .sum::<f64>()
        / truth.len() as f64)
        .sqrt();
    let cell = format!("{rmse_v:.4}").replace('-', "\u{2212}");
    let section = &text[text.find("## Test evaluation").unwrap()..];
    assert!(
        section.contains(&format!(
            "| valence | mean baseline | 120 | {cell} | \u{2014} | 0.0000 |"
        )),
        "{cell}\n{section}"
    );
    assert!(
        text.contains(&format!("the mean of the {} `train` rows", train.len())),
        "{text}"
    );
    let summary_md = &text[text.find("## Summary").unwrap()..text.find("## Data").unwrap()];
    for dim in ["valence", "arousal"] {
        assert!(
            summary_md.contains(&format!("**{dim} on the test set: RMSE"))
                && summary_md.contains("the model is worse than the mean."),
            "{summary_md}"
        );
    }
    assert!(
        summary_md.contains("on the test set: CCC 0.000 is near zero"),
        "{summary_md}"
    );
    // Validation recorded the baseline in metrics.csv; the model beat it there.
    assert!(
        summary_md.contains(&format!(
            "On the validation split (best epoch 6), the model beats the mean baseline: valence RMSE 0.320 (mean baseline {VALENCE_BASELINE:.3})"
        )),
        "{summary_md}"
    );
    assert!(
        text.contains(&format!(
            "| valence | mean baseline | {VALENCE_BASELINE:.4} |"
        )),
        "{text}"
    );

    // Given explicitly, an evaluation elsewhere is used the same way; same bytes as before.
    let moved = tmp.path().join("eval.csv");
    std::fs::rename(run.join("predictions-test.csv"), &moved).unwrap();
    let without = report(&inputs, &tmp.path().join("without")).unwrap();
    assert!(
        !names(&without.pngs).iter().any(|n| n.starts_with("test_")),
        "{:?}",
        without.pngs
    );
    let explicit = ReportInputs {
        evaluation: Some(moved.clone()),
        ..inputs
    };
    let again = report(&explicit, &tmp.path().join("explicit")).unwrap();
    for name in ["test_errors_scatter.png", "test_errors_by_interval.png"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(tmp.path().join("explicit").join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(again.markdown.is_file());
}
