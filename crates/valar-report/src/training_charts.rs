use crate::ReportError;
use crate::canvas::{
    Area, BLUE, Drawn, FULL, GREY, ORANGE, TITLE, bold, dim_colour, dim_title, legend_line, num,
    styled_legend, styled_mesh, write_png,
};
use crate::run_files::Epoch;
use plotters::prelude::*;
use std::path::Path;
use valar_core::Dimension;

/// The file names of the training figures.
pub(crate) const LOSS: &str = "training_loss.png";
pub(crate) const CCC: &str = "training_ccc.png";

/// The epoch with the lowest validation loss (the first, on ties), if any was recorded.
pub(crate) fn best_epoch(epochs: &[Epoch]) -> Option<&Epoch> {
    epochs
        .iter()
        .filter(|e| e.val_loss.is_some_and(f64::is_finite))
        .min_by(|a, b| {
            a.val_loss
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.val_loss.unwrap_or(f64::INFINITY))
        })
}

/// The x range of an epoch axis, padded so single-epoch runs still have width.
fn epoch_range(epochs: &[Epoch]) -> std::ops::Range<f64> {
    let first = epochs.first().map_or(0, |e| e.epoch) as f64;
    let last = epochs.last().map_or(1, |e| e.epoch) as f64;
    let pad = ((last - first) * 0.03).max(0.5);
    (first - pad)..(last + pad)
}

fn best_marker<'a>(
    chart: &mut ChartContext<
        'a,
        BitMapBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    best: Option<&Epoch>,
    y: std::ops::Range<f64>,
) -> Drawn {
    if let Some(best) = best {
        let style = GREY.stroke_width(3);
        chart
            .draw_series(DashedLineSeries::new(
                [(best.epoch as f64, y.start), (best.epoch as f64, y.end)],
                14,
                10,
                style,
            ))?
            .label(format!(
                "best epoch ({}, lowest validation loss)",
                best.epoch
            ))
            .legend(legend_line(style));
    }
    Ok(())
}

/// A named line: its legend label, colour and points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

/// Training and validation loss per epoch.
pub(crate) fn loss(epochs: &[Epoch], path: &Path) -> Result<(), ReportError> {
    let values = epochs
        .iter()
        .flat_map(|e| [Some(e.train_loss), e.val_loss])
        .flatten()
        .filter(|v| v.is_finite());
    let top = values.fold(0.0f64, f64::max).max(1e-6) * 1.15;
    let best = best_epoch(epochs);
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let mut chart = ChartBuilder::on(root)
            .caption("Loss per epoch", bold(TITLE))
            .margin(30)
            .margin_right(50)
            .x_label_area_size(100)
            .y_label_area_size(150)
            .build_cartesian_2d(epoch_range(epochs), 0f64..top)?;
        styled_mesh!(chart)
            .x_desc("epoch")
            .y_desc("loss")
            .x_labels(epochs.len().clamp(2, 12))
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    num(*v, 0)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| num(*v, 4))
            .draw()?;
        let series: [Series; 2] = [
            (
                "training",
                BLUE,
                epochs
                    .iter()
                    .filter(|e| e.train_loss.is_finite())
                    .map(|e| (e.epoch as f64, e.train_loss))
                    .collect(),
            ),
            (
                "validation",
                ORANGE,
                epochs
                    .iter()
                    .filter_map(|e| {
                        e.val_loss
                            .filter(|v| v.is_finite())
                            .map(|v| (e.epoch as f64, v))
                    })
                    .collect(),
            ),
        ];
        for (name, colour, points) in series {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(
                    LineSeries::new(points, colour.stroke_width(5))
                        .point_size(if epochs.len() <= 60 { 7 } else { 0 }),
                )?
                .label(name)
                .legend(legend_line(colour.stroke_width(5)));
        }
        best_marker(&mut chart, best, 0.0..top)?;
        styled_legend!(chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Validation CCC per trained dimension per epoch (no figure when no dimension has one).
pub(crate) fn ccc(epochs: &[Epoch], path: &Path) -> Result<bool, ReportError> {
    let dims: Vec<Dimension> = Dimension::ALL
        .into_iter()
        .filter(|&d| epochs.iter().any(|e| e.dim(d).is_some()))
        .collect();
    if dims.is_empty() {
        return Ok(false);
    }
    let low = epochs
        .iter()
        .flat_map(|e| dims.iter().filter_map(|&d| e.dim(d).map(|m| m.ccc)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::min);
    let bottom = if low < 0.0 {
        (low * 10.0).floor() / 10.0
    } else {
        0.0
    };
    let best = best_epoch(epochs);
    write_png(path, FULL, |root: &Area<'_>| -> Drawn {
        let mut chart = ChartBuilder::on(root)
            .caption("Validation CCC per epoch", bold(TITLE))
            .margin(30)
            .margin_right(50)
            .x_label_area_size(100)
            .y_label_area_size(150)
            .build_cartesian_2d(epoch_range(epochs), bottom..1.0)?;
        styled_mesh!(chart)
            .x_desc("epoch")
            .y_desc("concordance correlation (CCC)")
            .x_labels(epochs.len().clamp(2, 12))
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    num(*v, 0)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| num(*v, 2))
            .draw()?;
        for &dim in &dims {
            let colour = dim_colour(dim);
            let points: Vec<(f64, f64)> = epochs
                .iter()
                .filter_map(|e| {
                    e.dim(dim)
                        .map(|m| m.ccc)
                        .filter(|v| v.is_finite())
                        .map(|v| (e.epoch as f64, v))
                })
                .collect();
            chart
                .draw_series(
                    LineSeries::new(points, colour.stroke_width(5))
                        .point_size(if epochs.len() <= 60 { 7 } else { 0 }),
                )?
                .label(dim_title(dim))
                .legend(legend_line(colour.stroke_width(5)));
        }
        best_marker(&mut chart, best, bottom..1.0)?;
        styled_legend!(chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })?;
    Ok(true)
}
