use crate::{CoreError, OutputLock};
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

/// The file inside a `.partial` folder that says valar made it, so that a folder of the
/// same name that a user made is never deleted as a leftover.
pub const PARTIAL_MARKER: &str = ".valar-partial";

/// An output folder that is built under `<name>.partial` and renamed to `<name>`
/// only when [`PartialDir::commit`] is called.
///
/// It holds the output's [`OutputLock`] from creation to commit, so two runs never write
/// one output. A killed run leaves only the `.partial` folder, which never looks finished
/// and is cleared by the next run (only if it carries valar's [`PARTIAL_MARKER`]).
#[derive(Debug)]
pub struct PartialDir {
    partial: PathBuf,
    target: PathBuf,
    lock: OutputLock,
}

impl PartialDir {
    /// Claims `target` and starts a fresh partial folder for it, removing a stale one from
    /// a killed run.
    ///
    /// Refused before any work: a `target` that is a file; a non-empty `target` folder
    /// unless `replace`; a `<target>.partial` that valar did not make; a `target` another
    /// run holds.
    pub fn create(target: &Path, replace: bool) -> Result<Self, CoreError> {
        let name = target
            .file_name()
            .ok_or_else(|| CoreError::format(target, "is not a folder name"))?
            .to_os_string();
        let lock = OutputLock::acquire(target)?;
        check_replaceable(target, replace)?;
        let mut partial_name = name;
        partial_name.push(".partial");
        let partial = target.with_file_name(partial_name);
        if std::fs::symlink_metadata(&partial).is_ok() {
            if !partial.join(PARTIAL_MARKER).is_file() {
                return Err(CoreError::format(
                    &partial,
                    format!(
                        "exists but was not left by valar (no {PARTIAL_MARKER} inside): refusing to delete it; move it away or choose another output"
                    ),
                ));
            }
            std::fs::remove_dir_all(&partial).map_err(CoreError::io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(CoreError::io(&partial))?;
        let marker = partial.join(PARTIAL_MARKER);
        std::fs::write(
            &marker,
            format!("unfinished output of {}\n", target.display()),
        )
        .map_err(CoreError::io(&marker))?;
        Ok(PartialDir {
            partial,
            target: target.to_path_buf(),
            lock,
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

    /// Moves the finished outputs into place. An earlier `target` is first moved to a fresh
    /// hidden name beside it and removed only once the new folder is in place, so nothing
    /// else beside `target` is ever touched.
    pub fn commit(self) -> Result<PathBuf, CoreError> {
        let marker = self.partial.join(PARTIAL_MARKER);
        std::fs::remove_file(&marker).map_err(CoreError::io(&marker))?;
        let replaced = match std::fs::symlink_metadata(&self.target) {
            Ok(meta) if meta.is_dir() => Some(move_aside(&self.target)?),
            Ok(_) => {
                return Err(CoreError::format(
                    &self.target,
                    "became a file while this run wrote its output: refusing to replace it",
                ));
            }
            Err(_) => None,
        };
        std::fs::rename(&self.partial, &self.target).map_err(CoreError::io(&self.target))?;
        if let Some(old) = replaced {
            std::fs::remove_dir_all(&old).map_err(CoreError::io(&old))?;
        }
        drop(self.lock);
        Ok(self.target)
    }
}

/// Checks that `target` may be written: absent, an empty folder, or (with `replace`) a folder.
fn check_replaceable(target: &Path, replace: bool) -> Result<(), CoreError> {
    match std::fs::symlink_metadata(target) {
        Err(_) => Ok(()),
        Ok(meta) if !meta.is_dir() => Err(CoreError::format(
            target,
            "is a file, not a folder: refusing to replace it; choose another output folder",
        )),
        Ok(_) if replace || !is_non_empty_dir(target) => Ok(()),
        Ok(_) => Err(CoreError::format(
            target,
            "already exists and is not empty (pass --force to replace it)",
        )),
    }
}

/// Moves the folder `dir` into a fresh hidden folder beside it (`.<name>.replaced-XXXXXX`)
/// and returns that folder, to be removed once its replacement is in place.
pub fn move_aside(dir: &Path) -> Result<PathBuf, CoreError> {
    let parent = parent_dir(dir);
    let name = dir
        .file_name()
        .ok_or_else(|| CoreError::format(dir, "is not a folder name"))?
        .to_string_lossy()
        .into_owned();
    let holder = tempfile::Builder::new()
        .prefix(&format!(".{name}.replaced-"))
        .tempdir_in(parent)
        .map_err(CoreError::io(parent))?
        .keep();
    std::fs::rename(dir, holder.join(&name)).map_err(CoreError::io(dir))?;
    Ok(holder)
}

/// Refuses an `output` that is one of a run's `inputs` or holds one (a folder output is
/// replaced whole), comparing canonical paths. `output` need not exist yet.
pub fn refuse_input_as_output(output: &Path, inputs: &[&Path]) -> Result<(), CoreError> {
    let Some(out) = canonical_output(output) else {
        return Ok(());
    };
    for input in inputs {
        let Ok(input_abs) = input.canonicalize() else {
            continue;
        };
        if input_abs == out {
            return Err(CoreError::format(
                output,
                format!(
                    "is an input of this run ({}): refusing to overwrite it; choose another output",
                    input.display()
                ),
            ));
        }
        if input_abs.starts_with(&out) {
            return Err(CoreError::format(
                output,
                format!(
                    "holds an input of this run ({}): refusing to replace it; choose another output",
                    input.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The canonical form of a path that may not exist yet: its parent's canonical form and its
/// own name. `None` when not even the parent exists (then it cannot be an existing input).
fn canonical_output(output: &Path) -> Option<PathBuf> {
    if let Ok(p) = output.canonicalize() {
        return Some(p);
    }
    let name = output.file_name()?;
    let parent = parent_dir(output).canonicalize().ok()?;
    Some(parent.join(name))
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
        std::fs::write(dir.path().join("out.partial").join(PARTIAL_MARKER), b"").unwrap();
        let partial = PartialDir::create(&target, true).unwrap();
        assert!(!partial.path().join("stale").exists());
        std::fs::write(partial.path().join("new"), b"n").unwrap();
        partial.commit().unwrap();
        assert!(target.join("new").exists());
        assert!(!target.join("keep").exists());
        assert!(!target.join(PARTIAL_MARKER).exists());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["out"], "no lock, partial or replaced folder is left");
    }

    #[test]
    fn partial_dir_touches_nothing_beside_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir_all(dir.path().join("out.old")).unwrap();
        std::fs::write(dir.path().join("out.old/thesis.txt"), b"precious").unwrap();
        std::fs::create_dir_all(dir.path().join("out.partial")).unwrap();
        std::fs::write(dir.path().join("out.partial/mine.txt"), b"mine").unwrap();
        let err = PartialDir::create(&target, true).unwrap_err().to_string();
        assert!(err.contains("not left by valar"), "{err}");
        std::fs::remove_dir_all(dir.path().join("out.partial")).unwrap();

        for _ in 0..2 {
            let partial = PartialDir::create(&target, true).unwrap();
            std::fs::write(partial.path().join("x"), b"1").unwrap();
            partial.commit().unwrap();
        }
        assert_eq!(
            std::fs::read(dir.path().join("out.old/thesis.txt")).unwrap(),
            b"precious"
        );
    }

    #[test]
    fn partial_dir_refuses_a_file_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("afile");
        std::fs::write(&target, b"data").unwrap();
        for replace in [false, true] {
            let err = PartialDir::create(&target, replace)
                .unwrap_err()
                .to_string();
            assert!(err.contains("is a file"), "{err}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"data");
        assert!(!dir.path().join("afile.partial").exists());
    }

    #[test]
    fn an_output_that_is_or_holds_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        std::fs::create_dir_all(&data).unwrap();
        let manifest = data.join("manifest.csv");
        std::fs::write(&manifest, b"x").unwrap();
        let spelled = dir.path().join("d/../d/manifest.csv");
        assert!(refuse_input_as_output(&spelled, &[&manifest]).is_err());
        assert!(refuse_input_as_output(&data, &[&manifest]).is_err());
        assert!(refuse_input_as_output(&data.join("new.csv"), &[&manifest]).is_ok());
        assert!(refuse_input_as_output(&dir.path().join("no/such/x"), &[&manifest]).is_ok());
    }
}
