//! sbatch scripts: a job array (one task per shard or cell, a log per task) and a job
//! that runs after every task succeeded (the merge or the summary), submitted with
//! `--dependency=afterok:<array job id>`.

use crate::ClusterError;
use std::path::{Path, PathBuf};
use std::process::Command;
use valar_core::write_atomic;

/// What the jobs ask Slurm for; each `None` is left to the cluster's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time`, e.g. `02:00:00`.
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// `--mem`, e.g. `8G`.
    pub mem: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// Further `#SBATCH` options, verbatim (e.g. `--qos=short`).
    pub extra: Vec<String>,
}

impl Resources {
    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut put = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push(format!("--{flag}={v}"));
            }
        };
        put("partition", &self.partition);
        put("account", &self.account);
        put("time", &self.time);
        put("cpus-per-task", &self.cpus_per_task.map(|c| c.to_string()));
        put("mem", &self.mem);
        put("gres", &self.gres);
        out.extend(self.extra.iter().cloned());
        out
    }
}

/// The placeholder in a task's arguments for its array index.
pub const TASK_ID: &str = "{task}";

/// A job array and the job that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmJob {
    /// The job name (`valar-prepare`, `valar-sweep`).
    pub name: String,
    /// What the job does, for the scripts' first comment.
    pub about: String,
    /// Where the scripts and the `logs/` folder go.
    pub dir: PathBuf,
    /// The folder jobs run in (`--chdir`).
    pub workdir: PathBuf,
    /// The array indices to run (every task not yet finished).
    pub tasks: Vec<usize>,
    /// At most this many tasks at once (`%N`).
    pub max_parallel: Option<usize>,
    /// A task's command; [`TASK_ID`] inside an argument becomes `${SLURM_ARRAY_TASK_ID}`.
    pub task_command: Vec<String>,
    /// The command that runs once every task succeeded.
    pub after_name: String,
    /// The command that runs once every task succeeded.
    pub after_command: Vec<String>,
    /// Resource requests of each array task.
    pub resources: Resources,
    /// Resource requests of the job that follows.
    pub after_resources: Resources,
}

/// The job ids sbatch gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The array job.
    pub array: String,
    /// The job that runs after it.
    pub after: String,
}

/// The `--array` value: ranges of consecutive indices, then `%N` when limited.
pub fn array_spec(ids: &[usize], max_parallel: Option<usize>) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    let mut spec = parts.join(",");
    if let Some(n) = max_parallel {
        spec.push_str(&format!("%{n}"));
    }
    spec
}

/// A word for the shell: as is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A command line for the script, a flag and its value per line; [`TASK_ID`] becomes the
/// array index variable.
fn command_line(argv: &[String]) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut after_flag = false;
    for arg in argv {
        let word = arg
            .split(TASK_ID)
            .map(|piece| {
                if piece.is_empty() {
                    String::new()
                } else {
                    shell_word(piece)
                }
            })
            .collect::<Vec<_>>()
            .join("${SLURM_ARRAY_TASK_ID}");
        match lines.last_mut() {
            // A flag's value stays beside it; a flag starts a line; other words wrap.
            Some(line)
                if !arg.starts_with('-') && (after_flag || line.len() + word.len() <= 76) =>
            {
                line.push(' ');
                line.push_str(&word);
            }
            _ => lines.push(word),
        }
        after_flag = arg.starts_with("--") && !arg.contains('=');
    }
    lines.join(" \\\n    ")
}

impl SlurmJob {
    fn header(
        &self,
        name: &str,
        extra: &[String],
        resources: &Resources,
        command: &[String],
    ) -> String {
        let mut s = format!(
            "#!/bin/bash\n# {}\n# Written by valar {}; submit with `sbatch`.\n",
            self.about,
            valar_core::VERSION
        );
        let mut flags = vec![format!("--job-name={name}")];
        flags.extend(extra.iter().cloned());
        flags.push(format!("--chdir={}", self.workdir.display()));
        flags.extend(resources.lines());
        for f in flags {
            s.push_str(&format!("#SBATCH {f}\n"));
        }
        s.push_str("\nset -euo pipefail\n");
        s.push_str(&format!("exec {}\n", command_line(command)));
        s
    }

