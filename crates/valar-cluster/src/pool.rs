use crate::ClusterError;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use valar_core::Progress;

/// One process to run: a shard of a prepare, a cell of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// What it is, for messages (`shard 2/4`, `cell 003_…`).
    pub name: String,
    /// The program (the valar binary).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Where its standard output and error go.
    pub log: PathBuf,
}

/// How often finished processes are looked for.
const POLL: Duration = Duration::from_millis(100);

/// Runs `tasks` as local processes, `jobs` at a time, each writing to its log. Every task
/// runs even when others fail; the error then lists each failure with its log.
pub fn run_local(tasks: &[Task], jobs: usize, progress: &dyn Progress) -> Result<(), ClusterError> {
    let jobs = jobs.max(1);
    progress.start("tasks", tasks.len() as u64);
    let mut queue = tasks.iter();
    let mut running: Vec<(&Task, Child)> = Vec::new();
    let mut failures = Vec::new();
    loop {
        while running.len() < jobs {
            let Some(task) = queue.next() else { break };
            match spawn(task) {
                Ok(child) => running.push((task, child)),
                Err(e) => {
                    failures.push(format!("  {}: could not start: {e}", task.name));
                    progress.advance(1);
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let mut still = Vec::with_capacity(running.len());
        for (task, mut child) in running {
            match child.try_wait() {
                Ok(None) => still.push((task, child)),
                Ok(Some(status)) => {
                    if !status.success() {
                        failures.push(format!(
                            "  {}: {status}; see {}",
                            task.name,
                            task.log.display()
                        ));
                    }
                    progress.advance(1);
                }
                Err(e) => {
                    failures.push(format!("  {}: {e}", task.name));
                    progress.advance(1);
                }
            }
        }
        running = still;
        std::thread::sleep(POLL);
    }
    progress.finish();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::TasksFailed {
            failed: failures.len(),
            total: tasks.len(),
            details: failures.join("\n"),
        })
    }
}

fn spawn(task: &Task) -> Result<Child, ClusterError> {
    if let Some(dir) = task.log.parent() {
        std::fs::create_dir_all(dir).map_err(ClusterError::io(dir))?;
    }
    let log = std::fs::File::create(&task.log).map_err(ClusterError::io(&task.log))?;
    let err = log.try_clone().map_err(ClusterError::io(&task.log))?;
    Command::new(&task.program)
        .args(&task.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(ClusterError::io(&task.program))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sh(name: &str, script: &str, log: PathBuf) -> Task {
        Task {
            name: name.into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            log,
        }
    }

    #[test]
    fn every_task_runs_and_failures_name_their_logs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tasks: Vec<Task> = (0..5)
            .map(|i| {
                let script = if i == 3 {
                    "echo broken; exit 3".to_string()
                } else {
                    format!("echo {i} > {}/out-{i}", d.display())
                };
                sh(
                    &format!("task {i}"),
                    &script,
                    d.join(format!("logs/{i}.log")),
                )
            })
            .collect();
        let err = run_local(&tasks, 2, &valar_core::NoProgress)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 of 5 tasks failed"), "{err}");
        assert!(err.contains("task 3: exit status: 3"), "{err}");
        assert!(err.contains("logs/3.log"), "{err}");
        for i in [0, 1, 2, 4] {
            assert_eq!(
                std::fs::read_to_string(d.join(format!("out-{i}"))).unwrap(),
                format!("{i}\n")
            );
        }
        assert_eq!(
            std::fs::read_to_string(d.join("logs/3.log")).unwrap(),
            "broken\n"
        );
    }
}
