use super::Loaded;
use super::frames::{Frames, Labels, Refusal, Video, file_names};
use crate::PrepError;
use crate::rejects::reason;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Aff-Wild2's set folders and the split each one is.
const SETS: [(&str, &str); 2] = [("Train_Set", "train"), ("Validation_Set", "val")];

/// Aff-Wild2's mark for a frame without a usable label.
const INVALID: f64 = -5.0;

/// Reads Aff-Wild2's VA annotations: `<video>.txt` files, each a `valence,arousal`
/// header and one line per frame, line *i* labelling `<frames>/<video>/<i:05>.jpg`.
/// `annotations` is either `VA_Estimation_Challenge` (its `Train_Set/` and
/// `Validation_Set/` give the split, and a video in both is refused) or a folder of
/// annotation files. Frames marked −5 and frames missing on disk become rejects.
pub(super) fn load(annotations: &Path, frames: &Path) -> Result<Loaded, PrepError> {
    for (dir, what) in [(annotations, "annotation"), (frames, "frame")] {
        if !dir.is_dir() {
            return Err(PrepError::Config(format!(
                "{} is not a folder: Aff-Wild2 needs the {what} folder",
                dir.display()
            )));
        }
    }
    let mut sets: Vec<(PathBuf, Option<&'static str>)> = SETS
        .iter()
        .map(|(name, split)| (annotations.join(name), Some(*split)))
        .filter(|(d, _)| d.is_dir())
        .collect();
    if sets.is_empty() {
        sets.push((annotations.to_path_buf(), None));
    }
    // Every video, with the set folders it is annotated in.
    let mut videos: BTreeMap<String, Vec<(PathBuf, Option<&'static str>)>> = BTreeMap::new();
    for (dir, split) in &sets {
        for entry in std::fs::read_dir(dir).map_err(PrepError::io(dir))? {
            let path = entry.map_err(PrepError::io(dir))?.path();
            if path.extension().is_some_and(|e| e == "txt")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                videos
                    .entry(stem.to_string())
                    .or_default()
                    .push((path.clone(), *split));
            }
        }
    }
    if let Some((video, files)) = videos.iter().find(|(_, f)| f.len() > 1) {
        let listed: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        return Err(PrepError::VideoLeak {
            input: annotations.to_path_buf(),
            video: video.clone(),
            detail: format!("it is annotated in {}", listed.join(" and ")),
        });
    }
    let mut out = Frames::default();
    for (video, files) in &videos {
        let (file, split) = &files[0];
        read_video(video, file, *split, frames, &mut out)?;
    }
    let found = format!(
        "{} holds {} annotation files",
        annotations.display(),
        videos.len()
    );
    out.into_loaded(annotations, frames, found)
}

/// Two people in one video are annotated as `<video>_left` and `<video>_right`; both are
/// the same recording, so they share a side of the split.
fn recording(video: &str) -> &str {
    video
        .strip_suffix("_left")
        .or_else(|| video.strip_suffix("_right"))
        .unwrap_or(video)
}

/// Appends one video's frames (or its rejects) to `out`, and a reject for frames on disk
/// that its annotation file does not reach.
fn read_video(
    video: &str,
    file: &Path,
    split: Option<&'static str>,
    frames: &Path,
    out: &mut Frames,
) -> Result<(), PrepError> {
    let text = read_annotation(file)?;
    let on_disk = file_names(&frames.join(video));
    // Blank lines at the end are an editor's; one before a frame line leaves a frame
    // without a label, and is reported as such.
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let labelled = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let meta = Video {
        id: video.to_string(),
        group: recording(video).to_string(),
        given_split: split,
    };
    for (i, line) in lines[..labelled].iter().enumerate() {
        let frame = i as u64 + 1;
        let name = format!("{frame:05}.jpg");
        let path = format!("{video}/{name}");
        let at = format!("{} line {}", file.display(), i + 2);
        let verdict = line_verdict(&at, line, frame).and_then(|labels| {
            if on_disk.contains(&name) {
                Ok(labels)
            } else {
                Err((
                    reason::MISSING_FRAME,
                    format!("{at} labels frame {frame}, but {path} is not on disk"),
                ))
            }
        });
        out.annotated(&meta, frame, path, verdict);
    }
    if let Some(refusal) = unlabelled_frames(video, file, labelled, &on_disk) {
        out.reject(format!("{video}/"), refusal);
    }
    Ok(())
}

/// An annotation file's text, once its first line is checked to be the header
/// `valence,arousal`.
fn read_annotation(file: &Path) -> Result<String, PrepError> {
    valar_core::check_utf8_text(file)?;
    let text = std::fs::read_to_string(file).map_err(PrepError::io(file))?;
    let header = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches('\u{feff}');
    let has_header = header
        .replace(' ', "")
        .eq_ignore_ascii_case("valence,arousal");
    if !has_header {
        return Err(PrepError::Config(format!(
            "{}: the first line is `{header}`, expected the header `valence,arousal`",
            file.display()
        )));
    }
    Ok(text)
}

/// A frame line's labels, or why it has none (`at` names the file and line).
fn line_verdict(at: &str, line: &str, frame: u64) -> Result<Labels, Refusal> {
    match parse_line(line) {
        None if line.trim().is_empty() => Err((
            reason::MALFORMED,
            format!("{at} is blank: frame {frame} has no label"),
        )),
        None => Err((
            reason::MALFORMED,
            format!("{at}: `{line}` is not two numbers"),
        )),
        Some((v, a)) if v == INVALID || a == INVALID => Err((
            reason::INVALID_FRAME,
            format!("{at}: valence {v}, arousal {a}: −5 marks an invalid frame"),
        )),
        Some((valence, arousal)) => Ok(Labels {
            valence,
            arousal,
            face_box: None,
            eyes: None,
        }),
    }
}

/// Frames on disk past the file's last line have no label: a file cut short, or one with
/// only its header. Reported once per video, as a row of its own.
fn unlabelled_frames(
    video: &str,
    file: &Path,
    labelled: usize,
    on_disk: &HashSet<String>,
) -> Option<Refusal> {
    let mut beyond: Vec<u64> = on_disk
        .iter()
        .filter_map(|n| n.strip_suffix(".jpg")?.parse::<u64>().ok())
        .filter(|&n| n > labelled as u64)
        .collect();
    beyond.sort_unstable();
    if labelled == 0 {
        Some((
            reason::NO_FRAME_LINES,
            format!(
                "{} has its header and no frame lines; {video}/ holds {} frames",
                file.display(),
                beyond.len()
            ),
        ))
    } else if let (Some(first), Some(last)) = (beyond.first(), beyond.last()) {
        Some((
            reason::UNLABELLED_FRAMES,
            format!(
                "{} labels frames 1–{labelled}, but {} frames past its end are on disk \
                 ({first:05}.jpg to {last:05}.jpg): the file may be cut short",
                file.display(),
                beyond.len(),
            ),
        ))
    } else {
        None
    }
}

fn parse_line(line: &str) -> Option<(f64, f64)> {
    let (v, a) = line.trim().split_once(',')?;
    let num = |s: &str| s.trim().parse::<f64>().ok().filter(|x| x.is_finite());
    Some((num(v)?, num(a)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn drops_invalid_and_missing_frames_and_keeps_the_given_split() {
        let dir = tempfile::tempdir().unwrap();
        let ann = dir.path().join("VA_Estimation_Challenge");
        let frames = dir.path().join("cropped_aligned");
        write(
            &ann.join("Train_Set/12-24_left.txt"),
            "valence,arousal\n0.5,0.25\n-5,-5\n0.1,x\n-0.2,0.3\n",
        );
        write(
            &ann.join("Validation_Set/7.txt"),
            "valence,arousal\n0.0,0.0\n",
        );
        for f in [
            "12-24_left/00001.jpg",
            "12-24_left/00002.jpg",
            "7/00001.jpg",
        ] {
            write(&frames.join(f), "x");
        }
        let l = load(&ann, &frames).unwrap();
        assert_eq!(l.rows_read, 5);
        let col = |n: &str| -> Vec<String> {
            let c = l.table.column(n).unwrap().str().unwrap().clone();
            c.iter().flatten().map(String::from).collect()
        };
        assert_eq!(col("path"), ["12-24_left/00001.jpg", "7/00001.jpg"]);
        assert_eq!(col("given_split"), ["train", "val"]);
        assert_eq!(col("group"), ["12-24", "7"]);
        let reasons: Vec<(u64, &str)> = l.rejects.iter().map(|r| (r.row, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (2, reason::INVALID_FRAME),
                (3, reason::MALFORMED),
                (4, reason::MISSING_FRAME)
            ]
        );
        assert!(l.rejects[2].detail.contains("12-24_left/00004.jpg"));
    }

    #[test]
    fn short_files_header_only_files_and_blank_lines_are_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let ann = dir.path().join("ann");
        let frames = dir.path().join("frames");
        // Three frames on disk for each video.
        for video in ["short", "empty", "blank"] {
            for f in 1..=3 {
                write(&frames.join(format!("{video}/{f:05}.jpg")), "x");
            }
        }
        write(&ann.join("short.txt"), "valence,arousal\n0.1,0.2\n");
        write(&ann.join("empty.txt"), "valence,arousal\n");
        write(
            &ann.join("blank.txt"),
            "valence,arousal\n0.1,0.2\n\n0.3,0.4\n\n",
        );
        let l = load(&ann, &frames).unwrap();
        let rejects: Vec<(&str, &str)> = l
            .rejects
            .iter()
            .map(|r| (r.path.as_str(), r.reason))
            .collect();
        assert_eq!(
            rejects,
            [
                ("blank/00002.jpg", reason::MALFORMED),
                ("empty/", reason::NO_FRAME_LINES),
                ("short/", reason::UNLABELLED_FRAMES),
            ]
        );
        assert!(l.rejects[0].detail.contains("blank.txt line 3 is blank"));
        assert!(l.rejects[1].detail.contains("holds 3 frames"));
        assert!(l.rejects[2].detail.contains("00002.jpg to 00003.jpg"));
        // Kept: blank's frames 1 and 3, short's frame 1.
        assert_eq!(l.table.height(), 3);
    }

    #[test]
    fn a_video_in_both_sets_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let ann = dir.path().join("ann");
        write(&ann.join("Train_Set/42.txt"), "valence,arousal\n0,0\n");
        write(&ann.join("Validation_Set/42.txt"), "valence,arousal\n0,0\n");
        std::fs::create_dir_all(dir.path().join("frames")).unwrap();
        let err = load(&ann, &dir.path().join("frames"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`42`") && err.contains("two splits"), "{err}");
    }
}
