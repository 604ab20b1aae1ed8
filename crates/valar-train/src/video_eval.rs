//! Scoring video datasets as the field does: CCC per video and pooled over frames, the
//! ABAW score P_VA = (CCC_V + CCC_A) / 2, and predictions smoothed over a centred window of
//! frames within each video, the window chosen on the validation split by a sweep.

use crate::TrainError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use valar_core::IoError;
use valar_core::{Dimension, ManifestRow, Targets, ccc, write_atomic};

/// The windows the sweep tries, in frames (1: no smoothing).
pub const SMOOTHING_WINDOWS: [usize; 11] = [1, 3, 5, 7, 9, 11, 15, 21, 31, 45, 61];

/// How a video dataset's predictions are smoothed before they are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Smoothing {
    /// The window of [`SMOOTHING_WINDOWS`] with the best score on the validation split.
    #[default]
    Auto,
    /// A centred window of this many frames, odd (1: no smoothing).
    Window(usize),
}

impl FromStr for Smoothing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Smoothing::Auto),
            "none" => Ok(Smoothing::Window(1)),
            n => match n.parse::<usize>() {
                Ok(w) if w % 2 == 1 => Ok(Smoothing::Window(w)),
                _ => Err(format!(
                    "`{s}` is not a smoothing window: expected auto, none or an odd number of frames"
                )),
            },
        }
    }
}

/// One video's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoScore {
    /// The video id from `manifest.csv`.
    pub video: String,
    /// Frames scored.
    pub frames: usize,
    /// CCC per dimension predicted, of the raw predictions.
    pub raw: Vec<f64>,
    /// CCC per dimension predicted, after smoothing.
    pub smoothed: Vec<f64>,
}

/// One window of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    /// Frames in the window.
    pub window: usize,
    /// Pooled CCC per dimension predicted.
    pub ccc: Vec<f64>,
    /// Their mean (P_VA when both are predicted).
    pub score: f64,
}

/// The video part of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoEvaluation {
    /// The dimensions, in the order of every CCC list here.
    pub dims: Vec<Dimension>,
    /// The window applied.
    pub window: usize,
    /// The prepared folder whose validation split the window was chosen on; `None` when it
    /// was given, or when there were no validation rows to choose on (then no smoothing).
    pub chosen_on: Option<PathBuf>,
    /// The sweep (empty when the window was given).
    pub sweep: Vec<SweepRow>,
    /// CCC over all frames of the scored split, raw.
    pub pooled_raw: Vec<f64>,
    /// CCC over all frames, smoothed.
    pub pooled: Vec<f64>,
    /// Per video, by id.
    pub videos: Vec<VideoScore>,
    /// `<predictions>-videos.csv`: per-video CCC.
    pub videos_csv: PathBuf,
    /// `<predictions>-smoothing.csv`: the sweep.
    pub sweep_csv: PathBuf,
    /// `<predictions>-frames.csv`: per frame, video and frame number, truth, raw and smoothed
    /// predictions, in video and frame order.
    pub frames_csv: PathBuf,
}

impl VideoEvaluation {
    /// P_VA of the raw predictions, when both dimensions are predicted.
    pub fn p_va_raw(&self) -> Option<f64> {
        p_va(&self.dims, &self.pooled_raw)
    }

    /// P_VA after smoothing, when both dimensions are predicted.
    pub fn p_va(&self) -> Option<f64> {
        p_va(&self.dims, &self.pooled)
    }
}

