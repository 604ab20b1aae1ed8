//! Issue 19, the input side: each test reruns one probe of the issue as it was written
//! (EXIF orientation, BOMs, UTF-16, backslash paths, image formats, Aff-Wild2 files,
//! unbounded `--intervals`, sweep sizes and Slurm shards) through the binary. Every
//! one of them failed on the main branch the issue was filed against.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
use common::{fails, ok, prepare_args, s, synth_original};

use image::{ImageEncoder, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use valar_core::read_faces;

/// Three synthetic AffectNet images with their labels, as `(path, valence, arousal)`.
fn three_images(dir: &Path) -> (PathBuf, Vec<(String, String, String)>) {
    let (csv, images) = synth_original(&dir.join("synth"), 30, 0, 1);
    let text = std::fs::read_to_string(csv).unwrap();
    let rows = text
        .lines()
        .skip(1)
        .take(3)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = f.len();
            (f[0].to_string(), f[n - 2].to_string(), f[n - 1].to_string())
        })
        .collect();
    (images, rows)
}

/// A generic CSV (`path,valence,arousal`) of `rows`, each path passed through `path`.
fn generic_csv(rows: &[(String, String, String)], path: impl Fn(&str) -> String) -> String {
    let mut text = String::from("path,valence,arousal\n");
    for (p, v, a) in rows {
        text.push_str(&format!("{},{v},{a}\n", path(p)));
    }
    text
}

/// `valar prepare --csv csv --images images --out out --all --size 32`'s output.
fn prepare_all(csv: &Path, images: &Path, out: &Path) -> String {
    ok(&prepare_args(csv, images, out, &["--all", "--size", "32"]))
}

fn faces_in(out: &Path) -> usize {
    read_faces(&out.join("faces.npy")).unwrap().n
}

/// `jpeg` with an EXIF block (big-endian TIFF, one IFD entry: Orientation) after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    app1.extend(orientation.to_be_bytes());
    app1.extend([0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// Probe 8: a JPEG stored turned with Orientation=6 and a box in display coordinates
/// gave a crop of the wrong region (mean 0.0 against 254.8 for the upright copy).
#[test]
fn probe_8_a_box_on_a_photo_stored_turned_cuts_the_face_the_viewer_sees() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    // Upright: a white face in the top-left corner of a black 300×200 photo.
    let upright = RgbImage::from_fn(300, 200, |x, y| {
        if (20..120).contains(&x) && (20..100).contains(&y) {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    });
    std::fs::write(images.join("upright.jpg"), jpeg(&upright)).unwrap();
    // What a phone held upright writes: the pixels turned back, and tag 6 to turn them.
    let stored = image::imageops::rotate270(&upright);
    std::fs::write(
        images.join("phone.jpg"),
        with_exif_orientation(&jpeg(&stored), 6),
    )
    .unwrap();
    let csv = dir.path().join("faces.csv");
    std::fs::write(
        &csv,
        "path,valence,arousal,face_x,face_y,face_width,face_height\n\
         upright.jpg,0.5,0.5,30,30,60,60\nphone.jpg,-0.5,-0.5,30,30,60,60\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    prepare_all(&csv, &images, &out);
    let faces = read_faces(&out.join("faces.npy")).unwrap();
    assert_eq!(faces.n, 2);
    let per_face = faces.data.len() / 2;
    for (i, face) in faces.data.chunks(per_face).enumerate() {
        let mean = face.iter().map(|&v| f64::from(v)).sum::<f64>() / per_face as f64;
        assert!(mean > 250.0, "face {i}: mean {mean}, not the white face");
    }
}

/// Probe 10: a generic CSV saved with a UTF-8 BOM (Excel's "CSV UTF-8") gave "all 3
/// rows were excluded: 3 malformed_row", and `--dry-run` exited 0.
#[test]
fn probe_10_a_csv_with_a_utf8_bom_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (images, rows) = three_images(dir.path());
    let csv = dir.path().join("bom.csv");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(generic_csv(&rows, str::to_string).into_bytes());
    std::fs::write(&csv, bytes).unwrap();
    let plan = ok(&[
        "prepare",
        "--csv",
        s(&csv),
        "--images",
        s(&images),
        "--dry-run",
    ]);
    assert!(plan.contains("\"rows_read\": 3"), "{plan}");
    assert!(plan.contains("\"usable\": 3"), "{plan}");
    let out = dir.path().join("out");
    prepare_all(&csv, &images, &out);
    assert_eq!(faces_in(&out), 3);
}

/// Probe 10: a UTF-16 CSV (Excel's "Unicode text") said only "stream did not contain
/// valid UTF-8". It is refused with the encoding named and the command that converts it.
#[test]
fn probe_10_a_utf16_csv_is_refused_naming_the_encoding_and_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let (images, rows) = three_images(dir.path());
    let text = generic_csv(&rows, str::to_string);
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for (bytes, kind) in [(le, "little-endian"), (be, "big-endian")] {
        let csv = dir.path().join("unicode.csv");
        std::fs::write(&csv, bytes).unwrap();
        let err = fails(&[
            "prepare",
            "--csv",
            s(&csv),
            "--images",
            s(&images),
            "--dry-run",
        ]);
        assert!(err.contains(&format!("UTF-16 {kind}")), "{err}");
        assert!(err.contains("iconv -f UTF-16 -t UTF-8"), "{err}");
        assert!(err.contains("unicode.csv"), "{err}");
    }
}

/// Probe 11: a CSV whose paths use backslashes (written on Windows) gave
/// `missing_file` for every row and exited 0 with "Prepared 0 faces".
#[test]
fn probe_11_backslash_paths_are_read_and_unreadable_ones_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (images, rows) = three_images(dir.path());
    let csv = dir.path().join("windows.csv");
    std::fs::write(&csv, generic_csv(&rows, |p| p.replace('/', "\\"))).unwrap();
    let out = dir.path().join("out");
    prepare_all(&csv, &images, &out);
    assert_eq!(faces_in(&out), 3);

    // Files that exist neither way: the run fails, naming the reason and the hint.
    std::fs::write(
        &csv,
        generic_csv(&rows, |p| format!("elsewhere\\{}", p.replace('/', "\\"))),
    )
    .unwrap();
    let err = fails(&prepare_args(
        &csv,
        &images,
        &dir.path().join("none"),
        &["--all"],
    ));
    assert!(err.contains("3 missing_file"), "{err}");
    assert!(err.contains("backslashes"), "{err}");
    assert!(err.contains("windows.csv"), "{err}");
    assert!(!dir.path().join("none").exists());
}

