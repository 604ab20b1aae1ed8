//! Issue 25 ("Nothing lost, round 2"), `valar evaluate`'s side: an input is never modified
//! (model.onnx stays byte-identical), every file of a run folder is an input, evaluate holds
//! the run's lock, a resumed run writes each epoch's TensorBoard events once, and the model's
//! metadata is checked rather than guessed at. Each test reproduces a finding as written.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{List, copy_dir, fails, ok, s, scratch, spawn, valar};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;

/// The shared data: a prepared train/val folder, two test folders and a one-epoch run.
struct Fixture {
    csv: PathBuf,
    images: PathBuf,
    prepared: PathBuf,
    test: PathBuf,
    test2: PathBuf,
    run: PathBuf,
}

/// Prepare's arguments for every folder of the fixture.
const PREPARE: [&str; 4] = ["--quota", "12", "--seed", "11"];

/// Train's arguments besides the epochs, for the fixture's run and the tests' own.
const TRAIN: [&str; 6] = ["--keep", "last", "--patience", "0", "--seed", "3"];

/// Made once per build of the binary and shared by the tests; tests that change a run work
/// on a copy.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let all = [&PREPARE[..], &["--all"]].concat();
        let d = common::Fixture::synth(240, 40, 11)
            .prepare(&PREPARE)
            .prepare_into("test", List::Validation, &all)
            .prepare_into("test2", List::Training, &all)
            .train(&[&["--epochs", "1"], &TRAIN[..]].concat())
            .cached("fixture");
        Fixture {
            test: d.at("test"),
            test2: d.at("test2"),
            csv: d.csv,
            images: d.images,
            prepared: d.prepared,
            run: d.run,
        }
    })
}

fn train_args<'a>(data: &'a Path, out: &'a Path, epochs: &'a str) -> Vec<&'a str> {
    common::train_args(data, out, &[&["--epochs", epochs], &TRAIN[..]].concat())
}

/// A copy of the fixture's run folder at `dir/run`.
fn run_copy(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    copy_dir(&fixture().run, &run);
    run
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn evaluate_args<'a>(model: &'a Path, data: &'a Path) -> Vec<&'a str> {
    vec!["evaluate", "--model", s(model), "--data", s(data)]
}

fn text_of(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `ready` every 5 ms until it holds (true) or `child` exits first (false), for at
/// most two minutes.
fn wait_for(child: &mut Child, ready: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting after two minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A folder no file can be created in, for as long as the guard lives: mode 0555, and for
/// root (whom modes do not stop) the immutable attribute.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn new(dir: &Path) -> Self {
        set_mode(dir, 0o555);
        if is_root() {
            let out = Command::new("chattr").arg("+i").arg(dir).output().unwrap();
            assert!(out.status.success(), "chattr +i {}: {out:?}", dir.display());
        }
        let probe = dir.join("probe");
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "{} is still writable",
            dir.display()
        );
        ReadOnly(dir.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if is_root() {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).output();
        }
        set_mode(&self.0, 0o755);
    }
}

