use crate::pipeline::{Stratified, read_and_stratify};
use crate::{PrepError, PrepareConfig};
use serde::Serialize;
use std::collections::BTreeMap;

/// What stratification would give, without opening a single image.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Data rows read.
    pub rows_read: usize,
    /// Rows left after exclusions.
    pub usable: usize,
    /// Dropped rows per reason.
    pub rejects_by_reason: BTreeMap<String, usize>,
    /// Usable rows per cell.
    pub available: Vec<usize>,
    /// Rows that would be drawn per cell (before any image turns out unusable).
    pub drawn: Vec<usize>,
    /// Seconds spent reading, excluding and stratifying.
    pub seconds: f64,
}

/// Reads, excludes and stratifies exactly as [`crate::prepare`] does, and reports the
/// counts: `valar prepare --dry-run`, and the stratification benchmark.
pub fn plan_only(cfg: &PrepareConfig) -> Result<Plan, PrepError> {
    cfg.validate()?;
    let Stratified {
        loaded,
        usable,
        rejects,
        strata,
        read_seconds,
        stratify_seconds,
    } = read_and_stratify(cfg, &valar_core::NoProgress)?;
    let available: Vec<usize> = strata.order.iter().map(Vec::len).collect();
    let drawn = available
        .iter()
        .map(|&a| if cfg.keep_all { a } else { a.min(cfg.quota) })
        .collect();
    let mut by_reason = BTreeMap::new();
    for r in &rejects {
        *by_reason.entry(r.reason.to_string()).or_insert(0) += 1;
    }
    Ok(Plan {
        rows_read: loaded.rows_read,
        usable,
        rejects_by_reason: by_reason,
        available,
        drawn,
        seconds: read_seconds + stratify_seconds,
    })
}
