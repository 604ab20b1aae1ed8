use crate::CoreError;
use std::io::Read;
use std::path::Path;

/// The UTF-8 byte-order mark, which Excel's "CSV UTF-8" writes first.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `text` without a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Refuses a text file that is UTF-16, as Excel's "Unicode text" writes it, with the
/// encoding named and the command that converts it; valar's readers all read UTF-8
/// (with or without a byte-order mark). Told by the byte-order mark, or, without one,
/// by ASCII text with a zero byte before or after every character. Anything but a regular
/// file (a FIFO, a device, a folder) is refused before it is opened: opening a FIFO waits
/// for a writer that never comes, and every text reader of valar calls this first.
pub fn check_utf8_text(path: &Path) -> Result<(), CoreError> {
    let meta = std::fs::metadata(path).map_err(CoreError::io(path))?;
    crate::regular::check_regular(path, &meta, u64::MAX).map_err(|source| CoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = [0u8; 4];
    let mut n = 0;
    let mut file = std::fs::File::open(path).map_err(CoreError::io(path))?;
    while n < head.len() {
        match file.read(&mut head[n..]).map_err(CoreError::io(path))? {
            0 => break,
            k => n += k,
        }
    }
    match utf16_kind(&head[..n]) {
        Some(kind) => Err(CoreError::format(
            path,
            format!(
                "the file is {kind}, as Excel's \"Unicode text\" saves it; valar reads UTF-8: \
                 convert it with `iconv -f UTF-16 -t UTF-8 {} > converted.csv`, or save it \
                 from Excel as \"CSV UTF-8\"",
                path.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Which UTF-16 `head` (a file's first bytes) looks like, if any.
fn utf16_kind(head: &[u8]) -> Option<&'static str> {
    match head {
        [0xFF, 0xFE, ..] => Some("UTF-16 little-endian (with a byte-order mark)"),
        [0xFE, 0xFF, ..] => Some("UTF-16 big-endian (with a byte-order mark)"),
        [a, 0, b, 0] if *a != 0 && *b != 0 => Some("UTF-16 little-endian"),
        [0, a, 0, b] if *a != 0 && *b != 0 => Some("UTF-16 big-endian"),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_folder_is_refused_before_it_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("labels.csv");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opened, it would block this test forever.
        let err = check_utf8_text(&fifo).unwrap_err().to_string();
        assert!(err.contains("FIFO") && err.contains("labels.csv"), "{err}");
        let err = check_utf8_text(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn utf16_is_refused_with_the_encoding_and_the_conversion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.csv");
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("path".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        for (bytes, kind) in [
            (
                utf16le("path,valence\n", true),
                "little-endian (with a byte-order mark)",
            ),
            (utf16le("path,valence\n", false), "little-endian"),
            (be, "big-endian (with a byte-order mark)"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let err = check_utf8_text(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("UTF-16 {kind}")), "{err}");
            assert!(err.contains("iconv -f UTF-16 -t UTF-8"), "{err}");
            assert!(err.contains("labels.csv"), "{err}");
        }
        for fine in [&b"\xEF\xBB\xBFpath,valence\n"[..], b"path\n", b"", b"a"] {
            std::fs::write(&path, fine).unwrap();
            assert!(check_utf8_text(&path).is_ok());
        }
        assert_eq!(strip_bom("\u{feff}path"), "path");
        assert_eq!(strip_bom("path"), "path");
    }
}
