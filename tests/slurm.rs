//! End-to-end tests of `valar slurm prepare`: the sbatch scripts it writes, and the same
//! shards run here as local processes when there is no sbatch. (A real Slurm runs them in
//! `just test-slurm`.)
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{ok, s, synth_original};

use std::path::{Path, PathBuf};
use std::process::Command;

struct Data {
    dir: tempfile::TempDir,
    csv: PathBuf,
    images: PathBuf,
}

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let (csv, images) = synth_original(&dir.path().join("synth"), 300, 0, 4);
    Data { dir, csv, images }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// The command a script runs, its continuation lines joined.
fn exec_line(script: &str) -> String {
    script
        .split_once("\nexec ")
        .unwrap()
        .1
        .replace(" \\\n    ", " ")
        .trim_end()
        .to_string()
}

#[test]
fn slurm_prepare_writes_a_shard_array_and_a_merge_after_it() {
    let data = data();
    let out = data.dir.path().join("my data");
    let text = ok(&[
        "slurm",
        "prepare",
        "--shards",
        "4",
        "--no-submit",
        "--partition",
        "short",
        "--cpus-per-task",
        "4",
        "--sbatch=--qos=low",
        "--",
        "--csv",
        s(&data.csv),
        "--images",
        s(&data.images),
        "--quota",
        "10",
        "--out",
        s(&out),
    ]);
    let work = data.dir.path().join("my data.shards");
    let array = String::from_utf8(read(&work.join("valar-prepare.sbatch"))).unwrap();
    let merge = String::from_utf8(read(&work.join("valar-merge.sbatch"))).unwrap();
    let quoted = |p: &Path| format!("'{}'", s(p));
    for line in [
        "#!/bin/bash\n".to_string(),
        "#SBATCH --array=0-3\n".into(),
        format!(
            "#SBATCH --output={}/logs/valar-prepare-%A_%a.log\n",
            s(&work)
        ),
        "#SBATCH --partition=short\n".into(),
        "#SBATCH --cpus-per-task=4\n".into(),
        "#SBATCH --qos=low\n".into(),
        format!("#SBATCH --chdir={}\n", s(&std::env::current_dir().unwrap())),
    ] {
        assert!(array.contains(&line), "{line:?} not in\n{array}");
    }
    // The shard folder and the shard come from the array index; --out is replaced.
    let exe = env!("CARGO_BIN_EXE_valar");
    assert_eq!(
        exec_line(&array),
        format!(
            "{exe} prepare --csv {} --images {} --quota 10 --out '{}/'${{SLURM_ARRAY_TASK_ID}} --shard ${{SLURM_ARRAY_TASK_ID}}/4",
            s(&data.csv),
            s(&data.images),
            s(&work)
        )
    );
    for line in [
        "#SBATCH --job-name=valar-merge\n".to_string(),
        "#SBATCH --kill-on-invalid-dep=yes\n".into(),
    ] {
        assert!(merge.contains(&line), "{line:?} not in\n{merge}");
    }
    let shards: Vec<String> = (0..4).map(|k| quoted(&work.join(k.to_string()))).collect();
    assert_eq!(
        exec_line(&merge),
        format!("{exe} merge {} --out {}", shards.join(" "), quoted(&out))
    );
    assert!(text.contains("sbatch --dependency=afterok:$jid"), "{text}");
    assert!(!out.exists());
}

#[test]
fn without_sbatch_the_shards_run_here_and_merge_like_one_process() {
    let data = data();
    let d = data.dir.path();
    let common = [
        "--csv",
        s(&data.csv),
        "--images",
        s(&data.images),
        "--quota",
        "12",
        "--seed",
        "9",
    ];
    let single = d.join("single");
    ok(&[&["prepare"][..], &common, &["--out", s(&single)]].concat());
    let out = d.join("merged");
    let run = Command::new(env!("CARGO_BIN_EXE_valar"))
        .args(["slurm", "prepare", "--shards", "3", "--jobs", "2", "--"])
        .args(common)
        .args(["--out", s(&out)])
        // No sbatch anywhere on the PATH.
        .env("PATH", d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("sbatch is not on the PATH: running the tasks here, 2 at a time"),
        "{stderr}"
    );
    for file in ["manifest.csv", "faces.npy", "rejects.csv"] {
        assert!(read(&single.join(file)) == read(&out.join(file)), "{file}");
    }
    assert!(d.join("merged.shards/logs/shard-2.log").is_file());
}
