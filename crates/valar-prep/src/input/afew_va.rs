use super::Loaded;
use super::frames::{Frames, Labels, Video, file_names, sorted_dirs};
use crate::PrepError;
use crate::rejects::reason;
use serde_json::Value;
use std::path::Path;
use valar_core::FaceBox;

/// Context added on each side of the landmarks' bounding box, as a share of its larger
/// side: the 68 points run from the brows to the chin, so the forehead and the sides of
/// the face lie outside them.
const LANDMARK_MARGIN: f64 = 0.15;

/// AFEW-VA's labels are integers in −10…10.
const LABEL_SCALE: f64 = 10.0;

/// Reads AFEW-VA: clip folders (`001`…`600`) each holding `<clip>.json` and its PNG frames.
/// The JSON's `frames` maps a frame number to `valence`, `arousal` (−10…10) and 68
/// `landmarks`; the face box is the landmarks' bounding square with a margin. A clip
/// belongs to its `actor` for the split, so one actor's clips stay together. With `align`
/// (`prepare --align`) a frame whose landmarks cannot place the eyes is a `no_landmarks`
/// reject saying why; without it the frame keeps its box and no eyes.
pub(super) fn load(dir: &Path, align: bool) -> Result<Loaded, PrepError> {
    if !dir.is_dir() {
        return Err(PrepError::Config(format!(
            "{} is not a folder: AFEW-VA is a folder of clip folders (001 … 600)",
            dir.display()
        )));
    }
    let clips = sorted_dirs(dir)?;
    let mut out = Frames::default();
    let mut with_json = 0;
    for clip in &clips {
        let json = dir.join(clip).join(format!("{clip}.json"));
        if !json.is_file() {
            continue;
        }
        with_json += 1;
        read_clip(dir, clip, &json, align, &mut out)?;
    }
    let found = format!(
        "{} holds {} folders, {with_json} of them with a <clip>.json",
        dir.display(),
        clips.len()
    );
    out.into_loaded(dir, dir, found)
}

/// Appends one clip's frames (or its rejects) to `out`.
fn read_clip(
    dir: &Path,
    clip: &str,
    json: &Path,
    align: bool,
    out: &mut Frames,
) -> Result<(), PrepError> {
    valar_core::check_utf8_text(json)?;
    let text = std::fs::read_to_string(json).map_err(PrepError::io(json))?;
    let clip_json = format!("{clip}/{clip}.json");
    let doc: Value = match serde_json::from_str(valar_core::strip_bom(&text)) {
        Ok(v) => v,
        Err(e) => {
            let detail = format!("{}: not JSON: {e}", json.display());
            out.reject(clip_json, (reason::MALFORMED, detail));
            return Ok(());
        }
    };
    let Some(frames) = doc.get("frames").and_then(Value::as_object) else {
        let detail = format!("{}: no `frames` object", json.display());
        out.reject(clip_json, (reason::MALFORMED, detail));
        return Ok(());
    };
    let video = clip_video(&doc, clip);
    let on_disk = file_names(&dir.join(clip));
    for (frame, key, value) in numbered(frames, json, &clip_json, out) {
        let file = format!("{key}.png");
        let path = format!("{clip}/{file}");
        let verdict = match parse_frame(value) {
            Err(why) => Err((
                reason::MALFORMED,
                format!("{} frame {key}: {why}", json.display()),
            )),
            Ok(_) if !on_disk.contains(&file) => Err((
                reason::MISSING_FRAME,
                format!(
                    "{} frame {key} has labels but {path} is not on disk",
                    json.display()
                ),
            )),
            Ok((_, Err(why))) if align => Err((
                reason::NO_LANDMARKS,
                format!("{} frame {key}: {why}", json.display()),
            )),
            Ok((labels, _)) => Ok(labels),
        };
        out.annotated(&video, frame, path, verdict);
    }
    Ok(())
}

