//! Figures of a video evaluation: the spread of per-video CCC, and predicted against true
//! valence and arousal over time for a few videos. They read the files `valar evaluate`
//! writes beside its predictions for a video dataset (`<stem>-videos.csv`,
//! `<stem>-frames.csv`).

use crate::ReportError;
use crate::canvas::{
    Area, Drawn, FULL, GREY, INK, NOTE, PANEL_TITLE, bold, dim_colour, dim_title, figure_chart,
    font, legend_line, num, styled_legend, styled_mesh, titled, write_png,
};
use crate::markdown::Figure;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use valar_core::Dimension;

/// The per-video CCC figure.
pub(crate) const VIDEO_CCC: &str = "video_ccc.png";
/// The figure of predictions over time.
pub(crate) const VIDEO_TRACES: &str = "video_traces.png";

/// Videos drawn over time: the worst, the median and the best by mean CCC.
const TRACED: usize = 3;

/// A frame over time: its number, and per dimension (true, raw, smoothed).
type FramePoint = (f64, Vec<(f64, f64, f64)>);

/// One video's per-video scores.
struct VideoRow {
    video: String,
    frames: usize,
    /// Smoothed CCC per dimension of [`VideoFiles::dims`].
    ccc: Vec<f64>,
}

/// A video evaluation as read back.
pub(crate) struct VideoFiles {
    /// The per-video file.
    pub videos_csv: PathBuf,
    dims: Vec<Dimension>,
    videos: Vec<VideoRow>,
    /// Per video, its frames in order: (frame, per dimension (true, raw, smoothed)).
    frames: BTreeMap<String, Vec<FramePoint>>,
}

/// The video files beside `predictions`, if `valar evaluate` wrote them.
pub(crate) fn find(predictions: &Path) -> Option<(PathBuf, PathBuf)> {
    let stem = predictions.file_stem()?.to_string_lossy().into_owned();
    let beside = |s: &str| predictions.with_file_name(format!("{stem}-{s}.csv"));
    let (videos, frames) = (beside("videos"), beside("frames"));
    (videos.is_file() && frames.is_file()).then_some((videos, frames))
}

fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), ReportError> {
    let mut r =
        csv::Reader::from_path(path).map_err(|e| ReportError::format(path, e.to_string()))?;
    let header = r
        .headers()
        .map_err(|e| ReportError::format(path, e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| ReportError::format(path, format!("row {}: {e}", i + 1)))?;
        rows.push(rec.iter().map(String::from).collect());
    }
    Ok((header, rows))
}

/// Reads the per-video and per-frame files.
pub(crate) fn read(videos_csv: &Path, frames_csv: &Path) -> Result<VideoFiles, ReportError> {
    let (vh, vrows) = read_table(videos_csv)?;
    let dims: Vec<Dimension> = Dimension::ALL
        .into_iter()
        .filter(|d| vh.iter().any(|h| *h == format!("{}_ccc", d.name())))
        .collect();
    let col = |h: &[String], name: &str, path: &Path| {
        h.iter()
            .position(|x| x == name)
            .ok_or_else(|| ReportError::format(path, format!("no `{name}` column")))
    };
    let number = |s: &str, path: &Path, row: usize| {
        s.parse::<f64>()
            .map_err(|_| ReportError::format(path, format!("row {row}: `{s}` is not a number")))
    };
    let mut videos = Vec::new();
    let (vc, fc) = (
        col(&vh, "video", videos_csv)?,
        col(&vh, "frames", videos_csv)?,
    );
    let ccc_cols: Vec<usize> = dims
        .iter()
        .map(|d| col(&vh, &format!("{}_ccc", d.name()), videos_csv))
        .collect::<Result<_, _>>()?;
    for (i, r) in vrows.iter().enumerate() {
        videos.push(VideoRow {
            video: r[vc].clone(),
            frames: number(&r[fc], videos_csv, i + 1)? as usize,
            ccc: ccc_cols
                .iter()
                .map(|&c| number(&r[c], videos_csv, i + 1))
                .collect::<Result<_, _>>()?,
        });
    }
    let (fh, frows) = read_table(frames_csv)?;
    let (video_col, frame_col) = (
        col(&fh, "video", frames_csv)?,
        col(&fh, "frame", frames_csv)?,
    );
    let triple: Vec<[usize; 3]> = dims
        .iter()
        .map(|d| {
            let c = |x: &str| col(&fh, &format!("{}_{x}", d.name()), frames_csv);
            Ok([c("true")?, c("pred")?, c("smoothed")?])
        })
        .collect::<Result<_, ReportError>>()?;
    let mut frames: BTreeMap<String, Vec<FramePoint>> = BTreeMap::new();
    for (i, r) in frows.iter().enumerate() {
        let n = |c: usize| number(&r[c], frames_csv, i + 1);
        let values = triple
            .iter()
            .map(|[t, p, s]| Ok((n(*t)?, n(*p)?, n(*s)?)))
            .collect::<Result<_, ReportError>>()?;
        frames
            .entry(r[video_col].clone())
            .or_default()
            .push((n(frame_col)?, values));
    }
    Ok(VideoFiles {
        videos_csv: videos_csv.to_path_buf(),
        dims,
        videos,
        frames,
    })
}

