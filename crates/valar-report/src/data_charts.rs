use crate::ReportError;
use crate::canvas::{
    AXIS, Area, BLUE, Chart, Drawn, FULL, GREEN, GREY, INK, LEGEND, LIGHT_GREY, NOTE, PANEL_TITLE,
    TICK, TITLE, VERMILLION, WIDE, bold, count, dim_colour, dim_title, figure_chart, font,
    legend_line, num, steps, styled_legend, styled_mesh, swatch, titled, viridis, write_png,
};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use valar_core::{Dimension, ManifestRow, PrepInfo, PreparedDir, Split};

/// A prepared folder's `prep.json` and `manifest.csv`, checked for consistency.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub dir: PathBuf,
    pub info: PrepInfo,
    pub manifest: Vec<ManifestRow>,
}

impl Prepared {
    /// Reads and checks a prepared folder.
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        if !dir.is_dir() {
            return Err(ReportError::Missing {
                path: dir.to_path_buf(),
                what: "a prepared folder written by `valar prepare`",
            });
        }
        let prep = PreparedDir::new(dir).prep_json();
        let manifest = PreparedDir::new(dir).manifest();
        for (path, what) in [
            (&prep, "the prepared folder's prep.json"),
            (&manifest, "the prepared folder's manifest.csv"),
        ] {
            if !path.is_file() {
                return Err(ReportError::Missing {
                    path: path.clone(),
                    what,
                });
            }
        }
        let info = PrepInfo::read(&prep)?;
        let h = &info.source_histograms;
        let bad = |reason: String| ReportError::format(&prep, reason);
        if h.bins == 0 {
            return Err(bad("source_histograms.bins is 0".into()));
        }
        for (name, len) in [("valence", h.valence.len()), ("arousal", h.arousal.len())] {
            if len != h.bins {
                return Err(bad(format!(
                    "source_histograms.{name} has {len} bins, expected {}",
                    h.bins
                )));
            }
        }
        if h.density.len() != h.bins || h.density.iter().any(|r| r.len() != h.bins) {
            return Err(bad(format!(
                "source_histograms.density is not {0} × {0}",
                h.bins
            )));
        }
        if info.edges.len() < 2 || info.edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("edges must be at least two increasing values".into()));
        }
        let manifest = valar_core::read_manifest(&manifest)?;
        Ok(Prepared {
            dir: dir.to_path_buf(),
            info,
            manifest,
        })
    }

    /// Whether `dim` was stratified (so its interval edges mean something).
    pub fn stratified(&self, dim: Dimension) -> bool {
        self.info.stratify == dim.name() || self.info.stratify == "grid"
    }

    /// The stratified subset: the train and validation faces, or every face when the
    /// folder holds only a test set.
    fn subset(&self) -> Vec<&ManifestRow> {
        let chosen: Vec<&ManifestRow> = self
            .manifest
            .iter()
            .filter(|r| r.split != Split::Test)
            .collect();
        if chosen.is_empty() {
            self.manifest.iter().collect()
        } else {
            chosen
        }
    }

    fn test(&self) -> Vec<&ManifestRow> {
        let test: Vec<&ManifestRow> = self
            .manifest
            .iter()
            .filter(|r| r.split == Split::Test)
            .collect();
        if test.len() == self.manifest.len() {
            Vec::new()
        } else {
            test
        }
    }
}

fn label(row: &ManifestRow, dim: Dimension) -> f64 {
    f64::from(match dim {
        Dimension::Valence => row.valence,
        Dimension::Arousal => row.arousal,
    })
}

/// The bin of `v` among `bins` equal bins over [-1, 1], the last one closed; values
/// outside the range go to the nearest end bin.
pub(crate) fn bin_of(v: f64, bins: usize) -> usize {
    let edge = |k: usize| -1.0 + 2.0 * k as f64 / bins as f64;
    let t = ((v + 1.0) / 2.0 * bins as f64).floor();
    let mut i = if t.is_nan() || t < 0.0 {
        0
    } else {
        (t as usize).min(bins - 1)
    };
    // The division can land a value sitting exactly on an edge in the bin below.
    if i + 1 < bins && v >= edge(i + 1) {
        i += 1;
    } else if i > 0 && v < edge(i) {
        i -= 1;
    }
    i
}

/// `c` in % of `total` (zero for an empty total).
fn percent(c: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * c as f64 / total as f64
    }
}

