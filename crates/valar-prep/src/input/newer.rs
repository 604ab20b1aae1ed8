use super::Loaded;
use crate::rejects::reason;
use crate::{PrepError, Reject};
use polars::prelude::*;
use rayon::prelude::*;
use std::path::Path;
use valar_core::{NpyScalar, read_npy_scalar};
use valar_face::Eyes;

/// Reads a `train_set` or `val_set` folder of AffectNet's newer release:
/// `images/<id>.jpg` with `annotations/<id>_{exp,val,aro}.npy`, each a NumPy
/// string scalar (or a number). The image is the face, so there is no box. With
/// `landmarks`, the eyes come from `annotations/<id>_lnd.npy` (68 x, y pairs).
pub(super) fn load(dir: &Path, landmarks: bool) -> Result<Loaded, PrepError> {
    let images = dir.join("images");
    let annotations = dir.join("annotations");
    for needed in [&images, &annotations] {
        if !needed.is_dir() {
            return Err(PrepError::Config(format!(
                "{} is not a folder: AffectNet's newer release has images/ and annotations/ inside each set folder",
                needed.display()
            )));
        }
    }
    let listing = list_images(&images)?;
    let mut files = listing.files;
    // Numeric ids in numeric order, so row numbers are stable and readable.
    files.sort_by(|a, b| {
        let key = |s: &str| stem(s).parse::<u64>().ok();
        key(a).cmp(&key(b)).then_with(|| a.cmp(b))
    });
    let parsed: Vec<Result<(Labels, Option<Eyes>), Refusal>> = files
        .par_iter()
        .map(|file| {
            let labels =
                read_labels(&annotations, stem(file)).map_err(|e| (reason::MALFORMED, e))?;
            let eyes = if landmarks {
                Some(read_eyes(&annotations, stem(file)).map_err(|e| (reason::NO_LANDMARKS, e))?)
            } else {
                None
            };
            Ok((labels, eyes))
        })
        .collect();

    let mut rejects = Vec::new();
    let (mut rows, mut paths, mut vs, mut as_, mut exprs, mut eyes) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, (file, labels)) in files.iter().zip(parsed).enumerate() {
        let row = i as u64 + 1;
        let path = format!("images/{file}");
        match labels {
            Ok(((v, a, e), eye)) => {
                rows.push(row);
                paths.push(path);
                vs.push(v);
                as_.push(a);
                exprs.push(e);
                eyes.push(eye);
            }
            Err((reason, detail)) => rejects.push(Reject {
                row,
                path,
                reason,
                detail,
            }),
        }
    }
    let n = rows.len();
    let none = || Column::full_null("".into(), n, &DataType::Int64);
    let mut columns = vec![
        Column::new("row".into(), rows),
        Column::new("path".into(), paths),
        none().with_name("face_x".into()),
        none().with_name("face_y".into()),
        none().with_name("face_width".into()),
        none().with_name("face_height".into()),
        Column::new("expression".into(), exprs),
        Column::new("valence".into(), vs),
        Column::new("arousal".into(), as_),
    ];
    columns.extend(super::eye_columns(&eyes));
    let table = DataFrame::new(n, columns).map_err(PrepError::table(dir))?;
    Ok(Loaded {
        table,
        rejects,
        rows_read: files.len(),
        image_root: dir.to_path_buf(),
        found: listing.found,
    })
}

/// The entries of `images/` other than folders (symbolic links followed), and what
/// else was there.
struct Listing {
    files: Vec<String>,
    /// What the folder held, for an error when no file is usable.
    found: String,
}

fn list_images(images: &Path) -> Result<Listing, PrepError> {
    let (mut files, mut folders, mut broken, mut unnamed) = (Vec::new(), 0, 0, 0);
    for entry in std::fs::read_dir(images).map_err(PrepError::io(images))? {
        let entry = entry.map_err(PrepError::io(images))?;
        // `DirEntry::file_type` describes a symbolic link itself; a dataset laid out
        // as links to the real files must read as those files.
        let kind = match entry.file_type() {
            Ok(t) if t.is_symlink() => std::fs::metadata(entry.path()).map(|m| m.file_type()),
            other => other,
        };
        // Not only regular files: a FIFO or a device named like an image is a row that
        // the image reader rejects with its reason, rather than a row lost without a word.
        match kind {
            Ok(t) if t.is_dir() => folders += 1,
            Ok(_) => match entry.file_name().into_string() {
                Ok(name) => files.push(name),
                Err(_) => unnamed += 1,
            },
            Err(_) => broken += 1,
        }
    }
    let mut found = format!("{} holds {} files", images.display(), files.len());
    for (n, what) in [
        (folders, "folders"),
        (broken, "broken links"),
        (unnamed, "files whose names are not UTF-8"),
    ] {
        if n > 0 {
            found.push_str(&format!(", {n} {what}"));
        }
    }
    Ok(Listing { files, found })
}

