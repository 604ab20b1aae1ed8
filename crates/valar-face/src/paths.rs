use crate::FaceError;
use std::path::{Component, Path, PathBuf};

/// Joins a relative image path from an input file onto the image root, refusing
/// paths that would leave the root (`../x.jpg`, `/etc/passwd`, `C:\\x`).
///
/// The check is lexical: it looks at the path as written, so it neither touches
/// the file system nor follows symbolic links placed inside the root on purpose.
pub fn resolve_under_root(root: &Path, relative: &str) -> Result<PathBuf, FaceError> {
    check_relative(relative)?;
    Ok(root.join(relative))
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