/// Percentages of `counts`' total (all zero for an empty total).
fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts.iter().map(|&c| percent(c, total)).collect()
}

fn histogram_of(rows: &[&ManifestRow], dim: Dimension, bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    for r in rows {
        counts[bin_of(label(r, dim), bins)] += 1;
    }
    counts
}

/// The file names of the data figures, in the order they are written.
pub(crate) const HISTOGRAM_VALENCE: &str = "data_valence_histogram.png";
pub(crate) const HISTOGRAM_AROUSAL: &str = "data_arousal_histogram.png";
pub(crate) const DENSITY: &str = "data_density.png";
pub(crate) const INTERVALS: &str = "data_intervals.png";
pub(crate) const REJECTS: &str = "data_rejects.png";

/// One dimension's label histograms, each in % of its own faces, for the histogram figure.
struct LabelShares {
    dim: Dimension,
    /// The source rows' histogram (from prep.json) and their count.
    source: Vec<f64>,
    source_n: u64,
    /// The prepared subset's histogram and its count.
    subset: Vec<f64>,
    subset_n: usize,
    /// The test set's histogram and its count (0 without a separate test set).
    test: Vec<f64>,
    test_n: usize,
    /// The stratification edges of `dim`, empty when it was not stratified.
    edges: Vec<f64>,
    /// The top of the y axis, room left for the legend.
    top: f64,
}

impl LabelShares {
    fn of(prep: &Prepared, dim: Dimension) -> Self {
        let h = &prep.info.source_histograms;
        let source = match dim {
            Dimension::Valence => &h.valence,
            Dimension::Arousal => &h.arousal,
        };
        let source_n: u64 = source.iter().sum();
        let source = shares(source);
        let subset_rows = prep.subset();
        let subset = shares(&histogram_of(&subset_rows, dim, h.bins));
        let test_rows = prep.test();
        let test = shares(&histogram_of(&test_rows, dim, h.bins));
        let edges: Vec<f64> = if prep.stratified(dim) {
            prep.info.edges.clone()
        } else {
            Vec::new()
        };
        let top = source
            .iter()
            .chain(&subset)
            .chain(&test)
            .fold(1.0f64, |a, &b| a.max(b))
            * 1.4;
        LabelShares {
            dim,
            source,
            source_n,
            subset,
            subset_n: subset_rows.len(),
            test,
            test_n: test_rows.len(),
            edges,
            top,
        }
    }
}

/// Label histogram of one dimension: source rows against the prepared subset.
pub(crate) fn histogram(prep: &Prepared, dim: Dimension, path: &Path) -> Result<(), ReportError> {
    let h = LabelShares::of(prep, dim);
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let title = format!("{} labels: source and prepared subset", dim_title(dim));
        let mut chart =
            figure_chart(root, &title, 130).build_cartesian_2d(-1f64..1f64, 0f64..h.top)?;
        styled_mesh!(chart)
            .x_desc(dim.name())
            .y_desc("share of faces (%)")
            .x_labels(11)
            .y_labels(8)
            .x_label_formatter(&|v| num(*v, 1))
            .y_label_formatter(&|v| num(*v, 1))
            .draw()?;
        draw_label_shares(&mut chart, &h)?;
        draw_edges(&mut chart, &h.edges, h.top)?;
        styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// The histogram figure's bars and outlines: the source as grey bars, the subset as a
/// line in the dimension's colour, the test set dashed.
fn draw_label_shares<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, h: &LabelShares) -> Drawn {
    let colour = dim_colour(h.dim);
    let width = 2.0 / h.source.len() as f64;
    chart
        .draw_series(h.source.iter().enumerate().map(|(i, &s)| {
            let x0 = -1.0 + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, s)], LIGHT_GREY.filled())
        }))?
        .label(format!("source (n = {})", count(h.source_n)))
        .legend(swatch(LIGHT_GREY));
    chart
        .draw_series(LineSeries::new(
            steps(&h.subset, -1.0, 1.0),
            colour.stroke_width(5),
        ))?
        .label(format!(
            "prepared subset (n = {})",
            count(h.subset_n as u64)
        ))
        .legend(legend_line(colour.stroke_width(5)));
    if h.test_n > 0 {
        chart
            .draw_series(DashedLineSeries::new(
                steps(&h.test, -1.0, 1.0),
                16,
                10,
                GREEN.stroke_width(4),
            ))?
            .label(format!("test set (n = {})", count(h.test_n as u64)))
            .legend(legend_line(GREEN.stroke_width(4)));
    }
    Ok(())
}

