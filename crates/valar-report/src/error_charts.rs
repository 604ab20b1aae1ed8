use crate::ReportError;
use crate::canvas::{
    Area, Chart, Drawn, FULL, GREY, INK, NOTE, PANEL_TITLE, WIDE, count, dim_colour, dim_title,
    figure_chart, font, legend_line, num, steps, styled_legend, styled_mesh, swatch, titled,
    write_png,
};
use crate::data_charts::bin_of;
use crate::run_files::Predictions;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use valar_core::{DimMetrics, Dimension, TrainingMean, mean_baseline};

/// The file names of the error figures of the validation predictions.
pub(crate) const SCATTER: &str = "errors_scatter.png";
pub(crate) const BY_INTERVAL: &str = "errors_by_interval.png";
pub(crate) const RESIDUALS: &str = "errors_residuals.png";
/// The same figures for a test-set evaluation.
pub(crate) const TEST_SCATTER: &str = "test_errors_scatter.png";
pub(crate) const TEST_BY_INTERVAL: &str = "test_errors_by_interval.png";
pub(crate) const TEST_RESIDUALS: &str = "test_errors_residuals.png";

/// What an error figure shows: whose predictions, and the baseline drawn beside them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    /// Where the predictions are from, for the titles ("validation split", "test set").
    pub subject: &'a str,
    /// The training mean the mean-prediction baseline predicts, when known.
    pub mean: Option<&'a TrainingMean>,
}

/// Pixels a panel caption takes: the text height (size / 1.24 with ab_glyph) plus 10.
const CAPTION: i32 = (PANEL_TITLE / 1.24) as i32 + 10;

/// Intervals of the true label for the error-by-interval figure.
pub(crate) const ERROR_BINS: usize = 10;

/// Mean absolute error and its quartiles in one interval of the true label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BinError {
    pub n: usize,
    pub mean: f64,
    pub q1: f64,
    pub q3: f64,
}

/// The `q`-quantile of sorted values, linearly interpolated (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (sorted[j] - sorted[i]) * (pos - i as f64)
}

/// Absolute errors summarised per interval of the true label; `None` for empty bins.
pub(crate) fn errors_by_bin(truth: &[f32], pred: &[f32], bins: usize) -> Vec<Option<BinError>> {
    let mut groups = vec![Vec::new(); bins];
    for (&t, &p) in truth.iter().zip(pred) {
        groups[bin_of(f64::from(t), bins)].push((f64::from(p) - f64::from(t)).abs());
    }
    groups
        .into_iter()
        .map(|mut g| {
            if g.is_empty() {
                return None;
            }
            g.sort_by(f64::total_cmp);
            Some(BinError {
                n: g.len(),
                mean: g.iter().sum::<f64>() / g.len() as f64,
                q1: quantile(&g, 0.25),
                q3: quantile(&g, 0.75),
            })
        })
        .collect()
}

/// Predicted against true label, one square panel per dimension.
pub(crate) fn scatter(preds: &Predictions, view: View<'_>, path: &Path) -> Result<(), ReportError> {
    write_png(path, WIDE, |root: &Area<'_>| -> Drawn {
        let body = titled(root, &format!("Predicted vs true labels, {}", view.subject))?;
        let panels = body.split_evenly((1, preds.dims.len().max(1)));
        for (area, (dim, truth, pred)) in panels.iter().zip(&preds.dims) {
            // Square plot area: as wide as the panel allows, at most as tall.
            let (w, h) = area.dim_in_pixel();
            // Label areas and margins around the plot: 130 + 2 × 20 across,
            // 100 + caption + 2 × 20 down.
            let (across, down) = (130 + 40, 100 + CAPTION + 40);
            let side = (w as i32 - across).min(h as i32 - down).max(100);
            let spare_w = (w as i32 - side - across).max(0);
            let spare_h = (h as i32 - side - down).max(0);
            let area = area.margin(
                spare_h / 2,
                spare_h - spare_h / 2,
                spare_w / 2,
                spare_w - spare_w / 2,
            );
            scatter_panel(&area, *dim, truth, pred, view.mean.map(|m| m.get(*dim)))?;
        }
        Ok(())
    })
}

