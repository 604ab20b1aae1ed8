//! End-to-end tests of `valar prepare --shard K/N` and `valar merge`, run through the binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{fails, ok, prepare_args, s, split_per_video, synth_original};

use std::path::{Path, PathBuf};

/// A synthetic set with faults planted across all cells: some images corrupted, some
/// deleted (so selection replaces them inside whichever shard owns their cell) and a
/// malformed row (rejected before any image is opened).
struct Data {
    dir: tempfile::TempDir,
    csv: PathBuf,
    images: PathBuf,
}

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let (csv, images) = synth_original(&dir.path().join("synth"), 500, 0, 3);
    let text = std::fs::read_to_string(&csv).unwrap();
    let paths: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    for (i, p) in paths.iter().enumerate() {
        match i % 9 {
            0 => std::fs::write(images.join(p), b"\xFF\xD8\xFF\xE0 not a JPEG").unwrap(),
            4 if i % 4 == 0 => std::fs::remove_file(images.join(p)).unwrap(),
            _ => {}
        }
    }
    std::fs::write(&csv, format!("{text}{},1,2,3\n", paths[1])).unwrap();
    Data { dir, csv, images }
}

/// `valar prepare` on `data` with seed `seed`, as shard `shard` when given.
fn prepare(data: &Data, out: &Path, seed: u64, shard: Option<&str>) {
    let seed = seed.to_string();
    let mut args = prepare_args(
        &data.csv,
        &data.images,
        out,
        &["--quota", "30", "--seed", &seed],
    );
    if let Some(k) = shard {
        args.extend(["--shard", k]);
    }
    ok(&args);
}

/// `valar merge SHARDS --out OUT`, which must succeed.
fn merge_ok(shards: &[&Path], out: &Path) {
    ok(&merge_args(shards, out));
}

/// `valar merge SHARDS --out OUT`, which must fail; its stderr.
fn merge_fails(shards: &[&Path], out: &Path) -> String {
    fails(&merge_args(shards, out))
}

fn merge_args<'a>(shards: &[&'a Path], out: &'a Path) -> Vec<&'a str> {
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| s(p)));
    args.extend(["--out", s(out)]);
    args
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// prep.json without what may differ between a merge and a single run: the output folder's
/// name. (The timings are in timings.json, not in prep.json.)
fn prep_json(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&read(&dir.join("prep.json"))).unwrap();
    assert!(
        v.get("timings_s").is_none(),
        "timings belong in timings.json"
    );
    v["params"].as_object_mut().unwrap().remove("out");
    v
}

#[test]
fn four_shards_merge_byte_identical_to_one_process_and_other_plans_are_refused() {
    let data = data();
    let root = data.dir.path();
    let single = root.join("single");
    prepare(&data, &single, 5, None);
    let rejects = String::from_utf8(read(&single.join("rejects.csv"))).unwrap();
    // The planted faults were drawn: replacement happened, and the bad row was excluded.
    assert!(rejects.contains("corrupt_image"), "{rejects}");
    assert!(rejects.contains("missing_file"), "{rejects}");
    assert!(rejects.contains("malformed_row"), "{rejects}");

    let shards: Vec<PathBuf> = (0..4).map(|k| root.join(format!("shards/{k}"))).collect();
    for (k, dir) in shards.iter().enumerate() {
        prepare(&data, dir, 5, Some(&format!("{k}/4")));
    }
    // Image failures happened inside more than one shard.
    let with_failures = shards
        .iter()
        .filter(|d| {
            String::from_utf8(read(&d.join("rejects.csv")))
                .unwrap()
                .contains("corrupt_image")
        })
        .count();
    assert!(with_failures >= 2, "{with_failures}");

    // Given in any order.
    let merged = root.join("merged");
    let order: Vec<&Path> = shards.iter().rev().map(PathBuf::as_path).collect();
    merge_ok(&order, &merged);
    for file in ["manifest.csv", "faces.npy", "rejects.csv"] {
        assert!(
            read(&single.join(file)) == read(&merged.join(file)),
            "{file} differs between the single run and the merge"
        );
    }
    assert_eq!(prep_json(&single), prep_json(&merged));

    // A shard of another plan (another seed) is refused, naming the seed.
    let other = root.join("other");
    prepare(&data, &other, 6, Some("1/4"));
    let mixed = [&shards[0], &other, &shards[2], &shards[3]].map(PathBuf::as_path);
    let err = merge_fails(&mixed, &root.join("m2"));
    assert!(err.contains("different plans"), "{err}");
    assert!(err.contains("seed 5 against 6"), "{err}");

    // Missing and repeated shards are refused.
    let three = [&shards[0], &shards[1], &shards[2]].map(PathBuf::as_path);
    let err = merge_fails(&three, &root.join("m3"));
    assert!(err.contains("missing shard 3/4"), "{err}");
    let twice = [&shards[0], &shards[1], &shards[2], &shards[2]].map(PathBuf::as_path);
    let err = merge_fails(&twice, &root.join("m4"));
    assert!(err.contains("shard 2/4 is given twice"), "{err}");
}

