//! Issue 25 ("Nothing lost, round 2"), the output side: one output-folder policy for every
//! writer. Each test reproduces a finding of the issue as it was written, through the binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{copy_dir, fails, ok, s, scratch, synth_original};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use valar_core::{OutputLock, PARTIAL_MARKER};

/// 300 synthetic images (`training.csv` and its image folder), a prepared folder of 32-pixel
/// faces from them, and a one-epoch compact run on it: made once for every test.
struct Fixture {
    csv: PathBuf,
    images: PathBuf,
    prepared: PathBuf,
    run: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let d = common::Fixture::synth(300, 0, 7)
            .prepare(&["--quota", "20", "--size", "32"])
            .train(&["--epochs", "1"])
            .cached("fixture");
        Fixture {
            csv: d.csv,
            images: d.images,
            prepared: d.prepared,
            run: d.run,
        }
    })
}

/// `valar prepare` of 20 faces per interval, followed by `extra`.
fn prepare_args<'a>(
    csv: &'a Path,
    images: &'a Path,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    common::prepare_args(csv, images, out, &[&["--quota", "20"], extra].concat())
}

/// Every file under `dir`, relative, with its size and a hash of its bytes: what must
/// survive a refused run (short enough to read in a failure message).
fn snapshot(dir: &Path) -> Vec<(PathBuf, usize, u64)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, usize, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                let bytes = std::fs::read(e.path()).unwrap();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&bytes, &mut h);
                out.push((rel, bytes.len(), std::hash::Hasher::finish(&h)));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The first image of the fixture, copied to `to`.
fn an_image(to: &Path) -> Vec<u8> {
    let f = fixture();
    let first = std::fs::read_dir(&f.images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .flat_map(|p| {
            if p.is_dir() {
                std::fs::read_dir(p)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect()
            } else {
                vec![p]
            }
        })
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .unwrap();
    std::fs::copy(first, to).unwrap();
    std::fs::read(to).unwrap()
}

/// Finding 1: with `--out nope/../X` (whose parent does not exist yet) the input-as-output
/// check was skipped: predict turned the image into CSV text, prepare deleted its source
/// and audit replaced its prepared folder, all with rc 0.
#[test]
fn an_out_through_a_missing_folder_is_still_checked_against_the_inputs() {
    let f = fixture();
    let dir = scratch("finding1");
    let model = f.run.join("model.onnx");

    let image = dir.join("f1.jpg");
    let bytes = an_image(&image);
    let err = fails(&[
        "predict",
        "--model",
        s(&model),
        s(&image),
        "--out",
        s(&dir.join("nope/../f1.jpg")),
    ]);
    assert!(err.contains("is an input of this run"), "{err}");
    assert_eq!(
        std::fs::read(&image).unwrap(),
        bytes,
        "the image was overwritten"
    );

    let (csv, images) = synth_original(&dir.join("src"), 30, 0, 3);
    let before = snapshot(&dir.join("src"));
    let out = dir.join("nope/../src");
    let err = fails(&prepare_args(&csv, &images, &out, &["--all", "--force"]));
    assert!(err.contains("holds an input of this run"), "{err}");
    assert_eq!(
        snapshot(&dir.join("src")),
        before,
        "the source dataset changed"
    );

    let p1 = dir.join("p1");
    copy_dir(&f.prepared, &p1);
    let before = snapshot(&p1);
    let err = fails(&[
        "audit",
        "--prepared",
        s(&p1),
        "--out",
        s(&dir.join("nope/../p1")),
        "--force",
    ]);
    assert!(err.contains("is an input of this run"), "{err}");
    assert_eq!(snapshot(&p1), before, "the prepared folder was replaced");
}

/// Finding 2: a valar.toml whose data lives under `OUT/prepared` had `valar run --out OUT`
/// delete it (4 of 666 files left), without --force. A stage folder the pipeline did not
/// make is not replaced without --force either.
#[test]
fn run_never_replaces_its_own_inputs_or_a_folder_it_did_not_make() {
    let dir = scratch("finding2");
    let o2 = dir.join("o2");
    synth_original(&o2.join("prepared"), 60, 0, 3);
    let before = snapshot(&o2.join("prepared"));
    let config = dir.join("valar.toml");
    std::fs::write(
        &config,
        "[data]\ncsv = \"o2/prepared/Manually_Annotated_file_lists/training.csv\"\n\
         images = \"o2/prepared/Manually_Annotated_Images\"\n\
         [prepare]\nquota = 20\nsize = 32\n[train]\nmodel = \"compact\"\nepochs = 1\nbatch_size = 32\n",
    )
    .unwrap();
    let err = fails(&["run", "--config", s(&config), "--out", s(&o2)]);
    assert!(
        err.contains("holds an input of this run") && err.contains("training.csv"),
        "{err}"
    );
    assert_eq!(
        snapshot(&o2.join("prepared")),
        before,
        "the source data changed"
    );

    // Data elsewhere, but a `prepared` folder of the user's own under OUT.
    let f = fixture();
    let o3 = dir.join("o3");
    std::fs::create_dir_all(o3.join("prepared")).unwrap();
    std::fs::write(o3.join("prepared/notes.txt"), "mine").unwrap();
    std::fs::write(
        &config,
        format!(
            "[data]\ncsv = \"{}\"\nimages = \"{}\"\n[prepare]\nquota = 20\nsize = 32\n\
             [train]\nmodel = \"compact\"\nepochs = 1\nbatch_size = 32\n",
            s(&f.csv),
            s(&f.images)
        ),
    )
    .unwrap();
    let err = fails(&["run", "--config", s(&config), "--out", s(&o3)]);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(o3.join("prepared/notes.txt")).unwrap(),
        "mine"
    );
}

