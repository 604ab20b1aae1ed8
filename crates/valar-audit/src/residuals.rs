use crate::AuditError;
use crate::flags::Flag;
use std::path::Path;
use valar_core::{AuditKind, PREDICTIONS_COLUMNS, RunDir};

/// A face of a run's predictions with a large residual.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Residual {
    /// `predictions.csv`, as the finding's source.
    pub source: String,
    /// The prediction's `index` (the face's index in the evaluated manifest).
    pub index: u64,
    /// The image path.
    pub path: String,
    /// The flag: residual as score.
    pub flag: Flag,
}

/// The `top` faces of `run/predictions.csv` with the largest residual, the Euclidean
/// distance between label and prediction over the dimensions the run predicts.
/// Ties keep file order, so the ranking is deterministic.
pub(crate) fn largest(run: &Path, top: usize) -> Result<Vec<Residual>, AuditError> {
    let path = RunDir::new(run).predictions();
    if !path.is_file() {
        return Err(AuditError::format(
            &path,
            "not found: --run takes a training run folder (made by valar train) holding predictions.csv",
        ));
    }
    let bad = |reason: String| AuditError::format(&path, reason);
    let mut reader = csv::Reader::from_path(&path).map_err(|e| bad(e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if header != PREDICTIONS_COLUMNS {
        return Err(bad(format!(
            "unexpected columns: found [{}], expected [{}]",
            header.join(", "),
            PREDICTIONS_COLUMNS.join(", ")
        )));
    }
    let mut scored = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let r = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let num = |k: usize| -> Result<Option<f64>, AuditError> {
            let cell = r.get(k).unwrap_or("").trim();
            if cell.is_empty() {
                return Ok(None);
            }
            cell.parse().map(Some).map_err(|_| {
                bad(format!(
                    "line {line}: {} `{cell}` is not a number",
                    PREDICTIONS_COLUMNS[k]
                ))
            })
        };
        let index: u64 = r
            .get(0)
            .unwrap_or("")
            .parse()
            .map_err(|_| bad(format!("line {line}: index is not a whole number")))?;
        let mut sum = 0.0;
        let mut parts = Vec::new();
        for (name, t, p) in [("valence", 2, 3), ("arousal", 4, 5)] {
            if let (Some(t), Some(p)) = (num(t)?, num(p)?) {
                sum += (t - p).powi(2);
                parts.push(format!("{name} {t:+.3} predicted {p:+.3}"));
            }
        }
        scored.push((
            sum.sqrt(),
            index,
            r.get(1).unwrap_or("").to_string(),
            parts.join(", "),
        ));
    }
    let total = scored.len();
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by(|&a, &b| scored[b].0.total_cmp(&scored[a].0).then(a.cmp(&b)));
    Ok(order
        .into_iter()
        .take(top)
        .enumerate()
        .map(|(rank, k)| {
            let (score, index, p, parts) = scored[k].clone();
            Residual {
                source: path.display().to_string(),
                index,
                path: p,
                flag: Flag {
                    kind: AuditKind::Residual,
                    score,
                    detail: format!("residual {score:.3}, rank {} of {total}: {parts}", rank + 1),
                },
            }
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_residual_over_the_predicted_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            RunDir::new(dir.path()).predictions(),
            format!(
                "{}\n0,a.jpg,0.5,0.4,,\n1,b.jpg,0.5,-0.5,,\n2,c.jpg,0.0,0.3,,\n",
                PREDICTIONS_COLUMNS.join(",")
            ),
        )
        .unwrap();
        let top = largest(dir.path(), 2).unwrap();
        let got: Vec<(u64, &str)> = top.iter().map(|r| (r.index, r.path.as_str())).collect();
        assert_eq!(got, [(1, "b.jpg"), (2, "c.jpg")]);
        assert!((top[0].flag.score - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_bad_cell_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            RunDir::new(dir.path()).predictions(),
            format!("{}\n0,a.jpg,0.5,x,,\n", PREDICTIONS_COLUMNS.join(",")),
        )
        .unwrap();
        let err = largest(dir.path(), 2).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("valence_pred"),
            "{err}"
        );
    }
}
