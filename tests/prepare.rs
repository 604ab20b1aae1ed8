//! End-to-end tests of `valar synth` and `valar prepare`, run through the binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{Fixture, fails, ok, prepare_args, s};

use std::path::{Path, PathBuf};
use std::process::Command;
use valar_core::{FaceBox, Split, read_faces, read_manifest};

struct Synth {
    _dir: tempfile::TempDir,
    root: PathBuf,
    csv: PathBuf,
    images: PathBuf,
}

/// `valar synth --out root --n n --val-n val_n --seed seed --layout layout`.
fn run_synth(root: &Path, n: usize, val_n: usize, seed: u64, layout: &str) {
    Fixture::synth(n, val_n, seed)
        .synth_args(&["--layout", layout])
        .synth_to(root);
}

fn synth(n: usize, seed: u64) -> Synth {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synth");
    run_synth(&root, n, 40, seed, "original");
    Synth {
        csv: root.join("Manually_Annotated_file_lists/training.csv"),
        images: root.join("Manually_Annotated_Images"),
        root,
        _dir: dir,
    }
}

/// `n` synthetic faces in AffectNet's newer layout under `dir/newer`.
fn synth_newer(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let root = dir.join("newer");
    run_synth(&root, n, 0, seed, "newer");
    root
}

/// `valar prepare --csv csv --images dir --out dir/p`, which must fail; its stderr.
fn prepare_csv_fails(csv: &Path, dir: &Path) -> String {
    fails(&prepare_args(csv, dir, &dir.join("p"), &[]))
}

/// One planted bad row per kind; each line's labels are valid so that only the
/// planted fault can reject it. Returns (line number, expected reason) pairs.
fn plant_bad_rows(data: &Synth) -> Vec<(u64, &'static str)> {
    let text = std::fs::read_to_string(&data.csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let good: Vec<&str> = lines[1].split(',').collect();
    let good_path = good[0];
    let row = |path: &str, bx: &str| format!("{path},{bx},1.0;2.0,1,0.5,0.5");

    std::fs::create_dir_all(data.images.join("bad")).unwrap();
    std::fs::write(
        data.images.join("bad/corrupt.jpg"),
        b"\xFF\xD8\xFF\xE0 this is not a JPEG",
    )
    .unwrap();
    let jpeg = std::fs::read(data.images.join(good_path)).unwrap();
    std::fs::write(
        data.images.join("bad/truncated.jpg"),
        &jpeg[..jpeg.len() / 3],
    )
    .unwrap();
    let big = image::GrayImage::from_pixel(1600, 1600, image::Luma([90]));
    big.save(data.images.join("bad/bomb.png")).unwrap();

    let planted = [
        (row("bad/missing.jpg", "10,10,50,50"), "missing_file"),
        (row("bad/corrupt.jpg", "10,10,50,50"), "corrupt_image"),
        (row("bad/truncated.jpg", "10,10,50,50"), "corrupt_image"),
        (row(good_path, "10,10,0,50"), "bad_box"),
        (row(good_path, "10,10,-40,-40"), "bad_box"),
        (row(good_path, "5000,5000,50,50"), "box_outside_image"),
        (row("../outside.jpg", "10,10,50,50"), "path_escapes_root"),
        (row("/etc/hostname", "10,10,50,50"), "path_escapes_root"),
        (row("bad/bomb.png", "10,10,500,500"), "too_many_pixels"),
        (
            format!("{good_path},10,10,50,50,1.0,1,not-a-number,0.5"),
            "malformed_row",
        ),
        (format!("{good_path},10,10,50"), "malformed_row"),
        (
            format!("{good_path},10,10,50,50,1.0,1,0.5,0.5,surplus"),
            "malformed_row",
        ),
    ];
    let mut out = text.clone();
    let mut expected = Vec::new();
    for (i, (line, reason)) in planted.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        expected.push(((lines.len() + i + 1) as u64, *reason));
    }
    std::fs::write(&data.csv, out).unwrap();
    expected
}

fn read_rejects(dir: &Path) -> Vec<(u64, String, String)> {
    let mut reader = csv::Reader::from_path(dir.join("rejects.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["source", "row", "path", "reason", "detail"]
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[1].parse().unwrap(), r[3].to_string(), r[4].to_string())
        })
        .collect()
}