fn p_va(dims: &[Dimension], ccc: &[f64]) -> Option<f64> {
    (dims.len() == 2).then(|| mean(ccc))
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

/// Videos and their rows in frame order, as positions into a list of scored rows.
pub(crate) type Groups = Vec<(String, Vec<usize>)>;

/// Scored rows grouped by video, each group in frame order: positions into the scored list.
pub(crate) fn video_groups(manifest: &[ManifestRow], rows: &[usize]) -> Groups {
    let mut by_video: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
    for (k, &r) in rows.iter().enumerate() {
        if let Some(v) = manifest[r].video.as_deref() {
            by_video
                .entry(v)
                .or_default()
                .push((manifest[r].frame.unwrap_or(0), k));
        }
    }
    by_video
        .into_iter()
        .map(|(v, mut f)| {
            f.sort();
            (v.to_string(), f.into_iter().map(|(_, k)| k).collect())
        })
        .collect()
}

/// A centred moving mean of `window` frames within each group (shorter at a video's ends),
/// per dimension; `pred` is `rows × dims`.
pub(crate) fn smooth(
    pred: &[f32],
    dims: usize,
    groups: &[(String, Vec<usize>)],
    window: usize,
) -> Vec<f32> {
    let mut out = pred.to_vec();
    let half = window / 2;
    for (_, g) in groups {
        for d in 0..dims {
            let series: Vec<f64> = g.iter().map(|&k| f64::from(pred[k * dims + d])).collect();
            for (i, &k) in g.iter().enumerate() {
                let lo = i.saturating_sub(half);
                let hi = (i + half + 1).min(series.len());
                out[k * dims + d] = mean(&series[lo..hi]) as f32;
            }
        }
    }
    out
}

/// Pooled CCC per dimension.
fn pooled(truth: &[f32], pred: &[f32], dims: usize, keep: Option<&[usize]>) -> Vec<f64> {
    (0..dims)
        .map(|d| {
            let pick = |x: &[f32]| -> Vec<f32> {
                match keep {
                    Some(k) => k.iter().map(|&i| x[i * dims + d]).collect(),
                    None => x.iter().skip(d).step_by(dims).copied().collect(),
                }
            };
            ccc(&pick(truth), &pick(pred))
        })
        .collect()
}

/// Pooled CCC of each window on one split.
pub(crate) fn sweep(
    truth: &[f32],
    pred: &[f32],
    dims: usize,
    groups: &[(String, Vec<usize>)],
) -> Vec<SweepRow> {
    SMOOTHING_WINDOWS
        .iter()
        .map(|&window| {
            let ccc = pooled(truth, &smooth(pred, dims, groups, window), dims, None);
            SweepRow {
                window,
                score: mean(&ccc),
                ccc,
            }
        })
        .collect()
}

/// The best window of a sweep; the smaller window on a tie.
fn best(sweep: &[SweepRow]) -> usize {
    sweep
        .iter()
        .fold(None::<&SweepRow>, |b, r| match b {
            Some(b) if b.score >= r.score || r.score.is_nan() => Some(b),
            _ => Some(r),
        })
        .map_or(1, |r| r.window)
}

/// Predictions and truth of a validation split, for choosing the window.
pub(crate) struct ValSet {
    /// Its rows by video, as positions into `truth` and `pred`.
    pub groups: Groups,
    pub truth: Vec<f32>,
    pub pred: Vec<f32>,
    /// The prepared folder it is the validation split of.
    pub source: PathBuf,
}

/// What [`score_videos`] scores.
pub(crate) struct Scored<'a> {
    pub manifest: &'a [ManifestRow],
    pub rows: &'a [usize],
    pub truth: &'a [f32],
    pub pred: &'a [f32],
    pub targets: Targets,
    /// The predictions file; the video files are named after it.
    pub predictions: &'a Path,
}

/// Scores a video dataset's split; `None` when the manifest names no videos. `val` gives
/// the validation split's predictions when the window is to be chosen on them. Nothing is
/// written: [`write_video_files`] does that.
pub(crate) fn score_videos(
    s: &Scored,
    smoothing: Smoothing,
    val: Option<ValSet>,
) -> Result<Option<VideoEvaluation>, TrainError> {
    let groups = video_groups(s.manifest, s.rows);
    if groups.is_empty() {
        return Ok(None);
    }
    let dims = s.targets.dimensions();
    let n = dims.len();
    let (window, chosen_on, sweep_rows) = match (smoothing, val) {
        (Smoothing::Window(w), _) => (w, None, Vec::new()),
        (Smoothing::Auto, Some(v)) => {
            let rows = sweep(&v.truth, &v.pred, n, &v.groups);
            (best(&rows), Some(v.source), rows)
        }
        (Smoothing::Auto, None) => (1, None, Vec::new()),
    };
    let smoothed = smooth(s.pred, n, &groups, window);
    let videos: Vec<VideoScore> = groups
        .iter()
        .map(|(video, g)| VideoScore {
            video: video.clone(),
            frames: g.len(),
            raw: pooled(s.truth, s.pred, n, Some(g)),
            smoothed: pooled(s.truth, &smoothed, n, Some(g)),
        })
        .collect();
    let [videos_csv, sweep_csv, frames_csv] = video_files(s.predictions);
    Ok(Some(VideoEvaluation {
        dims: dims.to_vec(),
        window,
        chosen_on,
        sweep: sweep_rows,
        pooled_raw: pooled(s.truth, s.pred, n, None),
        pooled: pooled(s.truth, &smoothed, n, None),
        videos,
        videos_csv,
        sweep_csv,
        frames_csv,
    }))
}

