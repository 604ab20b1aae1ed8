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
/// and is cleared by the next run (only if it carries valar's [`PARTIAL_MARKER`]). A run
/// killed inside [`PartialDir::commit`] leaves a note in that marker naming where the
/// earlier output was moved, and the next run finishes the replacement.
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
        let lock = OutputLock::acquire(target)?;
        let partial = partial_path(target)?;
        let finished = finish_interrupted_commit(target, &partial)?;
        check_replaceable(target, replace).map_err(|e| match (finished, e) {
            (true, CoreError::Format { path, reason }) => CoreError::Format {
                path,
                reason: format!(
                    "{reason}; it holds the output of an earlier run that was interrupted while replacing it, whose replacement was finished just now"
                ),
            },
            (_, e) => e,
        })?;
        if std::fs::symlink_metadata(&partial).is_ok() {
            if !partial.join(PARTIAL_MARKER).is_file() {
                return Err(foreign_partial(target, &partial));
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
    ///
    /// Before anything moves, the marker is rewritten to name that hidden folder; it goes
    /// into `target` with the rest and is removed last, so a run killed at any step leaves a
    /// note from which the next [`PartialDir::create`] finishes the replacement.
    pub fn commit(self) -> Result<PathBuf, CoreError> {
        let replaced = match std::fs::symlink_metadata(&self.target) {
            Ok(meta) if meta.is_dir() => Some(aside_holder(&self.target)?),
            Ok(_) => {
                return Err(CoreError::format(
                    &self.target,
                    "became a file while this run wrote its output: refusing to replace it",
                ));
            }
            Err(_) => None,
        };
        if let Some(holder) = &replaced {
            let name = holder.file_name().unwrap_or_default().to_string_lossy();
            let note = format!("{REPLACING} {}{ASIDE_IN}{name}\n", self.target.display());
            write_atomic(&self.partial.join(PARTIAL_MARKER), |w| {
                w.write_all(note.as_bytes())
            })?;
            let name = file_name(&self.target)?;
            std::fs::rename(&self.target, holder.join(name))
                .map_err(CoreError::io(&self.target))?;
        }
        std::fs::rename(&self.partial, &self.target).map_err(CoreError::io(&self.target))?;
        if let Some(old) = replaced {
            std::fs::remove_dir_all(&old).map_err(CoreError::io(&old))?;
        }
        let marker = self.target.join(PARTIAL_MARKER);
        std::fs::remove_file(&marker).map_err(CoreError::io(&marker))?;
        drop(self.lock);
        Ok(self.target)
    }

    /// Gives up: removes the partial folder (best effort, as its caller has an error of
    /// its own to report) and releases the output.
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.partial);
    }
}

/// How a [`PartialDir::commit`] that is moving an earlier output aside starts its marker,
/// and what comes before the hidden folder's name.
const REPLACING: &str = "replacing";
const ASIDE_IN: &str = ": the earlier output is in ";

/// `target`'s sibling `<name>.partial`.
fn partial_path(target: &Path) -> Result<PathBuf, CoreError> {
    let mut name = file_name(target)?.to_os_string();
    name.push(".partial");
    Ok(target.with_file_name(name))
}

fn file_name(path: &Path) -> Result<&std::ffi::OsStr, CoreError> {
    path.file_name()
        .ok_or_else(|| CoreError::format(path, "is not a folder name"))
}

/// The hidden folder a commit of `target` was moving the earlier output into, as named by
/// the marker in `dir` (the partial folder before the rename, `target` after); `None`
/// when there is no such note. Only a folder beside `target` named as [`move_aside`] names
/// them is ever taken from a note.
fn interrupted_commit(target: &Path, dir: &Path) -> Option<PathBuf> {
    let note = std::fs::read_to_string(dir.join(PARTIAL_MARKER)).ok()?;
    let name = note.lines().next()?.strip_prefix(REPLACING)?;
    let (_, holder) = name.rsplit_once(ASIDE_IN)?;
    let expected = format!(".{}.replaced-", file_name(target).ok()?.to_string_lossy());
    (holder.starts_with(&expected) && !holder.contains(['/', '\\']))
        .then(|| parent_dir(target).join(holder))
}

