use crate::CoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// An exclusive claim on an output, held from the start of a run until its result is in
/// place: `<output>.lock` beside the output, locked with the operating system's advisory
/// file lock and holding the holder's pid and command line.
///
/// The operating system releases the lock when the holder exits, however it exits, so a
/// lock file left by a killed run is simply taken over. The file is removed on drop.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// The lock file that guards `output`: `<output>.lock` in the same folder.
    pub fn path_for(output: &Path) -> Result<PathBuf, CoreError> {
        let mut name = output
            .file_name()
            .ok_or_else(|| CoreError::format(output, "is not a file or folder name"))?
            .to_os_string();
        name.push(".lock");
        Ok(output.with_file_name(name))
    }

    /// Claims `output` for this process, failing at once (naming the holder) when another
    /// run holds it. Creates the output's parent folder if needed.
    pub fn acquire(output: &Path) -> Result<Self, CoreError> {
        let path = Self::path_for(output)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(CoreError::io(parent))?;
        }
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(CoreError::io(&path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    // The holder writes its line just after locking; an empty file means it
                    // is between the two, which says no less that the output is taken.
                    let _ = file.read_to_string(&mut holder);
                    let holder = match holder.trim() {
                        "" => "another valar run".to_string(),
                        h => h.to_string(),
                    };
                    return Err(CoreError::format(
                        &path,
                        format!(
                            "{} is being written by {holder}; wait for that run to finish or choose another output",
                            output.display()
                        ),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(CoreError::io(&path)(e)),
            }
            // A previous holder removes the file on release while still holding its lock; if
            // we opened it just before that, we now hold a lock on a file no longer at `path`,
            // which a third run could lock anew. Only a lock on the file at `path` counts.
            if same_file(&file, &path) {
                let line = format!("pid {}: {}\n", std::process::id(), command_line());
                file.set_len(0).map_err(CoreError::io(&path))?;
                file.rewind().map_err(CoreError::io(&path))?;
                file.write_all(line.as_bytes())
                    .map_err(CoreError::io(&path))?;
                file.flush().map_err(CoreError::io(&path))?;
                return Ok(OutputLock { file, path });
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked, so that no other run can have locked this file in
        // the meantime (see `acquire`); a file left behind is harmless and taken over.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The command line of this process, as a holder is named to a second run.
fn command_line() -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut words = args.into_iter();
    let program = words
        .next()
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    std::iter::once(program)
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    // Elsewhere an open file cannot be removed, so the file at `path` is the one we locked.
    path.is_file()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_fails_naming_the_holder_and_a_released_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = OutputLock::acquire(&out).unwrap();
        assert_eq!(first.path(), dir.path().join("out.lock"));
        let err = OutputLock::acquire(&out).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("is being written by"), "{err}");
        drop(first);
        assert!(!dir.path().join("out.lock").exists());
        let again = OutputLock::acquire(&out).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_left_without_a_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/out");
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/out.lock"), "pid 1: valar killed\n").unwrap();
        let lock = OutputLock::acquire(&out).unwrap();
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert!(
            text.starts_with(&format!("pid {}:", std::process::id())),
            "{text}"
        );
    }
}
