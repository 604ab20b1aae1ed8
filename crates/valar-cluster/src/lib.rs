//! valar cluster: work that outgrows one process.
//!
//! A sweep file ([`Sweep`]) crosses training settings into one ordinary `valar train` run
//! folder per cell; [`run_cell`] trains (or resumes) a cell and scores it, and
//! [`summarize`] tables and draws every cell's metrics, mean ± sd over seeds. The tasks of
//! a sharded prepare or a sweep run either as local processes, N at a time ([`run_local`]),
//! or as a Slurm job array with a dependent merge or summary job ([`SlurmJob`]).

/// Training and scoring one cell of a sweep.
mod cell;
/// Quoting a CSV field, for the sweep's `cells.csv` and `summary.csv`.
mod csv_field;
/// The error type.
mod error;
/// A sharded prepare's and a sweep's Slurm jobs and local tasks.
mod jobs;
/// Running tasks as local processes, N at a time.
mod pool;
/// sbatch scripts for job arrays and their dependent jobs, and submitting them.
mod slurm;
/// The sweep's table (CSV, Markdown) and figure.
mod summary;
/// Sweep files and their expansion into cells.
mod sweep;

pub use cell::{CellMetrics, run_cell};
pub use error::ClusterError;
pub use jobs::{JobPlace, ShardedPrepare};
pub use pool::{Task, run_local};
pub use slurm::{Resources, SlurmJob, Submitted, TASK_ID, array_spec, sbatch_on_path};
pub use summary::{Summary, summarize};
pub use sweep::{CONFIRM_CELLS, Cell, MAX_CELLS, Sweep, SweepDir};