/// Finishes a [`PartialDir::commit`] that was killed midway, as its marker notes say; true
/// when there was one. The partial folder is complete by then (commit is only called on
/// a finished output that passed every check), so the replacement is carried through.
fn finish_interrupted_commit(target: &Path, partial: &Path) -> Result<bool, CoreError> {
    let target_missing = std::fs::symlink_metadata(target).is_err();
    if target_missing && let Some(holder) = interrupted_commit(target, partial) {
        // Killed after the earlier output was moved aside, before the new one took its place.
        std::fs::rename(partial, target).map_err(CoreError::io(target))?;
        clear_commit_note(target, &holder)?;
        return Ok(true);
    }
    if let Some(holder) = interrupted_commit(target, partial) {
        // Killed before the earlier output moved: only the hidden folder made for it, still
        // empty, is left to clear (`remove_dir` removes nothing else); the partial folder is
        // then a stale one like any other.
        let _ = std::fs::remove_dir(holder);
    }
    if let Some(holder) = interrupted_commit(target, target) {
        // Killed after the new output took its place, before the cleanup ended.
        clear_commit_note(target, &holder)?;
        return Ok(true);
    }
    let marker = target.join(PARTIAL_MARKER);
    if marker.is_file() {
        // Killed between the rename and the marker's removal, with nothing moved aside.
        std::fs::remove_file(&marker).map_err(CoreError::io(&marker))?;
        return Ok(true);
    }
    Ok(false)
}

/// Removes the hidden folder of a finished replacement and the marker left in `target`.
fn clear_commit_note(target: &Path, holder: &Path) -> Result<(), CoreError> {
    if holder.is_dir() {
        std::fs::remove_dir_all(holder).map_err(CoreError::io(holder))?;
    }
    let marker = target.join(PARTIAL_MARKER);
    std::fs::remove_file(&marker).map_err(CoreError::io(&marker))
}

/// The error for a `.partial` folder without valar's marker, naming any hidden folder an
/// interrupted replacement (by an older valar) may have left the earlier output in.
fn foreign_partial(target: &Path, partial: &Path) -> CoreError {
    let prefix = format!(
        ".{}.replaced-",
        target.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut aside: Vec<String> = std::fs::read_dir(parent_dir(target))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().display().to_string())
        .collect();
    aside.sort();
    let mut reason = format!(
        "exists but was not left by valar (no {PARTIAL_MARKER} inside): refusing to delete it; move it away or choose another output"
    );
    if !aside.is_empty() && std::fs::symlink_metadata(target).is_err() {
        reason = format!(
            "exists without valar's {PARTIAL_MARKER} marker and {} is missing: a replacement may have been interrupted, leaving the new output in {} and the earlier one in {}; move the one you want to {} and remove the other",
            target.display(),
            partial.display(),
            aside.join(", "),
            target.display()
        );
    }
    CoreError::format(partial, reason)
}

/// Whether an output folder exists, and holds anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputDir {
    /// Nothing is there yet.
    Absent,
    /// An empty folder.
    Empty,
    /// A folder with files in it: replaced only when the user says so.
    NonEmpty,
}

/// What is at an output folder's path; a file there is refused, never replaced.
pub fn output_dir_state(target: &Path) -> Result<OutputDir, CoreError> {
    match std::fs::symlink_metadata(target) {
        Err(_) => Ok(OutputDir::Absent),
        Ok(meta) if !meta.is_dir() => Err(CoreError::format(
            target,
            "is a file, not a folder: refusing to replace it; choose another output folder",
        )),
        Ok(_) if is_non_empty_dir(target) => Ok(OutputDir::NonEmpty),
        Ok(_) => Ok(OutputDir::Empty),
    }
}

/// Checks that `target` may be written: absent, an empty folder, or (with `replace`) a folder.
fn check_replaceable(target: &Path, replace: bool) -> Result<(), CoreError> {
    match output_dir_state(target)? {
        OutputDir::NonEmpty if !replace => Err(CoreError::format(
            target,
            "already exists and is not empty (pass --force to replace it)",
        )),
        _ => Ok(()),
    }
}

/// Removes the folder `dir` whole, after moving it to a fresh hidden name beside it, so
/// that `dir` is never a half-deleted folder and nothing beside it is touched.
pub fn remove_replaced(dir: &Path) -> Result<(), CoreError> {
    let old = move_aside(dir)?;
    std::fs::remove_dir_all(&old).map_err(CoreError::io(&old))
}

/// A fresh hidden folder beside `dir` (`.<name>.replaced-XXXXXX`) to move it into.
fn aside_holder(dir: &Path) -> Result<PathBuf, CoreError> {
    let parent = parent_dir(dir);
    let name = file_name(dir)?.to_string_lossy().into_owned();
    Ok(tempfile::Builder::new()
        .prefix(&format!(".{name}.replaced-"))
        .tempdir_in(parent)
        .map_err(CoreError::io(parent))?
        .keep())
}

/// Moves the folder `dir` into a fresh hidden folder beside it (`.<name>.replaced-XXXXXX`)
/// and returns that folder, to be removed once its replacement is in place.
pub fn move_aside(dir: &Path) -> Result<PathBuf, CoreError> {
    let holder = aside_holder(dir)?;
    std::fs::rename(dir, holder.join(file_name(dir)?)).map_err(CoreError::io(dir))?;
    Ok(holder)
}

