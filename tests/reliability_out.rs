//! Issue 19, the output side: an output folder is claimed, never guessed at; one writer per
//! output; a report never passes off an unfinished run or another model's test predictions.
//! Each test reproduces a probe of the issue as it was written.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{Fixture, cached, copy_dir, fails, ok, s, scratch, spawn, synth_original, valar};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use valar_core::{OutputLock, read_faces, read_manifest};

/// A synthetic source: `training.csv`, its image folder, and the folder they live in.
struct Source {
    csv: PathBuf,
    images: PathBuf,
}

/// 300 synthetic images, made once for every test.
fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let d = Fixture::synth(300, 0, 7).cached("source");
        Source {
            csv: d.csv,
            images: d.images,
        }
    })
}

fn prepare_args<'a>(src: &'a Source, out: &'a Path, seed: &'a str) -> Vec<&'a str> {
    common::prepare_args(
        &src.csv,
        &src.images,
        out,
        &["--quota", "20", "--seed", seed],
    )
}

fn audit_args<'a>(src: &'a Source, out: &'a Path) -> Vec<&'a str> {
    vec![
        "audit",
        "--csv",
        s(&src.csv),
        "--images",
        s(&src.images),
        "--out",
        s(out),
    ]
}

/// A prepared folder for training, made once.
fn prepared() -> &'static PathBuf {
    static PREPARED: OnceLock<PathBuf> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let src = source();
        cached("prepared", |dir| {
            ok(&prepare_args(src, &dir.join("d"), "0"));
        })
        .join("d")
    })
}

fn train_args<'a>(data: &'a Path, out: &'a Path, epochs: &'a str) -> Vec<&'a str> {
    let extra = ["--epochs", epochs, "--keep", "last", "--patience", "0"];
    common::train_args(data, out, &extra)
}

/// Waits until `ready` holds, failing if `child` exits first (then it did not run long
/// enough for the test to mean anything) or if it has not happened within five minutes (then
/// the test would otherwise hang; the child is killed).
fn wait_for(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the holder exited ({status}) before {what}");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the holder was still running after 300 s without {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Probe 1: `mkdir ed ed.old; echo precious > ed.old/thesis.txt; valar prepare … --out ed`
/// deleted ed.old; so did `--force`, `valar audit --out` and `valar merge --out`. Also a
/// user's own folder named like valar's `.partial` is never deleted.
#[test]
fn a_sibling_named_like_the_output_plus_old_survives_prepare_audit_and_merge() {
    let src = source();
    let dir = scratch("probe1");
    let thesis = |name: &str| {
        let old = dir.join(format!("{name}.old"));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("thesis.txt"), "precious\n").unwrap();
        old.join("thesis.txt")
    };
    let ed = dir.join("ed");
    std::fs::create_dir_all(&ed).unwrap();
    let kept = thesis("ed");
    ok(&prepare_args(src, &ed, "0"));
    let mut again = prepare_args(src, &ed, "1");
    again.push("--force");
    ok(&again);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "precious\n");
    assert_eq!(names_in(&dir), ["ed", "ed.old"]);

    let au = dir.join("au");
    let kept = thesis("au");
    ok(&audit_args(src, &au));
    let mut again = audit_args(src, &au);
    again.push("--force");
    ok(&again);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "precious\n");

    let shards: Vec<PathBuf> = (0..2).map(|k| dir.join(format!("shard{k}"))).collect();
    for (k, shard) in shards.iter().enumerate() {
        let spec = format!("{k}/2");
        let mut args = prepare_args(src, shard, "0");
        args.extend(["--shard", &spec]);
        ok(&args);
    }
    let me = dir.join("me");
    let kept = thesis("me");
    for force in [false, true] {
        let mut args = vec!["merge", s(&shards[0]), s(&shards[1]), "--out", s(&me)];
        if force {
            args.push("--force");
        }
        ok(&args);
    }
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "precious\n");
    assert_eq!(
        names_in(&dir),
        [
            "au", "au.old", "ed", "ed.old", "me", "me.old", "shard0", "shard1"
        ]
    );

    // A folder of the user's that happens to be named like valar's work folder.
    let mine = dir.join("x.partial");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine\n").unwrap();
    let err = fails(&prepare_args(src, &dir.join("x"), "0"));
    assert!(err.contains("not left by valar"), "{err}");
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "mine\n"
    );
    assert!(!dir.join("x").exists());
}

