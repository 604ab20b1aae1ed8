//! Planning and writing a whole dataset in either AffectNet layout, atomically.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::face::{Face, Pt, format_landmarks};
use crate::labels::{Balance, Invalid, RowLabels, format_label, sample_hard};
use crate::picture::{Picture, render};
use crate::{Difficulty, Layout, SynthConfig, SynthError};
use valar_core::PartialDir;
use valar_core::npy_string_scalar as string_scalar;

/// The CSV header of AffectNet's original file lists.
pub const CSV_HEADER: &str = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal";

/// How many images share one numbered sub-folder in the original layout.
const IMAGES_PER_DIR: usize = 500;

/// Share of original-layout images written as single-channel JPEGs.
const GRAY_SHARE: f64 = 0.05;

/// Share of hard images (either layout) that come from a grayscale source.
const HARD_GRAY_SHARE: f64 = 0.12;

/// Lowest JPEG quality a hard image is saved with (web photos go this low).
const HARD_MIN_QUALITY: u8 = 30;

/// What [`synthesize`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// The dataset folder (`out`).
    pub root: PathBuf,
    /// `Manually_Annotated_file_lists/training.csv` (original layout only).
    pub train_csv: Option<PathBuf>,
    /// `Manually_Annotated_file_lists/validation.csv` (original layout with `val_n > 0` only).
    pub val_csv: Option<PathBuf>,
    /// Folder the CSV paths are relative to (`Manually_Annotated_Images`); for the
    /// newer layout, the root holding `train_set/` and `val_set/`.
    pub image_root: PathBuf,
    /// Images written, training plus validation.
    pub images: usize,
    /// Rows with expression 8-10, training plus validation.
    pub invalid_rows: usize,
}

/// Image size ranges; tests shrink them to stay fast.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    /// Full-image width and height range (original layout), inclusive.
    pub full: (u32, u32),
    /// Cropped-face side range (newer layout), inclusive.
    pub crop: (u32, u32),
}

impl Sizing {
    /// AffectNet-like sizes.
    pub(crate) const AFFECTNET: Sizing = Sizing {
        full: (160, 900),
        crop: (200, 260),
    };
}

/// Which half of the dataset an image belongs to; also its random stream family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// The training half (`training.csv`, `train_set/`).
    Train,
    /// The validation half (`validation.csv`, `val_set/`).
    Val,
}

impl Split {
    fn id(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Val => 1,
        }
    }
}

/// An independent random stream per (seed, split, index), so output does not depend
/// on which thread renders what. Indices are below 2^40 (checked by the config).
fn image_rng(seed: u64, split: Split, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((split.id() << 40) | index as u64);
    rng
}

/// Chooses exactly round(fraction · count) unusable rows of a split, and their kinds.
fn plan_invalid(seed: u64, split: Split, count: usize, fraction: f64) -> Vec<Option<Invalid>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Stream families 2 and 3 never collide with the per-image families 0 and 1.
    rng.set_stream((2 + split.id()) << 40);
    let k = ((fraction * count as f64).round() as usize).min(count);
    let chosen = rand::seq::index::sample(&mut rng, count, k).into_vec();
    let mut plan = vec![None; count];
    for i in chosen {
        plan[i] = Some(Invalid::sample(&mut rng));
    }
    plan
}

/// Everything about one image, derived from its own random stream.
pub(crate) struct Sample {
    /// AffectNet-like 40-hex-digit file stem.
    pub name: String,
    /// Square face box: x, y, side.
    pub face_box: (u32, u32, u32),
    /// 68 landmarks in image pixels.
    pub landmarks: [Pt; 68],
    /// Labels written and drawn.
    pub labels: RowLabels,
    /// The pixels.
    pub picture: Picture,
    /// JPEG quality to save it with.
    pub quality: u8,
}

/// What shapes one image besides its own random stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Folder layout (full images or crops).
    pub layout: Layout,
    /// Easy or hard faces.
    pub difficulty: Difficulty,
    /// Training or validation half: hard labels are skewed or balanced accordingly.
    pub split: Split,
    /// The configured JPEG quality (hard images draw theirs up to it).
    pub quality: u8,
}

