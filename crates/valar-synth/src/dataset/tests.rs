//! End-to-end tests of whole datasets, with small images to stay fast.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const SMALL: Sizing = Sizing {
    full: (80, 160),
    crop: (48, 64),
};

fn cfg(n: usize, val_n: usize, seed: u64, layout: Layout) -> SynthConfig {
    SynthConfig {
        n,
        val_n,
        seed,
        layout,
        ..SynthConfig::default()
    }
}

fn run(out: &Path, cfg: &SynthConfig) -> SynthSummary {
    synthesize_with(out, cfg, SMALL, &|| {}).unwrap()
}

/// Every file under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

struct Row {
    path: String,
    face: [u32; 4],
    landmarks: Vec<f32>,
    expression: u8,
    valence: f64,
    arousal: f64,
}

fn read_csv(path: &Path) -> Vec<Row> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 9, "{line}");
            Row {
                path: f[0].to_string(),
                face: [f[1], f[2], f[3], f[4]].map(|x| x.parse().unwrap()),
                landmarks: f[5].split(';').map(|x| x.parse().unwrap()).collect(),
                expression: f[6].parse().unwrap(),
                valence: f[7].parse().unwrap(),
                arousal: f[8].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for layout in [Layout::Original, Layout::Newer] {
        let c = cfg(30, 6, 11, layout);
        let a = dir.path().join(format!("{layout:?}-a"));
        let b = dir.path().join(format!("{layout:?}-b"));
        let other = dir.path().join(format!("{layout:?}-other"));
        run(&a, &c);
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one_thread.install(|| run(&b, &c));
        run(
            &other,
            &SynthConfig {
                seed: 12,
                ..c.clone()
            },
        );
        let (ta, tb, tother) = (tree(&a), tree(&b), tree(&other));
        assert!(ta.len() > 36);
        assert!(
            ta == tb,
            "{layout:?}: same seed must give byte-identical files"
        );
        assert!(ta != tother, "{layout:?}: another seed must differ");
    }
    let original = tree(&dir.path().join("Original-a"));
    let other = tree(&dir.path().join("Original-other"));
    let csv = Path::new("Manually_Annotated_file_lists/training.csv");
    assert_ne!(original[csv], other[csv]);
}

#[test]
fn original_layout_matches_affectnet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("affectnet");
    let c = SynthConfig {
        invalid_fraction: 0.1,
        ..cfg(300, 40, 3, Layout::Original)
    };
    let calls = AtomicUsize::new(0);
    let s = synthesize_with(&out, &c, SMALL, &|| {
        calls.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 340);
    assert_eq!(s.images, 340);
    assert_eq!(
        s.invalid_rows,
        30 + 4,
        "exactly round(fraction * rows) per split"
    );
    assert_eq!(s.image_root, out.join("Manually_Annotated_Images"));
    assert!(!dir.path().join("affectnet.partial").exists());

    let train = read_csv(s.train_csv.as_ref().unwrap());
    let val = read_csv(s.val_csv.as_ref().unwrap());
    assert_eq!((train.len(), val.len()), (300, 40));
    let mut invalid = 0;
    let mut gray = 0;
    let mut names = std::collections::HashSet::new();
    for r in train.iter().chain(&val) {
        let (dir_part, file) = r.path.split_once('/').unwrap();
        assert!(dir_part.parse::<usize>().unwrap() >= 1);
        let stem = file.strip_suffix(".jpg").unwrap();
        assert!(stem.len() == 40 && stem.chars().all(|ch| ch.is_ascii_hexdigit()));
        assert!(names.insert(stem.to_string()), "file names are unique");

        let img = image::open(s.image_root.join(&r.path)).unwrap();
        if img.color() == image::ColorType::L8 {
            gray += 1;
        }
        let (w, h) = (img.width(), img.height());
        assert!(
            (SMALL.full.0..=SMALL.full.1).contains(&w)
                && (SMALL.full.0..=SMALL.full.1).contains(&h)
        );
        let [x, y, fw, fh] = r.face;
        assert_eq!(fw, fh, "face boxes are square");
        assert!(x + fw <= w && y + fh <= h, "box inside the image");
        assert!(fw as f64 >= 0.34 * w.min(h) as f64 && fw as f64 <= 0.91 * w.min(h) as f64);
        assert_eq!(r.landmarks.len(), 136);
        // Landmarks are in full-image pixels, on the face, i.e. near the box.
        let margin = 0.2 * fw as f32;
        for p in r.landmarks.chunks(2) {
            assert!(
                p[0] >= x as f32 - margin && p[0] <= (x + fw) as f32 + margin,
                "{p:?}"
            );
            assert!(
                p[1] >= y as f32 - margin && p[1] <= (y + fh) as f32 + margin,
                "{p:?}"
            );
        }
        match r.expression {
            9 | 10 => {
                assert_eq!((r.valence, r.arousal), (-2.0, -2.0));
                invalid += 1;
            }
            8 => invalid += 1,
            e => {
                let (v, a) = (r.valence, r.arousal);
                assert!((-1.0..=1.0).contains(&v) && (-1.0..=1.0).contains(&a));
                let agrees = match e {
                    0 => v.hypot(a) < 0.2 || (v > 0.0 && a <= 0.0),
                    1 => v > 0.0,
                    3 => v > 0.0 && a > 0.0,
                    4..=6 => v <= 0.0 && a > 0.0,
                    2 | 7 => v <= 0.0 && a <= 0.0,
                    _ => false,
                };
                assert!(agrees, "expression {e} disagrees with v={v}, a={a}");
            }
        }
    }
    assert_eq!(invalid, s.invalid_rows);
    assert!(
        (5..=35).contains(&gray),
        "about 5% grayscale JPEGs, got {gray}"
    );
    assert!(train.iter().any(|r| r.expression == 8) && train.iter().any(|r| r.valence == -2.0));
}

