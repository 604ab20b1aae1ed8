use super::Loaded;
use crate::{PrepError, Reject};
use polars::prelude::*;
use std::path::Path;
use valar_core::FaceBox;
use valar_face::Eyes;

/// One labelled video frame whose image is on disk.
pub(super) struct FrameRow {
    /// 1-based position among all frames the input annotates, for `rejects.csv`.
    pub row: u64,
    /// The image, relative to the image root.
    pub path: String,
    /// The face box, when the layout gives one (AFEW-VA's landmarks do).
    pub face_box: Option<FaceBox>,
    /// The eyes, when the layout gives landmarks (AFEW-VA does).
    pub eyes: Option<Eyes>,
    /// Valence in [-1, 1].
    pub valence: f64,
    /// Arousal in [-1, 1].
    pub arousal: f64,
    /// The video id.
    pub video: String,
    /// The frame number within the video.
    pub frame: u64,
    /// What must stay on one side of a split: the subject where the layout names one, else
    /// the video.
    pub group: String,
    /// The split the layout assigns (`train`, `val`), if it assigns one.
    pub given_split: Option<&'static str>,
}

/// What every frame of one video shares.
pub(super) struct Video {
    /// The video id.
    pub id: String,
    /// What must stay on one side of a split (see [`FrameRow::group`]).
    pub group: String,
    /// The split the layout assigns, if it assigns one.
    pub given_split: Option<&'static str>,
}

/// A frame's labels as its reader parsed them, and its face box where the layout gives one.
pub(super) struct Labels {
    pub valence: f64,
    pub arousal: f64,
    pub face_box: Option<FaceBox>,
    pub eyes: Option<Eyes>,
}

/// Why a frame is not kept: its reason in `rejects.csv` and the detail.
pub(super) type Refusal = (&'static str, String);

/// What a video reader found: the frames, the rejects, how many frames were annotated.
#[derive(Default)]
pub(super) struct Frames {
    pub rows: Vec<FrameRow>,
    pub rejects: Vec<Reject>,
    pub rows_read: usize,
}

impl Frames {
    /// Keeps a frame that passed its reader's checks, or records why it did not.
    pub(super) fn take(&mut self, verdict: Result<FrameRow, Reject>) {
        match verdict {
            Ok(row) => self.rows.push(row),
            Err(reject) => self.rejects.push(reject),
        }
    }

    /// Counts one more annotated row and records it as a reject at `path`.
    pub(super) fn reject(&mut self, path: String, (reason, detail): Refusal) {
        self.rows_read += 1;
        self.rejects.push(Reject {
            row: self.rows_read as u64,
            path,
            reason,
            detail,
        });
    }

    /// Counts frame `frame` of `video`, annotated at `path`: kept with its labels, or a
    /// reject. Its row is its place among every frame the input annotates.
    pub(super) fn annotated(
        &mut self,
        video: &Video,
        frame: u64,
        path: String,
        verdict: Result<Labels, Refusal>,
    ) {
        let labels = match verdict {
            Ok(labels) => labels,
            Err(refusal) => return self.reject(path, refusal),
        };
        self.rows_read += 1;
        self.rows.push(FrameRow {
            row: self.rows_read as u64,
            path,
            face_box: labels.face_box,
            eyes: labels.eyes,
            valence: labels.valence,
            arousal: labels.arousal,
            video: video.id.clone(),
            frame,
            group: video.group.clone(),
            given_split: video.given_split,
        });
    }

    /// The reader's table: the image columns every reader gives, then `video`, `frame`,
    /// `group` and `given_split`, which [`crate::video`] reads.
    pub(super) fn into_loaded(
        self,
        source: &Path,
        image_root: &Path,
        found: String,
    ) -> Result<Loaded, PrepError> {
        let r = &self.rows;
        let n = r.len();
        let boxed = |f: fn(&FaceBox) -> i64| -> Vec<Option<i64>> {
            r.iter().map(|x| x.face_box.as_ref().map(f)).collect()
        };
        let eyes: Vec<Option<Eyes>> = r.iter().map(|x| x.eyes).collect();
        let mut columns = vec![
            Column::new("row".into(), r.iter().map(|x| x.row).collect::<Vec<_>>()),
            Column::new(
                "path".into(),
                r.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(),
            ),
            Column::new("face_x".into(), boxed(|b| b.x)),
            Column::new("face_y".into(), boxed(|b| b.y)),
            Column::new("face_width".into(), boxed(|b| b.width)),
            Column::new("face_height".into(), boxed(|b| b.height)),
            Column::full_null("expression".into(), n, &DataType::Int32),
            Column::new(
                "valence".into(),
                r.iter().map(|x| x.valence).collect::<Vec<_>>(),
            ),
            Column::new(
                "arousal".into(),
                r.iter().map(|x| x.arousal).collect::<Vec<_>>(),
            ),
            Column::new(
                "video".into(),
                r.iter().map(|x| x.video.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "frame".into(),
                r.iter().map(|x| x.frame).collect::<Vec<_>>(),
            ),
            Column::new(
                "group".into(),
                r.iter().map(|x| x.group.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "given_split".into(),
                r.iter().map(|x| x.given_split).collect::<Vec<_>>(),
            ),
        ];
        columns.extend(super::eye_columns(&eyes));
        let table = DataFrame::new(n, columns).map_err(PrepError::table(source))?;
        Ok(Loaded {
            table,
            rejects: self.rejects,
            rows_read: self.rows_read,
            image_root: image_root.to_path_buf(),
            found,
        })
    }
}

/// The file names in `dir`, or none when it does not exist: one listing per video instead
/// of one `stat` per frame.
pub(super) fn file_names(dir: &Path) -> std::collections::HashSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// The sub-folders of `dir`, sorted by name.
pub(super) fn sorted_dirs(dir: &Path) -> Result<Vec<String>, PrepError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(PrepError::io(dir))? {
        let entry = entry.map_err(PrepError::io(dir))?;
        if entry.path().is_dir()
            && let Ok(name) = entry.file_name().into_string()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