/// The stratification edges as dashed vertical lines up to `top`, labelled once.
fn draw_edges<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, edges: &[f64], top: f64) -> Drawn {
    let style = INK.mix(0.75).stroke_width(3);
    for (i, &e) in edges.iter().enumerate() {
        let series =
            chart.draw_series(DashedLineSeries::new([(e, 0.0), (e, top)], 14, 10, style))?;
        if i == 0 {
            series
                .label("stratification interval edges")
                .legend(legend_line(style));
        }
    }
    Ok(())
}

/// Draws one valence × arousal density panel; shares are in % of the panel's faces,
/// `edges` the stratification edges of (valence, arousal), empty for an axis not stratified.
fn density_panel(
    area: &Area<'_>,
    title: &str,
    shares: &[Vec<f64>],
    scale: (f64, f64),
    edges: (&[f64], &[f64]),
) -> Drawn {
    let bins = shares.len();
    let width = 2.0 / bins as f64;
    let (lo, hi) = (scale.0.ln(), scale.1.ln());
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(PANEL_TITLE))
        .margin(16)
        .x_label_area_size(100)
        .y_label_area_size(120)
        .build_cartesian_2d(-1f64..1f64, -1f64..1f64)?;
    chart.draw_series(shares.iter().enumerate().flat_map(|(v, row)| {
        row.iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .map(move |(a, &s)| {
                let t = if hi > lo {
                    (s.ln() - lo) / (hi - lo)
                } else {
                    1.0
                };
                let x0 = -1.0 + v as f64 * width;
                let y0 = -1.0 + a as f64 * width;
                Rectangle::new([(x0, y0), (x0 + width, y0 + width)], viridis(t).filled())
            })
    }))?;
    // The mesh goes on top so the axes stay visible over the cells.
    styled_mesh!(chart)
        .disable_mesh()
        .x_desc("valence")
        .y_desc("arousal")
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|v| num(*v, 1))
        .y_label_formatter(&|v| num(*v, 1))
        .draw()?;
    let edge_style = INK.mix(0.55).stroke_width(2);
    let interior = |e: &&f64| **e > -1.0 && **e < 1.0;
    for &v in edges.0.iter().filter(interior) {
        chart.draw_series(DashedLineSeries::new(
            [(v, -1.0), (v, 1.0)],
            10,
            8,
            edge_style,
        ))?;
    }
    for &a in edges.1.iter().filter(interior) {
        chart.draw_series(DashedLineSeries::new(
            [(-1.0, a), (1.0, a)],
            10,
            8,
            edge_style,
        ))?;
    }
    chart.draw_series(std::iter::once(Rectangle::new(
        [(-1.0, -1.0), (1.0, 1.0)],
        INK.stroke_width(2),
    )))?;
    Ok(())
}

/// Pixels a panel caption takes: plotters reserves the text height (size / 1.24 with
/// ab_glyph) plus 5 px above and below.
const CAPTION: i32 = (PANEL_TITLE / 1.24) as i32 + 10;

/// Each cell of `counts` in % of `total` (all zero for an empty total).
fn grid_shares(counts: &[Vec<u64>], total: u64) -> Vec<Vec<f64>> {
    counts
        .iter()
        .map(|row| row.iter().map(|&c| percent(c, total)).collect())
        .collect()
}

/// The colour scale's range over the positive shares of both panels: one scale for both,
/// logarithmic because affect labels pile up near neutral and a linear scale would hide
/// the sparse corners.
fn log_range(source: &[Vec<f64>], subset: &[Vec<f64>]) -> (f64, f64) {
    let positive = source.iter().chain(subset).flatten().filter(|s| **s > 0.0);
    let lo = positive.clone().fold(f64::INFINITY, |a, &b| a.min(b));
    let hi = positive.fold(0.0f64, |a, &b| a.max(b));
    if lo.is_finite() && hi > 0.0 {
        if hi > lo {
            (lo, hi)
        } else {
            (lo * 0.5, hi * 2.0)
        }
    } else {
        (0.01, 100.0)
    }
}