    /// The array script: one task per index, a log per task (`%A_%a`: array job, index).
    pub fn array_script(&self) -> String {
        let logs = self.dir.join("logs");
        self.header(
            &self.name,
            &[
                format!("--array={}", array_spec(&self.tasks, self.max_parallel)),
                format!("--output={}/{}-%A_%a.log", logs.display(), self.name),
            ],
            &self.resources,
            &self.task_command,
        )
    }

    /// The script of the job that follows the array. Its dependency is given to sbatch at
    /// submission, once the array's id is known; a failed task cancels it
    /// (`--kill-on-invalid-dep`) instead of leaving it pending for ever.
    pub fn after_script(&self) -> String {
        let logs = self.dir.join("logs");
        self.header(
            &self.after_name,
            &[
                format!("--output={}/{}-%j.log", logs.display(), self.after_name),
                "--kill-on-invalid-dep=yes".to_string(),
            ],
            &self.after_resources,
            &self.after_command,
        )
    }

    /// The two scripts' paths inside [`SlurmJob::dir`].
    pub fn script_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{}.sbatch", self.name)),
            self.dir.join(format!("{}.sbatch", self.after_name)),
        )
    }

    /// Writes both scripts (and the logs folder) and returns their paths.
    pub fn write(&self) -> Result<(PathBuf, PathBuf), ClusterError> {
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(ClusterError::io(&logs))?;
        let (array, after) = self.script_paths();
        write_atomic(&array, |w| w.write_all(self.array_script().as_bytes()))?;
        write_atomic(&after, |w| w.write_all(self.after_script().as_bytes()))?;
        Ok((array, after))
    }

    /// Writes and submits the array, then the job that follows with
    /// `--dependency=afterok:<array id>`.
    pub fn submit(&self, sbatch: &Path) -> Result<Submitted, ClusterError> {
        let (array_path, after_path) = self.write()?;
        let array = sbatch_parsable(sbatch, &[], &array_path)?;
        let after = sbatch_parsable(
            sbatch,
            &[format!("--dependency=afterok:{array}")],
            &after_path,
        )?;
        Ok(Submitted { array, after })
    }
}

/// `sbatch --parsable [flags] script`, and the job id it prints (`id` or `id;cluster`).
fn sbatch_parsable(sbatch: &Path, flags: &[String], script: &Path) -> Result<String, ClusterError> {
    let out = Command::new(sbatch)
        .arg("--parsable")
        .args(flags)
        .arg(script)
        .output()
        .map_err(ClusterError::io(sbatch))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(ClusterError::Sbatch {
            script: script.to_path_buf(),
            reason: format!("{}: {}", out.status, stderr.trim()),
        });
    }
    parse_job_id(&stdout).ok_or_else(|| ClusterError::Sbatch {
        script: script.to_path_buf(),
        reason: format!("no job id in its output `{}`", stdout.trim()),
    })
}

/// The job id in `sbatch --parsable`'s output.
fn parse_job_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// `sbatch` on the PATH, if there is one.
pub fn sbatch_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("sbatch"))
        .find(|p| p.is_file())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_are_ranges_with_a_limit() {
        assert_eq!(array_spec(&[0, 1, 2, 3], None), "0-3");
        assert_eq!(array_spec(&[1, 3, 4, 5, 9], Some(2)), "1,3-5,9%2");
        assert_eq!(array_spec(&[7], None), "7");
    }

    #[test]
    fn job_ids_come_from_parsable_output() {
        assert_eq!(parse_job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("77;cluster\n").as_deref(), Some("77"));
        assert_eq!(parse_job_id("Submitted batch job 5\n"), None);
    }

    #[test]
    fn words_with_spaces_or_quotes_are_quoted_and_the_task_id_expands() {
        assert_eq!(shell_word("a/b.csv"), "a/b.csv");
        assert_eq!(shell_word("my data"), "'my data'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(
            command_line(&[
                "x".into(),
                "prepare".into(),
                "--out".into(),
                "/w/my shards/{task}".into(),
                "--shard".into(),
                "{task}/4".into(),
                "--force".into()
            ]),
            "x prepare \\\n    --out '/w/my shards/'${SLURM_ARRAY_TASK_ID} \\\n    --shard ${SLURM_ARRAY_TASK_ID}/4 \\\n    --force"
        );
    }
}