#[test]
fn newer_layout_holds_npy_string_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("newer");
    let c = SynthConfig {
        invalid_fraction: 0.2,
        ..cfg(20, 5, 9, Layout::Newer)
    };
    let s = run(&out, &c);
    assert_eq!(
        (s.train_csv.clone(), s.val_csv.clone(), s.image_root.clone()),
        (None, None, out.clone())
    );
    assert_eq!(s.invalid_rows, 4 + 1);
    let read = |path: PathBuf| -> String {
        let bytes = fs::read(&path).unwrap();
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert!(
            file.shape().is_empty(),
            "{} must be a 0-d scalar",
            path.display()
        );
        file.into_vec::<String>().unwrap().remove(0)
    };
    let mut invalid = 0;
    for (split, count) in [("train_set", 20), ("val_set", 5)] {
        let root = out.join(split);
        assert_eq!(fs::read_dir(root.join("images")).unwrap().count(), count);
        assert_eq!(
            fs::read_dir(root.join("annotations")).unwrap().count(),
            4 * count
        );
        for id in 0..count {
            let img = image::open(root.join(format!("images/{id}.jpg"))).unwrap();
            assert_eq!(img.width(), img.height());
            assert!((SMALL.crop.0..=SMALL.crop.1).contains(&img.width()));
            let note = |kind: &str| read(root.join(format!("annotations/{id}_{kind}.npy")));
            let exp: u8 = note("exp").parse().unwrap();
            let v: f64 = note("val").parse().unwrap();
            let a: f64 = note("aro").parse().unwrap();
            let lnd: Vec<f32> = note("lnd").split(';').map(|x| x.parse().unwrap()).collect();
            assert_eq!(lnd.len(), 136);
            // The crop is the face: landmarks lie within it.
            assert!(lnd.iter().all(|&p| p >= 0.0 && p <= img.width() as f32));
            if exp >= 8 {
                invalid += 1;
            }
            if exp >= 9 {
                assert_eq!((v, a), (-2.0, -2.0));
            } else {
                assert!((-1.0..=1.0).contains(&v) && (-1.0..=1.0).contains(&a));
            }
        }
    }
    assert_eq!(invalid, s.invalid_rows);
}

#[test]
fn never_overwrites_and_never_leaves_a_finished_looking_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("keep.txt"), b"mine").unwrap();
    let err = synthesize_with(&out, &cfg(2, 0, 0, Layout::Original), SMALL, &|| {}).unwrap_err();
    assert!(matches!(err, SynthError::OutputExists(_)), "{err}");
    assert_eq!(fs::read(out.join("keep.txt")).unwrap(), b"mine");

    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        synthesize_with(&file, &cfg(2, 0, 0, Layout::Original), SMALL, &|| {}),
        Err(SynthError::OutputExists(_))
    ));

    // An empty folder is fine, and a stale `.partial` from a killed run is replaced; one
    // that valar did not make (no marker) is refused and kept.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let stale = dir.path().join("empty.partial");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("junk"), b"old").unwrap();
    let err = synthesize_with(&empty, &cfg(3, 0, 0, Layout::Original), SMALL, &|| {}).unwrap_err();
    assert!(err.to_string().contains("not left by valar"), "{err}");
    assert_eq!(fs::read(stale.join("junk")).unwrap(), b"old");
    fs::write(stale.join(valar_core::PARTIAL_MARKER), b"").unwrap();
    let s = synthesize_with(&empty, &cfg(3, 0, 0, Layout::Original), SMALL, &|| {}).unwrap();
    assert!(!stale.exists());
    assert!(!empty.join("junk").exists());
    assert_eq!(s.val_csv, None);
    assert!(
        !empty
            .join("Manually_Annotated_file_lists/validation.csv")
            .exists()
    );
    assert_eq!(read_csv(s.train_csv.as_ref().unwrap()).len(), 3);
}

