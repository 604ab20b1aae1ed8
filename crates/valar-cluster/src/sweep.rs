//! A sweep file crosses training settings:
//!
//! ```toml
//! test = "prepared-test"     # optional: a prepared set every cell's model is scored on
//! [base]                     # any valar.toml key, shared by every cell
//! data = "prepared"
//! epochs = 10
//! [cross]                    # every combination of these values is one cell
//! seed = [0, 1, 2]
//! lr = [1e-3, 3e-4]
//! ```
//!
//! Its folder holds `sweep.toml` (the file with its paths made absolute), `cells.csv` and
//! `cells/<name>/` per cell: `valar.toml` (the cell's settings), `run/` (an ordinary
//! `valar train` run folder) and, once scored, `metrics.json`.

use crate::ClusterError;
use crate::csv_field::csv_field;
use std::path::{Path, PathBuf};
use valar_core::write_atomic;
use valar_train::TrainOverrides;

/// A parsed sweep file.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// A prepared set every cell's model is also scored on.
    pub test: Option<PathBuf>,
    /// Settings every cell shares.
    pub base: toml::Table,
    /// The settings crossed, each with its values, in cell order (the seed varies fastest).
    pub cross: Vec<(String, Vec<toml::Value>)>,
}

/// One cell of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Its position, 0-based (its Slurm array task id).
    pub index: usize,
    /// Its folder name under `cells/`: the index and its crossed values.
    pub name: String,
    /// Its crossed values.
    pub values: Vec<(String, toml::Value)>,
    /// Its full settings: the base with the crossed values over it.
    pub overrides: TrainOverrides,
}

impl Cell {
    /// The crossed values but the seed, as `key=value` words: what the cell shares with
    /// the other seeds of its group.
    pub fn group_label(&self) -> String {
        let words: Vec<String> = self
            .values
            .iter()
            .filter(|(k, _)| k != "seed")
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect();
        if words.is_empty() {
            "all cells".to_string()
        } else {
            words.join(" ")
        }
    }
}

/// A value as a word: strings without quotes.
pub(crate) fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The most cells a sweep may have at all: each is a folder and a training run.
pub const MAX_CELLS: usize = 100_000;

/// The most cells a sweep is expanded to without `--yes`: more is seldom meant (a
/// list of a thousand learning rates is a typo more often than a plan).
pub const CONFIRM_CELLS: usize = 1_000;

/// Keys whose values are paths, taken relative to the sweep file's folder.
const PATH_KEYS: [&str; 1] = ["data"];

impl Sweep {
    /// Reads a sweep file; relative paths are taken from its folder.
    pub fn read(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(ClusterError::io(path))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::path::absolute(parent).map_err(ClusterError::io(path))?;
        Self::parse(&text, &dir).map_err(|reason| ClusterError::format(path, reason))
    }