#[test]
fn prepare_rejects_every_planted_bad_row_and_packs_the_rest() {
    let data = synth(400, 3);
    let planted = plant_bad_rows(&data);
    let out = data.root.join("prepared");
    let log = ok(&prepare_args(
        &data.csv,
        &data.images,
        &out,
        &["--quota", "30", "--max-pixels", "2000000", "--seed", "5"],
    ));
    assert!(!data.root.join("prepared.partial").exists());

    let rejects = read_rejects(&out);
    for (line, reason) in &planted {
        let hit = rejects.iter().find(|r| r.0 == *line);
        let hit = hit.unwrap_or_else(|| {
            panic!("line {line} ({reason}) missing from rejects.csv:\n{rejects:?}")
        });
        assert_eq!(hit.1, *reason, "line {line}: {}", hit.2);
        assert!(!hit.2.is_empty());
    }
    // The synthetic set's own unusable rows are excluded with their reasons too.
    assert!(rejects.iter().any(|r| r.1 == "no_label"), "{log}");

    let manifest = read_manifest(&out.join("manifest.csv")).unwrap();
    let faces = read_faces(&out.join("faces.npy")).unwrap();
    assert_eq!(
        (faces.n, faces.channels, faces.size),
        (manifest.len(), 1, 48)
    );
    // ten intervals of at most 30, and no planted row slipped through
    let mut per_interval = [0usize; 10];
    for row in &manifest {
        per_interval[row.interval as usize] += 1;
        assert!(!row.path.starts_with("bad/") && !row.path.starts_with('/'));
        assert_eq!(row.sha256.len(), 64);
    }
    assert!(per_interval.iter().all(|&c| c <= 30), "{per_interval:?}");
    assert!(
        per_interval.iter().filter(|&&c| c == 30).count() >= 5,
        "{per_interval:?}"
    );
    let vals = manifest.iter().filter(|r| r.split == Split::Val).count();
    assert!(vals > 0 && vals < manifest.len() / 5, "{vals}");

    // Each face is exactly what the shared preprocessing gives for its row.
    let spec = valar_face::FaceSpec::default();
    for row in manifest.iter().step_by(17) {
        let face = valar_face::load_face(&data.images.join(&row.path), Some(row.face_box()), &spec)
            .unwrap();
        assert_eq!(face.face_box, row.face_box());
        assert_eq!(face.pixels, faces.face(row.index), "face {}", row.index);
        let distinct = face
            .pixels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(distinct > 20, "face {} is nearly flat", row.index);
    }

    // Short intervals are said in the output and in prep.json.
    let info = valar_core::PrepInfo::read(&out.join("prep.json")).unwrap();
    assert_eq!(info.faces, manifest.len());
    for c in &info.intervals {
        assert_eq!(info.short_intervals.contains(&c.interval), c.selected < 30);
    }
    if !info.short_intervals.is_empty() {
        assert!(log.contains("fewer than the quota"), "{log}");
    }
    let counted: usize = info.rejects_by_reason.values().sum();
    assert_eq!(counted, rejects.len());
}

