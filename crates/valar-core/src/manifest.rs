use crate::{CoreError, FaceBox, Split};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The columns of `manifest.csv`, in order.
///
/// `video` and `frame` came last, for video datasets; image datasets leave them empty,
/// and manifests written before them (without the two columns) still read.
pub const MANIFEST_COLUMNS: [&str; 14] = [
    "index",
    "path",
    "valence",
    "arousal",
    "expression",
    "interval",
    "split",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "sha256",
    "video",
    "frame",
];

/// The columns of a manifest written before `video` and `frame` existed.
const COLUMNS_BEFORE_VIDEO: usize = 12;

/// One row of `manifest.csv`: a face in `faces.npy` and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Position of the face in `faces.npy`.
    pub index: usize,
    /// The source image, as the input named it (relative to the image root).
    pub path: String,
    /// Valence label.
    pub valence: f32,
    /// Arousal label.
    pub arousal: f32,
    /// AffectNet expression code, if the input had one.
    pub expression: Option<i32>,
    /// The stratification interval (cell, for a 2-D grid) the face was drawn from.
    pub interval: i64,
    /// Train, validation or test.
    pub split: Split,
    /// Face box left edge in the source image, after clamping.
    pub face_x: i64,
    /// Face box top edge.
    pub face_y: i64,
    /// Face box width.
    pub face_width: i64,
    /// Face box height.
    pub face_height: i64,
    /// SHA-256 of the source file, hex.
    pub sha256: String,
    /// The video the frame belongs to, for video datasets.
    #[serde(default)]
    pub video: Option<String>,
    /// The frame's number within its video, for video datasets.
    #[serde(default)]
    pub frame: Option<u64>,
}

impl ManifestRow {
    /// The face box.
    pub fn face_box(&self) -> FaceBox {
        FaceBox {
            x: self.face_x,
            y: self.face_y,
            width: self.face_width,
            height: self.face_height,
        }
    }
}

/// Reads `manifest.csv`, checking the header and that indices run 0, 1, 2, …
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, CoreError> {
    crate::check_utf8_text(path)?;
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| CoreError::format(path, e.to_string()))?;
    let header = reader
        .headers()
        .map_err(|e| CoreError::format(path, e.to_string()))?
        .clone();
    let found: Vec<&str> = header.iter().collect();
    if found != MANIFEST_COLUMNS && found != MANIFEST_COLUMNS[..COLUMNS_BEFORE_VIDEO] {
        return Err(CoreError::format(
            path,
            format!(
                "unexpected columns: found [{}], expected [{}]",
                found.join(", "),
                MANIFEST_COLUMNS.join(", ")
            ),
        ));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.deserialize::<ManifestRow>().enumerate() {
        let row = record.map_err(|e| CoreError::format(path, format!("row {}: {e}", i + 1)))?;
        if row.index != i {
            return Err(CoreError::format(
                path,
                format!(
                    "row {}: index {} out of order (expected {i})",
                    i + 1,
                    row.index
                ),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_with_and_without_expression() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n0,a/1.jpg,0.5,-0.25,1,3,train,1,2,30,30,ab,,\n1,b.jpg,-1.0,1.0,,9,val,0,0,10,10,cd,,\n",
                MANIFEST_COLUMNS.join(",")
            ),
        )
        .unwrap();
        let rows = read_manifest(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].expression, Some(1));
        assert_eq!(rows[0].split, Split::Train);
        assert_eq!(rows[1].expression, None);
        assert_eq!(rows[1].split, Split::Val);
        assert_eq!(rows[0].video, None);
        assert_eq!(
            rows[0].face_box(),
            FaceBox {
                x: 1,
                y: 2,
                width: 30,
                height: 30
            }
        );
    }

    #[test]
    fn reads_video_columns_and_manifests_written_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n0,001/00003.png,0.5,-0.25,,3,train,1,2,30,30,ab,001,3\n",
                MANIFEST_COLUMNS.join(",")
            ),
        )
        .unwrap();
        let rows = read_manifest(&path).unwrap();
        assert_eq!(rows[0].video.as_deref(), Some("001"));
        assert_eq!(rows[0].frame, Some(3));
        std::fs::write(
            &path,
            format!(
                "{}\n0,a.jpg,0.5,-0.25,1,3,train,1,2,30,30,ab\n",
                MANIFEST_COLUMNS[..12].join(",")
            ),
        )
        .unwrap();
        let rows = read_manifest(&path).unwrap();
        assert_eq!((rows[0].video.clone(), rows[0].frame), (None, None));
    }

    #[test]
    fn wrong_header_lists_found_and_expected_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        std::fs::write(&path, "index,path\n0,a.jpg\n").unwrap();
        let err = read_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("found [index, path]"), "{err}");
        assert!(err.contains("sha256"), "{err}");
    }

    #[test]
    fn bad_row_names_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n0,a.jpg,x,0,1,3,train,1,2,30,30,ab,,\n",
                MANIFEST_COLUMNS.join(",")
            ),
        )
        .unwrap();
        let err = read_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("row 1"), "{err}");
    }
}