/// Joint valence × arousal density of the source and of the prepared subset.
pub(crate) fn density(prep: &Prepared, path: &Path) -> Result<(), ReportError> {
    let h = &prep.info.source_histograms;
    let bins = h.bins;
    let source_total: u64 = h.density.iter().flatten().sum();
    let source = grid_shares(&h.density, source_total);
    let rows = prep.subset();
    let mut counts = vec![vec![0u64; bins]; bins];
    for r in &rows {
        counts[bin_of(label(r, Dimension::Valence), bins)]
            [bin_of(label(r, Dimension::Arousal), bins)] += 1;
    }
    let subset = grid_shares(&counts, rows.len() as u64);
    let (lo, hi) = log_range(&source, &subset);
    let edges_of = |dim| {
        if prep.stratified(dim) {
            prep.info.edges.clone()
        } else {
            Vec::new()
        }
    };
    let (valence_edges, arousal_edges) =
        (edges_of(Dimension::Valence), edges_of(Dimension::Arousal));
    write_png(path, WIDE, |root: &Area<'_>| -> Drawn {
        let body = titled(root, "Valence × arousal density")?;
        let (w, h) = body.dim_in_pixel();
        let (panels, bar) = body.split_horizontally(w as i32 - 230);
        let halves = panels.split_evenly((1, 2));
        // Square plots: trim height so each panel's plot area is as tall as it is wide.
        let (pw, _) = halves[0].dim_in_pixel();
        let plot = pw as i32 - 120 - 32;
        let used = plot + 100 + 32 + CAPTION;
        let spare = (h as i32 - used).max(0);
        for (area, title, shares) in [
            (
                &halves[0],
                format!("Source (n = {})", count(source_total)),
                &source,
            ),
            (
                &halves[1],
                format!("Prepared subset (n = {})", count(rows.len() as u64)),
                &subset,
            ),
        ] {
            let area = area.margin(spare / 2, spare - spare / 2, 0, 0);
            density_panel(
                &area,
                &title,
                shares,
                (lo, hi),
                (&valence_edges, &arousal_edges),
            )?;
        }
        let bar = bar.margin(spare / 2 + CAPTION, spare - spare / 2 + 100, 10, 20);
        colour_bar(&bar, (lo, hi))
    })
}

/// The density figure's colour bar: the viridis scale over `lo..hi` on a log axis.
fn colour_bar(bar: &Area<'_>, (lo, hi): (f64, f64)) -> Drawn {
    let mut chart = ChartBuilder::on(bar)
        .margin(16)
        .y_label_area_size(0)
        .right_y_label_area_size(150)
        .build_cartesian_2d(0f64..1f64, (lo..hi).log_scale())?;
    let steps = 240;
    chart.draw_series((0..steps).map(|i| {
        let t0 = i as f64 / steps as f64;
        let t1 = (i + 1) as f64 / steps as f64;
        let at = |t: f64| (lo.ln() + t * (hi.ln() - lo.ln())).exp();
        Rectangle::new(
            [(0.0, at(t0)), (1.0, at(t1))],
            viridis((t0 + t1) / 2.0).filled(),
        )
    }))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(font(TICK).color(&INK))
        .axis_desc_style(font(AXIS).color(&INK))
        .axis_style(INK.stroke_width(2))
        .y_desc("share of faces per cell (%)")
        .y_labels(6)
        .y_label_formatter(&|v| num(*v, 3))
        .draw()?;
    Ok(())
}

