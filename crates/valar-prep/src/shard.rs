//! `valar prepare --shard K/N`: every shard computes the same seeded plan (read, exclude,
//! stratify) and preprocesses a share of whole cells. [`crate::faces`] picks a cell's
//! faces (replacing failed images) from that cell's rows alone, so a shard's faces for its
//! cells are exactly the single run's, whatever N is.

use crate::stratify::Strata;
use crate::{PrepError, PrepareConfig, Reject};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use valar_core::{PrepInfo, VERSION, write_atomic};

/// Version of `shard.json`'s layout.
const SHARD_FORMAT: u32 = 1;

/// The file that marks a finished shard folder and describes its plan.
pub const SHARD_FILE: &str = "shard.json";

/// One shard of a sharded prepare: `index` of `count`, counted from 0 (as Slurm's
/// `SLURM_ARRAY_TASK_ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: usize,
    /// How many shards share the plan.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `K/N`, with 0 ≤ K < N.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard K/N (K from 0 to N-1, e.g. 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// `shard.json`: which shard of which plan a folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Layout version.
    pub format: u32,
    /// valar's version.
    pub valar_version: String,
    /// Which shard.
    pub shard: Shard,
    /// The plan's fingerprint: a hash of `settings` and `input_digest`.
    pub plan: String,
    /// Every setting that shapes the output (prep.json's params without out, force, shard).
    pub settings: serde_json::Value,
    /// A hash of the stratified table and the rows excluded before any image was opened.
    pub input_digest: String,
    /// The cells (intervals) this shard preprocessed.
    pub cells: Vec<usize>,
    /// Cells in the plan.
    pub cell_count: usize,
}

impl ShardInfo {
    /// Reads `shard.json` from a shard folder.
    pub fn read(dir: &Path) -> Result<Self, PrepError> {
        let path = dir.join(SHARD_FILE);
        let text = std::fs::read_to_string(&path).map_err(PrepError::io(&path))?;
        serde_json::from_str(&text)
            .map_err(|e| PrepError::Config(format!("{}: {e}", path.display())))
    }
}

/// The most shards a plan is cut into: Slurm's default largest array (`MaxArraySize`)
/// is 1,001 tasks, and each shard is a folder that `valar merge` opens.
pub const MAX_SHARDS: usize = 1000;

/// Refuses settings a shard cannot honour.
pub(crate) fn validate(cfg: &PrepareConfig) -> Result<(), PrepError> {
    let bad = |reason: String| {
        Err(PrepError::InvalidSetting {
            key: "shard",
            reason,
        })
    };
    match cfg.shard {
        Some(s) if s.count == 0 || s.index >= s.count => bad(format!("{s}: K must lie in 0..N")),
        Some(s) if s.count > MAX_SHARDS => {
            bad(format!("{s}: N is over the limit of {MAX_SHARDS} shards"))
        }
        // The PNG folder numbers faces by their place in the merged set, which a shard
        // cannot know.
        Some(_) if cfg.png => Err(PrepError::Conflict {
            key: "png",
            other: "shard",
            why: "write PNGs from the merged folder's run".into(),
        }),
        _ => Ok(()),
    }
}

/// A shard's share of the plan.
pub(crate) struct Share {
    shard: Shard,
    /// Whether each cell is this shard's.
    pub owned: Vec<bool>,
    input_digest: String,
}

impl Share {
    /// The share of `cfg.shard` (none for a single-process run). Cells go, largest first,
    /// to the shard with the least work so far (ties to the lower shard), so shards are
    /// balanced even when cells are not (`--all`, short cells).
    pub(crate) fn new(
        cfg: &PrepareConfig,
        strata: &Strata,
        plan_rejects: &[Reject],
        quota: Option<usize>,
    ) -> Result<Option<Self>, PrepError> {
        let Some(shard) = cfg.shard else {
            return Ok(None);
        };
        let owner = assign(&strata.wanted(quota), shard.count);
        let input_digest =
            digest(strata, plan_rejects).map_err(PrepError::table(cfg.input.source()))?;
        Ok(Some(Share {
            shard,
            owned: owner.iter().map(|&o| o == shard.index).collect(),
            input_digest,
        }))
    }

