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

use super::csv::{Mapping, ParsedRows, RowFields};
use crate::PrepError;
use memchr::{memchr, memchr_iter, memrchr};
use rayon::prelude::*;
use std::path::Path;

/// Chunks per thread: enough that an uneven chunk does not leave a core idle.
const CHUNKS_PER_THREAD: usize = 8;

/// The rows of an AffectNet CSV whose columns are in AffectNet's order, or `None` when
/// the file needs the general reader.
pub(super) fn read(
    csv: &Path,
    has_header: bool,
    m: &Mapping,
) -> Result<Option<ParsedRows>, PrepError> {
    let bytes = std::fs::read(csv).map_err(PrepError::io(csv))?;
    Ok(parse(&bytes, has_header, m))
}

fn parse(bytes: &[u8], has_header: bool, m: &Mapping) -> Option<ParsedRows> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if memchr(b'"', text).is_some() {
        return None;
    }
    let (body, first_row) = if has_header {
        let end = memchr(b'\n', text).map_or(text.len(), |i| i + 1);
        (&text[end..], 2)
    } else {
        (text, 1)
    };
    let chunks = split_at_newlines(body, rayon::current_num_threads() * CHUNKS_PER_THREAD);
    // Each chunk's first line number: the newlines before it, counted in parallel.
    let counts: Vec<u64> = chunks
        .par_iter()
        .map(|c| memchr_iter(b'\n', c).count() as u64)
        .collect();
    let starts: Vec<u64> = counts
        .iter()
        .scan(first_row, |row, &n| {
            let start = *row;
            *row += n;
            Some(start)
        })
        .collect();
    let parsed: Vec<Option<ParsedRows>> = chunks
        .par_iter()
        .zip(starts)
        .map(|(chunk, start)| parse_chunk(chunk, start, m))
        .collect();
    let mut all = ParsedRows::with_capacity(0);
    for part in parsed {
        all.append(part?);
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

fn parse_chunk(chunk: &[u8], first_row: u64, m: &Mapping) -> Option<ParsedRows> {
    let mut rows = ParsedRows::with_capacity(chunk.len() / 1024 + 1);
    let mut lines = chunk.split(|&b| b == b'\n').peekable();
    let mut row = first_row;
    while let Some(line) = lines.next() {
        let at_end = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // After a chunk's last newline. Any other empty line is the general
            // reader's to judge.
            if at_end {
                break;
            }
            return None;
        }
        rows.push(row, m, &fields(line)?);
        row += 1;
    }
    Some(rows)
}

/// The fields around the landmarks, or `None` unless the line has exactly nine.
fn fields(line: &[u8]) -> Option<RowFields<'_>> {
    let mut front = [0usize; 5];
    let mut commas = memchr_iter(b',', line);
    for slot in &mut front {
        *slot = commas.next()?;
    }
    let last = memrchr(b',', line)?;
    let second = memrchr(b',', &line[..last])?;
    let third = memrchr(b',', &line[..second])?;
    if third <= front[4] || memchr(b',', &line[front[4] + 1..third]).is_some() {
        return None;
    }
    let text = |a: usize, b: usize| -> Option<Option<&str>> {
        let s = std::str::from_utf8(&line[a..b]).ok()?;
        // polars reads an empty field as null.
        Some((!s.is_empty()).then_some(s))
    };
    Some(RowFields {
        path: text(0, front[0])?,
        boxes: [
            text(front[0] + 1, front[1])?,
            text(front[1] + 1, front[2])?,
            text(front[2] + 1, front[3])?,
            text(front[3] + 1, front[4])?,
        ],
        expression: text(third + 1, second)?,
        valence: text(second + 1, last)?,
        arousal: text(last + 1, line.len())?,
        extra: None,
    })
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
