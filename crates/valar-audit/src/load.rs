use crate::features::{Measures, SIDE, measure, to_rgb64};
use crate::{AuditError, Target};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use valar_core::{
    ColorMode, FaceBox, Faces, PreparedDir, Progress, Split, read_faces, read_manifest,
};
use valar_face::{FaceSpec, decode_face, read_image, resolve_under_root};
use valar_prep::{Input, read_source};

/// One audited face: where it came from, its labels, and what was measured.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// 0 for the audited data, 1… for each `--against` folder.
    pub dataset: usize,
    /// Position of the face in its dataset's store.
    pub slot: usize,
    /// The table `row` refers to.
    pub source: String,
    /// The row in `source`.
    pub row: u64,
    /// The image path as the source names it.
    pub path: String,
    /// The split, for a prepared folder.
    pub split: Option<Split>,
    /// Expression code, if known.
    pub expression: Option<i32>,
    /// Valence label.
    pub valence: f64,
    /// Arousal label.
    pub arousal: f64,
    /// The region cropped, in source-image pixels.
    pub face_box: FaceBox,
    /// SHA-256 of the source file, hex.
    pub sha256: String,
    /// Whether the pixels carry colour information (not a gray prepared folder).
    pub colour_known: bool,
    /// The measures.
    pub measures: Measures,
}

/// Where a dataset's face pixels can be had again, for the contact sheets.
pub(crate) enum Store {
    /// Decode again from the image root (only the few faces a sheet shows).
    Source {
        /// The image root.
        root: PathBuf,
        /// How faces were decoded.
        spec: FaceSpec,
        /// Image path and box of each slot.
        rows: Vec<(String, Option<FaceBox>)>,
    },
    /// A prepared folder's faces.npy, in memory.
    Prepared(Faces),
}

impl Store {
    /// Face `slot` as interleaved RGB at the measuring size.
    pub fn rgb(&self, slot: usize) -> Option<Vec<u8>> {
        match self {
            Store::Source { root, spec, rows } => {
                let (path, face_box) = rows.get(slot)?;
                let file = resolve_under_root(root, path).ok()?;
                let bytes = read_image(&file, spec.max_pixels).ok()?;
                let face = decode_face(&bytes, *face_box, spec).ok()?;
                Some(to_rgb64(&face.pixels, 3, SIDE))
            }
            Store::Prepared(faces) => (slot < faces.n)
                .then(|| to_rgb64(faces.face(slot), faces.channels, faces.size as u32)),
        }
    }
}

/// A dataset read and measured.
pub(crate) struct Dataset {
    /// What it is, in words, for pages and the summary.
    pub name: String,
    /// Its faces.
    pub items: Vec<Item>,
    /// Where to get the pixels again.
    pub store: Store,
    /// Rows whose image could not be decoded: (row, path, why).
    pub unreadable: Vec<(u64, String, String)>,
    /// Rows `prepare` drops on their labels alone (−2, expressions 8–10), not audited.
    pub skipped: usize,
    /// Rows that did not parse.
    pub malformed: usize,
}

/// Reads and measures the audited target.
pub(crate) fn load_target(
    target: &Target,
    margin: f32,
    max_pixels: u64,
    progress: &dyn Progress,
) -> Result<Dataset, AuditError> {
    match target {
        Target::Source(input) => load_source(input, margin, max_pixels, progress),
        Target::Prepared(dir) => load_prepared(dir, 0, progress),
    }
}