#[test]
fn numpy_loads_faces_npy_with_the_manifest_shape() {
    let data = synth(120, 4);
    let out = data.root.join("p");
    ok(&prepare_args(
        &data.csv,
        &data.images,
        &out,
        &["--quota", "5", "--rgb", "--size", "32"],
    ));
    let manifest = read_manifest(&out.join("manifest.csv")).unwrap();
    let check = Command::new("python3")
        .args([
            "-c",
            "import numpy, sys; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape, int(a.max()))",
            s(&out.join("faces.npy")),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "numpy is needed (just setup installs it): {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(
        printed.starts_with(&format!("uint8 ({}, 3, 32, 32)", manifest.len())),
        "{printed}"
    );
}

/// Every file but `timings.json` is the same bytes for the same seed and inputs: `prep.json`
/// too, since the model trained on it records its hash. The two runs write the same folder
/// (the first is moved away in between), because prep.json records the output path.
#[test]
fn same_seed_gives_identical_outputs_and_another_seed_does_not() {
    let data = synth(200, 5);
    let out = data.root.join("out");
    let run = |seed: &str, keep: &str| {
        ok(&prepare_args(
            &data.csv,
            &data.images,
            &out,
            &["--quota", "12", "--seed", seed],
        ));
        let bytes: Vec<Vec<u8>> = ["manifest.csv", "faces.npy", "rejects.csv", "prep.json"]
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect();
        assert!(out.join("timings.json").is_file());
        std::fs::rename(&out, data.root.join(keep)).unwrap();
        bytes
    };
    let a = run("1", "a");
    let b = run("1", "b");
    let c = run("2", "c");
    for (k, name) in ["manifest.csv", "faces.npy", "rejects.csv", "prep.json"]
        .iter()
        .enumerate()
    {
        assert!(a[k] == b[k], "same seed, different bytes in {name}");
    }
    assert_ne!(a[0], c[0]);
}

#[test]
fn headerless_csv_reads_like_the_headered_one() {
    let data = synth(150, 6);
    let text = std::fs::read_to_string(&data.csv).unwrap();
    let headerless = data.root.join("validation-noheader.csv");
    std::fs::write(&headerless, text.split_once('\n').unwrap().1).unwrap();
    let run = |csv: &Path, name: &str| {
        let out = data.root.join(name);
        ok(&prepare_args(csv, &data.images, &out, &["--quota", "8"]));
        std::fs::read(out.join("manifest.csv")).unwrap()
    };
    assert_eq!(run(&data.csv, "with"), run(&headerless, "without"));
}

#[test]
fn whole_set_as_test_split_and_pngs_per_interval() {
    let data = synth(100, 7);
    let val = data
        .root
        .join("Manually_Annotated_file_lists/validation.csv");
    let out = data.root.join("test-set");
    ok(&prepare_args(&val, &data.images, &out, &["--all", "--png"]));
    let manifest = read_manifest(&out.join("manifest.csv")).unwrap();
    let rejects = read_rejects(&out);
    let rows = std::fs::read_to_string(&val).unwrap().lines().count() - 1;
    assert_eq!(
        manifest.len() + rejects.len(),
        rows,
        "every row is kept or rejected"
    );
    assert!(manifest.iter().all(|r| r.split == Split::Test));
    let png = out
        .join("png")
        .join(format!("interval_{:03}", manifest[0].interval))
        .join("000000.png");
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (48, 48));
}

#[test]
fn newer_release_layout_is_read_from_npy_labels() {
    let dir = tempfile::tempdir().unwrap();
    let root = synth_newer(dir.path(), 80, 8);
    let out = dir.path().join("p");
    ok(&[
        "prepare",
        "--set",
        s(&root.join("train_set")),
        "--out",
        s(&out),
        "--quota",
        "4",
        "--stratify",
        "grid",
        "--intervals",
        "2",
    ]);
    let manifest = read_manifest(&out.join("manifest.csv")).unwrap();
    assert!(!manifest.is_empty() && manifest.len() <= 16);
    for row in &manifest {
        assert!(row.path.starts_with("images/"));
        assert_eq!(
            (row.face_x, row.face_y),
            (0, 0),
            "the whole image is the face"
        );
        let cell = (usize::from(row.valence >= 0.0)) * 2 + usize::from(row.arousal >= 0.0);
        assert_eq!(row.interval as usize, cell);
    }
}

#[test]
fn csv_without_needed_columns_fails_at_once_listing_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("generic.csv");
    std::fs::write(&csv, "path,valence,face_x\na.jpg,0.1,3\n").unwrap();
    let err = prepare_csv_fails(&csv, dir.path());
    assert!(
        err.contains("arousal") && err.contains("found [path, valence, face_x]"),
        "{err}"
    );
    assert!(!dir.path().join("o").exists());
}

#[test]
fn generic_csv_with_optional_boxes() {
    let data = synth(60, 9);
    let text = std::fs::read_to_string(&data.csv).unwrap();
    let mut generic = String::from("path,valence,arousal,face_x,face_y,face_width,face_height\n");
    for line in text.lines().skip(1).take(20) {
        let f: Vec<&str> = line.split(',').collect();
        if f[7] == "-2" {
            continue;
        }
        generic.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            f[0], f[7], f[8], f[1], f[2], f[3], f[4]
        ));
    }
    let first = text.lines().nth(1).unwrap().split(',').next().unwrap();
    generic.push_str(&format!("{first},0.2,0.3,,,,\n"));
    let csv = data.root.join("generic.csv");
    std::fs::write(&csv, generic).unwrap();
    let out = data.root.join("g");
    ok(&prepare_args(&csv, &data.images, &out, &["--quota", "100"]));
    let manifest = read_manifest(&out.join("manifest.csv")).unwrap();
    let whole = manifest
        .iter()
        .find(|r| r.valence == 0.2 && r.arousal == 0.3)
        .unwrap();
    let img = image::open(data.images.join(&whole.path)).unwrap();
    assert_eq!(whole.face_box(), FaceBox::whole(img.width(), img.height()));
    assert!(manifest.iter().all(|r| r.expression.is_none()));
}