/// The weak line on formats: WebP, BMP, TIFF and GIF were `corrupt_image` ("The image
/// format WebP is not supported").
#[test]
fn webp_bmp_tiff_and_gif_faces_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let face = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 128]));
    let mut csv = String::from("path,valence,arousal\n");
    for (i, format) in [
        image::ImageFormat::WebP,
        image::ImageFormat::Bmp,
        image::ImageFormat::Tiff,
        image::ImageFormat::Gif,
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("face.{}", format.extensions_str()[0]);
        face.save_with_format(images.join(&name), format).unwrap();
        csv.push_str(&format!("{name},0.{i},0.{i}\n"));
    }
    std::fs::write(dir.path().join("faces.csv"), csv).unwrap();
    let out = dir.path().join("out");
    let said = prepare_all(&dir.path().join("faces.csv"), &images, &out);
    assert_eq!(faces_in(&out), 4, "{said}");
}

/// The weak line on Aff-Wild2: a file with fewer lines than frames dropped the rest
/// silently; a header-only file gave 0 faces with no warning; a blank line dropped a
/// frame with no rejects row.
#[test]
fn aff_wild2_short_files_header_only_files_and_blank_lines_are_in_rejects_csv() {
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("annotations");
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&ann).unwrap();
    let frame = jpeg(&RgbImage::from_pixel(48, 48, Rgb([90, 90, 90])));
    for video in ["short", "empty", "blank"] {
        std::fs::create_dir_all(frames.join(video)).unwrap();
        for f in 1..=4 {
            std::fs::write(frames.join(format!("{video}/{f:05}.jpg")), &frame).unwrap();
        }
    }
    std::fs::write(ann.join("short.txt"), "valence,arousal\n0.1,0.2\n0.3,0.4\n").unwrap();
    std::fs::write(ann.join("empty.txt"), "valence,arousal\n").unwrap();
    std::fs::write(
        ann.join("blank.txt"),
        "valence,arousal\n0.1,0.2\n\n0.3,0.4\n0.5,0.6\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    ok(&[
        "prepare",
        "--aff-wild2",
        s(&ann),
        "--frames",
        s(&frames),
        "--out",
        s(&out),
        "--all",
        "--size",
        "32",
    ]);
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).unwrap();
    let has = |path: &str, reason: &str| {
        rejects
            .lines()
            .any(|l| l.contains(&format!(",{path},{reason},")))
    };
    assert!(has("blank/00002.jpg", "malformed_row"), "{rejects}");
    assert!(has("empty/", "no_frame_lines"), "{rejects}");
    assert!(has("short/", "unlabelled_frames"), "{rejects}");
    assert!(rejects.contains("00003.jpg to 00004.jpg"), "{rejects}");
    // Kept: blank's frames 1, 3 and 4, short's 1 and 2.
    assert_eq!(faces_in(&out), 5);
}