/// Draws the interval bars on a linear or a log chart (the coordinate types differ,
/// the drawing does not).
macro_rules! bars {
    ($chart:expr, $intervals:expr, $spans:expr, $short:expr, $many:expr, $base:expr) => {{
        let base: f64 = $base;
        let floor = |v: usize| {
            if base > 0.0 {
                (v as f64).max(base)
            } else {
                v as f64
            }
        };
        let inset = |(lo, hi): (f64, f64), f: f64| {
            let pad = (hi - lo) * f;
            (lo + pad, hi - pad)
        };
        $chart
            .draw_series($intervals.iter().zip(&$spans).map(|(c, &s)| {
                let (x0, x1) = inset(s, 0.06);
                Rectangle::new(
                    [(x0, floor(0)), (x1, floor(c.available))],
                    LIGHT_GREY.filled(),
                )
            }))?
            .label("available in source")
            .legend(swatch(LIGHT_GREY));
        let selected = |short_one: bool| {
            $intervals
                .iter()
                .zip(&$spans)
                .zip(&$short)
                .filter(move |(_, s)| **s == short_one)
                .map(move |((c, &s), _)| {
                    let (x0, x1) = inset(s, 0.22);
                    let colour = if short_one { VERMILLION } else { BLUE };
                    Rectangle::new([(x0, floor(0)), (x1, floor(c.selected))], colour.filled())
                })
        };
        $chart
            .draw_series(selected(false))?
            .label("selected")
            .legend(swatch(BLUE));
        if $short.iter().any(|s| *s) {
            $chart
                .draw_series(selected(true))?
                .label("selected, short interval (fewer than the quota)")
                .legend(swatch(VERMILLION));
        }
        let quota_style = INK.stroke_width(4);
        let mut labelled = false;
        for (c, &s) in $intervals.iter().zip(&$spans) {
            if let Some(q) = c.quota {
                let (x0, x1) = inset(s, 0.02);
                let series = $chart.draw_series(DashedLineSeries::new(
                    [(x0, floor(q)), (x1, floor(q))],
                    12,
                    8,
                    quota_style,
                ))?;
                if !labelled {
                    series.label("quota").legend(legend_line(quota_style));
                    labelled = true;
                }
            }
        }
        if !$many {
            $chart.draw_series($intervals.iter().zip(&$spans).map(|(c, &s)| {
                let style = font(NOTE)
                    .color(&INK)
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    ));
                Text::new(
                    count(c.selected as u64),
                    ((s.0 + s.1) / 2.0, floor(c.selected)),
                    style,
                )
            }))?;
        }
    }};
}

/// Where the interval figure puts each interval and how it scales its axes.
struct IntervalLayout {
    /// Each interval's x span: its label range for a 1-D stratification, its number for a
    /// grid (whose cells have no single range on one axis).
    spans: Vec<(f64, f64)>,
    /// Whether the x axis is a label range (rather than interval numbers).
    by_range: bool,
    x_range: (f64, f64),
    /// The largest count (available, selected or quota), at least 1.
    max: f64,
    /// Whether each interval is short (fewer faces than the quota).
    short: Vec<bool>,
    /// Too many intervals to print each one's count above its bar.
    many: bool,
    x_desc: String,
    /// Available counts dwarf the selected ones in real data; a log axis shows both.
    log: bool,
}

impl IntervalLayout {
    fn of(info: &PrepInfo) -> Self {
        let dim = match info.stratify.as_str() {
            "valence" => Some(Dimension::Valence),
            "arousal" => Some(Dimension::Arousal),
            _ => None,
        };
        let range_of = |c: &valar_core::IntervalCount| match dim? {
            Dimension::Valence => c.valence,
            Dimension::Arousal => c.arousal,
        };
        let spans: Vec<(f64, f64)> = info
            .intervals
            .iter()
            .map(|c| match range_of(c) {
                Some([lo, hi]) => (lo, hi),
                None => (c.interval as f64 - 0.5, c.interval as f64 + 0.5),
            })
            .collect();
        let by_range = dim.is_some() && info.intervals.iter().all(|c| range_of(c).is_some());
        let x_range = spans
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), s| {
                (a.min(s.0), b.max(s.1))
            });
        let max = info
            .intervals
            .iter()
            .flat_map(|c| [c.available, c.selected, c.quota.unwrap_or(0)])
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let min_positive = info
            .intervals
            .iter()
            .flat_map(|c| [c.available, c.selected])
            .filter(|&v| v > 0)
            .min()
            .unwrap_or(1) as f64;
        let x_desc = match dim {
            Some(d) if by_range => format!("{} interval", d.name()),
            _ => "grid cell (valence bin × bins + arousal bin)".to_string(),
        };
        IntervalLayout {
            spans,
            by_range,
            x_range,
            max,
            short: info
                .intervals
                .iter()
                .map(|c| info.short_intervals.contains(&c.interval))
                .collect(),
            many: info.intervals.len() > 24,
            x_desc,
            log: max / min_positive > 30.0,
        }
    }
}