/// Finding 6: evaluate rewrote its input model.onnx to add `valar.test.*` metadata: a
/// symlink became a regular file (its target left stale), a 0444 model came back 0644. Now
/// model.onnx stays byte-identical, and the test figures go beside the predictions (the
/// evaluation record) and into the run's MODEL_CARD.md.
#[test]
fn evaluate_leaves_the_model_byte_identical_even_a_symlink_or_read_only_one() {
    let f = fixture();
    let dir = scratch("f06");
    let run = run_copy(&dir);
    let model = run.join("model.onnx");
    set_mode(&model, 0o444);
    let before = sha256(&model);
    let out = ok(&evaluate_args(&model, &f.test));
    assert_eq!(sha256(&model), before, "model.onnx was rewritten");
    assert_eq!(mode(&model), 0o444, "model.onnx's mode changed");

    // The figures are kept beside the predictions and in the card.
    let record = std::fs::read_to_string(run.join("predictions-test.model.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["model_sha256"], before);
    let printed_ccc = out
        .lines()
        .find(|l| l.starts_with("valence"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    let recorded = record["metrics"]["valence"]["ccc"].as_f64().unwrap();
    assert_eq!(format!("{recorded:.4}"), printed_ccc, "{record}");
    assert!(
        record["baseline"]["valence"]["rmse"].is_number(),
        "{record}"
    );
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(!card.contains("Not evaluated yet"), "{card}");
    assert!(card.contains(&printed_ccc), "{card}");

    // A symlinked model: the link stays a link, its target unchanged.
    let linked = dir.join("linked");
    copy_dir(&fixture().run, &linked);
    let target = dir.join("elsewhere.onnx");
    std::fs::rename(linked.join("model.onnx"), &target).unwrap();
    std::os::unix::fs::symlink(&target, linked.join("model.onnx")).unwrap();
    let target_sha = sha256(&target);
    ok(&evaluate_args(&linked.join("model.onnx"), &f.test));
    let meta = std::fs::symlink_metadata(linked.join("model.onnx")).unwrap();
    assert!(meta.file_type().is_symlink(), "the link became a file");
    assert_eq!(sha256(&target), target_sha, "the link's target changed");
}

/// Finding 4: `evaluate --out RUN/config.toml` overwrote a run file that evaluate itself
/// reads, and `--resume` then failed. Every file of the run folder is an input.
#[test]
fn evaluate_refuses_to_write_over_any_file_of_the_run() {
    let f = fixture();
    let dir = scratch("f04");
    let run = run_copy(&dir);
    let model = run.join("model.onnx");
    for name in [
        "config.toml",
        "checkpoint/loop.json",
        "metrics.csv",
        "predictions.csv",
        "MODEL_CARD.md",
        "model.onnx",
    ] {
        let target = run.join(name);
        let before = sha256(&target);
        let mut args = evaluate_args(&model, &f.test);
        args.extend(["--out", s(&target)]);
        let err = fails(&args);
        assert!(err.contains(name), "{name}: {err}");
        assert_eq!(sha256(&target), before, "{name} was overwritten: {err}");
    }
    ok(&["train", "--resume", s(&run)]);
}

/// Finding 9: two evaluates of one model at once mixed their files. Now evaluate holds the
/// run's lock from start to end: a second one, started while the first runs, fails at once
/// naming it.
#[test]
fn a_second_evaluate_of_the_same_run_fails_at_once_naming_the_first() {
    let f = fixture();
    let dir = scratch("f09");
    let run = run_copy(&dir);
    let model = run.join("model.onnx");
    let lock = dir.join("run.lock");
    for attempt in 0..10 {
        // The first evaluate scores every prepared face, so it runs for a while.
        let mut first = spawn(&["evaluate", "--model", s(&model), "--data", s(&f.test2)]);
        let held = wait_for(&mut first, || {
            std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("evaluate"))
        });
        if !held {
            // It ended before it could be seen holding the lock: try again.
            first.wait().unwrap();
            assert!(attempt < 9, "evaluate never held {}", lock.display());
            continue;
        }
        let second = valar(&evaluate_args(&model, &f.test));
        let first_still_runs = first.try_wait().unwrap().is_none();
        let first_status = first.wait().unwrap();
        let (_, err) = text_of(&second);
        if second.status.success() {
            assert!(
                !first_still_runs,
                "a second evaluate ran while the first held the run: {err}"
            );
            continue;
        }
        assert!(
            err.contains(&format!("pid {}", first.id())) && err.contains("is being written by"),
            "{err}"
        );
        assert!(first_status.success());
        // The run's test files are the first one's, all of them.
        let record = std::fs::read_to_string(run.join("predictions-test.model.json")).unwrap();
        assert!(record.contains("test2"), "{record}");
        return;
    }
    panic!("the two evaluates never overlapped in 10 tries");
}

/// Finding 10: evaluate while the run still trains stamped epoch-1 test metrics onto the
/// epoch-2 model. Now evaluate of a run being trained fails at once, naming the training.
#[test]
fn evaluate_of_a_run_still_training_fails_naming_the_training() {
    let f = fixture();
    let dir = scratch("f10");
    let run = dir.join("run");
    let mut train = spawn(&train_args(&f.prepared, &run, "300"));
    let trained_once = wait_for(&mut train, || run.join("checkpoint/loop.json").is_file());
    assert!(trained_once, "train ended before its first epoch");
    let out = valar(&evaluate_args(&run.join("model.onnx"), &f.test));
    let still_training = train.try_wait().unwrap().is_none();
    train.kill().unwrap();
    train.wait().unwrap();
    assert!(still_training, "the training ended before evaluate ran");
    let (_, err) = text_of(&out);
    assert!(!out.status.success(), "evaluate ran beside train: {err}");
    assert!(
        err.contains(&format!("pid {}", train.id())) && err.contains("valar train"),
        "{err}"
    );
    assert!(!run.join("predictions-test.csv").exists());
}

/// Every (tag, step) scalar in the run folder's event files, read by TensorBoard itself,
/// with how many times it occurs.
fn event_scalars(run: &Path) -> BTreeMap<(String, i64), usize> {
    let code = "import sys, glob\n\
                from tensorboard.backend.event_processing.event_file_loader import EventFileLoader\n\
                for path in sorted(glob.glob(sys.argv[1] + '/events.out.tfevents.*')):\n\
                \x20   for e in EventFileLoader(path).Load():\n\
                \x20       for v in e.summary.value: print(v.tag, e.step, sep='\\t')";
    let out = Command::new("python3")
        .args(["-c", code, s(run)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 with tensorboard failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (tag, step) = line.split_once('\t').unwrap();
        *seen
            .entry((tag.to_string(), step.parse().unwrap()))
            .or_default() += 1;
    }
    seen
}

/// Finding 12: a kill after an epoch's TensorBoard events were written but before its loop
/// state was committed, then `--resume`, wrote that epoch into two event files. The kill state
/// is built on disk: a run committed after epoch 1 whose event file already holds epoch 2.
#[test]
fn a_resume_after_a_kill_between_events_and_commit_writes_each_epoch_once() {
    let f = fixture();
    let dir = scratch("f12");
    let two = dir.join("two");
    ok(&train_args(&f.prepared, &two, "2"));
    let run = dir.join("run");
    ok(&train_args(&f.prepared, &run, "1"));
    // The one-epoch run as the two-epoch one was at the kill: loop.json after epoch 1, not
    // finished, and the event file of the process that had just written epoch 2's events.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("epochs = 1\n"), "{config}");
    std::fs::write(
        run.join("config.toml"),
        config.replace("epochs = 1\n", "epochs = 2\n"),
    )
    .unwrap();
    let state = std::fs::read_to_string(run.join("checkpoint/loop.json")).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["epochs_done"], 1);
    state["finished"] = serde_json::Value::Null;
    std::fs::write(run.join("checkpoint/loop.json"), state.to_string()).unwrap();
    let events = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("events.out.tfevents."))
            .collect()
    };
    for old in events(&run) {
        std::fs::remove_file(old).unwrap();
    }
    let [killed] = &events(&two)[..] else {
        panic!("one event file expected in {}", two.display())
    };
    std::fs::copy(killed, run.join(killed.file_name().unwrap())).unwrap();
    assert!(
        event_scalars(&run).contains_key(&("loss/train".to_string(), 2)),
        "the kill state holds epoch 2's events"
    );

    ok(&["train", "--resume", s(&run)]);
    let seen = event_scalars(&run);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "scalars written twice: {twice:?}");
    for step in [1, 2] {
        assert!(
            seen.contains_key(&("loss/train".to_string(), step)),
            "epoch {step} missing: {seen:?}"
        );
    }
}

