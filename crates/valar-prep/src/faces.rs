use crate::stratify::Strata;
use crate::{PrepError, Reject};
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use valar_core::{FaceBox, Progress};
use valar_face::{
    Eyes, Face, FaceError, FaceSpec, decode_aligned, decode_face, read_image, resolve_under_root,
};

/// A face that made it into the dataset. Its pixels went to the sink as it came.
pub(crate) struct Chosen {
    /// Position in the shuffled table.
    pub pos: usize,
    /// Stratification cell.
    pub cell: usize,
    /// The region cropped, in full-image pixels.
    pub face_box: FaceBox,
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

/// Rows decoded at once: enough to keep every core busy, few enough that the faces
/// waiting to be written stay a few megabytes.
const CHUNK: usize = 1024;

/// A processed row: its position, and its face with the file's hash (or why not).
type Outcome = (usize, Result<(Face, String), FaceError>);

/// The per-row fields the image phase needs, pulled out of the table once.
struct Rows<'a> {
    row: Vec<u64>,
    path: Vec<&'a str>,
    face_box: Vec<Option<FaceBox>>,
    eyes: Vec<Option<Eyes>>,
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
            eyes: crate::input::eyes_of(table)?,
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

/// Preprocesses the first `quota` rows of every cell in parallel, handing each face
/// to `sink` in dataset order as soon as its turn comes. A row whose image fails is
/// rejected and the cell's next row (in shuffled order) takes its place, so a cell
/// falls short of its quota only when it runs out of rows. With no quota, every row
/// is processed. The chosen faces are each cell's first `quota` usable rows in
/// shuffled order, however the work is cut into chunks. With `owned`, only those
/// cells are processed (a shard's share).
pub(crate) fn select(
    strata: &Strata,
    quota: Option<usize>,
    owned: Option<&[bool]>,
    root: &Path,
    spec: &FaceSpec,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(&Chosen, &Face) -> Result<(), PrepError>,
) -> Result<Selection, PrepError> {
    let rows = Rows::new(&strata.table).map_err(PrepError::table(root))?;
    let cells = strata.order.len();
    let mut want = strata.wanted(quota);
    if let Some(owned) = owned {
        // A shard leaves the cells of other shards alone.
        for (w, _) in want.iter_mut().zip(owned).filter(|(_, mine)| !**mine) {
            *w = 0;
        }
    }
    let mut chosen = Vec::with_capacity(want.iter().sum());
    let mut failures = vec![0usize; cells];
    let mut rejects = Vec::new();
    // The bar counts faces kept; a failed image is replaced, so it does not count.
    progress.start("faces", want.iter().sum::<usize>() as u64);
    for (cell, order) in strata.order.iter().enumerate() {
        let (mut next, mut kept) = (0, 0);
        while kept < want[cell] && next < order.len() {
            // Never more rows than the cell still lacks: the chunk cannot overshoot.
            let end = (next + (want[cell] - kept).min(CHUNK)).min(order.len());
            let results: Vec<Outcome> = order[next..end]
                .par_iter()
                .map(|&pos| {
                    let at = (rows.face_box[pos], rows.eyes[pos]);
                    (pos, process(root, rows.path[pos], at, spec))
                })
                .collect();
            next = end;
            for (pos, out) in results {
                match out {
                    Ok((face, sha256)) => {
                        let c = Chosen {
                            pos,
                            cell,
                            face_box: face.face_box,
                            sha256,
                        };
                        sink(&c, &face)?;
                        chosen.push(c);
                        kept += 1;
                        progress.advance(1);
                    }
                    Err(e) => {
                        failures[cell] += 1;
                        rejects.push(Reject {
                            row: rows.row[pos],
                            path: rows.path[pos].to_string(),
                            reason: e.reason(),
                            detail: image_detail(&e, rows.path[pos], rows.face_box[pos]),
                        });
                    }
                }
            }
        }
    }
    progress.finish();
    Ok(Selection {
        chosen,
        rejects,
        failures,
    })
}

fn image_detail(e: &FaceError, path: &str, face_box: Option<FaceBox>) -> String {
    if matches!(e, FaceError::Missing) && path.contains('\\') {
        return format!(
            "{e}, neither as written nor with `/` in place of its backslashes \
             (a CSV written on Windows); check the image root"
        );
    }
    match (e, face_box) {
        // The box says nothing about a file that is not an image to begin with.
        (
            FaceError::BoxOutsideImage { .. }
            | FaceError::EmptyBox(_)
            | FaceError::NotRegular(_)
            | FaceError::TooLarge(_),
            _,
        )
        | (_, None) => e.to_string(),
        (_, Some(b)) => format!("{e} (box {b})"),
    }
}

/// Reads the file once, hashing and decoding the same bytes.
/// With `spec.align`, the face is cut by its eyes, and a row without them is refused
/// before its file is read.
fn process(
    root: &Path,
    rel: &str,
    (face_box, eyes): (Option<FaceBox>, Option<Eyes>),
    spec: &FaceSpec,
) -> Result<(Face, String), FaceError> {
    if spec.align.is_some() && eyes.is_none() {
        return Err(FaceError::NoLandmarks);
    }
    let path = resolve_under_root(root, rel)?;
    let bytes = read_image(&path, spec.max_pixels)?;
    let face = match eyes.filter(|_| spec.align.is_some()) {
        Some(eyes) => decode_aligned(&bytes, eyes, spec)?,
        None => decode_face(&bytes, face_box, spec)?,
    };
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    Ok((face, sha256))
}