/// The clip's video id (`video_id`, else the folder name) and its split group: its
/// `actor` when named, so that one actor's clips stay together, else the video.
fn clip_video(doc: &Value, clip: &str) -> Video {
    let id = doc
        .get("video_id")
        .and_then(Value::as_str)
        .unwrap_or(clip)
        .to_string();
    let group = match doc.get("actor").and_then(Value::as_str) {
        Some(actor) if !actor.trim().is_empty() => format!("actor:{}", actor.trim()),
        _ => id.clone(),
    };
    Video {
        id,
        group,
        given_split: None,
    }
}

/// The `frames` entries in frame-number order; a key that is not a number becomes a
/// reject of the clip's JSON.
fn numbered<'a>(
    frames: &'a serde_json::Map<String, Value>,
    json: &Path,
    clip_json: &str,
    out: &mut Frames,
) -> Vec<(u64, &'a String, &'a Value)> {
    let mut numbered: Vec<(u64, &String, &Value)> = Vec::new();
    for (key, value) in frames {
        match key.parse::<u64>() {
            Ok(n) => numbered.push((n, key, value)),
            Err(_) => out.reject(
                clip_json.to_string(),
                (
                    reason::MALFORMED,
                    format!("{}: frame key `{key}` is not a number", json.display()),
                ),
            ),
        }
    }
    numbered.sort_by_key(|(n, _, _)| *n);
    numbered
}

/// Valence and arousal divided by 10, and the box from the landmarks; beside them, the eyes
/// the landmarks place, or why they cannot.
fn parse_frame(value: &Value) -> Result<(Labels, Result<valar_face::Eyes, String>), String> {
    let label = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .map(|v| v / LABEL_SCALE)
            .ok_or_else(|| format!("`{name}` is missing or not a number"))
    };
    let (valence, arousal) = (label("valence")?, label("arousal")?);
    let points = value
        .get("landmarks")
        .and_then(Value::as_array)
        .ok_or("`landmarks` is missing")?;
    if points.len() != 68 {
        return Err(format!("{} landmarks, expected 68", points.len()));
    }
    let mut xy = Vec::with_capacity(68);
    for p in points {
        let pair = p.as_array().filter(|a| a.len() == 2);
        match pair.map(|a| (a[0].as_f64(), a[1].as_f64())) {
            Some((Some(x), Some(y))) if x.is_finite() && y.is_finite() => xy.push((x, y)),
            _ => return Err(format!("landmark {p} is not an [x, y] pair")),
        }
    }
    let points: Vec<[f64; 2]> = xy.iter().map(|&(x, y)| [x, y]).collect();
    let eyes = valar_face::Eyes::from_landmarks(&points);
    let labels = Labels {
        valence,
        arousal,
        face_box: Some(landmark_box(&xy)),
        // Whether or not prepare aligns: a clip whose eyes coincide still has its box.
        eyes: eyes.as_ref().ok().copied(),
    };
    Ok((labels, eyes))
}