/// Faces available and selected per stratification interval, with the quota.
pub(crate) fn intervals(prep: &Prepared, path: &Path) -> Result<(), ReportError> {
    let info = &prep.info;
    let IntervalLayout {
        spans,
        by_range,
        x_range,
        max,
        short,
        many,
        x_desc,
        log,
    } = IntervalLayout::of(info);
    let intervals = info.intervals.clone();
    let draw = |root: &Area<'_>| -> Drawn {
        let caption = format!("Faces per interval (stratified by {})", info.stratify);
        let builder = &mut figure_chart(root, &caption, 150);
        let x = x_range.0..x_range.1;
        if log {
            let mut chart = builder.build_cartesian_2d(x, (0.7f64..max * 6.0).log_scale())?;
            styled_mesh!(chart)
                .x_desc(x_desc.as_str())
                .y_desc("faces (log scale)")
                .x_labels(if by_range { 11 } else { 12 })
                .x_label_formatter(&|v| if by_range { num(*v, 1) } else { num(*v, 0) })
                .y_label_formatter(&|v| count(v.round() as u64))
                .draw()?;
            bars!(chart, intervals, spans, short, many, 0.7);
            styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x, 0f64..max * 1.3)?;
            styled_mesh!(chart)
                .x_desc(x_desc.as_str())
                .y_desc("faces")
                .x_labels(if by_range { 11 } else { 12 })
                .x_label_formatter(&|v| if by_range { num(*v, 1) } else { num(*v, 0) })
                .y_label_formatter(&|v| count(v.round() as u64))
                .draw()?;
            bars!(chart, intervals, spans, short, many, 0.0);
            styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    };
    write_png(path, FULL, draw)
}

/// Rows dropped by `valar prepare`, per reason, largest first (none: no figure).
pub(crate) fn rejects(prep: &Prepared, path: &Path) -> Result<bool, ReportError> {
    let mut reasons: Vec<(&String, &usize)> = prep
        .info
        .rejects_by_reason
        .iter()
        .filter(|(_, n)| **n > 0)
        .collect();
    if reasons.is_empty() {
        return Ok(false);
    }
    // Ascending, because the first row is drawn at the bottom.
    reasons.sort_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
    let names: Vec<String> = reasons.iter().map(|(r, _)| r.replace('_', " ")).collect();
    let counts: Vec<u64> = reasons.iter().map(|(_, n)| **n as u64).collect();
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max().unwrap_or(1);
    let label_width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 40) as u32
        * 17
        + 40;
    let n = names.len();
    let top = (max + max / 5 + 1) as f64;
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Rows rejected by valar prepare (total {})", count(total)),
                bold(TITLE),
            )
            .margin(30)
            .margin_right(60)
            .x_label_area_size(100)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0f64..top, -0.5f64..n as f64 - 0.5)?;
        styled_mesh!(chart)
            .disable_y_mesh()
            .y_labels(0)
            .x_labels((top as usize + 1).min(10))
            .x_desc("rows")
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    count(*v as u64)
                } else {
                    String::new()
                }
            })
            .draw()?;
        // Reason names are drawn by hand at the bar centres: plotters' discrete axes
        // cannot hold a single category, and a numeric axis would label fractions.
        let name_style = font(TICK)
            .color(&INK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Right,
                plotters::style::text_anchor::VPos::Center,
            ));
        for (i, name) in names.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, i as f64));
            root.draw(&Text::new(name.as_str(), (x - 16, y), name_style.clone()))?;
        }
        // Bars at most 120 px thick, so one or two reasons do not fill the figure.
        let (_, plot_h) = chart.plotting_area().dim_in_pixel();
        let half = (0.35f64).min(60.0 * n as f64 / f64::from(plot_h.max(1)));
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let y = i as f64;
            Rectangle::new([(0.0, y - half), (c as f64, y + half)], GREY.filled())
        }))?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let style = font(LEGEND)
                .color(&INK)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ));
            Text::new(format!("  {}", count(c)), (c as f64, i as f64), style)
        }))?;
        Ok(())
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_closed_range() {
        assert_eq!(bin_of(-1.0, 10), 0);
        assert_eq!(bin_of(-0.81, 10), 0);
        assert_eq!(bin_of(-0.8, 10), 1);
        assert_eq!(bin_of(0.0, 10), 5);
        assert_eq!(bin_of(1.0, 10), 9);
        assert_eq!(bin_of(1.5, 10), 9);
        assert_eq!(bin_of(-3.0, 10), 0);
    }

    #[test]
    fn shares_are_percentages() {
        assert_eq!(shares(&[1, 3]), vec![25.0, 75.0]);
        assert_eq!(shares(&[0, 0]), vec![0.0, 0.0]);
    }
}
