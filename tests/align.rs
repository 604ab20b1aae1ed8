//! End-to-end tests of `valar prepare --align`: each face is cut by the eyes of its 68
//! landmarks, prep.json and model.onnx record where the eyes go, and `valar predict` cuts a
//! new image of an aligned model the same way (landmarks from the newer release's
//! `annotations/` or from a CSV's `facial_landmarks`).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{cached, fails, number, ok, prepare_args, rows_by_key, s, scratch, train_args};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use valar_core::{Split, read_faces, read_manifest, read_npy_numbers};
use valar_face::{Alignment, Eyes, FaceSpec, decode_aligned};

/// The image whose landmarks the fixture deletes.
const NO_LANDMARKS: &str = "images/3.jpg";

/// A synthetic set in AffectNet's newer layout (one `_lnd.npy` removed), prepared with
/// `--align`, and a one-epoch run on it: `dir/synth/train_set`, `dir/prepared`, `dir/run`.
fn fixture() -> PathBuf {
    cached("newer", |dir| {
        let synth = dir.join("synth");
        ok(&[
            "synth",
            "--out",
            s(&synth),
            "--layout",
            "newer",
            "--n",
            "240",
            "--val-n",
            "0",
            "--seed",
            "21",
            "--invalid-fraction",
            "0",
        ]);
        let set = synth.join("train_set");
        std::fs::remove_file(set.join("annotations/3_lnd.npy")).unwrap();
        ok(&[
            "prepare",
            "--set",
            s(&set),
            "--out",
            s(&dir.join("prepared")),
            "--align",
            "--quota",
            "30",
            "--val-fraction",
            "0.2",
            "--seed",
            "3",
        ]);
        let (prepared, run) = (dir.join("prepared"), dir.join("run"));
        ok(&train_args(
            &prepared,
            &run,
            &["--epochs", "1", "--seed", "2"],
        ));
    })
}

fn set(dir: &Path) -> PathBuf {
    dir.join("synth/train_set")
}

/// What `prepare --align` should have cut from `image` given `eyes`.
fn aligned(image: &Path, eyes: Eyes) -> Vec<u8> {
    let spec = FaceSpec {
        align: Some(Alignment::DEFAULT),
        ..FaceSpec::default()
    };
    decode_aligned(&std::fs::read(image).unwrap(), eyes, &spec)
        .unwrap()
        .pixels
}

/// The eyes of the newer layout's `annotations/<id>_lnd.npy` for `images/<id>.jpg`.
fn eyes_of(set: &Path, path: &str) -> Eyes {
    let id = Path::new(path).file_stem().unwrap().to_string_lossy();
    Eyes::read_npy(&set.join(format!("annotations/{id}_lnd.npy"))).unwrap()
}

#[test]
fn prepare_align_cuts_each_face_by_its_landmarks_and_says_so_in_prep_json() {
    let dir = fixture();
    let prepared = dir.join("prepared");
    let manifest = read_manifest(&prepared.join("manifest.csv")).unwrap();
    let faces = read_faces(&prepared.join("faces.npy")).unwrap();
    assert!(manifest.len() > 100, "{}", manifest.len());
    for row in manifest.iter().take(12) {
        let want = aligned(&set(&dir).join(&row.path), eyes_of(&set(&dir), &row.path));
        assert_eq!(faces.face(row.index), &want[..], "{}", row.path);
    }
    let prep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prepared.join("prep.json")).unwrap()).unwrap();
    assert_eq!(prep["params"]["align_eye_distance"], 0.37, "{prep}");
    assert_eq!(prep["params"]["align_eye_y"], 0.38, "{prep}");

    // The image without landmarks is a reject with its reason, not a face cut some other way.
    let rejects = std::fs::read_to_string(prepared.join("rejects.csv")).unwrap();
    let line = rejects
        .lines()
        .find(|l| l.contains(NO_LANDMARKS))
        .unwrap_or_else(|| panic!("{NO_LANDMARKS} is not in rejects.csv:\n{rejects}"));
    assert!(
        line.contains("no_landmarks") && line.contains("3_lnd.npy"),
        "{line}"
    );
    assert!(!manifest.iter().any(|r| r.path == NO_LANDMARKS));

    // A margin frames a box; an aligned face has none.
    let err = fails(&[
        "prepare",
        "--set",
        s(&set(&dir)),
        "--out",
        s(&scratch("margin").join("out")),
        "--align",
        "--margin",
        "0.1",
    ]);
    assert!(err.contains("--align") && err.contains("--margin"), "{err}");
}

