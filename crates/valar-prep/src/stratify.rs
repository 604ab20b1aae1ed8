use crate::Stratify;
use polars::prelude::*;
use valar_core::{Dimension, SourceHistograms};

/// Bins per axis of the source-label histograms in `prep.json`.
const HISTOGRAM_BINS: usize = 20;

/// The interval (0-based) of a label in `k` equal intervals over [-1, 1]; the last
/// interval is closed, so +1 belongs to it.
///
/// A label on an edge belongs to the interval above it. Edges like −0.8 are not exact
/// in binary, so (−0.8 + 1) / 2 · 10 comes out as 0.99999…; the 1e-9 nudge puts
/// it back on the right side. AffectNet's labels have six decimals, far coarser.
pub(crate) fn interval_of(value: f64, k: usize) -> usize {
    let bin = ((value + 1.0) / 2.0 * k as f64 + 1e-9).floor();
    (bin.max(0.0) as usize).min(k - 1)
}

/// Interval edges over [-1, 1].
pub(crate) fn edges(k: usize) -> Vec<f64> {
    (0..=k).map(|i| -1.0 + 2.0 * i as f64 / k as f64).collect()
}

/// The usable rows, shuffled with the seed, and for each cell the positions of its
/// rows in shuffled order: drawing the first `quota` of a cell is a seeded sample.
pub(crate) struct Strata {
    /// The shuffled table.
    pub table: DataFrame,
    /// Row positions per cell, in shuffled order.
    pub order: Vec<Vec<usize>>,
    /// Intervals per axis.
    pub k: usize,
}

impl Strata {
    /// How many faces each cell is to give: its quota, or all its rows without one.
    pub(crate) fn wanted(&self, quota: Option<usize>) -> Vec<usize> {
        self.order
            .iter()
            .map(|o| quota.map_or(o.len(), |q| q.min(o.len())))
            .collect()
    }
}

pub(crate) fn stratify(
    table: &DataFrame,
    how: Stratify,
    k: usize,
    seed: u64,
) -> PolarsResult<Strata> {
    let n = table.height();
    // polars' seeded shuffle: the same seed and input give the same order.
    let shuffled = table.sample_n_literal(n, false, Some(true), Some(seed))?;
    let valence: Vec<f64> = shuffled
        .column("valence")?
        .f64()?
        .into_no_null_iter()
        .collect();
    let arousal: Vec<f64> = shuffled
        .column("arousal")?
        .f64()?
        .into_no_null_iter()
        .collect();
    let cells = match how {
        Stratify::Grid => k * k,
        Stratify::One(_) => k,
    };
    let cell: Vec<usize> = (0..n)
        .map(|i| match how {
            Stratify::One(Dimension::Valence) => interval_of(valence[i], k),
            Stratify::One(Dimension::Arousal) => interval_of(arousal[i], k),
            Stratify::Grid => interval_of(valence[i], k) * k + interval_of(arousal[i], k),
        })
        .collect();
    let mut order = vec![Vec::new(); cells];
    for (pos, &c) in cell.iter().enumerate() {
        order[c].push(pos);
    }
    Ok(Strata {
        table: shuffled,
        order,
        k,
    })
}

/// Label histograms of the usable rows, before sampling.
pub(crate) fn source_histograms(table: &DataFrame) -> PolarsResult<SourceHistograms> {
    let bins = HISTOGRAM_BINS;
    let mut h = SourceHistograms {
        bins,
        valence: vec![0; bins],
        arousal: vec![0; bins],
        density: vec![vec![0; bins]; bins],
    };
    let valence = table.column("valence")?.f64()?;
    let arousal = table.column("arousal")?.f64()?;
    for (v, a) in valence.into_no_null_iter().zip(arousal.into_no_null_iter()) {
        let (vb, ab) = (interval_of(v, bins), interval_of(a, bins));
        h.valence[vb] += 1;
        h.arousal[ab] += 1;
        h.density[vb][ab] += 1;
    }
    Ok(h)
}

/// How many of a cell's `n` faces go to validation: the rounded share, so each
/// interval is represented in both splits in proportion.
pub(crate) fn val_count(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).min(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(values: &[(f64, f64)]) -> DataFrame {
        let n = values.len();
        DataFrame::new(
            n,
            vec![
                Column::new("row".into(), (1..=n as u64).collect::<Vec<_>>()),
                Column::new(
                    "valence".into(),
                    values.iter().map(|v| v.0).collect::<Vec<_>>(),
                ),
                Column::new(
                    "arousal".into(),
                    values.iter().map(|v| v.1).collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn intervals_are_equal_and_closed_at_one() {
        assert_eq!(interval_of(-1.0, 10), 0);
        assert_eq!(interval_of(-0.8, 10), 1);
        assert_eq!(interval_of(0.6, 10), 8);
        assert_eq!(interval_of(-0.800001, 10), 0);
        assert_eq!(interval_of(-0.0001, 10), 4);
        assert_eq!(interval_of(0.0, 10), 5);
        assert_eq!(interval_of(0.999, 10), 9);
        assert_eq!(interval_of(1.0, 10), 9);
        assert_eq!(edges(4), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn counts_per_interval_and_grid_cells() {
        let t = table(&[
            (-0.9, -0.9),
            (-0.9, 0.9),
            (0.9, 0.9),
            (0.9, 0.95),
            (0.1, -0.1),
        ]);
        let s = stratify(&t, Stratify::One(Dimension::Arousal), 2, 1).unwrap();
        let counts: Vec<usize> = s.order.iter().map(Vec::len).collect();
        assert_eq!(counts, [2, 3]);
        let g = stratify(&t, Stratify::Grid, 2, 1).unwrap();
        let counts: Vec<usize> = g.order.iter().map(Vec::len).collect();
        // cell = valence_bin * 2 + arousal_bin
        assert_eq!(counts, [1, 1, 1, 2]);
        let v = stratify(&t, Stratify::One(Dimension::Valence), 2, 1).unwrap();
        assert_eq!(v.order.iter().map(Vec::len).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let values: Vec<(f64, f64)> = (0..200).map(|i| (0.0, (i as f64 / 100.0) - 1.0)).collect();
        let t = table(&values);
        let rows = |seed| {
            let s = stratify(&t, Stratify::One(Dimension::Arousal), 4, seed).unwrap();
            let r: Vec<u64> = s
                .table
                .column("row")
                .unwrap()
                .u64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            s.order
                .iter()
                .map(|o| o.iter().map(|&p| r[p]).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(7), rows(7));
        assert_ne!(rows(7), rows(8));
        // Every row lands in exactly one cell.
        let mut all: Vec<u64> = rows(7).into_iter().flatten().collect();
        all.sort();
        assert_eq!(all, (1..=200).collect::<Vec<_>>());
    }

    #[test]
    fn validation_share_is_rounded_per_interval() {
        assert_eq!(val_count(1000, 0.1), 100);
        assert_eq!(val_count(15, 0.1), 2);
        assert_eq!(val_count(4, 0.1), 0);
        assert_eq!(val_count(3, 0.0), 0);
    }

    #[test]
    fn histograms_count_every_row() {
        let t = table(&[(-1.0, 1.0), (0.0, 0.0), (0.99, -0.99)]);
        let h = source_histograms(&t).unwrap();
        assert_eq!(h.valence.iter().sum::<u64>(), 3);
        assert_eq!(h.density[0][19], 1);
        assert_eq!(h.density[10][10], 1);
        assert_eq!(h.density[19][0], 1);
    }
}