/// Probe 2: an existing file given as `--out` (prepare, merge, audit) was moved to
/// `afile.old` after all the work, and the run failed with "Not a directory".
#[test]
fn a_file_at_out_is_refused_before_any_work() {
    let src = source();
    let dir = scratch("probe2");
    let afile = dir.join("afile");
    std::fs::write(&afile, "my data\n").unwrap();
    let shard = dir.join("shard");
    let mut args = prepare_args(src, &shard, "0");
    args.extend(["--shard", "0/1"]);
    ok(&args);
    for force in [false, true] {
        let mut runs = vec![
            prepare_args(src, &afile, "0"),
            audit_args(src, &afile),
            vec!["merge", s(&shard), "--out", s(&afile)],
        ];
        for args in &mut runs {
            if force {
                args.push("--force");
            }
            let err = fails(args);
            assert!(err.contains("afile") && err.contains("is a file"), "{err}");
            assert!(!err.contains("Not a directory"), "{err}");
        }
    }
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "my data\n");
    assert_eq!(names_in(&dir), ["afile", "shard"]);
}

/// Probe 3: `evaluate --out d/manifest.csv` replaced the dataset's manifest, `--out
/// run/model.onnx` the model, and `predict --model m.onnx a.jpg --out a.jpg` the image.
/// Weak line: evaluate and predict failed on a missing parent folder of `--out`.
#[test]
fn an_output_that_is_an_input_is_refused_and_a_missing_parent_is_created() {
    let data = prepared();
    let dir = scratch("probe3");
    let run = dir.join("run");
    ok(&train_args(data, &run, "1"));
    let model = run.join("model.onnx");
    let manifest = data.join("manifest.csv");
    let (manifest_before, model_before) = (
        std::fs::read(&manifest).unwrap(),
        std::fs::read(&model).unwrap(),
    );
    for out in [&manifest, &model] {
        let err = fails(&[
            "evaluate",
            "--model",
            s(&model),
            "--data",
            s(data),
            "--out",
            s(out),
        ]);
        assert!(err.contains("is an input of this run"), "{err}");
    }
    assert_eq!(std::fs::read(&manifest).unwrap(), manifest_before);
    assert_eq!(std::fs::read(&model).unwrap(), model_before);

    let image = dir.join("a.jpg");
    let folder = std::fs::read_dir(&source().images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let first = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    std::fs::copy(&first, &image).unwrap();
    let image_before = std::fs::read(&image).unwrap();
    let spelled = dir.join(".").join("a.jpg");
    let err = fails(&[
        "predict",
        "--model",
        s(&model),
        s(&image),
        "--out",
        s(&spelled),
    ]);
    assert!(err.contains("is an input of this run"), "{err}");
    assert_eq!(std::fs::read(&image).unwrap(), image_before);

    let deep = dir.join("new/deeper/eval.csv");
    ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(data),
        "--split",
        "val",
        "--out",
        s(&deep),
    ]);
    assert!(deep.is_file());
    let deep = dir.join("other/new/pred.csv");
    ok(&[
        "predict",
        "--model",
        s(&model),
        s(&image),
        "--out",
        s(&deep),
    ]);
    assert!(deep.is_file());
}

/// How many times the two-runs-at-once tests start a pair before giving up on an overlap.
const MAX_TRIES: usize = 8;

fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The outputs of one prepare: manifest.csv and faces.npy.
fn prepared_bytes(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(dir.join("manifest.csv")).unwrap(),
        std::fs::read(dir.join("faces.npy")).unwrap(),
    )
}

/// Probe 4: two `valar prepare … --out X` started apart with different seeds left the first
/// run's manifest.csv with the second run's faces.npy. A second run now fails at once,
/// naming the holder, and X always holds one run's files.
#[test]
fn two_prepares_on_one_output_never_mix() {
    let src = source();
    let dir = scratch("probe4");
    let x = dir.join("X");

    // A holder that stays put as long as the test needs: this process.
    let held = OutputLock::acquire(&x).unwrap();
    let err = fails(&prepare_args(src, &x, "1"));
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("is being written by"),
        "{err}"
    );
    assert!(!x.exists() && !dir.join("X.partial").exists());
    drop(held);

    // Two real runs at once, with --force so that whichever comes second is not refused for
    // another reason: X must be exactly one seed's output, both files from the same run.
    let refs: Vec<(Vec<u8>, Vec<u8>)> = ["1", "2"]
        .iter()
        .map(|seed| {
            let r = dir.join(format!("ref{seed}"));
            ok(&prepare_args(src, &r, seed));
            prepared_bytes(&r)
        })
        .collect();
    // Three tries at least, and until one second run met the first one's lock: a test in
    // which the runs never overlapped would check nothing.
    let mut refused = 0;
    for attempt in 1..=MAX_TRIES {
        let mut a = prepare_args(src, &x, "1");
        a.push("--force");
        let mut b = prepare_args(src, &x, "2");
        b.push("--force");
        let mut first = spawn(&a);
        let lock = dir.join("X.lock");
        wait_for(&mut first, "taking its lock", || {
            std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with("pid"))
        });
        let second = spawn(&b).wait_with_output().unwrap();
        let first = first.wait_with_output().unwrap();
        assert!(first.status.success());
        let err = String::from_utf8_lossy(&second.stderr);
        if !second.status.success() {
            assert!(err.contains("is being written by pid"), "{err}");
            refused += 1;
        }
        let got = prepared_bytes(&x);
        assert!(
            refs.contains(&got),
            "X holds a mix of two runs' manifest.csv and faces.npy"
        );
        let faces = read_faces(&x.join("faces.npy")).unwrap();
        assert_eq!(
            read_manifest(&x.join("manifest.csv")).unwrap().len(),
            faces.n
        );
        if attempt >= 3 && refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "in {MAX_TRIES} tries the second prepare never ran while the first held X"
    );
    assert_eq!(names_in(&dir), ["X", "ref1", "ref2"]);
}

