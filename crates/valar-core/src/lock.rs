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
    ///
    /// The output's real path decides, so that every spelling of one output (`run`,
    /// `./run`, a link to it, `x/../run`) meets the same lock: train locks `--out` as typed,
    /// evaluate locks the folder its model is in.
    pub fn path_for(output: &Path) -> Result<PathBuf, CoreError> {
        let real = crate::normalize_path(output)?;
        let mut name = real
            .file_name()
            .ok_or_else(|| CoreError::format(output, "is not a file or folder name"))?
            .to_os_string();
        name.push(".lock");
        Ok(real.with_file_name(name))
    }

    /// Claims `output` for this process, failing at once (naming the holder) when another
    /// run holds it. Creates the output's parent folder if needed.
    ///
    /// A lock file that is a link (symbolic, or a second name of another file) is refused,
    /// never written through: its target would be truncated to hold the holder's line.
    pub fn acquire(output: &Path) -> Result<Self, CoreError> {
        let path = Self::path_for(output)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(CoreError::io(parent))?;
        }
        loop {
            refuse_link(&path)?;
            let file = open_no_follow(&path)?;
            if let Some(lock) = Self::claim_opened(file, &path, output)? {
                return Ok(lock);
            }
        }
    }

    /// Locks the lock file just opened at `path` and writes this run's line into it; `None`
    /// when that file is no longer the one at `path` (then the caller opens it again).
    fn claim_opened(mut file: File, path: &Path, output: &Path) -> Result<Option<Self>, CoreError> {
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
                    path,
                    format!(
                        "{} is being written by {holder}; wait for that run to finish or choose another output",
                        output.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(CoreError::io(path)(e)),
        }
        // A previous holder removes the file on release while still holding its lock; if
        // we opened it just before that, we now hold a lock on a file no longer at `path`,
        // which a third run could lock anew. Only a lock on the file at `path` counts.
        if !same_file(&file, path) {
            return Ok(None);
        }
        refuse_hard_link(&file, path)?;
        let line = format!("pid {}: {}\n", std::process::id(), command_line());
        file.set_len(0).map_err(CoreError::io(path))?;
        file.rewind().map_err(CoreError::io(path))?;
        file.write_all(line.as_bytes())
            .map_err(CoreError::io(path))?;
        file.flush().map_err(CoreError::io(path))?;
        Ok(Some(OutputLock {
            file,
            path: path.to_path_buf(),
        }))
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

/// Refuses a lock file that is a symbolic link, before opening it, with a message that says
/// what to do (opening it without following links fails with a bare "too many levels").
fn refuse_link(path: &Path) -> Result<(), CoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(CoreError::format(
            path,
            "is a symbolic link, not valar's lock file: refusing to write through it (its target would be overwritten); remove the link or choose another output",
        )),
        _ => Ok(()),
    }
}

/// Opens (creating) the lock file without following a link at its name, so that a link
/// planted between [`refuse_link`]'s check and the opening is not followed either.
fn open_no_follow(path: &Path) -> Result<File, CoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path).map_err(|e| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            // Planted after the check: the same refusal.
            refuse_link(path)
                .err()
                .unwrap_or_else(|| CoreError::io(path)(e))
        } else {
            CoreError::io(path)(e)
        }
    })
}

/// Refuses a lock file that has other names: truncating it would empty another file.
#[cfg(unix)]
fn refuse_hard_link(file: &File, path: &Path) -> Result<(), CoreError> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(CoreError::io(path))?;
    if meta.nlink() > 1 {
        return Err(CoreError::format(
            path,
            "has other names (hard links), so it is not valar's lock file: refusing to overwrite it; remove it or choose another output",
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_hard_link(_file: &File, _path: &Path) -> Result<(), CoreError> {
    Ok(())
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
    #[test]
    fn a_lock_file_removed_by_its_holder_after_we_opened_it_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let path = OutputLock::path_for(&out).unwrap();
        // Opened while a holder still had it; the holder then removes it on release.
        let opened = open_no_follow(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            OutputLock::claim_opened(opened, &path, &out)
                .unwrap()
                .is_none(),
            "a lock on a removed file must not count"
        );
        // Another run made a new file at the name meanwhile: still not ours.
        let opened = open_no_follow(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        assert!(
            OutputLock::claim_opened(opened, &path, &out)
                .unwrap()
                .is_none()
        );
        // The file at the name is the one we lock: claimed, and `acquire` gets there too.
        let opened = open_no_follow(&path).unwrap();
        let lock = OutputLock::claim_opened(opened, &path, &out)
            .unwrap()
            .unwrap();
        drop(lock);
        drop(OutputLock::acquire(&out).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_that_is_a_link_is_refused_and_its_target_kept() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious.txt");
        std::fs::write(&precious, "precious").unwrap();
        std::os::unix::fs::symlink(&precious, dir.path().join("a.lock")).unwrap();
        let err = OutputLock::acquire(&dir.path().join("a"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        std::fs::hard_link(&precious, dir.path().join("b.lock")).unwrap();
        let err = OutputLock::acquire(&dir.path().join("b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    }

    #[cfg(unix)]
    #[test]
    fn every_spelling_of_one_output_meets_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("runs/real");
        std::fs::create_dir_all(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let held = OutputLock::acquire(&link).unwrap();
        assert_eq!(
            held.path(),
            dir.path().canonicalize().unwrap().join("runs/real.lock")
        );
        for other in [real.clone(), dir.path().join("runs/nope/../real")] {
            let err = OutputLock::acquire(&other).unwrap_err().to_string();
            assert!(err.contains("is being written by"), "{other:?}: {err}");
        }
    }
}