/// Finding 3: a CSV listing `f3.jpg` with `--out f3.jpg` overwrote the image (rc 0).
#[test]
fn predict_refuses_an_out_that_the_csv_lists_as_an_input() {
    let f = fixture();
    let dir = scratch("finding3");
    let image = dir.join("f3.jpg");
    let bytes = an_image(&image);
    let list = dir.join("list.csv");
    std::fs::write(&list, "path\nf3.jpg\n").unwrap();
    let err = fails(&[
        "predict",
        "--model",
        s(&f.run.join("model.onnx")),
        "--csv",
        s(&list),
        "--out",
        s(&image),
    ]);
    assert!(
        err.contains("is an input of this run") && err.contains("f3.jpg"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&image).unwrap(),
        bytes,
        "the image was overwritten"
    );
}

/// An image's landmarks beside it (`annotations/<id>_lnd.npy`, which a model trained on
/// aligned faces reads) are an input too: predict refuses to write over them.
#[test]
fn predict_refuses_an_out_that_is_an_images_landmarks_file() {
    let f = fixture();
    let dir = scratch("landmarks-out");
    std::fs::create_dir_all(dir.join("set/images")).unwrap();
    std::fs::create_dir_all(dir.join("set/annotations")).unwrap();
    let image = dir.join("set/images/7.jpg");
    an_image(&image);
    let landmarks = dir.join("set/annotations/7_lnd.npy");
    std::fs::write(&landmarks, b"landmarks").unwrap();
    let err = fails(&[
        "predict",
        "--model",
        s(&f.run.join("model.onnx")),
        s(&image),
        "--out",
        s(&landmarks),
    ]);
    assert!(
        err.contains("is an input of this run") && err.contains("7_lnd.npy"),
        "{err}"
    );
    assert_eq!(std::fs::read(&landmarks).unwrap(), b"landmarks");
}