/// Probe 5: two `valar audit --out X` on different inputs left audit.csv and audit.json from
/// one and report.md from the other.
#[test]
fn two_audits_on_one_output_never_mix() {
    let src = source();
    let dir = scratch("probe5");
    let other = dir.join("other");
    let (other_csv, other_images) = synth_original(&other, 60, 0, 9);
    let x = dir.join("X");
    let with = |csv: &Path, images: &Path, out: &Path| -> Vec<String> {
        [
            "audit",
            "--csv",
            s(csv),
            "--images",
            s(images),
            "--out",
            s(out),
            "--force",
        ]
        .map(String::from)
        .to_vec()
    };
    let files = ["audit.csv", "audit.json", "report.md"];
    let read = |d: &Path| -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(d.join(f)).unwrap_or_default())
            .collect()
    };

    let held = OutputLock::acquire(&x).unwrap();
    let args = with(&src.csv, &src.images, &x);
    let err = fails(&argv(&args));
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!x.exists());
    drop(held);

    let ref_a = dir.join("refA");
    let ref_b = dir.join("refB");
    ok(&argv(&with(&src.csv, &src.images, &ref_a)));
    ok(&argv(&with(&other_csv, &other_images, &ref_b)));
    let refs = [read(&ref_a), read(&ref_b)];
    assert_ne!(refs[0], refs[1]);
    let mut refused = 0;
    for attempt in 1..=MAX_TRIES {
        let a = with(&src.csv, &src.images, &x);
        let b = with(&other_csv, &other_images, &x);
        let mut first = spawn(&argv(&a));
        let lock = dir.join("X.lock");
        wait_for(&mut first, "taking its lock", || {
            std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with("pid"))
        });
        let second = spawn(&argv(&b)).wait_with_output().unwrap();
        assert!(first.wait().unwrap().success());
        if !second.status.success() {
            let err = String::from_utf8_lossy(&second.stderr);
            assert!(err.contains("is being written by pid"), "{err}");
            refused += 1;
        }
        assert!(refs.contains(&read(&x)), "X mixes two audits' files");
        if attempt >= 3 && refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "in {MAX_TRIES} tries the second audit never ran while the first held X"
    );
}

/// A run killed with SIGKILL after its first epoch (of 200 configured), made once; each test
/// works on its own copy. Returns the run folder.
fn killed_run() -> &'static PathBuf {
    static KILLED: OnceLock<PathBuf> = OnceLock::new();
    KILLED.get_or_init(|| {
        let data = prepared();
        cached("killed", |dir| {
            let run = dir.join("run");
            let mut child = spawn(&train_args(data, &run, "200"));
            wait_for(&mut child, "its first epoch", || {
                run.join("checkpoint/loop.json").is_file()
            });
            child.kill().unwrap();
            child.wait().unwrap();
        })
        .join("run")
    })
}

/// Probe 6: `valar train --force --out X` while another train wrote X: both exited 0. Now
/// the second fails at once naming the first (also with --resume), and once the first is
/// killed with SIGKILL its stale lock is taken over.
#[test]
fn a_second_train_on_a_held_run_fails_at_once_and_a_killed_holder_is_taken_over() {
    let data = prepared();
    let dir = scratch("probe6");
    let x = dir.join("X");
    let mut first = spawn(&train_args(data, &x, "200"));
    let lock = dir.join("X.lock");
    wait_for(&mut first, "taking its lock", || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with("pid"))
    });
    let holder = format!("pid {}", first.id());
    let mut force = train_args(data, &x, "1");
    force.push("--force");
    for args in [force.clone(), vec!["train", "--resume", s(&x)]] {
        let err = fails(&args);
        assert!(
            err.contains(&holder) && err.contains("valar train"),
            "{err}"
        );
    }
    assert!(first.try_wait().unwrap().is_none(), "the holder still runs");
    first.kill().unwrap();
    first.wait().unwrap();
    // The killed holder's lock file is still there, naming it; the lock itself died with it.
    assert!(std::fs::read_to_string(&lock).unwrap().starts_with(&holder));
    ok(&force);
    let metrics = std::fs::read_to_string(x.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "one epoch, from the new run");
    assert!(!lock.exists());
}

