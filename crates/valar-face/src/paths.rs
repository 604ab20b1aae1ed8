use crate::FaceError;
use std::path::{Component, Path, PathBuf};

/// Joins a relative image path from an input file onto the image root, refusing
/// paths that would leave the root (`../x.jpg`, `/etc/passwd`, `C:\x`).
///
/// The check is lexical: it looks at the path as written, so it neither touches
/// the file system nor follows symbolic links placed inside the root on purpose.
pub fn resolve_under_root(root: &Path, relative: &str) -> Result<PathBuf, FaceError> {
    let rel = Path::new(relative);
    let mut depth = 0usize;
    for component in rel.components() {
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
    Ok(root.join(rel))
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
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in ["../x.jpg", "/etc/passwd", "a/../../x.jpg", "", ".", "a/.."] {
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
