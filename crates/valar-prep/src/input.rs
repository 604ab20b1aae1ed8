//! Each reader turns its input into the same table of samples, plus the rows it
//! could not parse. Columns: `row` (u64), `path` (str), `face_x`, `face_y`,
//! `face_width`, `face_height` (i64, null without a box), `expression` (i32, null
//! when unknown), `valence`, `arousal` (f64).

/// AFEW-VA: clip folders of PNG frames with one JSON of labels and landmarks each.
mod afew_va;
/// Aff-Wild2's VA track: one annotation text file per video.
mod aff_wild2;
/// Reading CSVs with polars and checking every row's fields.
mod csv;
/// The table of video frames that the video readers share.
mod frames;
/// AffectNet's original CSV split into lines and fields by hand, skipping the landmarks.
mod lines;
/// AffectNet's newer release: one image and four `.npy` files per sample.
mod newer;
/// One row's fields parsed into the sample table, for both CSV readers.
mod rows;
/// A generic CSV of video frames: video, frame, path, labels, optional box and split.
mod video_csv;

use crate::{Input, PrepError, Reject};
use polars::prelude::DataFrame;
use std::path::PathBuf;

/// A parsed input.
pub(crate) struct Loaded {
    /// Rows that parsed, in input order.
    pub table: DataFrame,
    /// Rows that did not.
    pub rejects: Vec<Reject>,
    /// Data rows read, parsed or not.
    pub rows_read: usize,
    /// What relative image paths are joined to.
    pub image_root: PathBuf,
    /// What the input held, in words ("… holds 0 files, 3 folders"), for an error
    /// when nothing in it is usable.
    pub found: String,
}

/// Reads any input kind.
pub(crate) fn load(input: &Input) -> Result<Loaded, PrepError> {
    match input {
        Input::AffectNet { csv, images } => csv::load_affectnet(csv, images),
        Input::Generic { csv, images } => csv::load_generic(csv, images),
        Input::AffectNetNewer { dir } => newer::load(dir),
        Input::AfewVa { dir } => afew_va::load(dir),
        Input::AffWild2 {
            annotations,
            frames,
        } => aff_wild2::load(annotations, frames),
        Input::VideoCsv { csv, images } => video_csv::load(csv, images),
    }
}