fn scatter_panel(
    area: &Area<'_>,
    dim: Dimension,
    truth: &[f32],
    pred: &[f32],
    mean: Option<f64>,
) -> Drawn {
    let extreme = truth
        .iter()
        .chain(pred)
        .fold(1.0f32, |a, &b| a.max(b.abs()))
        .min(3.0);
    let lim = f64::from(extreme) + 0.05;
    let colour = dim_colour(dim);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} (n = {})", dim_title(dim), count(truth.len() as u64)),
            font(PANEL_TITLE),
        )
        .margin(20)
        .x_label_area_size(100)
        .y_label_area_size(130)
        .build_cartesian_2d(-lim..lim, -lim..lim)?;
    styled_mesh!(chart)
        .x_desc(format!("true {}", dim.name()))
        .y_desc(format!("predicted {}", dim.name()))
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|v| num(*v, 1))
        .y_label_formatter(&|v| num(*v, 1))
        .draw()?;
    // Many faces overlap near neutral; transparency keeps the density readable.
    let alpha = if truth.len() > 5000 {
        0.12
    } else if truth.len() > 500 {
        0.3
    } else {
        0.6
    };
    let radius = if truth.len() > 5000 { 3 } else { 5 };
    chart
        .draw_series(truth.iter().zip(pred).map(|(&t, &p)| {
            Circle::new(
                (f64::from(t), f64::from(p)),
                radius,
                colour.mix(alpha).filled(),
            )
        }))?
        .label("faces")
        .legend(|(x, y)| Circle::new((x + 14, y), 8, colour.filled()));
    let identity = INK.stroke_width(3);
    chart
        .draw_series(DashedLineSeries::new(
            [(-lim, -lim), (lim, lim)],
            14,
            10,
            identity,
        ))?
        .label("identity (predicted = true)")
        .legend(legend_line(identity));
    draw_scatter_notes(&mut chart, truth, pred, mean, lim)?;
    // Lower right: the corner a model that regresses to the mean leaves empty.
    styled_legend!(chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// The scatter panel's legend beyond the points: the training mean as a dashed line (when
/// known), then the metrics, each a line of text.
fn draw_scatter_notes<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    truth: &[f32],
    pred: &[f32],
    mean: Option<f64>,
    lim: f64,
) -> Drawn {
    let m = DimMetrics::compute(truth, pred);
    let mut lines = vec![
        format!("RMSE {}", fixed(m.rmse, 3)),
        format!("PCC  {}", fixed(m.pcc, 3)),
        format!("CCC  {}", fixed(m.ccc, 3)),
        format!("SAGR {}", fixed(m.sagr, 3)),
    ];
    if let Some(mean) = mean {
        // The constant a model that learned nothing would predict: points hugging this line
        // instead of the identity mean the model has regressed to the mean.
        let base = mean_baseline(truth, mean);
        let style = GREY.stroke_width(3);
        chart
            .draw_series(DashedLineSeries::new(
                [(-lim, mean), (lim, mean)],
                6,
                8,
                style,
            ))?
            .label(format!("training mean {} (baseline)", fixed(mean, 3)))
            .legend(legend_line(style));
        lines.push(format!("baseline RMSE {}", fixed(base.rmse, 3)));
    }
    for line in lines {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(line)
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }
    Ok(())
}

/// A metric at fixed precision with a true minus sign, for tables and legends.
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        return "n/a".to_string();
    }
    format!("{v:.decimals$}").replace('-', "\u{2212}")
}

/// One dimension's bars in the error-by-interval figure: its errors per interval and, when
/// the training mean is known, the mean baseline's.
struct ErrorBars {
    dim: Dimension,
    bins: Vec<Option<BinError>>,
    baseline: Option<Vec<Option<BinError>>>,
}