fn load_source(
    input: &Input,
    margin: f32,
    max_pixels: u64,
    progress: &dyn Progress,
) -> Result<Dataset, AuditError> {
    progress.start("reading", 0);
    let source = read_source(input)?;
    progress.finish();
    let name = input.source().display().to_string();
    let spec = FaceSpec {
        size: SIDE,
        color: ColorMode::Rgb,
        margin,
        max_pixels,
        full_scale: false,
        align: None,
    };
    let (audited, skipped): (Vec<_>, Vec<_>) = source.rows.iter().partition(|r| {
        let no_label = r.valence == -2.0 || r.arousal == -2.0;
        !no_label && !r.expression.is_some_and(|e| (8..=10).contains(&e))
    });
    progress.start("faces", audited.len() as u64);
    let root = &source.image_root;
    let outcomes: Vec<Result<(Measures, FaceBox, String), String>> = audited
        .par_iter()
        .map(|r| {
            let out = (|| {
                let file = resolve_under_root(root, &r.path).map_err(|e| e.to_string())?;
                let bytes = read_image(&file, max_pixels).map_err(|e| e.to_string())?;
                let face = decode_face(&bytes, r.face_box, &spec).map_err(|e| e.to_string())?;
                let sha = format!("{:x}", Sha256::digest(&bytes));
                Ok((
                    measure(&to_rgb64(&face.pixels, 3, SIDE)),
                    face.face_box,
                    sha,
                ))
            })();
            progress.advance(1);
            out
        })
        .collect();
    progress.finish();
    let mut items = Vec::with_capacity(audited.len());
    let mut rows = Vec::with_capacity(audited.len());
    let mut unreadable = Vec::new();
    for (r, outcome) in audited.iter().zip(outcomes) {
        match outcome {
            Ok((measures, face_box, sha256)) => {
                items.push(Item {
                    dataset: 0,
                    slot: rows.len(),
                    source: name.clone(),
                    row: r.row,
                    path: r.path.clone(),
                    split: None,
                    expression: r.expression,
                    valence: r.valence,
                    arousal: r.arousal,
                    face_box,
                    sha256,
                    colour_known: true,
                    measures,
                });
                rows.push((r.path.clone(), r.face_box));
            }
            Err(why) => unreadable.push((r.row, r.path.clone(), why)),
        }
    }
    Ok(Dataset {
        name,
        items,
        store: Store::Source {
            root: root.clone(),
            spec,
            rows,
        },
        unreadable,
        skipped: skipped.len(),
        malformed: source.rejects.len(),
    })
}

/// Reads a prepared folder's manifest and faces and measures every face.
pub(crate) fn load_prepared(
    dir: &Path,
    dataset: usize,
    progress: &dyn Progress,
) -> Result<Dataset, AuditError> {
    let prepared = PreparedDir::new(dir);
    let manifest_path = prepared.manifest();
    let faces_path = prepared.faces();
    for needed in [&manifest_path, &faces_path] {
        if !needed.is_file() {
            return Err(AuditError::format(
                needed,
                "not found: a prepared folder (made by valar prepare) holds manifest.csv and faces.npy",
            ));
        }
    }
    let manifest = read_manifest(&manifest_path)?;
    let faces = read_faces(&faces_path)?;
    if faces.n != manifest.len() {
        return Err(AuditError::format(
            &faces_path,
            format!(
                "holds {} faces but manifest.csv has {} rows",
                faces.n,
                manifest.len()
            ),
        ));
    }
    let source = manifest_path.display().to_string();
    progress.start("faces", manifest.len() as u64);
    let measures: Vec<Measures> = (0..faces.n)
        .into_par_iter()
        .map(|i| {
            let m = measure(&to_rgb64(faces.face(i), faces.channels, faces.size as u32));
            progress.advance(1);
            m
        })
        .collect();
    progress.finish();
    let items = manifest
        .iter()
        .zip(measures)
        .map(|(m, measures)| Item {
            dataset,
            slot: m.index,
            source: source.clone(),
            row: m.index as u64,
            path: m.path.clone(),
            split: Some(m.split),
            expression: m.expression,
            valence: f64::from(m.valence),
            arousal: f64::from(m.arousal),
            face_box: m.face_box(),
            sha256: m.sha256.clone(),
            colour_known: faces.channels == 3,
            measures,
        })
        .collect();
    Ok(Dataset {
        name: dir.display().to_string(),
        items,
        store: Store::Prepared(faces),
        unreadable: Vec::new(),
        skipped: 0,
        malformed: 0,
    })
}