/// Probe 12: `--intervals 1000000 --stratify grid` (also with `--dry-run`) aborted
/// allocating 24 TB; with `--stratify arousal` it wrote 104 MB to the terminal.
#[test]
fn probe_12_a_million_intervals_are_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, images) = synth_original(&dir.path().join("synth"), 30, 0, 1);
    for stratify in ["grid", "arousal"] {
        for dry_run in [true, false] {
            let out = dir.path().join(format!("out-{stratify}"));
            let mut args = vec![
                "prepare",
                "--csv",
                s(&csv),
                "--images",
                s(&images),
                "--intervals",
                "1000000",
                "--stratify",
                stratify,
            ];
            if dry_run {
                args.push("--dry-run");
            } else {
                args.extend(["--out", s(&out)]);
            }
            let run = common::valar(&args);
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(1), "{err}");
            assert!(err.contains("--intervals 1000000 is over the limit of 100"));
            assert!(err.lines().count() < 5, "{err}");
            assert!(run.stdout.is_empty());
            assert!(!out.exists());
        }
    }
}

/// The weak line on sweeps: 160,000 cells were accepted without a word (155,120 cell
/// folders, 1.2 GB, before it was stopped).
#[test]
fn a_huge_sweep_is_refused_and_a_large_one_needs_yes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let huge = d.join("huge.toml");
    std::fs::write(
        &huge,
        format!(
            "[base]\ndata = \"x\"\n[cross]\nseed = [{}]\nepochs = [{}]\n",
            list(400),
            (1..=400)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    let out = d.join("sweep");
    let err = fails(&["slurm", "sweep", s(&huge), "--out", s(&out), "--no-submit"]);
    assert!(err.contains("160000 cells"), "{err}");
    assert!(err.contains("over the limit of 100000"), "{err}");
    assert!(!out.exists());

    let large = d.join("large.toml");
    std::fs::write(
        &large,
        format!("[base]\ndata = \"x\"\n[cross]\nseed = [{}]\n", list(1001)),
    )
    .unwrap();
    for command in [&["sweep", "run"][..], &["slurm", "sweep"][..]] {
        let mut args = command.to_vec();
        args.extend([s(&large), "--out", s(&out)]);
        let err = fails(&args);
        assert!(err.contains("1001 cells"), "{err}");
        assert!(err.contains("pass --yes"), "{err}");
        assert!(!out.exists());
    }
    ok(&[
        "slurm",
        "sweep",
        s(&large),
        "--out",
        s(&out),
        "--no-submit",
        "--yes",
    ]);
    assert_eq!(std::fs::read_dir(out.join("cells")).unwrap().count(), 1001);
}

/// The weak line on sweep files: `[crosss]` said "no `[cross]` table" without naming the
/// unknown table.
#[test]
fn a_misspelt_cross_table_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep.toml");
    std::fs::write(&sweep, "[base]\ndata = \"x\"\n[crosss]\nseed = [0, 1]\n").unwrap();
    let err = fails(&["sweep", "run", s(&sweep), "--out", s(&dir.path().join("o"))]);
    assert!(err.contains("unknown table `[crosss]`"), "{err}");
    assert!(err.contains("sweep.toml"), "{err}");
}

/// The weak line on Slurm: `slurm prepare --png` was accepted although every task would
/// fail; a shard count has a limit too, checked before any script is written.
#[test]
fn slurm_prepare_refuses_png_and_absurd_shard_counts_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, images) = synth_original(&dir.path().join("synth"), 30, 0, 1);
    let out = dir.path().join("p");
    let shards = dir.path().join("p.shards");
    let slurm = |count: &str, extra: &[&str]| {
        let mut args = vec![
            "slurm",
            "prepare",
            "--shards",
            count,
            "--no-submit",
            "--",
            "--csv",
            s(&csv),
            "--images",
            s(&images),
            "--out",
            s(&out),
        ];
        args.extend(extra);
        fails(&args)
    };
    let err = slurm("2", &["--png"]);
    assert!(err.contains("drop --png"), "{err}");
    assert!(!shards.exists());
    let err = slurm("1000000", &[]);
    assert!(
        err.contains("--shards 1000000 is over the limit of 1000"),
        "{err}"
    );
    assert!(!shards.exists());
}
