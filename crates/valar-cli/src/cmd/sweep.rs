//! `valar sweep`: expand a sweep file, run its cells here N at a time, summarize.

use crate::cmd::train::TerminalProgress;
use crate::ui::{Bars, outln};
use anyhow::Context;
use std::path::{Path, PathBuf};
use valar_cluster::{CONFIRM_CELLS, Sweep, SweepDir, run_cell, run_local, summarize};

/// Arguments of `valar sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: SweepCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SweepCommand {
    /// Expand SWEEP.toml into DIR (one `valar train` run per cell), train every unfinished
    /// cell as a local process, JOBS at a time, and summarize.
    Run {
        /// The sweep file: `test = …`, `[base]` (valar.toml keys) and `[cross]` (lists).
        sweep: PathBuf,
        /// The sweep folder (continued where it stopped when it holds the same sweep).
        #[arg(long)]
        out: PathBuf,
        /// Cells trained at once.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Expand a sweep of more than 1,000 cells.
        #[arg(long)]
        yes: bool,
    },
    /// Train (or resume) one cell of an expanded sweep and score it.
    Cell {
        /// The sweep folder.
        dir: PathBuf,
        /// The cell's index (its Slurm array task id).
        index: usize,
    },
    /// Write summary.csv, summary.md and summary.png from the cells scored so far.
    Summarize {
        /// The sweep folder.
        dir: PathBuf,
    },
}

/// Runs `valar sweep`.
pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        SweepCommand::Run {
            sweep,
            out,
            jobs,
            yes,
        } => {
            // Held to the end: a second sweep on this folder would lose cells to this one's
            // locks and overwrite its logs.
            let _lock = lock_sweep(&out)?;
            let dir = expand(&sweep, &out, yes)?;
            run_here(&dir, jobs)?;
            print_summary(&dir)
        }
        SweepCommand::Cell { dir, index } => {
            let dir = SweepDir::open(&dir)?;
            let cell = dir.cell(index)?;
            eprintln!("cell {index}: {}", cell.name);
            let metrics = run_cell(&dir, index, &mut TerminalProgress::default())
                .with_context(|| format!("cell {index} ({})", cell.name))?;
            for (dim, m) in &metrics.val {
                outln!("{dim}: validation CCC {:.3}, RMSE {:.3}", m.ccc, m.rmse);
            }
            for (dim, m) in metrics.test.iter().flatten() {
                outln!("{dim}: test CCC {:.3}, RMSE {:.3}", m.ccc, m.rmse);
            }
            Ok(())
        }
        SweepCommand::Summarize { dir } => print_summary(&SweepDir::open(&dir)?),
    }
}

/// Claims a sweep folder (`<out>.lock`, as every output), failing at once naming the holder.
pub(crate) fn lock_sweep(out: &Path) -> anyhow::Result<valar_core::OutputLock> {
    // The lock itself resolves `out` to its real path, however it is spelled.
    Ok(valar_core::OutputLock::acquire(out)?)
}

/// Expands a sweep file into its folder, with absolute paths for jobs that run elsewhere.
/// A sweep of more than [`CONFIRM_CELLS`] cells needs `yes`, checked before any folder
/// is written.
pub(crate) fn expand(sweep: &Path, out: &Path, yes: bool) -> anyhow::Result<SweepDir> {
    let out = std::path::absolute(out)?;
    let parsed = Sweep::read(sweep)?;
    let cells = parsed.cell_count().unwrap_or(usize::MAX);
    anyhow::ensure!(
        yes || cells <= CONFIRM_CELLS,
        "{}: {cells} cells, each a training run and a folder, is more than {CONFIRM_CELLS}; \
         pass --yes to expand it anyway",
        sweep.display()
    );
    Ok(parsed.expand(&out)?)
}

/// Runs every unfinished cell as a local process, `jobs` at a time.
pub(crate) fn run_here(dir: &SweepDir, jobs: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let tasks = dir.local_tasks(&exe);
    eprintln!(
        "{} cells, {} to train, {jobs} at a time (logs in {})",
        dir.cells.len(),
        tasks.len(),
        dir.root.join("logs").display()
    );
    run_local(&tasks, jobs, &Bars::default())?;
    Ok(())
}

pub(crate) fn print_summary(dir: &SweepDir) -> anyhow::Result<()> {
    let s = summarize(dir)?;
    outln!(
        "Summarized {} cells{} → {}, {}, {}",
        s.scored,
        if s.pending.is_empty() {
            String::new()
        } else {
            format!(" ({} not yet trained: {:?})", s.pending.len(), s.pending)
        },
        s.csv.display(),
        s.markdown.display(),
        s.png.display()
    );
    Ok(())
}