/// Draws one image. The draw order is fixed, which is what makes the output reproducible.
pub(crate) fn make_sample(
    rng: &mut ChaCha8Rng,
    kind: Kind,
    sizing: Sizing,
    invalid: Option<Invalid>,
) -> Sample {
    let hard = kind.difficulty == Difficulty::Hard;
    let mut name_bytes = [0u8; 20];
    rng.fill(&mut name_bytes);
    let name = name_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let labels = if hard {
        // AffectNet's training set is skewed to Happy and Neutral; its validation
        // set, which users test on, is balanced over the eight expressions.
        let balance = match kind.split {
            Split::Train => Balance::Training,
            Split::Val => Balance::Balanced,
        };
        sample_hard(rng, balance, invalid)
    } else {
        RowLabels::sample(rng, invalid)
    };
    let (w, h, face_box, gray) = match kind.layout {
        Layout::Original => {
            let (lo, hi) = sizing.full;
            let w = rng.random_range(lo..=hi);
            let h = rng.random_range(lo..=hi);
            let gray = rng.random_bool(GRAY_SHARE);
            let side = ((rng.random_range(0.35..=0.9) * w.min(h) as f64).round() as u32)
                .clamp(1, w.min(h));
            let x = rng.random_range(0..=w - side);
            let y = rng.random_range(0..=h - side);
            (w, h, (x, y, side), gray)
        }
        Layout::Newer => {
            let (lo, hi) = sizing.crop;
            let side = rng.random_range(lo..=hi);
            (side, side, (0, 0, side), false)
        }
    };
    let (x, y, side) = face_box;
    let half = side as f32 / 2.0;
    let centre = (x as f32 + half, y as f32 + half);
    let (face, gray) = if hard {
        let face = Face::sample_hard(rng, labels.drawn, centre, half);
        (face, gray || rng.random_bool(HARD_GRAY_SHARE))
    } else {
        (Face::sample(rng, labels.drawn, centre, half), gray)
    };
    let picture = render(rng, w, h, labels.has_face.then_some(&face), gray, hard);
    let quality = if hard {
        rng.random_range(HARD_MIN_QUALITY.min(kind.quality)..=kind.quality)
    } else {
        kind.quality
    };
    Sample {
        name,
        face_box,
        landmarks: face.landmarks(),
        labels,
        picture,
        quality,
    }
}

pub(crate) fn write_jpeg(path: &Path, picture: &Picture, quality: u8) -> Result<(), SynthError> {
    let file = File::create(path).map_err(|e| SynthError::io(path, e))?;
    let mut out = BufWriter::new(file);
    let mut encoder = JpegEncoder::new_with_quality(&mut out, quality);
    match picture {
        Picture::Rgb(img) => encoder.encode_image(img),
        Picture::Gray(img) => encoder.encode_image(img),
    }
    .map_err(|source| SynthError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    out.flush().map_err(|e| SynthError::io(path, e))
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    fs::write(path, bytes).map_err(|e| SynthError::io(path, e))
}

pub(crate) fn create_dir(path: &Path) -> Result<(), SynthError> {
    fs::create_dir_all(path).map_err(|e| SynthError::io(path, e))
}

/// One image to make.
#[derive(Debug, Clone, Copy)]
struct Job {
    split: Split,
    index: usize,
    invalid: Option<Invalid>,
}

fn jobs(cfg: &SynthConfig) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(cfg.n + cfg.val_n);
    for (split, count) in [(Split::Train, cfg.n), (Split::Val, cfg.val_n)] {
        let plan = plan_invalid(cfg.seed, split, count, cfg.invalid_fraction);
        jobs.extend(plan.into_iter().enumerate().map(|(index, invalid)| Job {
            split,
            index,
            invalid,
        }));
    }
    jobs
}

/// Writes the original layout under `root`; returns the number of invalid rows.
fn write_original(
    root: &Path,
    cfg: &SynthConfig,
    sizing: Sizing,
    on_image: &(dyn Fn() + Sync),
) -> Result<usize, SynthError> {
    let images = root.join("Manually_Annotated_Images");
    let lists = root.join("Manually_Annotated_file_lists");
    create_dir(&lists)?;
    let total = cfg.n + cfg.val_n;
    for d in 1..=total.div_ceil(IMAGES_PER_DIR) {
        create_dir(&images.join(d.to_string()))?;
    }
    let jobs = jobs(cfg);
    let rows = jobs
        .par_iter()
        .map(|job| {
            let mut rng = image_rng(cfg.seed, job.split, job.index);
            let kind = Kind {
                layout: Layout::Original,
                difficulty: cfg.difficulty,
                split: job.split,
                quality: cfg.quality,
            };
            let s = make_sample(&mut rng, kind, sizing, job.invalid);
            let global = if job.split == Split::Train {
                job.index
            } else {
                cfg.n + job.index
            };
            let rel = format!("{}/{}.jpg", 1 + global / IMAGES_PER_DIR, s.name);
            write_jpeg(&images.join(&rel), &s.picture, s.quality)?;
            on_image();
            let (x, y, side) = s.face_box;
            Ok(format!(
                "{rel},{x},{y},{side},{side},{},{},{},{}\n",
                format_landmarks(&s.landmarks),
                s.labels.expression,
                format_label(s.labels.valence),
                format_label(s.labels.arousal),
            ))
        })
        .collect::<Result<Vec<String>, SynthError>>()?;
    let (train, val) = rows.split_at(cfg.n);
    write_csv(&lists.join("training.csv"), train)?;
    if cfg.val_n > 0 {
        write_csv(&lists.join("validation.csv"), val)?;
    }
    Ok(jobs.iter().filter(|j| j.invalid.is_some()).count())
}

fn write_csv(path: &Path, rows: &[String]) -> Result<(), SynthError> {
    let mut text =
        String::with_capacity(CSV_HEADER.len() + 1 + rows.iter().map(String::len).sum::<usize>());
    text.push_str(CSV_HEADER);
    text.push('\n');
    for row in rows {
        text.push_str(row);
    }
    write_file(path, text.as_bytes())
}