    /// Parses a sweep file's text, with relative paths taken from `dir`.
    pub(crate) fn parse(text: &str, dir: &Path) -> Result<Self, String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let test = match table.remove("test") {
            Some(mut v @ toml::Value::String(_)) => {
                absolute(&mut v, dir);
                Some(PathBuf::from(show(&v)))
            }
            Some(other) => return Err(format!("`test` must be a folder path, not {other}")),
            None => None,
        };
        let mut base = match table.remove("base") {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err("`[base]` must be a table of valar.toml keys".into()),
            None => toml::Table::new(),
        };
        let cross = table.remove("cross");
        // Before the missing `[cross]`: a misspelt `[crosss]` is the likelier mistake.
        if let Some((key, value)) = table.iter().next() {
            let what = match value {
                toml::Value::Table(_) => format!("table `[{key}]`"),
                _ => format!("key `{key}`"),
            };
            return Err(format!(
                "unknown {what} (a sweep file has `test`, `[base]` and `[cross]`)"
            ));
        }
        let mut cross = match cross {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err("`[cross]` must be a table of keys and value lists".into()),
            None => return Err("no `[cross]` table: nothing to sweep over".into()),
        };
        for key in PATH_KEYS {
            base.get_mut(key).into_iter().for_each(|v| absolute(v, dir));
            if let Some(toml::Value::Array(values)) = cross.get_mut(key) {
                values.iter_mut().for_each(|v| absolute(v, dir));
            }
        }
        let cross = crossed(&base, cross)?;
        let sweep = Sweep { test, base, cross };
        sweep.check_size()?;
        // Every cell must be a valid run, before anything is written.
        sweep.cells()?;
        Ok(sweep)
    }

    /// Refuses a sweep of more than [`MAX_CELLS`] cells, counted before a single cell is
    /// built: the product of a few long lists grows past any memory (or `usize`).
    fn check_size(&self) -> Result<(), String> {
        match self.cell_count() {
            Some(n) if n <= MAX_CELLS => Ok(()),
            count => {
                let sizes: Vec<String> = self
                    .cross
                    .iter()
                    .map(|(k, v)| format!("{} {k}", v.len()))
                    .collect();
                Err(format!(
                    "{} cells ({}) is over the limit of {MAX_CELLS}",
                    count.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                    sizes.join(" × ")
                ))
            }
        }
    }

    /// How many cells the sweep has: the product of its lists' lengths, `None` when
    /// that overflows.
    pub fn cell_count(&self) -> Option<usize> {
        self.cross
            .iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()))
    }

    /// The cells, in order: every combination of the crossed values, the last key (the
    /// seed, when crossed) varying fastest.
    pub fn cells(&self) -> Result<Vec<Cell>, String> {
        let total: usize = self.cross.iter().map(|(_, v)| v.len()).product();
        (0..total)
            .map(|index| {
                let mut rest = index;
                let mut values =
                    vec![(String::new(), toml::Value::Boolean(false)); self.cross.len()];
                for (slot, (key, options)) in self.cross.iter().enumerate().rev() {
                    values[slot] = (key.clone(), options[rest % options.len()].clone());
                    rest /= options.len();
                }
                let mut table = self.base.clone();
                table.extend(values.iter().cloned());
                let overrides: TrainOverrides = toml::Value::Table(table)
                    .try_into()
                    .map_err(|e| format!("cell {index}: {e}"))?;
                overrides
                    .clone()
                    .resolve()
                    .map_err(|e| format!("cell {index}: {e}"))?;
                let words: Vec<String> = values
                    .iter()
                    .map(|(k, v)| format!("{k}-{}", show(v)))
                    .collect();
                let name = sanitize(&format!("{index:03}_{}", words.join("_")));
                Ok(Cell {
                    index,
                    name,
                    values,
                    overrides,
                })
            })
            .collect()
    }

    /// The file as stored in the sweep folder: absolute paths, a stable layout.
    fn normalized(&self) -> Result<String, String> {
        let mut table = toml::Table::new();
        if let Some(test) = &self.test {
            table.insert("test".into(), test.display().to_string().into());
        }
        table.insert("base".into(), self.base.clone().into());
        let cross: toml::Table = self
            .cross
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::Array(v.clone())))
            .collect();
        table.insert("cross".into(), cross.into());
        toml::to_string_pretty(&table).map_err(|e| e.to_string())
    }

    /// Writes the sweep folder `out` (or checks that `out` already holds this very sweep,
    /// so that an interrupted sweep continues where it stopped).
    pub fn expand(&self, out: &Path) -> Result<SweepDir, ClusterError> {
        let text = self
            .normalized()
            .map_err(|e| ClusterError::format(out, e))?;
        let stored = out.join("sweep.toml");
        if stored.is_file() {
            let old = std::fs::read_to_string(&stored).map_err(ClusterError::io(&stored))?;
            if old != text {
                return Err(ClusterError::format(
                    out,
                    "holds another sweep (its sweep.toml differs); choose another folder",
                ));
            }
            return SweepDir::open(out);
        }
        let cells = self.cells().map_err(|e| ClusterError::format(out, e))?;
        for cell in &cells {
            let dir = out.join("cells").join(&cell.name);
            std::fs::create_dir_all(&dir).map_err(ClusterError::io(&dir))?;
            let toml = toml::to_string_pretty(&cell.overrides)
                .map_err(|e| ClusterError::format(&dir, e.to_string()))?;
            write_atomic(&dir.join("valar.toml"), |w| w.write_all(toml.as_bytes()))?;
        }
        let mut csv = String::from("index,name");
        for (key, _) in &self.cross {
            csv.push(',');
            csv.push_str(key);
        }
        csv.push('\n');
        for cell in &cells {
            csv.push_str(&format!("{},{}", cell.index, cell.name));
            for (_, v) in &cell.values {
                csv.push(',');
                csv.push_str(&csv_field(&show(v)));
            }
            csv.push('\n');
        }
        write_atomic(&out.join("cells.csv"), |w| w.write_all(csv.as_bytes()))?;
        // sweep.toml last: it marks the folder as complete.
        write_atomic(&stored, |w| w.write_all(text.as_bytes()))?;
        SweepDir::open(out)
    }
}

/// A relative path (a string value) taken from `dir`.
fn absolute(v: &mut toml::Value, dir: &Path) {
    if let toml::Value::String(s) = v
        && Path::new(s.as_str()).is_relative()
    {
        *s = dir.join(s.as_str()).display().to_string();
    }
}

/// `[cross]`'s keys with their values, the seed last (so that it varies fastest); each a
/// non-empty list and none also in `[base]`.
fn crossed(
    base: &toml::Table,
    mut cross: toml::Table,
) -> Result<Vec<(String, Vec<toml::Value>)>, String> {
    let mut keys: Vec<String> = cross.keys().filter(|k| *k != "seed").cloned().collect();
    if cross.contains_key("seed") {
        keys.push("seed".into());
    }
    let mut crossed = Vec::new();
    for key in keys {
        if base.contains_key(&key) {
            return Err(format!("`{key}` is both in [base] and in [cross]"));
        }
        match cross.remove(&key) {
            Some(toml::Value::Array(values)) if !values.is_empty() => crossed.push((key, values)),
            _ => {
                return Err(format!(
                    "[cross] `{key}` must be a non-empty list of values"
                ));
            }
        }
    }
    Ok(crossed)
}