/// Links every entry of `from` into `to`: folders named in `link_folders` as one
/// link each, other folders recreated with a link per file.
fn link_tree(from: &Path, to: &Path, link_folders: &dyn Fn(&Path) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() && !link_folders(&entry.path()) {
            link_tree(&entry.path(), &target, link_folders);
        } else {
            std::os::unix::fs::symlink(entry.path(), &target).unwrap();
        }
    }
}

fn prepared_bytes(out: &Path) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).unwrap();
    // Each rejects.csv line names its source file, which differs here by design.
    let rejects = rejects
        .lines()
        .map(|l| l.split_once(',').map_or(l, |(_, rest)| rest).to_string())
        .collect();
    (
        std::fs::read(out.join("faces.npy")).unwrap(),
        std::fs::read(out.join("manifest.csv")).unwrap(),
        rejects,
    )
}

#[test]
fn symlinked_csv_images_and_folders_give_the_same_faces_as_real_files() {
    let data = synth(80, 9);
    let linked = data.root.join("linked");
    // Every other image folder as one link, the rest as links per file.
    let toggle = std::cell::Cell::new(false);
    link_tree(&data.images, &linked.join("images"), &|_| {
        toggle.set(!toggle.get());
        toggle.get()
    });
    std::os::unix::fs::symlink(&data.csv, linked.join("training.csv")).unwrap();
    let prepare = |csv: &Path, images: &Path, out: &Path| {
        ok(&prepare_args(csv, images, out, &["--quota", "5"]));
    };
    prepare(&data.csv, &data.images, &data.root.join("real"));
    prepare(
        &linked.join("training.csv"),
        &linked.join("images"),
        &data.root.join("via-links"),
    );
    let real = prepared_bytes(&data.root.join("real"));
    assert!(
        read_manifest(&data.root.join("real/manifest.csv"))
            .unwrap()
            .len()
            > 20
    );
    assert_eq!(real, prepared_bytes(&data.root.join("via-links")));
}

#[test]
fn a_newer_release_set_of_symlinks_reads_as_its_files_and_an_empty_one_says_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = synth_newer(dir.path(), 60, 4);
    let set = root.join("train_set");
    let linked = dir.path().join("linked_set");
    // Images as a link per file, annotations as one linked folder.
    link_tree(&set, &linked, &|p| p.ends_with("annotations"));
    let prepare = |set: &Path, out: &Path| {
        ok(&["prepare", "--set", s(set), "--out", s(out), "--quota", "3"]);
    };
    prepare(&set, &dir.path().join("real"));
    prepare(&linked, &dir.path().join("via-links"));
    let real = prepared_bytes(&dir.path().join("real"));
    assert!(!real.0.is_empty());
    assert_eq!(real, prepared_bytes(&dir.path().join("via-links")));

    let empty = dir.path().join("empty_set");
    std::fs::create_dir_all(empty.join("images/nested")).unwrap();
    std::fs::create_dir_all(empty.join("annotations")).unwrap();
    std::os::unix::fs::symlink(empty.join("gone.jpg"), empty.join("images/broken.jpg")).unwrap();
    let err = fails(&[
        "prepare",
        "--set",
        s(&empty),
        "--out",
        s(&dir.path().join("e")),
    ]);
    assert!(
        err.contains("holds 0 files, 1 folders, 1 broken links") && !err.contains("counts above"),
        "{err}"
    );
}

#[test]
fn an_os_error_is_said_once_and_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let err = prepare_csv_fails(&dir.path().join("missing.csv"), dir.path());
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    let data = synth(30, 2);
    // A reader that has already gone away, as after `valar … | head -1`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_valar"))
        .args([
            "prepare",
            "--csv",
            s(&data.csv),
            "--images",
            s(&data.images),
            "--dry-run",
        ])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_csv_with_only_a_header_says_it_has_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    for header in [
        "path,valence,arousal\n",
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n",
    ] {
        let csv = dir.path().join("only-header.csv");
        std::fs::write(&csv, header).unwrap();
        let err = prepare_csv_fails(&csv, dir.path());
        assert!(
            err.contains("has 0 data rows") && err.contains("no rows to read"),
            "{err}"
        );
    }
}
