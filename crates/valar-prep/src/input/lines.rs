//! AffectNet's original CSV read without tokenizing its landmark column.
//!
//! Of `training.csv`'s 423 MB, about nine tenths are `facial_landmarks`, which valar never
//! reads. Every line of the file has the same nine fields and no quotes, so the five fields
//! before the landmarks are the text up to the fifth comma and the three after them the text
//! after the third comma from the end. Lines are split in parallel chunks at newlines. The
//! rows then go through the same parsing as polars' rows (`ParsedRows::push`), and a test
//! checks that both readers give the same table and rejects. Any file this reader is not
//! sure of (quotes, a line with other than nine fields, an empty line inside, text that is
//! not UTF-8) goes to the general reader instead.

use super::rows::{Mapping, ParsedRows, RowFields};
use crate::PrepError;
#[cfg(test)]
use memchr::memchr_iter;
use memchr::{memchr, memchr2_iter, memrchr};
use rayon::prelude::*;
use std::path::Path;

/// Chunks per thread: enough that an uneven chunk does not leave a core idle.
const CHUNKS_PER_THREAD: usize = 8;

/// Bytes read at a time. Reading the whole file into one buffer spent more time in
/// the kernel (page faults on 423 MB of fresh memory) than parsing it did; one
/// reused block of a few megabytes stays mapped.
const BLOCK: u64 = 8 << 20;

/// The rows of an AffectNet CSV whose columns are in AffectNet's order, or `None` when
/// the file needs the general reader.
pub(super) fn read(
    csv: &Path,
    has_header: bool,
    m: &Mapping,
) -> Result<Option<ParsedRows>, PrepError> {
    read_in_blocks(csv, has_header, m, BLOCK)
}

fn read_in_blocks(
    csv: &Path,
    has_header: bool,
    m: &Mapping,
    block: u64,
) -> Result<Option<ParsedRows>, PrepError> {
    use std::io::Read;
    let mut file = std::fs::File::open(csv).map_err(PrepError::io(csv))?;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * block as usize);
    let mut all = ParsedRows::with_capacity(0);
    let (mut row, mut at_start, mut in_header) = (if has_header { 2 } else { 1 }, true, has_header);
    loop {
        let before = buf.len();
        let n = (&mut file)
            .take(block)
            .read_to_end(&mut buf)
            .map_err(PrepError::io(csv))?;
        let eof = n == 0;
        if memchr(b'"', &buf[before..]).is_some() {
            return Ok(None);
        }
        if at_start && (buf.len() >= 3 || eof) {
            if buf.starts_with(b"\xEF\xBB\xBF") {
                buf.drain(..3);
            }
            at_start = false;
        }
        if at_start {
            // Fewer than three bytes so far: a BOM cannot be told yet.
            continue;
        }
        if in_header {
            match memchr(b'\n', &buf) {
                Some(i) => {
                    buf.drain(..=i);
                    in_header = false;
                }
                None if eof => return Ok(Some(all)),
                None => continue,
            }
        }
        // Whole lines only, but for the file's last one.
        let end = match (eof, memrchr(b'\n', &buf)) {
            (true, _) => buf.len(),
            (false, Some(i)) => i + 1,
            (false, None) => continue,
        };
        let Some(part) = parse(&buf[..end], row, m) else {
            return Ok(None);
        };
        row += part.read as u64;
        all.append(part);
        buf.drain(..end);
        if eof {
            return Ok(Some(all));
        }
    }
}

/// Parses whole lines (the first being line `first_row`) in parallel chunks.
fn parse(body: &[u8], first_row: u64, m: &Mapping) -> Option<ParsedRows> {
    let chunks = split_at_newlines(body, rayon::current_num_threads() * CHUNKS_PER_THREAD);
    // Each chunk numbers its lines from 0; they are renumbered once all are counted.
    let parsed: Vec<Option<ParsedRows>> = chunks
        .par_iter()
        .map(|chunk| parse_chunk(chunk, m))
        .collect();
    let mut all = ParsedRows::with_capacity(0);
    let mut base = first_row;
    for part in parsed {
        let mut part = part?;
        part.row.iter_mut().for_each(|r| *r += base);
        part.rejects.iter_mut().for_each(|r| r.row += base);
        base += part.read as u64;
        all.append(part);
    }
    Some(all)
}

