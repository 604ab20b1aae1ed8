use crate::Reject;
use crate::stratify::Strata;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use valar_core::{FaceBox, Progress};
use valar_face::{Face, FaceError, FaceSpec, decode_face, resolve_under_root};

/// A face that made it into the dataset.
pub(crate) struct Chosen {
    /// Position in the shuffled table.
    pub pos: usize,
    /// Stratification cell.
    pub cell: usize,
    /// The preprocessed face.
    pub face: Face,
    /// SHA-256 of the source file, hex.
    pub sha256: String,
}

/// The outcome of the image phase.
pub(crate) struct Selection {
    /// Chosen faces, grouped by cell, in shuffled order within each.
    pub chosen: Vec<Chosen>,
    /// Rows whose image could not be used.
    pub rejects: Vec<Reject>,
    /// Image failures per cell.
    pub failures: Vec<usize>,
}

/// A processed row: its cell, its position, and its face with the file's hash (or why not).
type Outcome = (usize, usize, Result<(Face, String), FaceError>);

/// The per-row fields the image phase needs, pulled out of the table once.
struct Rows<'a> {
    row: Vec<u64>,
    path: Vec<&'a str>,
    face_box: Vec<Option<FaceBox>>,
}

impl<'a> Rows<'a> {
    fn new(table: &'a DataFrame) -> PolarsResult<Self> {
        let col = |n: &str| -> PolarsResult<Vec<Option<i64>>> {
            Ok(table.column(n)?.i64()?.iter().collect())
        };
        let (x, y, w, h) = (
            col("face_x")?,
            col("face_y")?,
            col("face_width")?,
            col("face_height")?,
        );
        let face_box = (0..table.height())
            .map(|i| match (x[i], y[i], w[i], h[i]) {
                (Some(x), Some(y), Some(width), Some(height)) => Some(FaceBox {
                    x,
                    y,
                    width,
                    height,
                }),
                _ => None,
            })
            .collect();
        Ok(Rows {
            row: table.column("row")?.u64()?.into_no_null_iter().collect(),
            path: table
                .column("path")?
                .str()?
                .iter()
                .map(|p| p.unwrap_or(""))
                .collect(),
            face_box,
        })
    }
}

/// Preprocesses the first `quota` rows of every cell in parallel. A row whose image
/// fails is rejected and the cell's next row (in shuffled order) takes its place, so a
/// cell falls short of its quota only when it runs out of rows. With no quota,
/// every row is processed.
pub(crate) fn select(
    strata: &Strata,
    quota: Option<usize>,
    root: &Path,
    spec: &FaceSpec,
    progress: &dyn Progress,
) -> PolarsResult<Selection> {
    let rows = Rows::new(&strata.table)?;
    let cells = strata.order.len();
    let want: Vec<usize> = strata
        .order
        .iter()
        .map(|o| quota.map_or(o.len(), |q| q.min(o.len())))
        .collect();
    let mut next = vec![0usize; cells];
    let mut chosen_per_cell: Vec<Vec<Chosen>> = (0..cells).map(|_| Vec::new()).collect();
    let mut failures = vec![0usize; cells];
    let mut rejects = Vec::new();
    let mut first_round = true;
    loop {
        // Draw as many rows as each cell still lacks.
        let mut batch = Vec::new();
        for c in 0..cells {
            let lacking = want[c] - chosen_per_cell[c].len();
            let end = (next[c] + lacking).min(strata.order[c].len());
            batch.extend(strata.order[c][next[c]..end].iter().map(|&pos| (c, pos)));
            next[c] = end;
        }
        if batch.is_empty() {
            break;
        }
        progress.start(
            if first_round {
                "faces"
            } else {
                "replacement faces"
            },
            batch.len() as u64,
        );
        first_round = false;
        let results: Vec<Outcome> = batch
            .par_iter()
            .map(|&(c, pos)| {
                let out = process(root, rows.path[pos], rows.face_box[pos], spec);
                progress.advance(1);
                (c, pos, out)
            })
            .collect();
        progress.finish();
        for (cell, pos, out) in results {
            match out {
                Ok((face, sha256)) => chosen_per_cell[cell].push(Chosen {
                    pos,
                    cell,
                    face,
                    sha256,
                }),
                Err(e) => {
                    failures[cell] += 1;
                    rejects.push(Reject {
                        row: rows.row[pos],
                        path: rows.path[pos].to_string(),
                        reason: e.reason(),
                        detail: image_detail(&e, rows.face_box[pos]),
                    });
                }
            }
        }
    }
    Ok(Selection {
        chosen: chosen_per_cell.into_iter().flatten().collect(),
        rejects,
        failures,
    })
}

fn image_detail(e: &FaceError, face_box: Option<FaceBox>) -> String {
    match (e, face_box) {
        (FaceError::BoxOutsideImage { .. } | FaceError::EmptyBox(_), _) | (_, None) => {
            e.to_string()
        }
        (_, Some(b)) => format!("{e} (box {b})"),
    }
}

/// Reads the file once, hashing and decoding the same bytes.
fn process(
    root: &Path,
    rel: &str,
    face_box: Option<FaceBox>,
    spec: &FaceSpec,
) -> Result<(Face, String), FaceError> {
    let path = resolve_under_root(root, rel)?;
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FaceError::Missing,
        _ => FaceError::Unreadable(e),
    })?;
    let face = decode_face(&bytes, face_box, spec)?;
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    Ok((face, sha256))
}
