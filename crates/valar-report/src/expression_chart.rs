//! The expression head's confusion matrix: which class each labelled class was taken for.

use crate::ReportError;
use crate::canvas::{Drawn, FULL, INK, TICK, font, titled, viridis, write_png};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use valar_core::{EXPRESSIONS, ExpressionScore};

/// Cells whose share is below this are dark in viridis and take white text.
const WHITE_TEXT_BELOW: f64 = 0.55;

/// The test evaluation's confusion matrix.
pub(crate) const TEST_CONFUSION: &str = "test_expression_confusion.png";

/// Row shares of a confusion matrix: each labelled class's faces spread over the predicted
/// classes (its recall on the diagonal); a class without faces is a row of zeros.
pub(crate) fn row_shares(confusion: &[Vec<usize>]) -> Vec<Vec<f64>> {
    confusion
        .iter()
        .map(|row| {
            let n: usize = row.iter().sum();
            row.iter()
                .map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
                .collect()
        })
        .collect()
}

/// Draws the matrix as a heat map of row shares (rows: labelled class, columns: predicted
/// class), each cell showing its share in % and its face count, so a reader sees at once
/// which expressions the head confuses (on AffectNet, typically Fear with Surprise and
/// Contempt with Happy or Neutral).
pub(crate) fn confusion(
    score: &ExpressionScore,
    subject: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let shares = row_shares(&score.confusion);
    let k = shares.len();
    let names: Vec<&str> = if k == EXPRESSIONS.len() {
        EXPRESSIONS.to_vec()
    } else {
        Vec::new()
    };
    let title = format!(
        "Expression confusion, {subject}: accuracy {:.1}%, balanced {:.1}% ({} faces)",
        score.accuracy * 100.0,
        score.balanced_accuracy * 100.0,
        score.faces
    );
    write_png(path, FULL, |root| -> Drawn {
        let area = titled(root, &title)?;
        let label = |i: usize| {
            names
                .get(i)
                .map_or_else(|| format!("class {i}"), |n| n.to_string())
        };
        // Segmented axes put each class's name at the centre of its cell; the top row is the
        // first class.
        let last = k.saturating_sub(1);
        let mut chart = ChartBuilder::on(&area)
            .margin(20)
            .margin_right(60)
            .x_label_area_size(110)
            .y_label_area_size(200)
            // `(0..n).into_segmented()` holds the n + 1 segments 0..=n.
            .build_cartesian_2d((0..last).into_segmented(), (0..last).into_segmented())?;
        let centre = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => Some(*i),
            _ => None,
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k)
            .y_labels(k)
            .x_desc("predicted class")
            .y_desc("labelled class")
            .label_style(font(TICK))
            .axis_desc_style(font(TICK))
            .x_label_formatter(&|v| centre(v).filter(|&i| i < k).map(label).unwrap_or_default())
            .y_label_formatter(&|v| {
                centre(v)
                    .filter(|&i| i < k)
                    .map(|i| label(k - 1 - i))
                    .unwrap_or_default()
            })
            .draw()?;
        for (i, row) in shares.iter().enumerate() {
            let y = k - 1 - i;
            for (j, &share) in row.iter().enumerate() {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(j), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(j + 1), SegmentValue::Exact(y + 1)),
                    ],
                    viridis(share).filled(),
                )))?;
                let colour = if share < WHITE_TEXT_BELOW { WHITE } else { INK };
                let style = font(TICK)
                    .color(&colour)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(
                    format!("{:.0}% ({})", share * 100.0, score.confusion[i][j]),
                    (SegmentValue::CenterOf(j), SegmentValue::CenterOf(y)),
                    style,
                )))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_recall_shares() {
        let s = row_shares(&[vec![3, 1], vec![0, 0]]);
        assert_eq!(s, vec![vec![0.75, 0.25], vec![0.0, 0.0]]);
    }

    #[test]
    fn draws_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let mut counts = vec![vec![0usize; 8]; 8];
        for (i, row) in counts.iter_mut().enumerate() {
            row[i] = 10 + i;
            row[(i + 1) % 8] = 3;
        }
        let score = ExpressionScore {
            faces: counts.iter().flatten().sum(),
            accuracy: 0.8,
            balanced_accuracy: 0.79,
            confusion: counts,
        };
        let path = dir.path().join(TEST_CONFUSION);
        confusion(&score, "test set", &path).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), FULL);
    }
}