/// A folder name: letters, digits and `.`, `-`, `_`, `+`, `=`; anything else becomes `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_+=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An expanded sweep folder.
#[derive(Debug, Clone)]
pub struct SweepDir {
    /// The folder.
    pub root: PathBuf,
    /// The sweep it holds.
    pub sweep: Sweep,
    /// Its cells.
    pub cells: Vec<Cell>,
}

impl SweepDir {
    /// Opens a folder written by [`Sweep::expand`].
    pub fn open(root: &Path) -> Result<Self, ClusterError> {
        let stored = root.join("sweep.toml");
        if !stored.is_file() {
            return Err(ClusterError::format(
                root,
                "not a sweep folder (no sweep.toml); expand one with `valar sweep run SWEEP.toml --out DIR`",
            ));
        }
        let text = std::fs::read_to_string(&stored).map_err(ClusterError::io(&stored))?;
        let sweep = Sweep::parse(&text, root).map_err(|e| ClusterError::format(&stored, e))?;
        let cells = sweep
            .cells()
            .map_err(|e| ClusterError::format(&stored, e))?;
        Ok(SweepDir {
            root: root.to_path_buf(),
            sweep,
            cells,
        })
    }

    /// A cell by index, or an error naming the range.
    pub fn cell(&self, index: usize) -> Result<&Cell, ClusterError> {
        self.cells.get(index).ok_or_else(|| {
            ClusterError::format(
                &self.root,
                format!(
                    "has cells 0 to {}, not {index}",
                    self.cells.len().saturating_sub(1)
                ),
            )
        })
    }

    /// A cell's folder.
    pub fn cell_dir(&self, cell: &Cell) -> PathBuf {
        self.root.join("cells").join(&cell.name)
    }

    /// A cell's `valar train` run folder.
    pub fn run_dir(&self, cell: &Cell) -> PathBuf {
        self.cell_dir(cell).join("run")
    }

    /// A cell's scores, written once it is trained and scored.
    pub fn metrics_path(&self, cell: &Cell) -> PathBuf {
        self.cell_dir(cell).join("metrics.json")
    }

    /// The cells not yet trained and scored.
    pub fn unfinished(&self) -> Vec<usize> {
        self.cells
            .iter()
            .filter(|c| !self.metrics_path(c).is_file())
            .map(|c| c.index)
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str = r#"
test = "held-out"
[base]
data = "prepared"
epochs = 2
[cross]
seed = [0, 1]
lr = [0.001, 0.01]
model = ["compact", "reference"]
"#;

    #[test]
    fn cells_cross_every_value_with_the_seed_fastest() {
        let sweep = Sweep::parse(FILE, Path::new("/x")).unwrap();
        assert_eq!(sweep.test, Some(PathBuf::from("/x/held-out")));
        let cells = sweep.cells().unwrap();
        assert_eq!(cells.len(), 8);
        assert_eq!(cells[0].name, "000_lr-0.001_model-compact_seed-0");
        assert_eq!(cells[1].name, "001_lr-0.001_model-compact_seed-1");
        assert_eq!(cells[7].name, "007_lr-0.01_model-reference_seed-1");
        assert_eq!(cells[1].group_label(), "lr=0.001 model=compact");
        let c = cells[7].overrides.clone().resolve().unwrap();
        assert_eq!((c.seed, c.lr, c.epochs), (1, 0.01, 2));
        assert_eq!(c.data, PathBuf::from("/x/prepared"));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| Sweep::parse(text, Path::new("/x")).unwrap_err();
        assert!(err("[base]\ndata='d'\n").contains("no `[cross]`"));
        assert!(err("[base]\ndata='d'\n[cross]\nlrr=[1]\n").contains("lrr"));
        assert!(err("[base]\ndata='d'\nseed=1\n[cross]\nseed=[1]\n").contains("both"));
        assert!(err("[base]\ndata='d'\n[cross]\nseed=[]\n").contains("non-empty"));
        assert!(err("[base]\ndata='d'\n[cross]\nlr=[-1.0]\n").contains("cell 0"));
        assert!(err("bogus=1\n[cross]\nseed=[1]\n").contains("unknown key `bogus`"));
    }

    #[test]
    fn a_folder_is_expanded_once_and_refuses_another_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sweep");
        let sweep = Sweep::parse(FILE, Path::new("/x")).unwrap();
        let opened = sweep.expand(&out).unwrap();
        assert_eq!(opened.cells.len(), 8);
        assert_eq!(opened.unfinished().len(), 8);
        assert!(
            out.join("cells/003_lr-0.001_model-reference_seed-1/valar.toml")
                .is_file()
        );
        // The same sweep again continues in the folder.
        assert_eq!(sweep.expand(&out).unwrap().cells, opened.cells);
        let other =
            Sweep::parse(&FILE.replace("epochs = 2", "epochs = 3"), Path::new("/x")).unwrap();
        let err = other.expand(&out).unwrap_err().to_string();
        assert!(err.contains("holds another sweep"), "{err}");
    }
}
