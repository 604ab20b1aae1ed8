//! Helpers shared by the end-to-end tests: running the `valar` binary.
// Each test file uses only some of these.
#![allow(dead_code)]

pub mod fixture;
#[allow(unused_imports)]
pub use fixture::{Data, Fixture, List, cached, copy_dir, prepare_args, scratch, train_args};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use valar_core::{Split, read_manifest};

/// Runs `valar` with `args`.
pub fn valar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_valar"))
        .args(args)
        .output()
        .unwrap()
}

/// Starts `valar` with `args` in the background (stdout dropped, stderr kept), for tests
/// that run two commands at once.
pub fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_valar"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Training runs use every core; running two at once would only slow both down. nextest
/// runs each test in its own process, so the lock is a file lock under the tests' scratch
/// folder, not a mutex; held until dropped.
pub fn serial() -> std::fs::File {
    let dir = fixture::root();
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("serial.lock"))
        .unwrap();
    file.lock().unwrap();
    file
}

/// Starts `valar args` training into `run`, waits for the run's first checkpoint
/// (`checkpoint/loop.json`, at most 5 minutes), waits `then` more, and kills it with SIGKILL,
/// as a crash or `kill -9` would; fails if training ends before its first checkpoint.
pub fn kill_after_first_checkpoint(args: &[&str], run: &Path, then: std::time::Duration) {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_valar"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let loop_state = run.join("checkpoint/loop.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !loop_state.exists() {
        assert!(Instant::now() < deadline, "no checkpoint after 5 minutes");
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(then);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// A `valar predict --csv` list of `rows`' paths and face boxes, so that predict cuts the
/// faces prepare cut.
pub fn face_box_list(rows: &[&valar_core::ManifestRow]) -> String {
    let mut list = String::from("path,face_x,face_y,face_width,face_height\n");
    for r in rows {
        list += &format!(
            "{},{},{},{},{}\n",
            r.path, r.face_x, r.face_y, r.face_width, r.face_height
        );
    }
    list
}

/// Runs `valar`, asserts it succeeded, and returns its stdout and stderr.
pub fn ok(args: &[&str]) -> String {
    let out = valar(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "valar {args:?} failed:\n{text}");
    text
}

/// Runs `valar`, asserts it failed, and returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = valar(args);
    assert!(!out.status.success(), "valar {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path as the `&str` a command line takes.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `valar synth` of `n` training and `val_n` validation images in AffectNet's original
/// layout under `root`; returns its `training.csv` and image folder.
pub fn synth_original(
    root: &Path,
    n: usize,
    val_n: usize,
    seed: u64,
) -> (std::path::PathBuf, std::path::PathBuf) {
    Fixture::synth(n, val_n, seed).synth_to(root);
    (
        root.join("Manually_Annotated_file_lists/training.csv"),
        root.join("Manually_Annotated_Images"),
    )
}

/// The split of every video in a prepared folder, asserting none is on two sides.
pub fn split_per_video(prepared: &Path) -> BTreeMap<String, Split> {
    let mut sides: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let rows = read_manifest(&prepared.join("manifest.csv")).unwrap();
    for r in &rows {
        let video = r.video.clone().expect("every video frame names its video");
        assert!(r.frame.is_some(), "row {} has no frame number", r.index);
        sides.entry(video).or_default().insert(r.split.name());
    }
    sides
        .into_iter()
        .map(|(video, splits)| {
            assert_eq!(splits.len(), 1, "video {video} is in splits {splits:?}");
            let split = rows
                .iter()
                .find(|r| r.video.as_deref() == Some(video.as_str()))
                .unwrap()
                .split;
            (video, split)
        })
        .collect()
}

/// A CSV file's rows by their first cell, each with its cells by column name.
pub fn rows_by_key(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let cells: BTreeMap<String, String> = header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect();
            (rec[0].to_string(), cells)
        })
        .collect()
}

/// The number in `column` of a row of [`rows_by_key`].
pub fn number(cells: &BTreeMap<String, String>, column: &str) -> f64 {
    cells[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} in {cells:?}"))
}