/// Finding 13: a second evaluate of the run's model on another test set, with `--out`
/// elsewhere, made `valar report --run` call the run's own test predictions another model's.
#[test]
fn a_second_evaluate_elsewhere_leaves_the_runs_test_predictions_its_own() {
    let f = fixture();
    let dir = scratch("f13");
    let run = run_copy(&dir);
    let model = run.join("model.onnx");
    ok(&evaluate_args(&model, &f.test));
    let mut elsewhere = evaluate_args(&model, &f.test2);
    let other = dir.join("other/predictions.csv");
    elsewhere.extend(["--out", s(&other)]);
    ok(&elsewhere);
    let text = ok(&["report", "--run", s(&run)]);
    assert!(!text.contains("another model"), "{text}");
    let md = std::fs::read_to_string(run.join("report/report.md")).unwrap();
    assert!(!md.contains("another model"), "{md}");
    assert!(md.contains("## Test evaluation"), "{md}");
}

/// A copy of the run's model at `dir/model.onnx`, alone (no config.toml beside it), with
/// metadata `key` set to `value`.
fn model_with(dir: &Path, key: &str, value: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let model = dir.join("model.onnx");
    std::fs::copy(fixture().run.join("model.onnx"), &model).unwrap();
    valar_engine::update_metadata(&model, &[(key.to_string(), value.to_string())], None).unwrap();
    model
}

