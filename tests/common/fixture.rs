//! The end-to-end tests' data: scratch folders, and synthetic sets (synth, prepare, a tiny
//! run) made once per build of the `valar` binary and shared by the tests of a file, which
//! nextest runs as separate processes.

use super::{ok, s};
use std::path::{Path, PathBuf};
use std::process::Command;

/// This test file's own folder under cargo's per-target temporary directory, named after
/// the test target, so that two test files never share (or wipe) each other's data.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(env!("CARGO_CRATE_NAME"))
}

/// A fresh, empty scratch folder `name` under this test file's folder.
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join(name);
    if dir.exists() && std::fs::remove_dir_all(&dir).is_err() {
        // A folder left read-only (mode or immutable attribute) by an interrupted test.
        let _ = Command::new("chattr").args(["-R", "-i"]).arg(&dir).output();
        let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&dir).output();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What identifies the build of the `valar` binary: data made by an older one is made again.
fn binary_stamp() -> String {
    let binary = std::fs::metadata(env!("CARGO_BIN_EXE_valar")).unwrap();
    format!("{} {:?}", binary.len(), binary.modified().unwrap())
}

/// The folder `name` under this test file's folder, made by `make` once per build of the
/// binary. Test processes run in parallel: the first to take the file lock makes the folder
/// and writes the done file last, the others wait on the lock and reuse it; a make that
/// failed part-way leaves no done file for this build, so the next process starts over.
pub fn cached(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let root = root();
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(format!("{name}.fixture-lock")))
        .unwrap();
    lock.lock().unwrap();
    let stamp = binary_stamp();
    let done = root.join(format!("{name}.done"));
    if std::fs::read_to_string(&done).ok().as_deref() != Some(stamp.as_str()) {
        let _ = std::fs::remove_file(&done);
        make(&scratch(name));
        std::fs::write(&done, &stamp).unwrap();
    }
    root.join(name)
}

/// `valar prepare --csv csv --images images --out out` followed by `extra`.
pub fn prepare_args<'a>(
    csv: &'a Path,
    images: &'a Path,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "prepare",
        "--csv",
        s(csv),
        "--images",
        s(images),
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

/// `valar train --data data --out out` of a tiny run (the compact network, batches of 32,
/// on the CPU) followed by `extra`, which says how many epochs.
pub fn train_args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--model",
        "compact",
        "--batch-size",
        "32",
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    args
}

/// Which of the synthetic set's two lists a prepare step reads.
#[derive(Clone, Copy)]
pub enum List {
    /// `training.csv`.
    Training,
    /// `validation.csv`.
    Validation,
}

/// One `valar prepare` of a fixture: into `dir/out`, from `list`, with `args`.
struct Prepare {
    out: String,
    list: List,
    args: Vec<String>,
}

/// A synthetic set in AffectNet's original layout, prepared folders made from it and a tiny
/// run on the first of them, built step by step:
/// `Fixture::synth(300, 40, 5).prepare(&["--quota", "15"]).train(&["--epochs", "1"]).cached("fixture")`.
pub struct Fixture {
    synth: Vec<String>,
    prepares: Vec<Prepare>,
    train: Option<Vec<String>>,
}

/// The folders a fixture was made in: `dir/synth` (the set), `dir/prepared`, `dir/run`,
/// and any other prepared folder under `dir` by its name.
pub struct Data {
    pub dir: PathBuf,
    pub synth: PathBuf,
    pub csv: PathBuf,
    pub val_csv: PathBuf,
    pub images: PathBuf,
    pub prepared: PathBuf,
    pub run: PathBuf,
}

impl Data {
    fn new(dir: &Path) -> Self {
        let synth = dir.join("synth");
        let lists = synth.join("Manually_Annotated_file_lists");
        Data {
            dir: dir.to_path_buf(),
            csv: lists.join("training.csv"),
            val_csv: lists.join("validation.csv"),
            images: synth.join("Manually_Annotated_Images"),
            synth,
            prepared: dir.join("prepared"),
            run: dir.join("run"),
        }
    }

    /// A folder of the fixture by name, e.g. a second prepared folder.
    pub fn at(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&self, list: List) -> &Path {
        match list {
            List::Training => &self.csv,
            List::Validation => &self.val_csv,
        }
    }
}

impl Fixture {
    /// `valar synth` of `n` training and `val_n` validation images with `seed`.
    pub fn synth(n: usize, val_n: usize, seed: u64) -> Self {
        let synth = vec![
            "--n".to_string(),
            n.to_string(),
            "--val-n".to_string(),
            val_n.to_string(),
            "--seed".to_string(),
            seed.to_string(),
        ];
        Fixture {
            synth,
            prepares: Vec::new(),
            train: None,
        }
    }

    /// More `valar synth` arguments (e.g. `--invalid-fraction 0`).
    pub fn synth_args(mut self, extra: &[&str]) -> Self {
        self.synth.extend(extra.iter().map(|a| a.to_string()));
        self
    }

    /// Prepares `training.csv` into `prepared` with `extra` arguments.
    pub fn prepare(self, extra: &[&str]) -> Self {
        self.prepare_into("prepared", List::Training, extra)
    }

    /// Prepares `list` into the folder `out` with `extra` arguments.
    pub fn prepare_into(mut self, out: &str, list: List, extra: &[&str]) -> Self {
        self.prepares.push(Prepare {
            out: out.to_string(),
            list,
            args: extra.iter().map(|a| a.to_string()).collect(),
        });
        self
    }

    /// Trains a tiny run (see [`train_args`]) on `prepared` into `run`.
    pub fn train(mut self, extra: &[&str]) -> Self {
        self.train = Some(extra.iter().map(|a| a.to_string()).collect());
        self
    }

    /// Runs only the fixture's `valar synth`, into `root`.
    pub fn synth_to(&self, root: &Path) {
        let mut args = vec!["synth", "--out", s(root)];
        args.extend(self.synth.iter().map(String::as_str));
        ok(&args);
    }

    /// Makes the fixture in `dir`, which should be empty, every time it is called.
    pub fn make_in(&self, dir: &Path) -> Data {
        let data = Data::new(dir);
        self.synth_to(&data.synth);
        for p in &self.prepares {
            let out = data.at(&p.out);
            let extra: Vec<&str> = p.args.iter().map(String::as_str).collect();
            ok(&prepare_args(data.list(p.list), &data.images, &out, &extra));
        }
        if let Some(train) = &self.train {
            let extra: Vec<&str> = train.iter().map(String::as_str).collect();
            ok(&train_args(&data.prepared, &data.run, &extra));
        }
        data
    }

    /// Makes the fixture in the folder `name` once per build of the binary (see [`cached`]);
    /// tests that change what it made work on a copy.
    pub fn cached(&self, name: &str) -> Data {
        Data::new(&cached(name, |dir| {
            self.make_in(dir);
        }))
    }
}

/// Copies the folder `from` whole to `to` (a run or prepared fixture a test then changes).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