fn stem(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(s, _)| s)
}

/// Why a sample is not kept: its reason in `rejects.csv` and the detail.
type Refusal = (&'static str, String);

/// Valence, arousal and expression of one sample.
type Labels = (f64, f64, Option<i32>);

/// The eyes of `<id>_lnd.npy`: 136 numbers (a float array, as AffectNet stores them, or a
/// string of them).
fn read_eyes(annotations: &Path, id: &str) -> Result<Eyes, String> {
    let path = annotations.join(format!("{id}_lnd.npy"));
    if !path.exists() {
        return Err(format!(
            "annotation {} is missing: --align needs the 68 landmarks",
            path.display()
        ));
    }
    Eyes::read_npy(&path)
}

fn read_labels(annotations: &Path, id: &str) -> Result<Labels, String> {
    // A string scalar (AffectNet's own files) is parsed; a number (the same labels
    // saved again by NumPy, as float64 say) is taken as it is.
    let label = |suffix: &str, what: &str, usable: fn(f64) -> bool| -> Result<f64, String> {
        let path = annotations.join(format!("{id}_{suffix}.npy"));
        if !path.exists() {
            return Err(format!("annotation {} is missing", path.display()));
        }
        let value = match read_npy_scalar(&path).map_err(|e| e.to_string())? {
            NpyScalar::Number(v) => v,
            NpyScalar::Text(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{id}_{suffix}.npy holds `{s}`, not {what}"))?,
        };
        if usable(value) {
            Ok(value)
        } else {
            Err(format!("{id}_{suffix}.npy holds `{value}`, not {what}"))
        }
    };
    let v = label("val", "a number", f64::is_finite)?;
    let a = label("aro", "a number", f64::is_finite)?;
    let e = label("exp", "an expression code", |e| {
        e.fract() == 0.0 && e.abs() <= f64::from(i32::MAX)
    })?;
    Ok((v, a, Some(e as i32)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_string_scalar_labels_in_numeric_id_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::create_dir_all(dir.path().join("annotations")).unwrap();
        for (id, v, a, e) in [
            (10, "-0.176846", "0.5", "3"),
            (2, "0.25", "-0.5", "1"),
            (7, "oops", "0.1", "0"),
        ] {
            std::fs::write(dir.path().join(format!("images/{id}.jpg")), b"x").unwrap();
            for (suffix, value) in [("val", v), ("aro", a), ("exp", e)] {
                let p = dir.path().join(format!("annotations/{id}_{suffix}.npy"));
                std::fs::write(p, valar_core::npy_string_scalar(value).unwrap()).unwrap();
            }
        }
        std::fs::write(dir.path().join("images/11.jpg"), b"x").unwrap();
        let l = load(dir.path(), false).unwrap();
        assert_eq!(l.rows_read, 4);
        let paths: Vec<&str> = l
            .table
            .column("path")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(paths, ["images/2.jpg", "images/10.jpg"]);
        let v: Vec<f64> = l
            .table
            .column("valence")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(v, [0.25, -0.176846]);
        let e: Vec<i32> = l
            .table
            .column("expression")
            .unwrap()
            .i32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(e, [1, 3]);
        let rejected: Vec<(u64, &str)> =
            l.rejects.iter().map(|r| (r.row, r.path.as_str())).collect();
        assert_eq!(rejected, [(2, "images/7.jpg"), (4, "images/11.jpg")]);
        assert!(l.rejects[0].detail.contains("oops"));
        assert!(l.rejects[1].detail.contains("missing"));
    }

    #[test]
    fn a_folder_without_annotations_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let err = load(dir.path(), false).err().unwrap().to_string();
        assert!(err.contains("annotations"), "{err}");
    }
}