#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    for bad in [
        SynthConfig {
            n: 0,
            ..SynthConfig::default()
        },
        SynthConfig {
            invalid_fraction: 1.5,
            ..SynthConfig::default()
        },
        SynthConfig {
            invalid_fraction: f64::NAN,
            ..SynthConfig::default()
        },
        SynthConfig {
            quality: 0,
            ..SynthConfig::default()
        },
    ] {
        assert!(matches!(
            synthesize_with(&out, &bad, SMALL, &|| {}),
            Err(SynthError::Config(_))
        ));
    }
    assert!(!out.exists());
}

/// The 48×48 grayscale crop of a face box, as the training pipeline will see it.
fn crop48(img: &image::DynamicImage, [x, y, side, _]: [u32; 4]) -> Vec<f32> {
    let gray = img.crop_imm(x, y, side, side).to_luma8();
    let small = image::imageops::resize(&gray, 48, 48, image::imageops::FilterType::Triangle);
    small.pixels().map(|p| p.0[0] as f32).collect()
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Pixel statistics of the 48×48 crops track the labels: the share of dark pixels
/// (open eyes and mouth) follows arousal, and how far the mouth corners sit below
/// the mouth centre follows negative valence.
#[test]
fn labels_are_visible_in_48px_crops() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces");
    let s = run(
        &out,
        &SynthConfig {
            invalid_fraction: 0.0,
            ..cfg(160, 0, 21, Layout::Original)
        },
    );
    let (mut v, mut a, mut dark_share, mut corner_drop) = (vec![], vec![], vec![], vec![]);
    for r in read_csv(s.train_csv.as_ref().unwrap()) {
        let img = image::open(s.image_root.join(&r.path)).unwrap();
        let c = crop48(&img, r.face);
        let coord = |i: usize| {
            (
                (i % 48) as f32 / 24.0 + 1.0 / 48.0 - 1.0,
                (i / 48) as f32 / 24.0 + 1.0 / 48.0 - 1.0,
            )
        };
        let face: Vec<usize> = (0..c.len())
            .filter(|&i| {
                let (x, y) = coord(i);
                x.abs() < 0.55 && y > -0.45 && y < 0.75
            })
            .collect();
        let mut skin: Vec<f32> = face.iter().map(|&i| c[i]).collect();
        skin.sort_by(f32::total_cmp);
        let median = skin[skin.len() / 2];
        let dark = face.iter().filter(|&&i| c[i] < 0.6 * median).count();
        let mouth_y = |keep: &dyn Fn(f32, f32) -> bool| {
            let ys: Vec<f32> = (0..c.len())
                .filter(|&i| c[i] < 0.65 * median)
                .map(coord)
                .filter(|&(x, y)| keep(x, y))
                .map(|(_, y)| y)
                .collect();
            (!ys.is_empty()).then(|| ys.iter().sum::<f32>() / ys.len() as f32)
        };
        let corners = mouth_y(&|x, y| (0.18..0.3).contains(&x.abs()) && y > 0.2 && y < 0.85);
        let centre = mouth_y(&|x, y| x.abs() < 0.08 && y > 0.35 && y < 0.85);
        if let (Some(corners), Some(centre)) = (corners, centre) {
            v.push(r.valence);
            a.push(r.arousal);
            dark_share.push(dark as f64 / face.len() as f64);
            corner_drop.push((corners - centre) as f64);
        }
    }
    assert!(
        v.len() > 150,
        "the mouth is found in nearly every crop, got {}",
        v.len()
    );
    let arousal_r = pearson(&a, &dark_share);
    let valence_r = pearson(&v, &corner_drop);
    assert!(arousal_r > 0.6, "arousal vs dark share r = {arousal_r}");
    assert!(
        valence_r < -0.5,
        "valence vs mouth-corner drop r = {valence_r}"
    );
    // Each cue is specific to its label.
    assert!(pearson(&v, &dark_share).abs() < 0.3);
    assert!(pearson(&a, &corner_drop).abs() < 0.3);
}

