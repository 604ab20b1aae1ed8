use crate::CoreError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a file under a temporary name in the same folder, then renames it into place,
/// so a reader (or a killed run) never sees a half-written file.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CoreError> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".valar-").suffix(".tmp");
    // tempfile creates 0600 files; outputs are meant to be shared like any other file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(CoreError::io(dir))?;
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered).map_err(CoreError::io(path))?;
        buffered.flush().map_err(CoreError::io(path))?;
    }
    tmp.as_file().sync_all().map_err(CoreError::io(path))?;
    tmp.persist(path)
        .map_err(|e| CoreError::io(path)(e.error))?;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An output folder that is built under `<name>.partial` and renamed to `<name>`
/// only when [`PartialDir::commit`] is called.
///
/// A killed run leaves only the `.partial` folder, which never looks finished and is
/// cleared by the next run.
#[derive(Debug)]
pub struct PartialDir {
    partial: PathBuf,
    target: PathBuf,
}

impl PartialDir {
    /// Starts a fresh partial folder for `target`, removing a stale one from a killed run.
    ///
    /// With `replace` false, an existing non-empty `target` is an error, so a finished
    /// output is never overwritten by accident.
    pub fn create(target: &Path, replace: bool) -> Result<Self, CoreError> {
        if !replace && is_non_empty_dir(target) {
            return Err(CoreError::format(
                target,
                "already exists and is not empty (pass --force to replace it)",
            ));
        }
        let mut name = target
            .file_name()
            .ok_or_else(|| CoreError::format(target, "is not a folder name"))?
            .to_os_string();
        name.push(".partial");
        let partial = target.with_file_name(name);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(CoreError::io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(CoreError::io(&partial))?;
        Ok(PartialDir {
            partial,
            target: target.to_path_buf(),
        })
    }

    /// The folder to write into now.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// The folder the outputs will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the finished outputs into place, replacing any earlier `target`.
    pub fn commit(self) -> Result<PathBuf, CoreError> {
        if self.target.exists() {
            let mut old = self.target.as_os_str().to_os_string();
            old.push(".old");
            let old = PathBuf::from(old);
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(CoreError::io(&old))?;
            }
            std::fs::rename(&self.target, &old).map_err(CoreError::io(&self.target))?;
            std::fs::rename(&self.partial, &self.target).map_err(CoreError::io(&self.target))?;
            std::fs::remove_dir_all(&old).map_err(CoreError::io(&old))?;
        } else {
            std::fs::rename(&self.partial, &self.target).map_err(CoreError::io(&self.target))?;
        }
        Ok(self.target)
    }
}

fn is_non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, |w| w.write_all(b"first")).unwrap();
        write_atomic(&path, |w| w.write_all(b"second")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o044,
                0o044,
                "outputs are readable by others: {mode:o}"
            );
        }
    }

    #[test]
    fn failed_atomic_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, |w| w.write_all(b"good")).unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("killed"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn partial_dir_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let partial = PartialDir::create(&target, false).unwrap();
        std::fs::write(partial.path().join("x"), b"1").unwrap();
        assert!(!target.exists());
        partial.commit().unwrap();
        assert_eq!(std::fs::read(target.join("x")).unwrap(), b"1");
        assert!(!dir.path().join("out.partial").exists());
    }

    #[test]
    fn partial_dir_refuses_to_replace_without_permission_and_clears_stale_partials() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("keep"), b"k").unwrap();
        assert!(PartialDir::create(&target, false).is_err());

        std::fs::create_dir_all(dir.path().join("out.partial")).unwrap();
        std::fs::write(dir.path().join("out.partial/stale"), b"s").unwrap();
        let partial = PartialDir::create(&target, true).unwrap();
        assert!(!partial.path().join("stale").exists());
        std::fs::write(partial.path().join("new"), b"n").unwrap();
        partial.commit().unwrap();
        assert!(target.join("new").exists());
        assert!(!target.join("keep").exists());
    }
}