/// The bounding square of `points`, grown by [`LANDMARK_MARGIN`] on each side.
fn landmark_box(points: &[(f64, f64)]) -> FaceBox {
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| {
        points.iter().map(pick).fold(init, f)
    };
    let (x0, x1) = (
        fold(f64::min, f64::INFINITY, |p| p.0),
        fold(f64::max, f64::NEG_INFINITY, |p| p.0),
    );
    let (y0, y1) = (
        fold(f64::min, f64::INFINITY, |p| p.1),
        fold(f64::max, f64::NEG_INFINITY, |p| p.1),
    );
    let side = (x1 - x0).max(y1 - y0) * (1.0 + 2.0 * LANDMARK_MARGIN);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    FaceBox {
        x: (cx - side / 2.0).round() as i64,
        y: (cy - side / 2.0).round() as i64,
        width: side.round() as i64,
        height: side.round() as i64,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_frames_divides_labels_and_boxes_the_landmarks() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("007");
        std::fs::create_dir_all(&clip).unwrap();
        // A square of landmarks 20 px across at (40, 30): the box is 26 px, centred.
        let mut lm: Vec<[f64; 2]> = vec![[40.0, 30.0]; 66];
        lm.push([60.0, 50.0]);
        lm.push([50.0, 40.0]);
        let frame =
            |v: i32, a: i32| serde_json::json!({"valence": v, "arousal": a, "landmarks": lm});
        let doc = serde_json::json!({
            "actor": "Jane Doe",
            "video_id": "007",
            "frames": {"00000": frame(5, -10), "00002": frame(0, 3), "00001": {"valence": 1}},
        });
        std::fs::write(clip.join("007.json"), doc.to_string()).unwrap();
        std::fs::write(clip.join("00000.png"), b"x").unwrap();
        std::fs::write(clip.join("00001.png"), b"x").unwrap();
        let l = load(dir.path(), false).unwrap();
        assert_eq!(l.rows_read, 3);
        assert_eq!(l.table.height(), 1);
        let col = |n: &str| l.table.column(n).unwrap().clone();
        assert_eq!(col("valence").f64().unwrap().get(0), Some(0.5));
        assert_eq!(col("arousal").f64().unwrap().get(0), Some(-1.0));
        assert_eq!(col("path").str().unwrap().get(0), Some("007/00000.png"));
        assert_eq!(col("group").str().unwrap().get(0), Some("actor:Jane Doe"));
        assert_eq!(col("face_x").i64().unwrap().get(0), Some(37));
        assert_eq!(col("face_width").i64().unwrap().get(0), Some(26));
        let reasons: Vec<(u64, &str)> = l.rejects.iter().map(|r| (r.row, r.reason)).collect();
        assert_eq!(
            reasons,
            [(2, reason::MALFORMED), (3, reason::MISSING_FRAME)]
        );
    }

    /// Under `--align`, a frame whose eye landmarks meet at one point is a `no_landmarks`
    /// reject naming the clip's JSON, the frame and why; without it the frame is kept.
    #[test]
    fn under_align_a_frame_whose_eyes_cannot_be_placed_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("003");
        std::fs::create_dir_all(&clip).unwrap();
        let mut level: Vec<[f64; 2]> = vec![[40.0, 40.0]; 68];
        for (i, p) in level.iter_mut().enumerate().take(48).skip(36) {
            *p = [if i < 42 { 30.0 } else { 50.0 }, 35.0];
        }
        let one_point: Vec<[f64; 2]> = vec![[40.0, 40.0]; 68];
        let frame =
            |lm: &Vec<[f64; 2]>| serde_json::json!({"valence": 1, "arousal": 2, "landmarks": lm});
        let doc =
            serde_json::json!({"frames": {"00000": frame(&level), "00001": frame(&one_point)}});
        std::fs::write(clip.join("003.json"), doc.to_string()).unwrap();
        std::fs::write(clip.join("00000.png"), b"x").unwrap();
        std::fs::write(clip.join("00001.png"), b"x").unwrap();

        let aligned = load(dir.path(), true).unwrap();
        assert_eq!(aligned.table.height(), 1);
        assert_eq!(aligned.rejects.len(), 1);
        let r = &aligned.rejects[0];
        assert_eq!(
            (r.path.as_str(), r.reason),
            ("003/00001.png", reason::NO_LANDMARKS)
        );
        assert!(
            r.detail.contains("003.json frame 00001")
                && r.detail
                    .contains("the two eyes' landmarks are at one point"),
            "{}",
            r.detail
        );
        let plain = load(dir.path(), false).unwrap();
        assert_eq!(plain.table.height(), 2);
        assert!(plain.rejects.is_empty());
    }

    #[test]
    fn a_file_that_is_not_a_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.json");
        std::fs::write(&f, "{}").unwrap();
        let err = load(&f, false).err().unwrap().to_string();
        assert!(err.contains("clip folders"), "{err}");
    }
}