fn hard(n: usize, val_n: usize, seed: u64, layout: Layout) -> SynthConfig {
    SynthConfig {
        difficulty: Difficulty::Hard,
        ..cfg(n, val_n, seed, layout)
    }
}

#[test]
fn hard_faces_are_byte_identical_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for layout in [Layout::Original, Layout::Newer] {
        let c = hard(24, 6, 4, layout);
        let a = dir.path().join(format!("{layout:?}-a"));
        let b = dir.path().join(format!("{layout:?}-b"));
        let easy = dir.path().join(format!("{layout:?}-easy"));
        run(&a, &c);
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one_thread.install(|| run(&b, &c));
        run(
            &easy,
            &SynthConfig {
                difficulty: Difficulty::Easy,
                ..c.clone()
            },
        );
        let (ta, tb, te) = (tree(&a), tree(&b), tree(&easy));
        assert!(ta.len() > 30);
        assert!(
            ta == tb,
            "{layout:?}: same seed must give byte-identical files"
        );
        assert_eq!(ta.len(), te.len(), "same files as an easy set");
        let jpeg = |p: &PathBuf| p.extension().is_some_and(|e| e == "jpg");
        assert!(
            ta.iter()
                .zip(&te)
                .filter(|((p, _), _)| jpeg(p))
                .all(|((pa, fa), (pe, fe))| pa == pe && fa != fe),
            "{layout:?}: every hard image differs from its easy twin"
        );
    }
}

/// Reads one `.npy` string scalar label.
fn npy_label(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<String>()
        .unwrap()
        .remove(0)
}

#[test]
fn hard_training_split_is_skewed_and_validation_split_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hard");
    let c = SynthConfig {
        invalid_fraction: 0.0,
        ..hard(400, 240, 8, Layout::Newer)
    };
    run(&out, &c);
    let expressions = |split: &str, count: usize| {
        let mut counts = [0usize; 8];
        let mut gray = 0;
        for id in 0..count {
            let notes = out.join(split).join("annotations");
            let e: usize = npy_label(&notes.join(format!("{id}_exp.npy")))
                .parse()
                .unwrap();
            let v: f64 = npy_label(&notes.join(format!("{id}_val.npy")))
                .parse()
                .unwrap();
            assert!(v.abs() <= 1.0);
            counts[e] += 1;
            let img = image::open(out.join(split).join(format!("images/{id}.jpg"))).unwrap();
            if img.color() == image::ColorType::L8 {
                gray += 1;
            }
        }
        (counts, gray)
    };
    let (train, train_gray) = expressions("train_set", 400);
    let (val, val_gray) = expressions("val_set", 240);
    // AffectNet's training set: Happy and Neutral are nearly three quarters.
    let happy_neutral = (train[0] + train[1]) as f64 / 400.0;
    assert!((0.63..=0.82).contains(&happy_neutral), "{train:?}");
    // Its validation set: 30 of each expression expected.
    assert!(val.iter().all(|&c| (12..=50).contains(&c)), "{val:?}");
    // About 12% grayscale sources, even in the newer layout (easy has none there).
    let gray = (train_gray + val_gray) as f64 / 640.0;
    assert!((0.06..=0.2).contains(&gray), "gray share {gray}");
}

#[test]
fn hard_jpeg_quality_varies_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let (easy_out, hard_out) = (dir.path().join("easy"), dir.path().join("hard"));
    let c = SynthConfig {
        invalid_fraction: 0.0,
        ..hard(40, 0, 6, Layout::Newer)
    };
    run(&hard_out, &c);
    run(
        &easy_out,
        &SynthConfig {
            difficulty: Difficulty::Easy,
            ..c.clone()
        },
    );
    // Bytes per pixel of each JPEG: quality drawn from 30..=90 spreads it far more
    // than a fixed quality does.
    let density = |root: &Path| -> Vec<f64> {
        (0..40)
            .map(|id| {
                let path = root.join(format!("train_set/images/{id}.jpg"));
                let (w, h) = image::image_dimensions(&path).unwrap();
                fs::metadata(&path).unwrap().len() as f64 / (w * h) as f64
            })
            .collect()
    };
    let ratio = |d: Vec<f64>| {
        d.iter().cloned().fold(f64::MIN, f64::max) / d.iter().cloned().fold(f64::MAX, f64::min)
    };
    let (h, e) = (ratio(density(&hard_out)), ratio(density(&easy_out)));
    assert!(
        h > 2.0,
        "hard JPEG sizes should vary widely, max/min {h} (easy {e})"
    );
}