    /// Keeps the rows excluded before any image was opened in shard 0 only, so the merge
    /// counts each once.
    pub(crate) fn keep_plan_rejects(&self, rejects: &mut Vec<Reject>) {
        if self.shard.index != 0 {
            rejects.clear();
        }
    }

    /// Limits the short-interval warnings to this shard's cells: the others are empty here
    /// by design.
    pub(crate) fn restrict(&self, info: &mut PrepInfo) {
        info.short_intervals
            .retain(|&c| self.owned.get(c as usize).copied().unwrap_or(false));
    }

    /// Writes `shard.json` into the shard folder.
    pub(crate) fn write(&self, dir: &Path, info: &PrepInfo) -> Result<(), PrepError> {
        let settings = plan_settings(&info.params);
        let shard_info = ShardInfo {
            format: SHARD_FORMAT,
            valar_version: VERSION.to_string(),
            shard: self.shard,
            plan: fingerprint(&settings, &self.input_digest),
            settings,
            input_digest: self.input_digest.clone(),
            cells: (0..self.owned.len()).filter(|&c| self.owned[c]).collect(),
            cell_count: self.owned.len(),
        };
        write_atomic(&dir.join(SHARD_FILE), |w| {
            serde_json::to_writer_pretty(&mut *w, &shard_info).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })?;
        Ok(())
    }
}

/// The settings that make a plan: prep.json's params less the ones that only say where
/// and how this process writes.
pub(crate) fn plan_settings(params: &serde_json::Value) -> serde_json::Value {
    let mut settings = params.clone();
    if let Some(obj) = settings.as_object_mut() {
        for key in ["out", "force", "shard"] {
            obj.remove(key);
        }
    }
    settings
}

/// The plan's fingerprint: valar's version, the settings and the input digest, hashed.
pub(crate) fn fingerprint(settings: &serde_json::Value, input_digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(VERSION.as_bytes());
    h.update(b"\0");
    h.update(settings.to_string().as_bytes());
    h.update(b"\0");
    h.update(input_digest.as_bytes());
    format!("{:x}", h.finalize())
}

/// The owner of each cell: largest first to the least-loaded shard.
fn assign(want: &[usize], count: usize) -> Vec<usize> {
    let mut cells: Vec<usize> = (0..want.len()).collect();
    cells.sort_by(|&a, &b| want[b].cmp(&want[a]).then(a.cmp(&b)));
    let mut load = vec![0usize; count];
    let mut owner = vec![0usize; want.len()];
    for c in cells {
        let k = (0..count).min_by_key(|&k| (load[k], k)).unwrap_or_default();
        owner[c] = k;
        load[k] += want[c].max(1);
    }
    owner
}

/// Feeds a hasher through `std::io::Write`, so polars can write a table straight into it.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A hash of the shuffled table (which fixes every cell's order) and of the rows dropped
/// before any image was opened.
fn digest(strata: &Strata, plan_rejects: &[Reject]) -> PolarsResult<String> {
    let mut w = HashWriter(Sha256::new());
    let mut table = strata.table.clone();
    CsvWriter::new(&mut w).finish(&mut table)?;
    for r in plan_rejects {
        w.0.update(format!("{}\0{}\0{}\0{}\n", r.row, r.path, r.reason, r.detail).as_bytes());
    }
    Ok(format!("{:x}", w.0.finalize()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_k_slash_n() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_cell_gets_one_owner_and_loads_are_balanced() {
        let want = [100, 100, 100, 100, 40, 30, 20, 10, 0, 0];
        let owner = assign(&want, 4);
        let mut load = [0usize; 4];
        for (c, &k) in owner.iter().enumerate() {
            load[k] += want[c];
        }
        assert_eq!(load.iter().sum::<usize>(), 500);
        assert!(load.iter().all(|&l| (100..=150).contains(&l)), "{load:?}");
        // More shards than cells: the extra shards get nothing, nobody gets two.
        let owner = assign(&[5, 5], 4);
        assert_eq!(owner, vec![0, 1]);
    }

    #[test]
    fn settings_drop_out_force_and_shard() {
        let params =
            serde_json::json!({"out": "a", "force": true, "shard": {"index": 1}, "seed": 3});
        assert_eq!(plan_settings(&params), serde_json::json!({"seed": 3}));
    }
}