/// A deterministic spread in [-1, 1] for the `i`-th point of a strip, so points with
/// equal CCC stay apart and the figure is the same on every run.
fn spread(i: usize) -> f64 {
    // The golden-ratio sequence fills the interval evenly.
    ((i as f64 * 0.618_033_988_75).fract() - 0.5) * 2.0
}

fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    x.get(x.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One point per video per dimension along a CCC axis, with each dimension's median.
fn ccc_strip(v: &VideoFiles, path: &Path) -> Result<(), ReportError> {
    let rows = v.dims.len() as f64;
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let mut chart = figure_chart(root, "CCC per video", 200)
            .build_cartesian_2d(-1f64..1f64, -0.5f64..rows - 0.5)?;
        styled_mesh!(chart)
            .x_desc("CCC of the smoothed predictions, per video")
            .y_labels(v.dims.len() * 2 + 1)
            .y_label_formatter(&|y| {
                let i = y.round();
                match v.dims.get(i as usize) {
                    Some(d) if (y - i).abs() < 1e-6 && i >= 0.0 => dim_title(*d).to_string(),
                    _ => String::new(),
                }
            })
            .x_label_formatter(&|x| num(*x, 1))
            .draw()?;
        for (d, &dim) in v.dims.iter().enumerate() {
            let colour = dim_colour(dim);
            chart.draw_series(v.videos.iter().enumerate().map(|(i, r)| {
                let y = d as f64 + 0.3 * spread(i);
                Circle::new((r.ccc[d].clamp(-1.0, 1.0), y), 9, colour.mix(0.7).filled())
            }))?;
            let m = median(v.videos.iter().map(|r| r.ccc[d]).collect());
            if m.is_finite() {
                chart
                    .draw_series(LineSeries::new(
                        [(m, d as f64 - 0.42), (m, d as f64 + 0.42)],
                        colour.stroke_width(5),
                    ))?
                    .label(format!("{} median {}", dim_title(dim), num(m, 3)))
                    .legend(legend_line(colour.stroke_width(5)));
            }
        }
        styled_legend!(chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// The videos to draw over time: the lowest, middle and highest by mean CCC.
fn traced(v: &VideoFiles) -> Vec<&VideoRow> {
    let mut by_score: Vec<&VideoRow> = v.videos.iter().filter(|r| r.frames > 1).collect();
    let score = |r: &VideoRow| r.ccc.iter().sum::<f64>() / r.ccc.len().max(1) as f64;
    by_score.sort_by(|a, b| score(a).total_cmp(&score(b)).then(a.video.cmp(&b.video)));
    let n = by_score.len();
    let mut picks: Vec<usize> = match n {
        0 => vec![],
        _ => vec![0, n / 2, n - 1],
    };
    picks.dedup();
    picks
        .into_iter()
        .take(TRACED)
        .map(|i| by_score[i])
        .collect()
}

/// Truth, raw and smoothed predictions over the frames of a few videos, a panel each.
fn traces(v: &VideoFiles, path: &Path) -> Result<bool, ReportError> {
    let picks = traced(v);
    if picks.is_empty() {
        return Ok(false);
    }
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let body = titled(root, "Predicted and true labels over time")?;
        let panels = body.split_evenly((picks.len(), 1));
        for (p, (area, row)) in panels.iter().zip(&picks).enumerate() {
            let Some(frames) = v.frames.get(&row.video) else {
                continue;
            };
            let (lo, hi) = frames.iter().fold((f64::MAX, f64::MIN), |(lo, hi), f| {
                (lo.min(f.0), hi.max(f.0))
            });
            let scores: Vec<String> = v
                .dims
                .iter()
                .zip(&row.ccc)
                .map(|(d, c)| format!("{} CCC {}", d.name(), num(*c, 3)))
                .collect();
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("video {} ({})", row.video, scores.join(", ")),
                    bold(PANEL_TITLE),
                )
                .margin(16)
                .margin_right(50)
                .x_label_area_size(70)
                .y_label_area_size(130)
                .build_cartesian_2d(lo..hi.max(lo + 1.0), -1f64..1f64)?;
            styled_mesh!(chart)
                .x_desc(if p + 1 == picks.len() { "frame" } else { "" })
                .y_labels(5)
                .x_label_formatter(&|x| num(*x, 0))
                .y_label_formatter(&|y| num(*y, 1))
                .draw()?;
            for (d, &dim) in v.dims.iter().enumerate() {
                let colour = dim_colour(dim);
                let line = |pick: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
                    frames.iter().map(|f| (f.0, pick(&f.1[d]))).collect()
                };
                let name = dim_title(dim);
                chart
                    .draw_series(LineSeries::new(
                        line(|t| t.1),
                        colour.mix(0.35).stroke_width(2),
                    ))?
                    .label(format!("{name} predicted"))
                    .legend(legend_line(colour.mix(0.35).stroke_width(2)));
                chart
                    .draw_series(DashedLineSeries::new(
                        line(|t| t.2),
                        14,
                        8,
                        colour.stroke_width(4),
                    ))?
                    .label(format!("{name} smoothed"))
                    .legend(legend_line(colour.stroke_width(4)));
                chart
                    .draw_series(LineSeries::new(line(|t| t.0), colour.stroke_width(6)))?
                    .label(format!("{name} true"))
                    .legend(legend_line(colour.stroke_width(6)));
            }
            if p == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .label_font(font(NOTE).color(&INK))
                    .background_style(WHITE.mix(0.9))
                    .border_style(GREY.stroke_width(1))
                    .draw()?;
            }
        }
        Ok(())
    })?;
    Ok(true)
}