/// About `n` pieces of `text`, each ending just after a newline (the last at the end).
fn split_at_newlines(text: &[u8], n: usize) -> Vec<&[u8]> {
    let step = text.len().div_ceil(n.max(1)).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < text.len() {
        let guess = (start + step).min(text.len());
        let end = match memchr(b'\n', &text[guess - 1..]) {
            Some(i) => guess + i,
            None => text.len(),
        };
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// Parses a chunk of whole lines, numbering them from 0, or `None` when a line is
/// not one the fast reader is sure of.
fn parse_chunk(chunk: &[u8], m: &Mapping) -> Option<ParsedRows> {
    let mut rows = ParsedRows::with_capacity(chunk.len() / 1024 + 1);
    let mut line = Line::default();
    let mut start = 0;
    // One SIMD pass finds both the commas and the newlines; the landmarks, nine
    // tenths of the bytes, hold neither.
    for at in memchr2_iter(b',', b'\n', chunk).chain(std::iter::once(chunk.len())) {
        if at < chunk.len() && chunk[at] == b',' {
            line.comma(at - start);
            continue;
        }
        let text = &chunk[start..at];
        let fields = line.fields(text);
        let at_end = at == chunk.len();
        start = at + 1;
        line = Line::default();
        if text.is_empty() || text == b"\r" {
            // After a chunk's last newline. Any other empty line is the general
            // reader's to judge.
            if at_end && text.is_empty() {
                break;
            }
            return None;
        }
        rows.push(rows.read as u64, m, &fields?);
    }
    Some(rows)
}

/// The commas of one line as a scan passes them: the first five and the last three.
#[derive(Default)]
struct Line {
    front: [usize; 5],
    back: [usize; 3],
    count: usize,
}

impl Line {
    fn comma(&mut self, at: usize) {
        if self.count < 5 {
            self.front[self.count] = at;
        }
        self.back = [self.back[1], self.back[2], at];
        self.count += 1;
    }

    /// The fields around the landmarks, or `None` unless the line has exactly nine
    /// (eight commas).
    fn fields<'a>(&self, line: &'a [u8]) -> Option<RowFields<'a>> {
        if self.count != 8 {
            return None;
        }
        // A `\r` ends the line; no comma comes after it.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let [f0, f1, f2, f3, f4] = self.front;
        let [third, second, last] = self.back;
        let text = |a: usize, b: usize| -> Option<Option<&'a str>> {
            let s = std::str::from_utf8(line.get(a..b)?).ok()?;
            // polars reads an empty field as null.
            Some((!s.is_empty()).then_some(s))
        };
        Some(RowFields {
            path: text(0, f0)?,
            boxes: [
                text(f0 + 1, f1)?,
                text(f1 + 1, f2)?,
                text(f2 + 1, f3)?,
                text(f3 + 1, f4)?,
            ],
            landmarks: text(f4 + 1, third)?,
            expression: text(third + 1, second)?,
            valence: text(second + 1, last)?,
            arousal: text(last + 1, line.len())?,
            extra: None,
        })
    }
}

/// The fields of one line, scanned on its own (for tests).
#[cfg(test)]
fn fields(text: &[u8]) -> Option<RowFields<'_>> {
    let mut line = Line::default();
    for at in memchr_iter(b',', text) {
        line.comma(at);
    }
    line.fields(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_newlines_and_cover_the_text() {
        let text = b"a,b\nccc\n\ndddd\ne";
        for n in 1..12 {
            let chunks = split_at_newlines(text, n);
            assert_eq!(chunks.concat(), text);
            for c in &chunks[..chunks.len() - 1] {
                assert_eq!(c.last(), Some(&b'\n'));
            }
        }
        assert!(split_at_newlines(b"", 4).is_empty());
    }

    #[test]
    fn any_block_size_gives_the_same_rows() {
        let mapping = super::super::rows::affectnet_mapping();
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        let body = "1/a.jpg,10,20,30,30,1.0;2.0;3.5,1,0.5,-0.25\n2/b.jpg,0,0,40,40,,2,x,0.1\r\n";
        let summary = |rows: &ParsedRows| {
            let rejects: Vec<(u64, String)> = rows
                .rejects
                .iter()
                .map(|r| (r.row, r.detail.clone()))
                .collect();
            (
                rows.read,
                rows.row.clone(),
                rows.path.clone(),
                rows.valence.clone(),
                rejects,
            )
        };
        for text in [
            format!("\u{feff}subDirectory_filePath,a,b\n{}", body.repeat(40)),
            body.repeat(40).trim_end().to_string(),
            "h\n".to_string(),
            "h".to_string(),
        ] {
            std::fs::write(&csv, &text).unwrap();
            let whole = read_in_blocks(&csv, text.contains('h'), &mapping, 1 << 20)
                .unwrap()
                .unwrap();
            for block in [1, 2, 3, 7, 64, 1000] {
                let blocks = read_in_blocks(&csv, text.contains('h'), &mapping, block)
                    .unwrap()
                    .unwrap();
                assert_eq!(summary(&blocks), summary(&whole), "block {block}: {text:?}");
            }
        }
    }

    #[test]
    fn fields_come_from_both_ends_of_the_line() {
        let f = fields(b"1/a.jpg,1,2,3,4,5.0;6.0;7.0,6,0.5,-0.25").unwrap();
        assert_eq!(f.path, Some("1/a.jpg"));
        assert_eq!(f.boxes, [Some("1"), Some("2"), Some("3"), Some("4")]);
        assert_eq!(
            (f.expression, f.valence, f.arousal),
            (Some("6"), Some("0.5"), Some("-0.25"))
        );
        let empty = fields(b"1/a.jpg,1,2,3,4,,,0.5,").unwrap();
        assert_eq!((empty.expression, empty.arousal), (None, None));
        // Eight or ten fields are the general reader's to judge.
        assert!(fields(b"1/a.jpg,1,2,3,4,6,0.5,0.5").is_none());
        assert!(fields(b"1/a.jpg,1,2,3,4,x,y,6,0.5,0.5").is_none());
    }
}