#[test]
fn the_original_release_aligns_by_its_facial_landmarks_column() {
    let dir = scratch("original");
    let synth = dir.join("synth");
    ok(&[
        "synth",
        "--out",
        s(&synth),
        "--n",
        "30",
        "--val-n",
        "0",
        "--seed",
        "5",
        "--invalid-fraction",
        "0",
    ]);
    let csv = synth.join("Manually_Annotated_file_lists/training.csv");
    let images = synth.join("Manually_Annotated_Images");
    let out = dir.join("prepared");
    ok(&prepare_args(&csv, &images, &out, &["--align", "--all"]));
    let landmarks: BTreeMap<String, String> = csv::Reader::from_path(&csv)
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[5].to_string())
        })
        .collect();
    let manifest = read_manifest(&out.join("manifest.csv")).unwrap();
    let faces = read_faces(&out.join("faces.npy")).unwrap();
    assert!(manifest.len() >= 25, "{}", manifest.len());
    for row in &manifest {
        let eyes = Eyes::parse(&landmarks[&row.path]).unwrap();
        assert_eq!(
            faces.face(row.index),
            &aligned(&images.join(&row.path), eyes)[..]
        );
    }
}

#[test]
fn predict_cuts_a_new_image_as_prepare_cut_it() {
    let dir = fixture();
    let (prepared, run) = (dir.join("prepared"), dir.join("run"));
    let model = run.join("model.onnx");
    let meta = valar_engine::read_metadata(&model).unwrap();
    assert_eq!(meta["valar.crop.alignment"], "eyes distance=0.37 y=0.38");
    let card = std::fs::read_to_string(run.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("aligned by their eyes"), "{card}");

    // The val faces, by path: predict finds each image's landmarks in annotations/.
    let manifest = read_manifest(&prepared.join("manifest.csv")).unwrap();
    let val: Vec<_> = manifest
        .iter()
        .filter(|r| r.split == Split::Val)
        .take(8)
        .collect();
    assert!(val.len() >= 4);
    let work = scratch("predict");
    let list = work.join("list.csv");
    let text: String = val.iter().map(|r| format!("{}\n", r.path)).collect();
    std::fs::write(&list, format!("path\n{text}")).unwrap();
    let preds = work.join("preds.csv");
    ok(&[
        "predict",
        "--model",
        s(&model),
        "--csv",
        s(&list),
        "--images-root",
        s(&set(&dir)),
        "--out",
        s(&preds),
    ]);
    let trained = rows_by_key(&run.join("predictions.csv"));
    let predicted = rows_by_key(&preds);
    for r in &val {
        let (p, t) = (&predicted[&r.path], &trained[&r.index.to_string()]);
        for n in ["valence", "arousal"] {
            let (a, b) = (number(p, n), number(t, &format!("{n}_pred")));
            assert!(
                (a - b).abs() < 1e-4,
                "{} {n}: predict {a} vs training {b}",
                r.path
            );
        }
    }

    // The same image elsewhere has no landmarks beside it: a row that says so. Given them
    // in a facial_landmarks column, it is predicted as before.
    let first = val[0];
    let alone = work.join("alone.jpg");
    std::fs::copy(set(&dir).join(&first.path), &alone).unwrap();
    let original = set(&dir).join(&first.path);
    let bare = work.join("bare.csv");
    ok(&[
        "predict",
        "--model",
        s(&model),
        s(&alone),
        s(&original),
        "--out",
        s(&bare),
    ]);
    let rows = rows_by_key(&bare);
    assert!(
        rows[s(&alone)]["error"].starts_with("no_landmarks"),
        "{rows:?}"
    );
    let beside = &rows[s(&original)];
    for n in ["valence", "arousal"] {
        let (a, b) = (number(beside, n), number(&predicted[&first.path], n));
        assert!((a - b).abs() < 1e-6, "{n}: {a} vs {b}");
    }
    let eyes_text = {
        let id = Path::new(&first.path)
            .file_stem()
            .unwrap()
            .to_string_lossy();
        let numbers =
            read_npy_numbers(&set(&dir).join(format!("annotations/{id}_lnd.npy"))).unwrap();
        numbers
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(";")
    };
    let with = work.join("with.csv");
    std::fs::write(
        &with,
        format!("path,facial_landmarks\nalone.jpg,{eyes_text}\n"),
    )
    .unwrap();
    let out = work.join("with-preds.csv");
    ok(&[
        "predict",
        "--model",
        s(&model),
        "--csv",
        s(&with),
        "--out",
        s(&out),
    ]);
    let p = &rows_by_key(&out)["alone.jpg"];
    for n in ["valence", "arousal"] {
        let (a, b) = (number(p, n), number(&predicted[&first.path], n));
        assert!((a - b).abs() < 1e-6, "{n}: {a} vs {b}");
    }
}
