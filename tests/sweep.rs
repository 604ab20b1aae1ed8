//! End-to-end tests of `valar sweep` and `valar slurm sweep`, run through the binary on a
//! tiny synthetic set (32-pixel faces, two epochs) so that every cell trains in seconds.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{ok, prepare_args, s, synth_original};

use std::path::{Path, PathBuf};

struct Data {
    dir: tempfile::TempDir,
    sweep: PathBuf,
}

/// A training set, a held-out test set (`--all` of the synthetic validation list) and a
/// sweep file crossing two seeds over them, with paths relative to the sweep file.
fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train_csv, images) = synth_original(&d.join("synth"), 300, 60, 2);
    let lists = train_csv.parent().unwrap();
    let prepare = |csv: &str, out: &str, extra: &[&str]| {
        let (csv, out) = (lists.join(csv), d.join(out));
        let mut args = prepare_args(&csv, &images, &out, &["--size", "32"]);
        args.extend(extra);
        ok(&args);
    };
    prepare("training.csv", "train", &["--quota", "20"]);
    prepare("validation.csv", "test", &["--all"]);
    let sweep = d.join("sweep.toml");
    std::fs::write(
        &sweep,
        "test = \"test\"\n[base]\ndata = \"train\"\nmodel = \"compact\"\nepochs = 2\nbatch_size = 32\n[cross]\nseed = [0, 1]\n",
    )
    .unwrap();
    Data { dir, sweep }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn a_two_seed_sweep_writes_a_summary_table_and_png_and_continues_where_it_stopped() {
    let data = data();
    let runs = data.dir.path().join("runs");
    ok(&[
        "sweep",
        "run",
        s(&data.sweep),
        "--out",
        s(&runs),
        "--jobs",
        "2",
    ]);

    let csv = read(&runs.join("summary.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "group,split,dimension,seeds,ccc_mean,ccc_sd,pcc_mean,pcc_sd,rmse_mean,rmse_sd,sagr_mean,sagr_sd"
    );
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
    assert_eq!(
        keys,
        [
            ("val", "valence"),
            ("val", "arousal"),
            ("test", "valence"),
            ("test", "arousal")
        ]
    );
    for r in &rows {
        assert_eq!(r[3], "2", "{r:?}");
        let (rmse, sd): (f64, f64) = (r[8].parse().unwrap(), r[9].parse().unwrap());
        assert!(rmse > 0.0 && rmse < 2.0 && sd >= 0.0, "{r:?}");
    }
    // The table's means are the cells' own scores, averaged.
    let cell = |i: usize, name: &str| -> serde_json::Value {
        serde_json::from_str(&read(&runs.join(format!("cells/00{i}_seed-{i}/{name}")))).unwrap()
    };
    let ccc = |i: usize| {
        cell(i, "metrics.json")["test"]["arousal"]["ccc"]
            .as_f64()
            .unwrap()
    };
    let mean: f64 = rows[3][4].parse().unwrap();
    assert!((mean - (ccc(0) + ccc(1)) / 2.0).abs() < 1e-6, "{mean}");
    assert_ne!(ccc(0), ccc(1), "two seeds gave the same model");
    let md = read(&runs.join("summary.md"));
    assert!(md.contains("| all cells | test | arousal | 2 |"), "{md}");
    let png = image::open(runs.join("summary.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1800, 1200));

    // Each cell is an ordinary run: it resumes (here: finds itself finished) and scores the
    // same again. Finished cells are skipped.
    let before = read(&runs.join("cells/001_seed-1/metrics.json"));
    std::fs::remove_file(runs.join("cells/001_seed-1/metrics.json")).unwrap();
    let out = ok(&["sweep", "run", s(&data.sweep), "--out", s(&runs)]);
    assert!(out.contains("2 cells, 1 to train"), "{out}");
    assert_eq!(read(&runs.join("cells/001_seed-1/metrics.json")), before);
    assert!(read(&runs.join("cells/001_seed-1/run/config.toml")).contains("seed = 1"));
}

#[test]
fn slurm_sweep_writes_an_array_and_a_summary_job_after_it() {
    let data = data();
    let runs = data.dir.path().join("slurm-runs");
    let out = ok(&[
        "slurm",
        "sweep",
        s(&data.sweep),
        "--out",
        s(&runs),
        "--no-submit",
        "--jobs",
        "1",
        "--time",
        "00:20:00",
        "--mem",
        "2G",
        "--cpus-per-task",
        "2",
    ]);
    let array = read(&runs.join("valar-sweep.sbatch"));
    let after = read(&runs.join("valar-summarize.sbatch"));
    for line in [
        "#SBATCH --job-name=valar-sweep",
        "#SBATCH --array=0-1%1",
        &format!("#SBATCH --output={}/logs/valar-sweep-%A_%a.log", s(&runs)),
        "#SBATCH --time=00:20:00",
        "#SBATCH --mem=2G",
        "#SBATCH --cpus-per-task=2",
    ] {
        assert!(array.contains(line), "{line:?} not in\n{array}");
    }
    for line in [
        "#SBATCH --job-name=valar-summarize",
        "#SBATCH --kill-on-invalid-dep=yes",
        &format!("#SBATCH --output={}/logs/valar-summarize-%j.log", s(&runs)),
    ] {
        assert!(after.contains(line), "{line:?} not in\n{after}");
    }
    let exe = env!("CARGO_BIN_EXE_valar");
    let exec_line = |script: &str| {
        script
            .split_once("\nexec ")
            .unwrap()
            .1
            .replace(" \\\n    ", " ")
    };
    assert_eq!(
        exec_line(&array),
        format!("{exe} sweep cell {} ${{SLURM_ARRAY_TASK_ID}}\n", s(&runs))
    );
    assert_eq!(
        exec_line(&after),
        format!("{exe} sweep summarize {}\n", s(&runs))
    );
    assert!(
        out.contains(&format!(
            "sbatch --dependency=afterok:$jid {}/valar-summarize.sbatch",
            s(&runs)
        )),
        "{out}"
    );
    assert!(runs.join("cells/000_seed-0/valar.toml").is_file());
}
