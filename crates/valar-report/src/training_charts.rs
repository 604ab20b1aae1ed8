use crate::ReportError;
use crate::canvas::{
    Area, BLUE, Drawn, FULL, GREY, ORANGE, dim_colour, dim_title, figure_chart, legend_line, num,
    styled_legend, styled_mesh, write_png,
};
use crate::run_files::Epoch;
use plotters::prelude::*;
use std::path::Path;
use valar_core::Dimension;

/// The file names of the training figures.
pub(crate) const LOSS: &str = "training_loss.png";
pub(crate) const CCC: &str = "training_ccc.png";

/// The best epoch and the rule that chose it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Best<'a> {
    pub epoch: &'a Epoch,
    /// How it was chosen, for legends and the summary.
    pub rule: &'static str,
}

/// The mean validation CCC of the trained dimensions, the score `valar train` keeps
/// its checkpoint by; NaN when no dimension has metrics.
fn score(e: &Epoch) -> f64 {
    let cccs: Vec<f64> = [e.valence, e.arousal]
        .into_iter()
        .flatten()
        .map(|m| m.ccc)
        .collect();
    if cccs.is_empty() {
        f64::NAN
    } else {
        cccs.iter().sum::<f64>() / cccs.len() as f64
    }
}

/// The epoch `valar train` would keep: highest mean validation CCC (the first, on
/// ties); without per-dimension metrics, the lowest validation loss.
pub(crate) fn best_epoch(epochs: &[Epoch]) -> Option<Best<'_>> {
    let by_score =
        epochs
            .iter()
            .filter(|e| score(e).is_finite())
            .fold(None::<&Epoch>, |best, e| match best {
                Some(b) if score(b) >= score(e) => Some(b),
                _ => Some(e),
            });
    if let Some(epoch) = by_score {
        return Some(Best {
            epoch,
            rule: "highest mean validation CCC",
        });
    }
    epochs
        .iter()
        .filter(|e| e.val_loss.is_some_and(f64::is_finite))
        .fold(None::<&Epoch>, |best, e| match best {
            Some(b) if b.val_loss <= e.val_loss => Some(b),
            _ => Some(e),
        })
        .map(|epoch| Best {
            epoch,
            rule: "lowest validation loss",
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
    best: Option<Best<'_>>,
    y: std::ops::Range<f64>,
) -> Drawn {
    if let Some(Best { epoch: best, rule }) = best {
        let style = GREY.stroke_width(3);
        chart
            .draw_series(DashedLineSeries::new(
                [(best.epoch as f64, y.start), (best.epoch as f64, y.end)],
                14,
                10,
                style,
            ))?
            .label(format!("best epoch ({}, {rule})", best.epoch))
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
        let mut chart = figure_chart(root, "Loss per epoch", 150)
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
        let mut chart = figure_chart(root, "Validation CCC per epoch", 150)
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
        // Predicting the training mean scores CCC 0 on every epoch: the line to clear.
        let base = GREY.stroke_width(3);
        let (first, last) = (epoch_range(epochs).start, epoch_range(epochs).end);
        chart
            .draw_series(DashedLineSeries::new(
                [(first, 0.0), (last, 0.0)],
                6,
                8,
                base,
            ))?
            .label("mean baseline (CCC 0)")
            .legend(legend_line(base));
        best_marker(&mut chart, best, bottom..1.0)?;
        styled_legend!(chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use valar_core::DimMetrics;

    fn epoch(n: u32, val_loss: f64, ccc: Option<f64>) -> Epoch {
        let m = ccc.map(|ccc| DimMetrics {
            rmse: 0.3,
            pcc: 0.5,
            ccc,
            sagr: 0.7,
        });
        Epoch {
            epoch: n,
            train_loss: 1.0,
            val_loss: Some(val_loss),
            valence: m,
            arousal: m,
            baseline_rmse: [None, None],
        }
    }

    #[test]
    fn best_is_highest_ccc_like_the_trainer() {
        let epochs = [
            epoch(1, 0.5, Some(0.2)),
            epoch(2, 0.3, Some(0.4)),
            epoch(3, 0.2, Some(0.4)),
            epoch(4, 0.1, Some(f64::NAN)),
        ];
        let best = best_epoch(&epochs).map(|b| (b.epoch.epoch, b.rule));
        assert_eq!(best, Some((2, "highest mean validation CCC")));
    }

    #[test]
    fn without_metrics_best_is_lowest_loss() {
        let epochs = [
            epoch(1, 0.5, None),
            epoch(2, 0.3, None),
            epoch(3, 0.4, None),
        ];
        let best = best_epoch(&epochs).map(|b| (b.epoch.epoch, b.rule));
        assert_eq!(best, Some((2, "lowest validation loss")));
        assert!(best_epoch(&[]).is_none());
    }
}