/// Two lines of the source images as predict's CSV (path and face box).
fn predict_list(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&fixture().csv).unwrap();
    let rows: Vec<String> = text
        .lines()
        .take(3)
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
        .collect();
    let list = dir.join("list.csv");
    std::fs::write(&list, rows.join("\n") + "\n").unwrap();
    list
}

fn predict_args<'a>(model: &'a Path, list: &'a Path) -> Vec<&'a str> {
    vec![
        "predict",
        "--model",
        s(model),
        "--csv",
        s(list),
        "--images-root",
        s(&fixture().images),
    ]
}

/// Finding 14: `valar.targets` values valar does not recognise were ignored: a model whose
/// metadata says `arousal,valence` was scored as valence, arousal; `foo` passed without a
/// word. Now either is an error naming the model and the key.
#[test]
fn unrecognised_targets_metadata_is_an_error_naming_the_model_and_key() {
    let f = fixture();
    let dir = scratch("f14");
    let list = predict_list(&dir);
    for (i, value) in ["arousal,valence", "foo"].into_iter().enumerate() {
        let model = model_with(&dir.join(format!("m{i}")), "valar.targets", value);
        let mut args = evaluate_args(&model, &f.test);
        let out = dir.join(format!("p{i}.csv"));
        args.extend(["--out", s(&out)]);
        for args in [args, predict_args(&model, &list)] {
            let err = fails(&args);
            assert!(
                err.contains(s(&model)) && err.contains("valar.targets") && err.contains(value),
                "{value}: {err}"
            );
        }
        assert!(!out.exists());
    }
}

/// Findings 15 and 19: `valar.crop.margin=NaN` was used as 0 by predict; a negative,
/// infinite or huge margin made every row fail as "box_outside_image". Now a margin outside
/// prepare's range (0 to 1) is an error naming the model file, the key and the value.
#[test]
fn a_crop_margin_that_prepare_would_refuse_is_an_error_naming_the_model() {
    let f = fixture();
    let dir = scratch("f15");
    let list = predict_list(&dir);
    for (i, value) in ["NaN", "-0.5", "inf", "1000000"].into_iter().enumerate() {
        let model = model_with(&dir.join(format!("m{i}")), "valar.crop.margin", value);
        let mut eval = evaluate_args(&model, &f.test);
        let out = dir.join(format!("p{i}.csv"));
        eval.extend(["--out", s(&out)]);
        for args in [eval, predict_args(&model, &list)] {
            let err = fails(&args);
            assert!(
                err.contains(s(&model)) && err.contains("valar.crop.margin") && err.contains(value),
                "{value}: {err}"
            );
            assert!(!err.contains("box_outside_image"), "{err}");
        }
    }
    // The override flag is held to the same range.
    let model = f.run.join("model.onnx");
    let mut args = predict_args(&model, &list);
    args.extend(["--margin", "NaN"]);
    let err = fails(&args);
    assert!(err.contains("--margin NaN"), "{err}");
}