#[test]
fn a_killed_shard_is_named_and_rerun_alone() {
    let data = data();
    let root = data.dir.path();
    let shards: Vec<PathBuf> = (0..2).map(|k| root.join(format!("s{k}"))).collect();
    prepare(&data, &shards[0], 1, Some("0/2"));
    // Shard 1 was killed: only its partial folder is left, with valar's marker in it.
    std::fs::create_dir_all(root.join("s1.partial")).unwrap();
    std::fs::write(root.join("s1.partial").join(valar_core::PARTIAL_MARKER), "").unwrap();
    let both: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let err = merge_fails(&both, &root.join("merged"));
    assert!(err.contains("s1: its run did not finish"), "{err}");
    let before = read(&shards[0].join("faces.npy"));
    prepare(&data, &shards[1], 1, Some("1/2"));
    merge_ok(&both, &root.join("merged"));
    assert_eq!(read(&shards[0].join("faces.npy")), before);
    let single = root.join("single");
    prepare(&data, &single, 1, None);
    assert!(read(&single.join("faces.npy")) == read(&root.join("merged/faces.npy")));
}

#[test]
fn a_shard_out_of_range_or_with_pngs_is_refused() {
    // The settings are refused before any row is read: a header is input enough.
    let dir = tempfile::tempdir().unwrap();
    let data = Data {
        csv: dir.path().join("list.csv"),
        images: dir.path().to_path_buf(),
        dir,
    };
    std::fs::write(&data.csv, "path,valence,arousal\n").unwrap();
    let out = data.dir.path().join("x");
    let base = prepare_args(&data.csv, &data.images, &out, &[]);
    let err = fails(&[&base[..], &["--shard", "4/4"]].concat());
    assert!(err.contains("not a shard K/N"), "{err}");
    let err = fails(&[&base[..], &["--shard", "0/4", "--png"]].concat());
    assert!(
        err.contains("--png cannot be combined with --shard"),
        "{err}"
    );
}

/// A video input's split is drawn per video from the plan, so shards that each decode only
/// their own intervals still give every video the side the single run gives it.
#[test]
fn a_sharded_video_prepare_merges_byte_identical_with_each_video_on_one_side() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("afew");
    ok(&[
        "synth",
        "--layout",
        "afew-va",
        "--clips",
        "8",
        "--frames",
        "20",
        "--out",
        s(&data),
        "--seed",
        "4",
    ]);
    let prepare = |out: &Path, shard: Option<&str>| {
        let mut args = vec![
            "prepare",
            "--afew-va",
            s(&data),
            "--out",
            s(out),
            "--intervals",
            "4",
            "--quota",
            "25",
            "--size",
            "24",
            "--val-fraction",
            "0.25",
            "--seed",
            "3",
        ];
        if let Some(k) = shard {
            args.extend(["--shard", k]);
        }
        ok(&args);
    };
    let single = root.join("single");
    prepare(&single, None);
    let shards: Vec<PathBuf> = (0..3).map(|k| root.join(format!("shards/{k}"))).collect();
    for (k, d) in shards.iter().enumerate() {
        prepare(d, Some(&format!("{k}/3")));
    }
    let merged = root.join("merged");
    merge_ok(
        &shards.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        &merged,
    );
    for file in ["manifest.csv", "faces.npy", "rejects.csv"] {
        assert!(
            read(&single.join(file)) == read(&merged.join(file)),
            "{file} differs between the single run and the merge"
        );
    }
    // Both sides are used, and no video is on both.
    let side = split_per_video(&merged);
    let sides: std::collections::BTreeSet<&str> = side.values().map(|s| s.name()).collect();
    assert_eq!(sides.len(), 2, "{side:?}");
}
