//! The two kinds of work `valar slurm` hands out, each as a Slurm job array with its
//! follow-up job ([`SlurmJob`]) or as local processes ([`Task`]): a sharded prepare (one
//! `valar prepare --shard K/N` per shard, then `valar merge`) and a sweep (one
//! `valar sweep cell` per unfinished cell, then `valar sweep summarize`).

use crate::{Resources, SlurmJob, SweepDir, TASK_ID, Task};
use std::path::{Path, PathBuf};

/// Where the array runs and what each task may use, shared by both kinds of work.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlace {
    /// The valar binary the tasks run.
    pub exe: PathBuf,
    /// The folder jobs run in (`--chdir`).
    pub workdir: PathBuf,
    /// At most this many tasks at once.
    pub max_parallel: Option<usize>,
    /// What each array task asks Slurm for.
    pub resources: Resources,
}

/// A `valar prepare` split into shards: shard K is written to `<out>.shards/K`, and the
/// merge of them all to `out`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedPrepare {
    /// prepare's own arguments, without `--out`.
    args: Vec<String>,
    /// The merged folder.
    out: PathBuf,
    /// `<out>.shards`: the shard folders, the scripts and the logs.
    work: PathBuf,
    /// Shards of the plan.
    shards: usize,
    /// Whether the merge replaces an existing `out` (prepare's `--force`).
    force: bool,
}

impl ShardedPrepare {
    /// The shards of `valar prepare ARGS` (any `--out` among them is dropped) that write
    /// `out`, an absolute path, once merged. `None` when `out` has no folder name to put
    /// `.shards` after.
    pub fn new(args: &[String], out: &Path, shards: usize, force: bool) -> Option<Self> {
        let mut name = out.file_name()?.to_os_string();
        name.push(".shards");
        Some(ShardedPrepare {
            args: without_out(args),
            out: out.to_path_buf(),
            work: out.with_file_name(name),
            shards,
            force,
        })
    }

    /// The merged folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Shard `k`'s folder.
    pub fn shard_dir(&self, k: usize) -> PathBuf {
        self.work.join(k.to_string())
    }

    /// Every shard's folder, in shard order.
    pub fn shard_dirs(&self) -> Vec<PathBuf> {
        (0..self.shards).map(|k| self.shard_dir(k)).collect()
    }

    /// The shards without a finished folder (one holding `shard.json`).
    pub fn unfinished(&self) -> Vec<usize> {
        (0..self.shards)
            .filter(|&k| !self.shard_dir(k).join(valar_prep::SHARD_FILE).is_file())
            .collect()
    }

    /// The command line of shard `k` (a number, or [`TASK_ID`] for the array's script).
    fn task_command(&self, exe: &Path, k: &str) -> Vec<String> {
        let mut argv = vec![exe.display().to_string(), "prepare".to_string()];
        argv.extend(self.args.iter().cloned());
        // An unfinished shard has no folder yet (a killed one leaves only `.partial`,
        // which prepare clears), so no --force is needed.
        argv.extend([
            "--out".into(),
            self.work.join(k).display().to_string(),
            "--shard".into(),
            format!("{k}/{}", self.shards),
        ]);
        argv
    }

    /// `valar merge` of every shard into `out`.
    fn merge_command(&self, exe: &Path) -> Vec<String> {
        let mut merge = vec![exe.display().to_string(), "merge".to_string()];
        merge.extend(self.shard_dirs().iter().map(|d| d.display().to_string()));
        merge.extend(["--out".into(), self.out.display().to_string()]);
        if self.force {
            merge.push("--force".into());
        }
        merge
    }

    /// The array of unfinished shards and the merge after it. The merge runs in one
    /// process, so it asks for no particular CPU count.
    pub fn slurm_job(&self, place: &JobPlace) -> SlurmJob {
        SlurmJob {
            name: "valar-prepare".into(),
            about: format!(
                "valar prepare in {} shards, then valar merge into {}",
                self.shards,
                self.out.display()
            ),
            dir: self.work.clone(),
            workdir: place.workdir.clone(),
            tasks: self.unfinished(),
            max_parallel: place.max_parallel,
            task_command: self.task_command(&place.exe, TASK_ID),
            after_name: "valar-merge".into(),
            after_command: self.merge_command(&place.exe),
            resources: place.resources.clone(),
            after_resources: Resources {
                cpus_per_task: None,
                ..place.resources.clone()
            },
        }
    }