/// Mean absolute error per interval of the true label, quartiles as whiskers.
pub(crate) fn by_interval(
    preds: &Predictions,
    view: View<'_>,
    path: &Path,
) -> Result<(), ReportError> {
    let groups: Vec<ErrorBars> = preds
        .dims
        .iter()
        .map(|(d, t, p)| ErrorBars {
            dim: *d,
            bins: errors_by_bin(t, p, ERROR_BINS),
            // The baseline's error per interval: far from the training mean it grows, and a
            // model that learned something stays below it there.
            baseline: view.mean.map(|mean| {
                let constant = vec![mean.get(*d) as f32; t.len()];
                errors_by_bin(t, &constant, ERROR_BINS)
            }),
        })
        .collect();
    let top = groups
        .iter()
        .flat_map(|g| g.bins.iter().flatten().map(|b| b.q3.max(b.mean)))
        .chain(
            groups
                .iter()
                .flat_map(|g| g.baseline.iter().flatten().flatten().map(|b| b.mean)),
        )
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.3;
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let title = format!(
            "Absolute error by interval of the true label, {}",
            view.subject
        );
        let mut chart =
            figure_chart(root, &title, 150).build_cartesian_2d(-1f64..1f64, 0f64..top)?;
        styled_mesh!(chart)
            .disable_x_mesh()
            .x_desc("true label")
            .y_desc("mean |predicted − true|")
            .x_labels(ERROR_BINS + 1)
            .x_label_formatter(&|v| num(*v, 1))
            .y_label_formatter(&|v| num(*v, 3))
            .draw()?;
        for (g, bars) in groups.iter().enumerate() {
            // Each interval holds one bar per dimension, side by side.
            let width = 2.0 / ERROR_BINS as f64;
            let span = |i: usize| {
                let lo = -1.0 + i as f64 * width + width * 0.1;
                let bar = width * 0.8 / groups.len() as f64;
                (lo + g as f64 * bar, lo + (g as f64 + 1.0) * bar)
            };
            draw_error_bars(&mut chart, bars, &span, g == 0)?;
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("whiskers: 25th–75th percentile")
            .legend(legend_line(INK.stroke_width(3)));
        styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// One dimension's bars at `span(interval)`: the mean error, its quartiles as whiskers with
/// the count above, and the mean baseline's error as an outline (labelled when `first`).
fn draw_error_bars<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    bars: &ErrorBars,
    span: &dyn Fn(usize) -> (f64, f64),
    first: bool,
) -> Drawn {
    let colour = dim_colour(bars.dim);
    chart
        .draw_series(bars.bins.iter().enumerate().filter_map(|(i, b)| {
            b.map(|b| {
                let (x0, x1) = span(i);
                Rectangle::new([(x0, 0.0), (x1, b.mean)], colour.mix(0.85).filled())
            })
        }))?
        .label(dim_title(bars.dim))
        .legend(swatch(colour));
    for (i, b) in bars.bins.iter().enumerate() {
        if let Some(b) = b {
            draw_whisker(chart, b, span(i))?;
        }
    }
    if let Some(base) = &bars.baseline {
        // An outline the height of the baseline's error around each bar: where the
        // bar stays inside it, the model beats the mean there.
        let style = GREY.stroke_width(4);
        let series = chart.draw_series(base.iter().enumerate().filter_map(|(i, b)| {
            b.map(|b| {
                let (x0, x1) = span(i);
                Rectangle::new([(x0, 0.0), (x1, b.mean)], style)
            })
        }))?;
        if first {
            series
                .label("outline: predicting the training mean")
                .legend(move |(x, y)| Rectangle::new([(x, y - 10), (x + 28, y + 10)], style));
        }
    }
    Ok(())
}

/// The 25th–75th percentile whisker of one bar spanning `x0..x1`, with caps, and the
/// bar's face count above it.
fn draw_whisker<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    b: &BinError,
    (x0, x1): (f64, f64),
) -> Drawn {
    let whisker = INK.stroke_width(3);
    let mid = (x0 + x1) / 2.0;
    let cap = (x1 - x0) * 0.2;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(mid, b.q1), (mid, b.q3)],
        whisker,
    )))?;
    for y in [b.q1, b.q3] {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(mid - cap, y), (mid + cap, y)],
            whisker,
        )))?;
    }
    chart.draw_series(std::iter::once(Text::new(
        format!("n={}", b.n),
        (mid, b.q3.max(b.mean)),
        font(NOTE * 0.8)
            .color(&INK)
            .pos(Pos::new(HPos::Center, VPos::Bottom)),
    )))?;
    Ok(())
}

/// Bins of the residuals figure.
const RESIDUAL_BINS: usize = 40;

/// One dimension's residuals (predicted − true): their shares in % per bin of
/// `RESIDUAL_BINS` over [-r, r] (the ends take what lies beyond), their mean and SD.
struct ResidualHistogram {
    dim: Dimension,
    shares: Vec<f64>,
    mean: f64,
    sd: f64,
}