/// Writes the newer layout under `root`; returns the number of invalid rows.
fn write_newer(
    root: &Path,
    cfg: &SynthConfig,
    sizing: Sizing,
    on_image: &(dyn Fn() + Sync),
) -> Result<usize, SynthError> {
    let split_dir = |split: Split| {
        root.join(if split == Split::Train {
            "train_set"
        } else {
            "val_set"
        })
    };
    for (split, count) in [(Split::Train, cfg.n), (Split::Val, cfg.val_n)] {
        if count > 0 {
            create_dir(&split_dir(split).join("images"))?;
            create_dir(&split_dir(split).join("annotations"))?;
        }
    }
    let jobs = jobs(cfg);
    jobs.par_iter().try_for_each(|job| {
        let mut rng = image_rng(cfg.seed, job.split, job.index);
        let kind = Kind {
            layout: Layout::Newer,
            difficulty: cfg.difficulty,
            split: job.split,
            quality: cfg.quality,
        };
        let s = make_sample(&mut rng, kind, sizing, job.invalid);
        let dir = split_dir(job.split);
        let id = job.index;
        write_jpeg(
            &dir.join("images").join(format!("{id}.jpg")),
            &s.picture,
            s.quality,
        )?;
        let notes = dir.join("annotations");
        for (suffix, value) in [
            ("exp", s.labels.expression.to_string()),
            ("val", format_label(s.labels.valence)),
            ("aro", format_label(s.labels.arousal)),
            ("lnd", format_landmarks(&s.landmarks)),
        ] {
            let path = notes.join(format!("{id}_{suffix}.npy"));
            let bytes = string_scalar(&value).map_err(|e| SynthError::io(&path, e))?;
            write_file(&path, &bytes)?;
        }
        on_image();
        Ok::<(), SynthError>(())
    })?;
    Ok(jobs.iter().filter(|j| j.invalid.is_some()).count())
}

/// Fails unless `out` is absent or an empty folder.
fn check_output(out: &Path) -> Result<(), SynthError> {
    match fs::metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SynthError::io(out, e)),
        Ok(m) if !m.is_dir() => Err(SynthError::OutputExists(out.to_path_buf())),
        Ok(_) => {
            let mut entries = fs::read_dir(out).map_err(|e| SynthError::io(out, e))?;
            if entries.next().is_some() {
                Err(SynthError::OutputExists(out.to_path_buf()))
            } else {
                Ok(())
            }
        }
    }
}

/// Runs `write` on a fresh `<out>.partial` (valar-core's [`PartialDir`]: `out` is locked, a
/// leftover partial folder from a killed run is deleted, one that valar did not make is
/// refused) and renames it to `out` when it succeeds; on failure the partial folder is
/// removed. Fails with [`SynthError::OutputExists`] if `out` is not absent or empty.
pub(crate) fn build_atomically<T>(
    out: &Path,
    write: impl FnOnce(&Path) -> Result<T, SynthError>,
) -> Result<T, SynthError> {
    check_output(out)?;
    let partial = PartialDir::create(out, false)?;
    let written = match write(partial.path()) {
        Ok(n) => n,
        Err(e) => {
            partial.discard();
            return Err(e);
        }
    };
    partial.commit()?;
    Ok(written)
}

/// Writes a synthetic AffectNet-format dataset to `out`.
///
/// The dataset is built in the sibling folder `<out>.partial` (a leftover one from a
/// killed run is deleted first) and renamed to `out` only when complete, so a folder
/// named `out` is always a finished dataset. `on_image` is called once per image
/// written, from worker threads. Fails with [`SynthError::OutputExists`] if `out`
/// exists and is not an empty folder.
pub fn synthesize(
    out: &Path,
    cfg: &SynthConfig,
    on_image: &(dyn Fn() + Sync),
) -> Result<SynthSummary, SynthError> {
    synthesize_with(out, cfg, Sizing::AFFECTNET, on_image)
}

/// [`synthesize`] with explicit image sizes.
pub(crate) fn synthesize_with(
    out: &Path,
    cfg: &SynthConfig,
    sizing: Sizing,
    on_image: &(dyn Fn() + Sync),
) -> Result<SynthSummary, SynthError> {
    cfg.validate()?;
    let invalid_rows = build_atomically(out, |partial| match cfg.layout {
        Layout::Original => write_original(partial, cfg, sizing, on_image),
        Layout::Newer => write_newer(partial, cfg, sizing, on_image),
    })?;
    let root = out.to_path_buf();
    let (train_csv, val_csv, image_root) = match cfg.layout {
        Layout::Original => {
            let lists = root.join("Manually_Annotated_file_lists");
            (
                Some(lists.join("training.csv")),
                (cfg.val_n > 0).then(|| lists.join("validation.csv")),
                root.join("Manually_Annotated_Images"),
            )
        }
        Layout::Newer => (None, None, root.clone()),
    };
    Ok(SynthSummary {
        root,
        train_csv,
        val_csv,
        image_root,
        images: cfg.n + cfg.val_n,
        invalid_rows,
    })
}

#[cfg(test)]
mod tests;
