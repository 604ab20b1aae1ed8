use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::path::Path;

/// Why an input file (an image, a label `.npy`) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing at the path (or a link to nothing).
    #[error("file not found")]
    Missing,
    /// Something other than a regular file: a FIFO would block the reader forever, a
    /// device such as `/dev/zero` would fill memory, a folder has no bytes.
    #[error("{what}, not a regular file{link}")]
    NotRegular {
        /// What it is: "a FIFO (named pipe)", "a character device", ….
        what: &'static str,
        /// ` (a link to …)` when the path is a symbolic link, else empty.
        link: String,
    },
    /// Larger than any file of its kind valar reads can sensibly be.
    #[error("the file is {size} bytes, over the limit of {limit} bytes{why}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
        /// Where the limit comes from, as ` (…)`, or empty.
        why: String,
    },
    /// It could not be opened or read.
    #[error("cannot read file: {0}")]
    Io(std::io::Error),
}

impl ReadError {
    /// The same error with where its size limit comes from.
    pub fn with_limit_reason(self, reason: &str) -> Self {
        match self {
            ReadError::TooLarge { size, limit, .. } => ReadError::TooLarge {
                size,
                limit,
                why: format!(" ({reason})"),
            },
            other => other,
        }
    }
}

/// Reads a file that must be a regular file (a symbolic link to one is fine) of at most
/// `limit` bytes, without ever blocking on it or reading past the limit.
///
/// `std::fs::read` on a FIFO waits for a writer that never comes, and on `/dev/zero`
/// or a 20 GB sparse file it allocates until the machine runs out of memory (issue 25,
/// findings 16 and 18). The type is checked before opening, because opening some
/// devices does something by itself; the open is non-blocking and the type and size
/// are checked again on the open handle, so a file swapped in between is caught too.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing,
        _ => ReadError::Io(e),
    };
    check_regular(path, &std::fs::metadata(path).map_err(io)?, limit)?;
    let file = open_nonblocking(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_regular(path, &meta, limit)?;
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    // One byte past the limit tells a file that grew while it was read.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(ReadError::TooLarge {
            size,
            limit,
            why: String::new(),
        });
    }
    Ok(bytes)
}

pub(crate) fn check_regular(path: &Path, meta: &Metadata, limit: u64) -> Result<(), ReadError> {
    if !meta.is_file() {
        let link = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
                .map(|t| format!(" (a link to {})", t.display()))
                .unwrap_or_default(),
            _ => String::new(),
        };
        return Err(ReadError::NotRegular {
            what: kind(&meta.file_type()),
            link,
        });
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
            why: String::new(),
        });
    }
    Ok(())
}

/// What a file that is not a regular file is, in words.
fn kind(t: &FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a folder" } else { "something" }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Without O_NONBLOCK, opening a FIFO for reading waits for a writer.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_regular_file(&path, 5).unwrap(), b"12345");
        let err = read_regular_file(&path, 4).unwrap_err();
        assert!(matches!(
            err,
            ReadError::TooLarge {
                size: 5,
                limit: 4,
                ..
            }
        ));
        let err = err.with_limit_reason("why");
        assert!(err.to_string().ends_with("limit of 4 bytes (why)"), "{err}");
        let link = dir.path().join("b.jpg");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_regular_file(&link, 5).unwrap(), b"12345");
        let missing = dir.path().join("none.jpg");
        assert!(matches!(
            read_regular_file(&missing, 5),
            Err(ReadError::Missing)
        ));
    }

    #[test]
    fn devices_fifos_and_folders_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_regular_file(&link, u64::MAX).unwrap_err().to_string();
        assert_eq!(
            err,
            "a character device, not a regular file (a link to /dev/zero)"
        );
        let err = read_regular_file(dir.path(), u64::MAX).unwrap_err();
        assert_eq!(err.to_string(), "a folder, not a regular file");
        let fifo = dir.path().join("pipe.npy");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_regular_file(&fifo, u64::MAX).unwrap_err();
            assert_eq!(err.to_string(), "a FIFO (named pipe), not a regular file");
        }
    }
}