impl ResidualHistogram {
    fn of(dim: Dimension, truth: &[f32], pred: &[f32], r: f64) -> Self {
        let width = 2.0 * r / RESIDUAL_BINS as f64;
        let res: Vec<f64> = truth
            .iter()
            .zip(pred)
            .map(|(&t, &p)| f64::from(p) - f64::from(t))
            .collect();
        let mut counts = vec![0u64; RESIDUAL_BINS];
        for &e in &res {
            let i = (((e + r) / width).floor().max(0.0) as usize).min(RESIDUAL_BINS - 1);
            counts[i] += 1;
        }
        let n = res.len().max(1) as f64;
        let mean = res.iter().sum::<f64>() / n;
        let sd = (res.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n).sqrt();
        ResidualHistogram {
            dim,
            shares: counts.iter().map(|&c| 100.0 * c as f64 / n).collect(),
            mean,
            sd,
        }
    }
}

/// Histogram of residuals (predicted − true), one outline per dimension.
pub(crate) fn residuals(
    preds: &Predictions,
    view: View<'_>,
    path: &Path,
) -> Result<(), ReportError> {
    let extreme = preds
        .dims
        .iter()
        .flat_map(|(_, t, p)| t.iter().zip(p).map(|(&t, &p)| f64::from(p - t).abs()))
        .fold(0.0f64, f64::max);
    // A round, symmetric range: the bins then sit on readable boundaries.
    let r = ((extreme * 10.0).ceil() / 10.0).clamp(0.2, 2.0);
    let hists: Vec<ResidualHistogram> = preds
        .dims
        .iter()
        .map(|(d, t, p)| ResidualHistogram::of(*d, t, p, r))
        .collect();
    let top = hists
        .iter()
        .flat_map(|h| h.shares.iter().copied())
        .fold(1.0f64, f64::max)
        * 1.3;
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let title = format!("Residuals (predicted − true), {}", view.subject);
        let mut chart = figure_chart(root, &title, 150).build_cartesian_2d(-r..r, 0f64..top)?;
        styled_mesh!(chart)
            .x_desc("residual")
            .y_desc("share of faces (%)")
            .x_labels(9)
            .x_label_formatter(&|v| num(*v, 2))
            .y_label_formatter(&|v| num(*v, 1))
            .draw()?;
        let width = 2.0 * r / RESIDUAL_BINS as f64;
        for h in &hists {
            let colour = dim_colour(h.dim);
            chart.draw_series(h.shares.iter().enumerate().map(|(i, &s)| {
                let x0 = -r + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, s)], colour.mix(0.25).filled())
            }))?;
            chart
                .draw_series(LineSeries::new(
                    steps(&h.shares, -r, r),
                    colour.stroke_width(4),
                ))?
                .label(format!(
                    "{}: mean {}, SD {}",
                    dim_title(h.dim),
                    fixed(h.mean, 3),
                    fixed(h.sd, 3)
                ))
                .legend(swatch(colour.mix(0.6)));
        }
        let zero = INK.stroke_width(3);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (0.0, top)],
                14,
                10,
                zero,
            ))?
            .label("zero error")
            .legend(legend_line(zero));
        styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.75), 3.25);
        assert_eq!(quantile(&[5.0], 0.25), 5.0);
    }

    #[test]
    fn errors_group_by_true_label() {
        let truth = [-0.95f32, -0.9, 0.95, 1.0];
        let pred = [-0.75f32, -0.5, 0.95, 0.0];
        let bins = errors_by_bin(&truth, &pred, 10);
        let first = bins[0].unwrap();
        assert_eq!(first.n, 2);
        assert!((first.mean - 0.3).abs() < 1e-6);
        let last = bins[9].unwrap();
        assert_eq!(last.n, 2);
        assert!((last.mean - 0.5).abs() < 1e-6);
        assert!(bins[1..9].iter().all(Option::is_none));
    }

    #[test]
    fn fixed_keeps_precision_and_marks_missing() {
        assert_eq!(fixed(0.5, 3), "0.500");
        assert_eq!(fixed(-0.25, 2), "\u{2212}0.25");
        assert_eq!(fixed(f64::NAN, 2), "n/a");
    }
}
