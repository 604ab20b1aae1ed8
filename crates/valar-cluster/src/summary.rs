//! `summary.csv`, `summary.md` and `summary.png` of a sweep folder: per group of cells
//! (those that differ only in their seed), each split's and dimension's metrics, mean ± sd
//! over the seeds.

use crate::cell::CellMetrics;
use crate::csv_field::csv_field;
use crate::sweep::show;
use crate::{ClusterError, SweepDir};
use std::collections::BTreeMap;
use std::path::PathBuf;
use valar_core::{DimMetrics, Dimension, write_atomic};
use valar_report::{SweepGroup, mean_sd, sweep_chart};

/// What [`summarize`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// `summary.csv`.
    pub csv: PathBuf,
    /// `summary.md`.
    pub markdown: PathBuf,
    /// `summary.png`.
    pub png: PathBuf,
    /// Cells scored.
    pub scored: usize,
    /// Cells not yet scored (left out of the table).
    pub pending: Vec<usize>,
}

/// A metric's column name and how to read it.
type MetricColumn = (&'static str, fn(&DimMetrics) -> f64);

/// Cells that differ only in their seed: the label, the crossed values but the seed, and
/// each seed's scores.
type Group = (String, Vec<(String, String)>, Vec<CellMetrics>);

/// The four metrics, in table order, with their accessors.
const METRICS: [MetricColumn; 4] = [
    ("ccc", |m| m.ccc),
    ("pcc", |m| m.pcc),
    ("rmse", |m| m.rmse),
    ("sagr", |m| m.sagr),
];

/// Writes the sweep's table and figure from the cells scored so far.
pub fn summarize(dir: &SweepDir) -> Result<Summary, ClusterError> {
    let (groups, pending) = scored_groups(dir)?;
    let chart_groups: Vec<SweepGroup> = groups
        .iter()
        .map(|(label, _, cells)| SweepGroup {
            label: label.clone(),
            val: per_dim(cells.iter().map(|c| &c.val)),
            test: per_dim(cells.iter().filter_map(|c| c.test.as_ref())),
        })
        .collect();
    let mut tables = Tables::new(dir, &pending);
    for ((label, values, _), g) in groups.iter().zip(&chart_groups) {
        for (split, scores) in [("val", &g.val), ("test", &g.test)] {
            for (dim, per_seed) in scores {
                tables.row(label, values, split, *dim, per_seed);
            }
        }
    }
    tables
        .md
        .push_str("\n![The sweep's metrics, mean ± sd over seeds](summary.png)\n");

    let csv = dir.root.join("summary.csv");
    let markdown = dir.root.join("summary.md");
    let png = dir.root.join("summary.png");
    write_atomic(&csv, |w| w.write_all(tables.csv.as_bytes()))?;
    write_atomic(&markdown, |w| w.write_all(tables.md.as_bytes()))?;
    let seeds = dir
        .sweep
        .cross
        .iter()
        .find(|(k, _)| k == "seed")
        .map_or(1, |(_, v)| v.len());
    sweep_chart(
        &png,
        &format!("Sweep: {} groups × {seeds} seeds", chart_groups.len()),
        &chart_groups,
    )?;
    Ok(Summary {
        csv,
        markdown,
        png,
        scored: dir.cells.len() - pending.len(),
        pending,
    })
}

/// The scored cells in groups (in order of each group's first cell), and the indices of
/// the cells not scored yet; an error when no cell is scored.
fn scored_groups(dir: &SweepDir) -> Result<(Vec<Group>, Vec<usize>), ClusterError> {
    let mut groups: Vec<Group> = Vec::new();
    let mut pending = Vec::new();
    for cell in &dir.cells {
        let path = dir.metrics_path(cell);
        if !path.is_file() {
            pending.push(cell.index);
            continue;
        }
        let metrics = CellMetrics::read(&path)?;
        let label = cell.group_label();
        match groups.iter_mut().find(|(l, _, _)| *l == label) {
            Some(g) => g.2.push(metrics),
            None => {
                let values = cell
                    .values
                    .iter()
                    .filter(|(k, _)| k != "seed")
                    .map(|(k, v)| (k.clone(), show(v)))
                    .collect();
                groups.push((label, values, vec![metrics]));
            }
        }
    }
    if groups.is_empty() {
        return Err(ClusterError::format(
            &dir.root,
            "no cell has been trained and scored yet (run `valar sweep run` first)",
        ));
    }
    Ok((groups, pending))
}

/// The text of `summary.csv` and `summary.md`, a row at a time.
struct Tables {
    csv: String,
    md: String,
}

impl Tables {
    /// Both tables' headers: the CSV's columns are the group, each crossed key but the
    /// seed, the split, dimension and seed count, then each metric's mean and sd.
    fn new(dir: &SweepDir, pending: &[usize]) -> Self {
        let mut columns = vec!["group".to_string()];
        columns.extend(
            dir.sweep
                .cross
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "seed"),
        );
        columns.extend(["split", "dimension", "seeds"].map(String::from));
        for (name, _) in METRICS {
            columns.extend([format!("{name}_mean"), format!("{name}_sd")]);
        }
        let mut md = format!(
            "# Sweep summary\n\n{} cells scored{}; mean ± sd over seeds (sample sd; 0 for one seed).\n\n",
            dir.cells.len() - pending.len(),
            if pending.is_empty() {
                String::new()
            } else {
                format!(", {} not yet ({pending:?})", pending.len())
            }
        );
        md.push_str("| group | split | dimension | seeds | CCC | PCC | RMSE | SAGR |\n");
        md.push_str("|---|---|---|---:|---:|---:|---:|---:|\n");
        Tables {
            csv: columns.join(",") + "\n",
            md,
        }
    }

    /// One group's metrics on one split and dimension, mean ± sd over its seeds.
    fn row(
        &mut self,
        label: &str,
        values: &[(String, String)],
        split: &str,
        dim: Dimension,
        per_seed: &[DimMetrics],
    ) {
        let mut row = vec![csv_field(label)];
        row.extend(values.iter().map(|(_, v)| csv_field(v)));
        row.extend([
            split.to_string(),
            dim.name().to_string(),
            per_seed.len().to_string(),
        ]);
        let mut cells = Vec::new();
        for (_, get) in METRICS {
            let v: Vec<f64> = per_seed.iter().map(get).collect();
            let (mean, sd) = mean_sd(&v);
            row.extend([format!("{mean:.6}"), format!("{sd:.6}")]);
            cells.push(format!("{mean:.3} ± {sd:.3}"));
        }
        self.csv.push_str(&(row.join(",") + "\n"));
        self.md.push_str(&format!(
            "| {label} | {split} | {} | {} | {} |\n",
            dim.name(),
            per_seed.len(),
            cells.join(" | ")
        ));
    }
}

/// Each dimension's per-seed metrics, in valar's dimension order.
fn per_dim<'a>(
    scores: impl Iterator<Item = &'a BTreeMap<String, DimMetrics>>,
) -> Vec<(Dimension, Vec<DimMetrics>)> {
    let scores: Vec<_> = scores.collect();
    Dimension::ALL
        .into_iter()
        .map(|d| {
            let v: Vec<DimMetrics> = scores
                .iter()
                .filter_map(|s| s.get(d.name()).copied())
                .collect();
            (d, v)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}