/// Finding 5: `train --force` deleted the old run, then found that `--model compact` cannot
/// take 44-pixel faces, leaving only a new config.toml and an empty checkpoint/.
#[test]
fn train_force_makes_every_check_before_removing_the_old_run() {
    let f = fixture();
    let dir = scratch("finding5");
    let p44 = dir.join("p44");
    ok(&prepare_args(&f.csv, &f.images, &p44, &["--size", "44"]));
    let run = dir.join("run");
    copy_dir(&f.run, &run);
    let before = snapshot(&run);
    let err = fails(&[
        "train",
        "--data",
        s(&p44),
        "--out",
        s(&run),
        "--model",
        "compact",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--force",
    ]);
    assert!(err.contains("44"), "{err}");
    assert_eq!(snapshot(&run), before, "the old run was changed");
    assert_eq!(names_in(&dir), ["p44", "run"]);
}

/// Finding 7: `valar report --out DIR` overwrote a user's report.md in a non-empty folder
/// without --force, and accepted `--out` equal to `--data`.
#[test]
fn report_claims_its_folder_like_every_other_output() {
    let f = fixture();
    let dir = scratch("finding7");
    let mine = dir.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("report.md"), "my own notes").unwrap();
    let err = fails(&["report", "--data", s(&f.prepared), "--out", s(&mine)]);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("report.md")).unwrap(),
        "my own notes"
    );

    let p = dir.join("p");
    copy_dir(&f.prepared, &p);
    let before = snapshot(&p);
    let err = fails(&["report", "--data", s(&p), "--out", s(&p)]);
    assert!(err.contains("is an input of this run"), "{err}");
    assert_eq!(snapshot(&p), before);

    // With --force the user's folder is replaced whole; valar's own report folder is
    // redrawn without it (the default RUN/report and DATA/report are rerun as a run goes on).
    ok(&["report", "--data", s(&p), "--out", s(&mine), "--force"]);
    assert!(
        std::fs::read_to_string(mine.join("report.md"))
            .unwrap()
            .contains("![")
    );
    ok(&["report", "--data", s(&p)]);
    ok(&["report", "--data", s(&p)]);
    assert!(p.join("report/report.md").is_file());
    assert_eq!(names_in(&dir), ["mine", "p"]);
}