/// Draws the video figures into `out` and returns them, in order.
pub(crate) fn draw(v: &VideoFiles, out: &Path) -> Result<Vec<Figure>, ReportError> {
    ccc_strip(v, &out.join(VIDEO_CCC))?;
    let mut figures = vec![Figure {
        file: VIDEO_CCC,
        caption: "CCC of the smoothed predictions per video, one point per video (bar: median)"
            .into(),
    }];
    if traces(v, &out.join(VIDEO_TRACES))? {
        figures.push(Figure {
            file: VIDEO_TRACES,
            caption: "True (thick), predicted (light) and smoothed (dashed) labels over the \
                      frames of the worst, median and best video"
                .into(),
        });
    }
    Ok(figures)
}

/// The `## Videos` section of `report.md`.
pub(crate) fn section(v: &VideoFiles, figures: &[Figure]) -> String {
    let mut md = String::from("## Videos\n\n");
    let _ = writeln!(
        md,
        "{} videos, {} frames (`{}`).\n",
        v.videos.len(),
        v.videos.iter().map(|r| r.frames).sum::<usize>(),
        v.videos_csv.display()
    );
    md.push_str("| | median CCC per video | lowest | highest |\n|---|---:|---:|---:|\n");
    for (d, dim) in v.dims.iter().enumerate() {
        let all: Vec<f64> = v.videos.iter().map(|r| r.ccc[d]).collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            md,
            "| {dim} | {} | {} | {} |",
            num(median(all), 4),
            num(lo, 4),
            num(hi, 4)
        );
    }
    md.push('\n');
    crate::markdown::figures(&mut md, figures);
    md
}