/// Finding 17: a foreign model taking `[N, 1, 100000, 100000]` got predict killed for
/// memory. Now predict and evaluate refuse an input size prepare would refuse (over 1,024),
/// before allocating. The commands run with 8 GiB of address space, so that the old
/// behaviour fails with an allocation error instead of taking the machine's memory.
#[test]
fn a_model_taking_huge_faces_is_refused_before_allocating() {
    let f = fixture();
    let dir = scratch("f17");
    let model = dir.join("huge.onnx");
    let code = "import sys, onnx\n\
                from onnx import helper, TensorProto\n\
                x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 1, 100000, 100000])\n\
                y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 2])\n\
                nodes = [helper.make_node('GlobalAveragePool', ['x'], ['p']),\n\
                \x20        helper.make_node('Flatten', ['p'], ['q'], axis=1),\n\
                \x20        helper.make_node('Concat', ['q', 'q'], ['y'], axis=1)]\n\
                m = helper.make_model(helper.make_graph(nodes, 'huge', [x], [y]),\n\
                \x20   opset_imports=[helper.make_opsetid('', 17)])\n\
                m.ir_version = 8\n\
                onnx.save(m, sys.argv[1])";
    let made = Command::new("python3")
        .args(["-c", code, s(&model)])
        .output()
        .unwrap();
    assert!(made.status.success(), "python3 with onnx: {made:?}");
    let image = std::fs::read_to_string(&f.csv).unwrap();
    let first = image.lines().nth(1).unwrap().split(',').next().unwrap();
    let image = f.images.join(first);
    let limited = |args: &[&str]| {
        let mut script = String::from("ulimit -v 8388608; exec \"$0\"");
        for i in 0..args.len() {
            script.push_str(&format!(" \"${}\"", i + 1));
        }
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_valar"))
            .args(args)
            .output()
            .unwrap()
    };
    let out_csv = dir.join("p.csv");
    for args in [
        vec!["predict", "--model", s(&model), s(&image)],
        vec![
            "evaluate",
            "--model",
            s(&model),
            "--data",
            s(&f.test),
            "--out",
            s(&out_csv),
        ],
    ] {
        let out = limited(&args);
        let (_, err) = text_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("huge.onnx") && err.contains("100000") && err.contains("1024"),
            "{args:?}: {err}"
        );
    }
}

/// Finding 20: a model in a read-only folder failed evaluate with an error naming a hidden
/// temp file, after `--out` was written and before any metric was printed. Now the model is
/// never written, so its folder's mode does not matter; an output that cannot be written is
/// named (not a temp file), and a write failure after scoring still prints the metrics.
#[test]
fn evaluate_beside_a_read_only_model_prints_metrics_and_names_what_it_cannot_write() {
    let f = fixture();
    let dir = scratch("f20");
    let run = run_copy(&dir);
    let model = run.join("model.onnx");
    let before = sha256(&model);
    {
        let _read_only = ReadOnly::new(&run);
        let mut args = evaluate_args(&model, &f.test);
        let out_csv = dir.join("out/predictions.csv");
        args.extend(["--out", s(&out_csv)]);
        let out = valar(&args);
        let (stdout, err) = text_of(&out);
        assert!(out.status.success(), "{err}");
        assert!(stdout.lines().any(|l| l.starts_with("valence")), "{stdout}");
        assert!(out_csv.is_file());

        // Predictions beside the model, in the read-only folder: named, before any work.
        let out = valar(&evaluate_args(&model, &f.test));
        let (_, err) = text_of(&out);
        assert!(!out.status.success());
        assert!(
            err.contains("predictions-test.csv") && !err.contains(".valar-"),
            "{err}"
        );
    }
    assert_eq!(sha256(&model), before);

    // A write that fails after scoring (the record's name taken by a folder): the metrics
    // are printed, and the error names the file that could not be written.
    let late = dir.join("late");
    std::fs::create_dir_all(late.join("p.model.json")).unwrap();
    let mut args = evaluate_args(&model, &f.test);
    let out_csv = late.join("p.csv");
    args.extend(["--out", s(&out_csv)]);
    let out = valar(&args);
    let (stdout, err) = text_of(&out);
    assert!(!out.status.success(), "{stdout}{err}");
    assert!(stdout.lines().any(|l| l.starts_with("valence")), "{stdout}");
    assert!(
        err.contains("p.model.json") && !err.contains(".valar-"),
        "{err}"
    );
}