/// Finding 8: `ln -s precious.txt o8.lock; valar prepare … --out o8` wrote the lock line
/// into precious.txt.
#[test]
fn a_lock_file_that_is_a_link_is_refused_and_its_target_kept() {
    let f = fixture();
    let dir = scratch("finding8");
    let precious = dir.join("precious.txt");
    std::fs::write(&precious, "precious").unwrap();
    std::os::unix::fs::symlink("precious.txt", dir.join("o8.lock")).unwrap();
    let err = fails(&prepare_args(&f.csv, &f.images, &dir.join("o8"), &[]));
    assert!(err.contains("o8.lock") && err.contains("link"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    assert!(!dir.join("o8").exists());
}

/// Finding 11: two `valar report` into one folder at once mixed their figures; report took
/// no lock. A second one now fails at once naming the holder, before drawing anything.
#[test]
fn a_second_report_on_a_held_folder_fails_at_once() {
    let f = fixture();
    let dir = scratch("finding11");
    let out = dir.join("rep");
    let held = OutputLock::acquire(&out).unwrap();
    let err = fails(&["report", "--run", s(&f.run), "--out", s(&out)]);
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("is being written by"),
        "{err}"
    );
    assert!(!out.exists());
    drop(held);
    ok(&["report", "--run", s(&f.run), "--out", s(&out)]);
    assert_eq!(names_in(&dir), ["rep"]);
}

/// Finding 21: a kill inside `prepare --force`'s final rename left OUT missing, the old
/// output in a hidden `.OUT.replaced-XXXX/`, the new one in OUT.partial without its marker,
/// and a rerun said only that OUT.partial "was not left by valar". The states a kill leaves
/// are made on disk here.
#[test]
fn an_interrupted_replacement_is_finished_or_named() {
    let f = fixture();
    let dir = scratch("finding21");

    // As valar before this fix left it: the error names both copies, and touches neither.
    let aside = dir.join(".x.replaced-AbC123");
    std::fs::create_dir_all(aside.join("x")).unwrap();
    std::fs::write(aside.join("x/old.txt"), "old").unwrap();
    std::fs::create_dir_all(dir.join("x.partial")).unwrap();
    std::fs::write(dir.join("x.partial/new.txt"), "new").unwrap();
    let err = fails(&prepare_args(
        &f.csv,
        &f.images,
        &dir.join("x"),
        &["--force"],
    ));
    assert!(
        err.contains(".x.replaced-AbC123") && err.contains("x.partial"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(aside.join("x/old.txt")).unwrap(),
        "old"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("x.partial/new.txt")).unwrap(),
        "new"
    );

    // As valar now leaves it, killed between moving the old output aside and renaming the
    // new one into place: the next run finishes the replacement (the killed run was
    // complete and had passed every check), then refuses the now non-empty folder.
    let aside = dir.join(".y.replaced-XyZ789");
    std::fs::create_dir_all(aside.join("y")).unwrap();
    std::fs::write(aside.join("y/old.txt"), "old").unwrap();
    std::fs::create_dir_all(dir.join("y.partial")).unwrap();
    std::fs::write(dir.join("y.partial/new.txt"), "new").unwrap();
    std::fs::write(
        dir.join("y.partial").join(PARTIAL_MARKER),
        format!(
            "replacing {}: the earlier output is in .y.replaced-XyZ789\n",
            s(&dir.join("y"))
        ),
    )
    .unwrap();
    let err = fails(&prepare_args(&f.csv, &f.images, &dir.join("y"), &[]));
    assert!(
        err.contains("interrupted") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("y/new.txt")).unwrap(),
        "new"
    );
    assert!(!dir.join("y").join(PARTIAL_MARKER).exists());
    assert!(!aside.exists() && !dir.join("y.partial").exists());

    // Killed after the rename, before the old output was removed: the next run clears it.
    let aside = dir.join(".z.replaced-QqQ111");
    std::fs::create_dir_all(aside.join("z")).unwrap();
    std::fs::write(aside.join("z/old.txt"), "old").unwrap();
    std::fs::create_dir_all(dir.join("z")).unwrap();
    std::fs::write(dir.join("z/new.txt"), "new").unwrap();
    std::fs::write(
        dir.join("z").join(PARTIAL_MARKER),
        format!(
            "replacing {}: the earlier output is in .z.replaced-QqQ111\n",
            s(&dir.join("z"))
        ),
    )
    .unwrap();
    ok(&prepare_args(
        &f.csv,
        &f.images,
        &dir.join("z"),
        &["--force"],
    ));
    assert!(dir.join("z/manifest.csv").is_file());
    assert!(!aside.exists());
    assert_eq!(
        names_in(&dir),
        [".x.replaced-AbC123", "x.partial", "y", "z"]
    );
}

/// Finding 23: two `valar sweep run` on one folder could each lose a cell to the other's
/// lock. One sweep-wide lock: the second fails at once naming the holder.
#[test]
fn a_second_sweep_on_a_held_folder_fails_at_once() {
    let f = fixture();
    let dir = scratch("finding23");
    let sweep = dir.join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "[base]\ndata = \"{}\"\nmodel = \"compact\"\nepochs = 1\nbatch_size = 32\n[cross]\nseed = [0]\n",
            s(&f.prepared)
        ),
    )
    .unwrap();
    let runs = dir.join("runs");
    let held = OutputLock::acquire(&runs).unwrap();
    let err = fails(&["sweep", "run", s(&sweep), "--out", s(&runs)]);
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("is being written by"),
        "{err}"
    );
    assert!(
        !runs.exists(),
        "the second sweep expanded into the held folder"
    );
    drop(held);
}
