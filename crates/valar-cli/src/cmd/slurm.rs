//! `valar slurm`: a sharded prepare or a sweep as a Slurm job array with a dependent merge
//! or summary job, submitted when `sbatch` is on the PATH; run here, N at a time, otherwise.

use crate::cmd::prepare::PrepareArgs;
use crate::ui::{Bars, outln};
use anyhow::Context;
use clap::Parser;
use std::path::{Path, PathBuf};
use valar_cluster::{
    JobPlace, Resources, ShardedPrepare, SlurmJob, Task, run_local, sbatch_on_path,
};

/// Arguments of `valar slurm`.
#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    #[command(subcommand)]
    command: SlurmCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SlurmCommand {
    /// A sharded `valar prepare`: an array of N shard tasks into OUT.shards/K, then
    /// `valar merge` into OUT. Give prepare's own arguments after `--`.
    #[command(
        after_help = "Example: valar slurm prepare --shards 8 --cpus-per-task 8 --mem 16G \
-- --csv training.csv --images Manually_Annotated_Images --out data/affectnet"
    )]
    Prepare {
        /// Shards of the plan (array tasks).
        #[arg(long)]
        shards: usize,
        #[command(flatten)]
        job: JobArgs,
        /// `valar prepare`'s arguments, --out included.
        #[arg(last = true, required = true, value_name = "PREPARE ARGS")]
        prepare: Vec<String>,
    },
    /// A sweep: an array of one task per unfinished cell, then `valar sweep summarize`.
    Sweep {
        /// The sweep file.
        sweep: PathBuf,
        /// The sweep folder.
        #[arg(long)]
        out: PathBuf,
        /// Expand a sweep of more than 1,000 cells.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        job: JobArgs,
    },
}

/// Resource requests and where the work runs.
#[derive(Debug, Clone, clap::Args)]
struct JobArgs {
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account.
    #[arg(long)]
    account: Option<String>,
    /// Time limit per task, e.g. 02:00:00.
    #[arg(long)]
    time: Option<String>,
    /// CPUs per task.
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// Memory per task, e.g. 16G.
    #[arg(long)]
    mem: Option<String>,
    /// Generic resources per task, e.g. gpu:1.
    #[arg(long)]
    gres: Option<String>,
    /// A further #SBATCH option, verbatim (repeatable), e.g. --sbatch=--qos=short.
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    extra: Vec<String>,
    /// Tasks at once: the array's %N limit on Slurm, the process count here [default: all
    /// on Slurm, 1 here].
    #[arg(long)]
    jobs: Option<usize>,
    /// Run the tasks here as local processes even when sbatch is on the PATH.
    #[arg(long, conflicts_with = "no_submit")]
    local: bool,
    /// Write the sbatch scripts and print how to submit them, without submitting.
    #[arg(long)]
    no_submit: bool,
}

impl JobArgs {
    fn resources(&self) -> Resources {
        Resources {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            gres: self.gres.clone(),
            extra: self.extra.clone(),
        }
    }
}

/// `valar prepare`'s arguments, parsed on their own to check them and find --out.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct PrepareLine {
    #[command(flatten)]
    args: PrepareArgs,
}

/// Runs `valar slurm`.
pub fn run(args: SlurmArgs) -> anyhow::Result<()> {
    match args.command {
        SlurmCommand::Prepare {
            shards,
            job,
            prepare,
        } => sharded_prepare(shards, &job, &prepare),
        SlurmCommand::Sweep {
            sweep,
            out,
            yes,
            job,
        } => sweep_job(&sweep, &out, yes, &job),
    }
}

/// Where the tasks of `job` run and what they may use.
fn place(job: &JobArgs) -> anyhow::Result<JobPlace> {
    Ok(JobPlace {
        exe: std::env::current_exe()?,
        workdir: std::env::current_dir()?,
        max_parallel: job.jobs,
        resources: job.resources(),
    })
}

