use crate::{PrepError, PrepareConfig, Reject};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use valar_core::{AuditRow, read_audit};

/// Drops the rows that `--exclude audit.csv` names, before stratification, each as a
/// reject whose reason is the finding's kind. Of a duplicate group the member with
/// the lowest row stays (unless another finding drops it), so one copy of each face
/// survives; every other finding drops its row. Findings about other tables (an
/// `--against` folder, a run's predictions) are ignored: their rows are not this
/// input's.
pub(crate) fn exclude_audited(
    table: &DataFrame,
    cfg: &PrepareConfig,
    rejects: &mut Vec<Reject>,
) -> Result<DataFrame, PrepError> {
    let Some(audit_path) = &cfg.exclude else {
        return Ok(table.clone());
    };
    let source = cfg.input.source();
    let findings: Vec<AuditRow> = read_audit(audit_path)?
        .into_iter()
        .filter(|f| cfg.exclude_kinds.is_empty() || cfg.exclude_kinds.contains(&f.kind))
        .filter(|f| same_file(Path::new(&f.source), source))
        .collect();
    let drops = rows_to_drop(&findings);

    let table_err = PrepError::table(source);
    let rows = table
        .column("row")
        .map_err(table_err)?
        .u64()
        .map_err(PrepError::table(source))?;
    let paths = table
        .column("path")
        .map_err(PrepError::table(source))?
        .str()
        .map_err(PrepError::table(source))?;
    let mut keep = Vec::with_capacity(table.height());
    for i in 0..table.height() {
        let row = rows.get(i).unwrap_or_default();
        let path = paths.get(i).unwrap_or_default();
        match drops.get(&row) {
            None => keep.push(true),
            Some(f) if f.path != path => {
                return Err(PrepError::Config(format!(
                    "{}: row {row} is `{}` there but `{path}` in {}: the audit was made of another version of this input (run valar audit again)",
                    audit_path.display(),
                    f.path,
                    source.display()
                )));
            }
            Some(f) => {
                keep.push(false);
                rejects.push(Reject {
                    row,
                    path: path.to_string(),
                    reason: f.kind.name(),
                    detail: format!("{}: {}", audit_path.display(), f.detail),
                });
            }
        }
    }
    table
        .filter(&BooleanChunked::from_slice("keep".into(), &keep))
        .map_err(PrepError::table(source))
}

/// The finding that drops each row: the first non-duplicate finding of the row, or
/// its duplicate finding when it is not its group's lowest row.
fn rows_to_drop(findings: &[AuditRow]) -> BTreeMap<u64, &AuditRow> {
    let mut keeper: BTreeMap<u64, u64> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.kind.is_duplicate()) {
        if let Some(g) = f.group {
            let k = keeper.entry(g).or_insert(f.row);
            *k = (*k).min(f.row);
        }
    }
    let mut drops: BTreeMap<u64, &AuditRow> = BTreeMap::new();
    let mut flagged: BTreeSet<u64> = BTreeSet::new();
    for f in findings.iter().filter(|f| !f.kind.is_duplicate()) {
        if flagged.insert(f.row) {
            drops.insert(f.row, f);
        }
    }
    for f in findings.iter().filter(|f| f.kind.is_duplicate()) {
        let kept = f.group.and_then(|g| keeper.get(&g)) == Some(&f.row);
        if !kept {
            drops.entry(f.row).or_insert(f);
        }
    }
    drops
}

/// Whether two paths name the same file, however each was spelled.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use valar_core::AuditKind;

    fn finding(row: u64, kind: AuditKind, group: Option<u64>) -> AuditRow {
        AuditRow {
            source: "in.csv".into(),
            row,
            path: format!("{row}.jpg"),
            kind,
            group,
            score: 0.0,
            split: None,
            expression: None,
            detail: String::new(),
        }
    }

    #[test]
    fn a_group_keeps_its_lowest_row_unless_a_flag_drops_it() {
        use AuditKind::*;
        let findings = [
            finding(9, NearDuplicate, Some(1)),
            finding(4, ExactDuplicate, Some(1)),
            finding(6, ExactDuplicate, Some(1)),
            finding(2, SameFace, Some(2)),
            finding(3, SameFace, Some(2)),
            finding(2, Dark, None),
            finding(12, Leak, Some(5)),
        ];
        let drops = rows_to_drop(&findings);
        let got: Vec<(u64, AuditKind)> = drops.iter().map(|(r, f)| (*r, f.kind)).collect();
        assert_eq!(
            got,
            [
                (2, Dark),
                (3, SameFace),
                (6, ExactDuplicate),
                (9, NearDuplicate),
                (12, Leak)
            ]
        );
    }
}