/// Refuses an `output` that is one of a run's `inputs` or holds one (a folder output is
/// replaced whole). Both sides are compared in [`normalize_path`]'s form, so an `output`
/// need not exist yet, nor its parent (`nope/../input.jpg` is `input.jpg`).
pub fn refuse_input_as_output(output: &Path, inputs: &[&Path]) -> Result<(), CoreError> {
    let out = normalize_path(output)?;
    for input in inputs {
        // An input that is not there cannot be lost (the run fails on it, saying so).
        if std::fs::symlink_metadata(input).is_err() {
            continue;
        }
        let Ok(input_abs) = normalize_path(input) else {
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

/// The absolute form of `path` that the system will resolve it to, whether or not it exists:
/// its longest existing ancestor canonicalised (links followed, as the system follows them),
/// then the rest taken lexically (`.` dropped, `..` removing the name before it), which is
/// right because no part of the rest exists to be a link.
pub fn normalize_path(path: &Path) -> Result<PathBuf, CoreError> {
    use std::path::Component;
    let abs = std::path::absolute(path).map_err(CoreError::io(path))?;
    let parts: Vec<Component> = abs.components().collect();
    let (mut out, rest) = (1..=parts.len())
        .rev()
        .find_map(|n| {
            let prefix: PathBuf = parts[..n].iter().collect();
            prefix.canonicalize().ok().map(|c| (c, n))
        })
        .unwrap_or_else(|| (PathBuf::new(), 0));
    for part in &parts[rest..] {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
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
            use std::os::unix::fs::OpenOptionsExt;
            use std::os::unix::fs::PermissionsExt;
            // What the umask lets through, seen on a file created asking for everything: a
            // umask of 027 rightly keeps outputs from others.
            let probe = dir.path().join("probe");
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o777)
                .open(&probe)
                .unwrap();
            let allowed = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
            std::fs::remove_file(&probe).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode,
                0o644 & allowed,
                "outputs are as readable as the umask ({:o}) allows: {mode:o}",
                0o777 & !allowed
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
    #[test]
    fn an_output_spelled_through_a_missing_folder_is_still_compared() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("f1.jpg");
        std::fs::write(&image, b"x").unwrap();
        let spelled = dir.path().join("nope/../f1.jpg");
        let err = refuse_input_as_output(&spelled, &[&image])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is an input"), "{err}");
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let csv = src.join("a.csv");
        std::fs::write(&csv, b"x").unwrap();
        let spelled = dir.path().join("nope/deeper/../../src");
        let err = refuse_input_as_output(&spelled, &[&csv])
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds an input"), "{err}");
        assert!(refuse_input_as_output(&dir.path().join("nope/../src2"), &[&csv]).is_ok());
        assert_eq!(
            normalize_path(&dir.path().join("a/./b/../c")).unwrap(),
            dir.path().canonicalize().unwrap().join("a/c")
        );
    }

    /// The states a kill inside `commit` leaves, as the next `create` finds them.
    #[test]
    fn an_interrupted_commit_is_finished_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let partial = PartialDir::create(&target, false).unwrap();
        std::fs::write(partial.path().join("v"), b"1").unwrap();
        partial.commit().unwrap();

        // Killed after the old output was moved aside, before the new one was renamed.
        let partial = PartialDir::create(&target, true).unwrap();
        std::fs::write(partial.path().join("v"), b"2").unwrap();
        let holder = aside_holder(&target).unwrap();
        let name = holder.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(
            partial.path().join(PARTIAL_MARKER),
            format!("{REPLACING} {}{ASIDE_IN}{name}\n", target.display()),
        )
        .unwrap();
        std::fs::rename(&target, holder.join("out")).unwrap();
        drop(partial); // released, as a killed run's lock is
        let err = PartialDir::create(&target, false).unwrap_err().to_string();
        assert!(
            err.contains("interrupted") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(std::fs::read(target.join("v")).unwrap(), b"2");
        assert!(!holder.exists() && !target.join(PARTIAL_MARKER).exists());

        // Killed after the rename, before the old output was removed.
        let holder = aside_holder(&target).unwrap();
        std::fs::create_dir_all(holder.join("out")).unwrap();
        let name = holder.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(
            target.join(PARTIAL_MARKER),
            format!("{REPLACING} {}{ASIDE_IN}{name}\n", target.display()),
        )
        .unwrap();
        let partial = PartialDir::create(&target, true).unwrap();
        assert!(!holder.exists());
        partial.commit().unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["out"]);

        // A note naming anything but a hidden folder beside the output is not followed.
        let precious = dir.path().join("precious");
        std::fs::create_dir_all(&precious).unwrap();
        std::fs::write(
            target.join(PARTIAL_MARKER),
            format!("{REPLACING} {}{ASIDE_IN}../precious\n", target.display()),
        )
        .unwrap();
        drop(PartialDir::create(&target, true).unwrap());
        assert!(precious.is_dir());
    }
}