fn sharded_prepare(shards: usize, job: &JobArgs, prepare: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(shards >= 1, "--shards must be at least 1");
    anyhow::ensure!(
        shards <= valar_prep::MAX_SHARDS,
        "--shards {shards} is over the limit of {} (Slurm's default MaxArraySize is 1001)",
        valar_prep::MAX_SHARDS
    );
    let line = PrepareLine::try_parse_from(prepare).context("the prepare arguments after --")?;
    // Every task would fail on it (`--png` numbers faces by their place in the merged
    // set, which a shard cannot know), so it is refused before anything is submitted.
    anyhow::ensure!(
        !line.args.settings.png,
        "drop --png from the prepare arguments: a shard cannot write PNGs \
         (run `valar prepare --png` on the merged set's input instead)"
    );
    anyhow::ensure!(
        line.args.shard.is_none(),
        "drop --shard from the prepare arguments: --shards {shards} sets every task's shard"
    );
    anyhow::ensure!(!line.args.dry_run, "--dry-run has nothing to shard");
    let out = std::path::absolute(line.args.out.as_deref().context("give --out")?)?;
    let force = line.args.force;
    let sharded =
        ShardedPrepare::new(prepare, &out, shards, force).context("--out is not a folder name")?;
    let place = place(job)?;
    let local = sharded.local_tasks(&place.exe);
    dispatch(&sharded.slurm_job(&place), job, &local, &|| {
        let merged = valar_prep::merge(&sharded.shard_dirs(), &out, force, &Bars::default())?;
        outln!(
            "Merged {shards} shards: {} faces → {}",
            merged.info.faces,
            merged.out.display()
        );
        Ok(())
    })
}

fn sweep_job(sweep: &Path, out: &Path, yes: bool, job: &JobArgs) -> anyhow::Result<()> {
    // Held while the folder is expanded and the job written; the cells lock their own runs.
    let _lock = crate::cmd::sweep::lock_sweep(out)?;
    let dir = crate::cmd::sweep::expand(sweep, out, yes)?;
    if job.local || (sbatch_on_path().is_none() && !job.no_submit) {
        crate::cmd::sweep::run_here(&dir, job.jobs.unwrap_or(1))?;
        return crate::cmd::sweep::print_summary(&dir);
    }
    dispatch(&dir.slurm_job(&place(job)?), job, &[], &|| {
        crate::cmd::sweep::print_summary(&dir)
    })
}

/// Submits the array and its follow-up when sbatch is there (or writes them, with
/// --no-submit); otherwise runs `local` here and then `after`.
fn dispatch(
    slurm: &SlurmJob,
    job: &JobArgs,
    local: &[Task],
    after: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let sbatch = sbatch_on_path();
    if slurm.tasks.is_empty() {
        eprintln!("every task has finished already; running the last step here");
        return after();
    }
    if job.no_submit {
        let (array, follow) = slurm.write()?;
        outln!(
            "Wrote {} and {}; submit them with",
            array.display(),
            follow.display()
        );
        outln!("  jid=$(sbatch --parsable {})", array.display());
        outln!("  sbatch --dependency=afterok:$jid {}", follow.display());
        return Ok(());
    }
    match sbatch {
        Some(sbatch) if !job.local => {
            let ids = slurm.submit(&sbatch)?;
            let (array, follow) = slurm.script_paths();
            outln!(
                "Submitted array job {} ({} tasks, {}) and job {} after it ({}); logs in {}",
                ids.array,
                slurm.tasks.len(),
                array.display(),
                ids.after,
                follow.display(),
                slurm.dir.join("logs").display()
            );
            Ok(())
        }
        _ => {
            let jobs = job.jobs.unwrap_or(1);
            if !job.local {
                eprintln!("sbatch is not on the PATH: running the tasks here, {jobs} at a time");
            }
            run_local(local, jobs, &Bars::default())?;
            after()
        }
    }
}