/// Weak line: `valar report` on a killed run (train killed after one epoch) called it
/// complete; a killed report left an old report.md beside new PNGs (issue 25 since: it
/// draws in report.partial, renamed into place whole).
#[test]
fn report_on_a_killed_run_says_it_is_unfinished() {
    let dir = scratch("unfinished");
    let run = dir.join("run");
    copy_dir(killed_run(), &run);
    let out = ok(&["report", "--run", s(&run)]);
    assert!(out.contains("warning: The run is unfinished"), "{out}");
    assert!(out.contains("of the 200 configured"), "{out}");
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    assert!(md.contains("**Warning:** The run is unfinished"), "{md}");

    // A report killed half-way never leaves an old report.md beside new figures: it draws
    // in report.partial (left as a kill leaves it, here), so the earlier report stays whole,
    // and the next report clears the leftover.
    let earlier = std::fs::read(run.join("report/report.md")).unwrap();
    let partial = run.join("report.partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join(valar_core::PARTIAL_MARKER), "").unwrap();
    std::fs::write(partial.join("errors_scatter.png"), "half a figure").unwrap();
    assert_eq!(
        std::fs::read(run.join("report/report.md")).unwrap(),
        earlier
    );
    ok(&["report", "--run", s(&run)]);
    assert!(!partial.exists());
    assert!(run.join("report/report.md").is_file());
}

/// Weak line: deleting a run's checkpoint/ folder, then `--resume`, trained an epoch and then
/// failed on `.best-0001.ckpt.tmp…`; now it fails at once and trains nothing.
#[test]
fn resume_without_its_checkpoint_folder_fails_at_once() {
    let dir = scratch("no_checkpoint");
    let run = dir.join("run");
    copy_dir(killed_run(), &run);
    std::fs::remove_dir_all(run.join("checkpoint")).unwrap();
    let before = std::fs::read(run.join("metrics.csv")).unwrap();
    let err = fails(&["train", "--resume", s(&run)]);
    assert!(
        err.contains("checkpoint") && err.contains("is missing") && !err.contains(".tmp"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), before);
}

/// Probe 9: after `valar train --resume`, `valar report --run` paired the final validation
/// result with the previous model's test predictions, without a word.
#[test]
fn report_after_resume_does_not_show_the_previous_models_test_predictions() {
    let dir = scratch("probe9");
    let run = dir.join("run");
    copy_dir(killed_run(), &run);
    // One more epoch to go, so the resume below is short.
    let state = std::fs::read_to_string(run.join("checkpoint/loop.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let done = state["epochs_done"].as_u64().unwrap();
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let config = config.replace("epochs = 200", &format!("epochs = {}", done + 1));
    std::fs::write(run.join("config.toml"), config).unwrap();

    let preds = run.join("predictions-test.csv");
    ok(&[
        "evaluate",
        "--model",
        s(&run.join("model.onnx")),
        "--data",
        s(prepared()),
        "--split",
        "val",
        "--out",
        s(&preds),
    ]);
    let fresh = ok(&["report", "--run", s(&run)]);
    assert!(!fresh.contains("another model"), "{fresh}");
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    assert!(md.contains("- Test evaluation:"), "{md}");

    ok(&["train", "--resume", s(&run)]);
    let stale = ok(&["report", "--run", s(&run)]);
    assert!(
        stale.contains("warning: the test predictions in") && stale.contains("another model"),
        "{stale}"
    );
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    assert!(md.contains("**Warning:** the test predictions in"), "{md}");
    assert!(!md.contains("- Test evaluation:"), "{md}");
    assert!(!run.join("report/test_errors_scatter.png").exists());
}

/// `valar run` holds its folder too: a second pipeline on it fails at once.
#[test]
fn a_second_pipeline_on_a_held_folder_fails_at_once() {
    let dir = scratch("pipeline");
    let out = dir.join("p");
    let held = OutputLock::acquire(&out).unwrap();
    let result = valar(&["run", "--out", s(&out)]);
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!out.exists());
    drop(held);
}