/// The files a video evaluation writes beside `predictions`: per video, the smoothing sweep,
/// per frame.
pub(crate) fn video_files(predictions: &Path) -> [PathBuf; 3] {
    let stem = predictions
        .file_stem()
        .map(|x| x.to_string_lossy().into_owned())
        .unwrap_or_else(|| "predictions".into());
    ["videos", "smoothing", "frames"]
        .map(|suffix| predictions.with_file_name(format!("{stem}-{suffix}.csv")))
}

/// Writes the files of a video evaluation of `s`; a failure names the file not written.
pub(crate) fn write_video_files(
    e: &VideoEvaluation,
    s: &Scored,
) -> Result<(), (PathBuf, TrainError)> {
    let groups = video_groups(s.manifest, s.rows);
    let smoothed = smooth(s.pred, e.dims.len(), &groups, e.window);
    write_videos_csv(e).map_err(|err| (e.videos_csv.clone(), err))?;
    write_sweep_csv(e).map_err(|err| (e.sweep_csv.clone(), err))?;
    write_frames_csv(e, s, &groups, &smoothed).map_err(|err| (e.frames_csv.clone(), err))
}

fn write_csv(path: &Path, header: Vec<String>, rows: Vec<Vec<String>>) -> Result<(), TrainError> {
    let err = |e: String| {
        TrainError::from(IoError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(|e| err(e.to_string()))?;
    for r in rows {
        w.write_record(&r).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    Ok(write_atomic(path, |out| out.write_all(&bytes))?)
}

fn dim_header(dims: &[Dimension], suffix: &str) -> Vec<String> {
    dims.iter()
        .map(|d| format!("{}_{suffix}", d.name()))
        .collect()
}

fn cells(x: &[f64]) -> Vec<String> {
    x.iter().map(|v| format!("{v:.6}")).collect()
}

fn write_videos_csv(e: &VideoEvaluation) -> Result<(), TrainError> {
    let mut header = vec!["video".to_string(), "frames".to_string()];
    header.extend(dim_header(&e.dims, "ccc_raw"));
    header.extend(dim_header(&e.dims, "ccc"));
    let rows = e
        .videos
        .iter()
        .map(|v| {
            let mut r = vec![v.video.clone(), v.frames.to_string()];
            r.extend(cells(&v.raw));
            r.extend(cells(&v.smoothed));
            r
        })
        .collect();
    write_csv(&e.videos_csv, header, rows)
}

fn write_sweep_csv(e: &VideoEvaluation) -> Result<(), TrainError> {
    let mut header = vec!["window".to_string()];
    header.extend(dim_header(&e.dims, "ccc"));
    header.extend(["score".to_string(), "chosen".to_string()]);
    let rows = e
        .sweep
        .iter()
        .map(|s| {
            let mut r = vec![s.window.to_string()];
            r.extend(cells(&s.ccc));
            r.push(format!("{:.6}", s.score));
            r.push((s.window == e.window).to_string());
            r
        })
        .collect();
    write_csv(&e.sweep_csv, header, rows)
}

fn write_frames_csv(
    e: &VideoEvaluation,
    s: &Scored,
    groups: &[(String, Vec<usize>)],
    smoothed: &[f32],
) -> Result<(), TrainError> {
    let n = e.dims.len();
    let mut header = vec![
        "index".to_string(),
        "video".to_string(),
        "frame".to_string(),
    ];
    for d in &e.dims {
        header.extend(["true", "pred", "smoothed"].map(|x| format!("{}_{x}", d.name())));
    }
    let mut rows = Vec::new();
    for (video, g) in groups {
        for &k in g {
            let row = &s.manifest[s.rows[k]];
            let mut r = vec![
                row.index.to_string(),
                video.clone(),
                row.frame.map(|f| f.to_string()).unwrap_or_default(),
            ];
            for d in 0..n {
                let i = k * n + d;
                r.extend([s.truth[i], s.pred[i], smoothed[i]].map(|x| x.to_string()));
            }
            rows.push(r);
        }
    }
    write_csv(&e.frames_csv, header, rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Four videos of 120 frames each with smooth truth, and predictions that are the truth
    /// plus independent frame-to-frame jitter, as a frame-wise model's are.
    fn jittered() -> (Vec<f32>, Vec<f32>, Groups) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (mut truth, mut pred, mut groups) = (vec![], vec![], vec![]);
        for v in 0..4 {
            let mut g = vec![];
            for t in 0..120 {
                let phase = v as f32;
                let tv = 0.6 * (t as f32 / 15.0 + phase).sin();
                let ta = 0.5 * (t as f32 / 25.0 + 2.0 * phase).cos();
                g.push(truth.len() / 2);
                truth.extend([tv, ta]);
                pred.extend([
                    tv + rng.random_range(-0.5..0.5),
                    ta + rng.random_range(-0.5..0.5),
                ]);
            }
            groups.push((format!("v{v}"), g));
        }
        (truth, pred, groups)
    }

    #[test]
    fn smoothing_jittered_predictions_raises_ccc_and_the_sweep_finds_a_window() {
        let (truth, pred, groups) = jittered();
        let raw = pooled(&truth, &pred, 2, None);
        let smoothed = pooled(&truth, &smooth(&pred, 2, &groups, 9), 2, None);
        eprintln!("pooled CCC raw {raw:.3?}, smoothed over 9 frames {smoothed:.3?}");
        for d in 0..2 {
            assert!(
                smoothed[d] > raw[d] + 0.05,
                "dim {d}: {} → {}",
                raw[d],
                smoothed[d]
            );
        }
        let rows = sweep(&truth, &pred, 2, &groups);
        assert_eq!(rows[0].window, 1);
        assert!((rows[0].score - mean(&raw)).abs() < 1e-12);
        let w = best(&rows);
        assert!(w > 1, "chose {w}");
        let chosen = rows.iter().find(|r| r.window == w).unwrap();
        assert!(rows.iter().all(|r| r.score <= chosen.score));
    }

    #[test]
    fn smoothing_stays_inside_each_video_in_frame_order() {
        // Two videos, listed interleaved: frames of one never leak into the other.
        let pred = [0.0f32, 10.0, 1.0, 20.0, 2.0, 30.0];
        let groups = vec![
            ("a".to_string(), vec![0, 2, 4]),
            ("b".to_string(), vec![5, 3, 1]),
        ];
        let s = smooth(&pred, 1, &groups, 3);
        assert_eq!(s, [0.5, 15.0, 1.0, 20.0, 1.5, 25.0]);
        assert_eq!(smooth(&pred, 1, &groups, 1), pred);
    }

    #[test]
    fn groups_follow_the_manifest_frame_numbers() {
        let row = |video: &str, frame: u64| ManifestRow {
            index: 0,
            path: String::new(),
            valence: 0.0,
            arousal: 0.0,
            expression: None,
            interval: 0,
            split: valar_core::Split::Val,
            face_x: 0,
            face_y: 0,
            face_width: 1,
            face_height: 1,
            sha256: String::new(),
            video: Some(video.into()),
            frame: Some(frame),
        };
        let m = [row("b", 9), row("a", 5), row("b", 2), row("a", 1)];
        let g = video_groups(&m, &[0, 1, 2, 3]);
        assert_eq!(g, vec![("a".into(), vec![3, 1]), ("b".into(), vec![2, 0])]);
    }

    #[test]
    fn window_parses_auto_none_and_odd_numbers_only() {
        assert_eq!("auto".parse::<Smoothing>().unwrap(), Smoothing::Auto);
        assert_eq!("none".parse::<Smoothing>().unwrap(), Smoothing::Window(1));
        assert_eq!("9".parse::<Smoothing>().unwrap(), Smoothing::Window(9));
        assert!("4".parse::<Smoothing>().unwrap_err().contains("odd"));
    }
}
