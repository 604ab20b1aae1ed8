//! The figure of a training sweep: every group of cells (the cells that differ only in
//! their seed), its validation and test CCC and RMSE per dimension, mean ± sd over seeds,
//! with each seed drawn as a dot.

use crate::ReportError;
use crate::canvas::{
    Area, BLUE, Chart, Drawn, FULL, INK, ORANGE, PANEL_TITLE, TICK, bold, dim_title, font, num,
    styled_legend, styled_mesh, swatch, titled, write_png,
};
use plotters::prelude::*;
use std::path::Path;
use valar_core::{DimMetrics, Dimension};

/// The cells of a sweep that differ only in their seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepGroup {
    /// What the group's cells share, e.g. `model=compact lr=0.001`.
    pub label: String,
    /// Each seed's validation metrics per dimension.
    pub val: Vec<(Dimension, Vec<DimMetrics>)>,
    /// Each seed's test metrics per dimension (empty without a test set).
    pub test: Vec<(Dimension, Vec<DimMetrics>)>,
}

/// The mean and the sample standard deviation (0 for a single value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// One panel's metric.
#[derive(Clone, Copy)]
struct Metric {
    name: &'static str,
    get: fn(&DimMetrics) -> f64,
    /// Whether the axis starts at 0 and grows with the data (RMSE) or spans up to 1 (CCC).
    error: bool,
}

const METRICS: [Metric; 2] = [
    Metric {
        name: "CCC",
        get: |m| m.ccc,
        error: false,
    },
    Metric {
        name: "RMSE",
        get: |m| m.rmse,
        error: true,
    },
];

/// Draws the sweep figure to `path`: a panel per metric (CCC, RMSE) and dimension.
pub fn sweep_chart(path: &Path, title: &str, groups: &[SweepGroup]) -> Result<(), ReportError> {
    let dims: Vec<Dimension> = Dimension::ALL
        .into_iter()
        .filter(|d| groups.iter().any(|g| g.val.iter().any(|(x, _)| x == d)))
        .collect();
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let body = titled(root, title)?;
        let panels = body.split_evenly((METRICS.len(), dims.len().max(1)));
        for (i, panel) in panels.iter().enumerate() {
            let (metric, dim) = (
                METRICS[i / dims.len().max(1)],
                dims.get(i % dims.len().max(1)),
            );
            if let Some(&dim) = dim {
                // One legend, in the top of the first CCC panel, where scores seldom reach.
                draw_panel(panel, groups, metric, dim, i == 0)?;
            }
        }
        Ok(())
    })
}

/// Each seed's values of `metric` for `dim` in `scores`.
fn values(scores: &[(Dimension, Vec<DimMetrics>)], dim: Dimension, metric: Metric) -> Vec<f64> {
    scores
        .iter()
        .filter(|(d, _)| *d == dim)
        .flat_map(|(_, ms)| ms.iter().map(metric.get))
        .filter(|v| v.is_finite())
        .collect()
}

/// The y range of a panel: from 0 up for an error metric, up to 1 for an agreement one
/// (which may go below 0).
fn y_range(groups: &[SweepGroup], metric: Metric, dim: Dimension) -> std::ops::Range<f64> {
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|g| {
            let mut v = values(&g.val, dim, metric);
            v.extend(values(&g.test, dim, metric));
            v
        })
        .collect();
    let hi = all.iter().copied().fold(0.0f64, f64::max);
    let lo = all.iter().copied().fold(0.0f64, f64::min);
    if metric.error {
        0.0..(hi * 1.2).max(1e-3)
    } else {
        (lo * 1.2).min(0.0)..1.0
    }
}

fn draw_panel(
    area: &Area<'_>,
    groups: &[SweepGroup],
    metric: Metric,
    dim: Dimension,
    legend: bool,
) -> Drawn {
    let n = groups.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} {}", dim_title(dim), metric.name),
            bold(PANEL_TITLE),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(110)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y_range(groups, metric, dim))?;
    let label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < groups.len() {
            groups[i as usize].label.clone()
        } else {
            String::new()
        }
    };
    styled_mesh!(chart)
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&label)
        .x_label_style(font(TICK * 0.8).color(&INK))
        .y_desc(metric.name)
        .y_label_formatter(&|v| num(*v, 2))
        .draw()?;
    let has_test = groups.iter().any(|g| !g.test.is_empty());
    let splits: Vec<(&str, RGBColor, f64)> = if has_test {
        vec![("validation", BLUE, -0.18), ("test", ORANGE, 0.18)]
    } else {
        vec![("validation", BLUE, 0.0)]
    };
    for (name, colour, offset) in splits {
        let per_group: Vec<(f64, Vec<f64>)> = groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let scores = if name == "test" {
                    &group.test
                } else {
                    &group.val
                };
                (g as f64 + offset, values(scores, dim, metric))
            })
            .collect();
        draw_split(&mut chart, &per_group, name, colour)?;
    }
    if legend {
        styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}

/// One split's scores in a panel: per group at its x, the mean over seeds as a bar, ± sd as
/// an error bar, and each seed as a dot.
fn draw_split<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    per_group: &[(f64, Vec<f64>)],
    name: &str,
    colour: RGBColor,
) -> Drawn {
    let bars = per_group
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(x, v)| {
            let (mean, _) = mean_sd(v);
            Rectangle::new(
                [(x - 0.15, 0.0), (x + 0.15, mean)],
                colour.mix(0.55).filled(),
            )
        });
    chart
        .draw_series(bars)?
        .label(format!("{name}, mean ± sd over seeds"))
        .legend(swatch(colour));
    // An error bar with caps, drawn as one path (plotters' ErrorBar needs a feature the
    // workspace does not enable).
    chart.draw_series(
        per_group
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(x, v)| {
                let (mean, sd) = mean_sd(v);
                let (a, b, w) = (mean - sd, mean + sd, 0.06);
                PathElement::new(
                    vec![
                        (x - w, a),
                        (x + w, a),
                        (*x, a),
                        (*x, b),
                        (x - w, b),
                        (x + w, b),
                    ],
                    INK.stroke_width(3),
                )
            }),
    )?;
    chart.draw_series(per_group.iter().flat_map(|(x, v)| {
        v.iter()
            .map(move |&y| Circle::new((*x, y), 7, colour.filled().stroke_width(2)))
    }))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
        assert_eq!(mean_sd(&[0.5]), (0.5, 0.0));
        assert!(mean_sd(&[]).0.is_nan());
    }

    #[test]
    fn the_figure_is_a_png_of_the_house_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.png");
        let m = |ccc: f64, rmse: f64| DimMetrics {
            rmse,
            pcc: ccc,
            ccc,
            sagr: 0.7,
        };
        let group = |label: &str, base: f64| SweepGroup {
            label: label.to_string(),
            val: vec![
                (Dimension::Valence, vec![m(base, 0.4), m(base + 0.05, 0.38)]),
                (
                    Dimension::Arousal,
                    vec![m(base - 0.1, 0.35), m(base - 0.05, 0.36)],
                ),
            ],
            test: vec![
                (Dimension::Valence, vec![m(base - 0.02, 0.41), m(base, 0.4)]),
                (
                    Dimension::Arousal,
                    vec![m(base - 0.12, 0.37), m(base - 0.1, 0.36)],
                ),
            ],
        };
        sweep_chart(
            &path,
            "Sweep",
            &[group("lr=0.001", 0.5), group("lr=0.01", 0.3)],
        )
        .unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), FULL);
        // Something other than white was drawn in the plot area.
        let rgb = img.to_rgb8();
        let inked = rgb.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(inked > 10_000, "{inked}");
    }
}