    /// The unfinished shards as local processes, each with its log in `logs/`.
    pub fn local_tasks(&self, exe: &Path) -> Vec<Task> {
        self.unfinished()
            .into_iter()
            .map(|k| Task {
                name: format!("shard {k}/{}", self.shards),
                program: exe.to_path_buf(),
                args: self.task_command(exe, &k.to_string())[1..]
                    .iter()
                    .map(Into::into)
                    .collect(),
                log: self.work.join("logs").join(format!("shard-{k}.log")),
            })
            .collect()
    }
}

/// The arguments without `--out X` / `--out=X`.
fn without_out(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == "--out" {
            skip = true;
        } else if !a.starts_with("--out=") {
            out.push(a.clone());
        }
    }
    out
}

impl SweepDir {
    /// The command line that runs cell `index` (a number, or [`TASK_ID`] for the array's
    /// script): `valar sweep cell DIR INDEX`.
    pub fn cell_command(&self, exe: &Path, index: &str) -> Vec<String> {
        vec![
            exe.display().to_string(),
            "sweep".into(),
            "cell".into(),
            self.root.display().to_string(),
            index.to_string(),
        ]
    }

    /// The array of unfinished cells and the summary after it. The summary trains
    /// nothing, so it asks for no GPU.
    pub fn slurm_job(&self, place: &JobPlace) -> SlurmJob {
        SlurmJob {
            name: "valar-sweep".into(),
            about: format!(
                "valar sweep: {} cells, then valar sweep summarize {}",
                self.cells.len(),
                self.root.display()
            ),
            dir: self.root.clone(),
            workdir: place.workdir.clone(),
            tasks: self.unfinished(),
            max_parallel: place.max_parallel,
            task_command: self.cell_command(&place.exe, TASK_ID),
            after_name: "valar-summarize".into(),
            after_command: vec![
                place.exe.display().to_string(),
                "sweep".into(),
                "summarize".into(),
                self.root.display().to_string(),
            ],
            resources: place.resources.clone(),
            after_resources: Resources {
                gres: None,
                ..place.resources.clone()
            },
        }
    }

    /// The unfinished cells as local processes, each with its log in `logs/`.
    pub fn local_tasks(&self, exe: &Path) -> Vec<Task> {
        self.unfinished()
            .into_iter()
            .map(|i| Task {
                name: format!("cell {}", self.cells[i].name),
                program: exe.to_path_buf(),
                args: self.cell_command(exe, &i.to_string())[1..]
                    .iter()
                    .map(Into::into)
                    .collect(),
                log: self.root.join("logs").join(format!("cell-{i}.log")),
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn place() -> JobPlace {
        JobPlace {
            exe: "/bin/valar".into(),
            workdir: "/w".into(),
            max_parallel: Some(2),
            resources: Resources {
                cpus_per_task: Some(8),
                gres: Some("gpu:1".into()),
                ..Resources::default()
            },
        }
    }

    #[test]
    fn a_sharded_prepare_runs_each_unfinished_shard_then_merges_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("data");
        let args: Vec<String> = [
            "--csv",
            "t.csv",
            "--out",
            "elsewhere",
            "--out=x",
            "--quota",
            "5",
        ]
        .map(String::from)
        .to_vec();
        let job = ShardedPrepare::new(&args, &out, 3, true).unwrap();
        let shard1 = dir.path().join("data.shards/1");
        std::fs::create_dir_all(&shard1).unwrap();
        std::fs::write(shard1.join(valar_prep::SHARD_FILE), "{}").unwrap();
        assert_eq!(job.unfinished(), [0, 2]);

        let slurm = job.slurm_job(&place());
        assert_eq!(slurm.tasks, [0, 2]);
        assert_eq!(slurm.dir, dir.path().join("data.shards"));
        let work = dir.path().join("data.shards");
        assert_eq!(
            slurm.task_command,
            [
                "/bin/valar",
                "prepare",
                "--csv",
                "t.csv",
                "--quota",
                "5",
                "--out",
                &work.join(TASK_ID).display().to_string(),
                "--shard",
                "{task}/3"
            ]
        );
        assert_eq!(slurm.after_command.len(), 2 + 3 + 3);
        assert_eq!(slurm.after_command.last().unwrap(), "--force");
        assert_eq!(slurm.after_resources.cpus_per_task, None);
        assert_eq!(slurm.after_resources.gres.as_deref(), Some("gpu:1"));

        let tasks = job.local_tasks(Path::new("/bin/valar"));
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].name, "shard 2/3");
        assert_eq!(tasks[1].log, work.join("logs/shard-2.log"));
        assert_eq!(tasks[1].args.last().unwrap(), "2/3");
        assert!(ShardedPrepare::new(&args, Path::new("/"), 3, false).is_none());
    }
}
