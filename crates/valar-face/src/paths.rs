use crate::FaceError;
use std::path::{Component, Path, PathBuf};

/// Joins a relative image path from an input file onto the image root, refusing
/// paths that would leave the root (`../x.jpg`, `/etc/passwd`, `C:\\x`).
///
/// The check is lexical: it looks at the path as written, so it does not follow
/// symbolic links placed inside the root on purpose. A path with backslashes, as a
/// CSV written on Windows has them (`689\\a.jpg`), that does not exist as written but
/// does with `/` in their place is that file (on Unix `\\` is an ordinary character in
/// a name, so the name as written wins when both exist).
pub fn resolve_under_root(root: &Path, relative: &str) -> Result<PathBuf, FaceError> {
    check_relative(relative)?;
    let joined = root.join(relative);
    if relative.contains('\\') && !joined.exists() {
        let slashed = relative.replace('\\', "/");
        if check_relative(&slashed).is_ok() && root.join(&slashed).exists() {
            return Ok(root.join(slashed));
        }
    }
    Ok(joined)
}

/// The check of [`resolve_under_root`] without the join: whether `relative` names
/// something inside whatever root it is joined to.
pub fn check_relative(relative: &str) -> Result<(), FaceError> {
    // The common case, decided without splitting into components: no `..` anywhere,
    // not absolute, and some character that is neither `/` nor `.`, so at least one
    // ordinary component.
    let bytes = relative.as_bytes();
    if !bytes.starts_with(b"/")
        && !bytes.windows(2).any(|w| w == b"..")
        && bytes.iter().any(|&b| b != b'/' && b != b'.')
    {
        return Ok(());
    }
    let mut depth = 0usize;
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1).ok_or(FaceError::EscapesRoot)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(FaceError::EscapesRoot),
        }
    }
    if depth == 0 {
        return Err(FaceError::EscapesRoot);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_join_the_root() {
        assert_eq!(
            resolve_under_root(Path::new("/data"), "689/abc.jpg").unwrap(),
            PathBuf::from("/data/689/abc.jpg")
        );
        assert!(resolve_under_root(Path::new("/data"), "a/../b.jpg").is_ok());
        for fine in [
            "a.jpg",
            "./a.jpg",
            "a//b.jpg",
            "...",
            ".hidden",
            "a/..b/c.jpg",
        ] {
            assert!(check_relative(fine).is_ok(), "{fine:?} should be accepted");
        }
    }

    #[test]
    fn backslashes_are_separators_only_when_the_file_exists_that_way() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("689")).unwrap();
        std::fs::write(root.join("689/a.jpg"), "x").unwrap();
        assert_eq!(
            resolve_under_root(root, "689\\a.jpg").unwrap(),
            root.join("689/a.jpg")
        );
        // Neither way: the name as written, for the missing-file report.
        assert_eq!(
            resolve_under_root(root, "689\\b.jpg").unwrap(),
            root.join("689\\b.jpg")
        );
        // A name with a backslash that exists as written is that file.
        std::fs::write(root.join("689\\a.jpg"), "y").unwrap();
        assert_eq!(
            resolve_under_root(root, "689\\a.jpg").unwrap(),
            root.join("689\\a.jpg")
        );
        // Turned into `..`, a backslash path may not leave the root.
        std::fs::write(dir.path().join("outside.jpg"), "z").unwrap();
        let inner = root.join("689");
        assert_eq!(
            resolve_under_root(&inner, "..\\outside.jpg").unwrap(),
            inner.join("..\\outside.jpg")
        );
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in [
            "../x.jpg",
            "/etc/passwd",
            "a/../../x.jpg",
            "",
            ".",
            "a/..",
            "./.",
            "//x",
            "a/./../..",
        ] {
            assert!(
                matches!(
                    resolve_under_root(Path::new("/data"), bad),
                    Err(FaceError::EscapesRoot)
                ),
                "{bad:?} should be refused"
            );
        }
    }
}
