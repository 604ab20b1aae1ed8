use crate::{CoreError, write_atomic};
use npyz::WriterBuilder;
use std::path::Path;

/// A stack of square faces, `n × channels × size × size`, uint8, C order:
/// exactly what `faces.npy` holds and what `numpy.load` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faces {
    /// Number of faces.
    pub n: usize,
    /// Channels per face: 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Side length in pixels.
    pub size: usize,
    /// The pixels, face after face, channel planes inside each face.
    pub data: Vec<u8>,
}

impl Faces {
    /// Bytes per face.
    pub fn face_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// The pixels of face `i`.
    pub fn face(&self, i: usize) -> &[u8] {
        let len = self.face_len();
        &self.data[i * len..(i + 1) * len]
    }
}

/// Writes `faces` as a `.npy` file (uint8, shape N×C×S×S), atomically.
pub fn write_faces(path: &Path, faces: &Faces) -> Result<(), CoreError> {
    if faces.data.len() != faces.n * faces.face_len() {
        return Err(CoreError::format(
            path,
            format!(
                "{} bytes do not make {} faces of {}×{}×{}",
                faces.data.len(),
                faces.n,
                faces.channels,
                faces.size,
                faces.size
            ),
        ));
    }
    let shape = [faces.n, faces.channels, faces.size, faces.size].map(|d| d as u64);
    write_atomic(path, |w| {
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(w)
            .begin_nd()?;
        writer.extend(faces.data.iter().copied())?;
        writer.finish()
    })
}

/// Writes `faces.npy` face by face, so a prepared set never has to fit in memory.
///
/// The header is written first with room for any face count and rewritten with the
/// real count by [`FacesWriter::finish`]; NumPy allows the header's padding spaces.
/// The file is meant to live inside a [`crate::PartialDir`], which makes it appear
/// only once complete.
pub struct FacesWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
    channels: usize,
    size: usize,
    n: usize,
}

/// The `.npy` 1.0 header for uint8 faces, padded to `len` bytes (0: as short as
/// NumPy pads, to a multiple of 64).
fn faces_header(n: usize, channels: usize, size: usize, len: usize) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({n}, {channels}, {size}, {size}), }}"
    );
    let total = if len == 0 {
        (10 + dict.len() + 1).div_ceil(64) * 64
    } else {
        len
    };
    while 10 + dict.len() + 1 < total {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

impl FacesWriter {
    /// Creates `path` for faces of `channels × size × size`.
    pub fn create(path: &Path, channels: usize, size: usize) -> Result<Self, CoreError> {
        use std::io::Write;
        let file = std::fs::File::create(path).map_err(CoreError::io(path))?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        file.write_all(&Self::header(usize::MAX, channels, size))
            .map_err(CoreError::io(path))?;
        Ok(FacesWriter {
            file,
            path: path.to_path_buf(),
            channels,
            size,
            n: 0,
        })
    }

    /// The header for `n` faces, as long as the one for the largest count.
    fn header(n: usize, channels: usize, size: usize) -> Vec<u8> {
        let len = faces_header(usize::MAX, channels, size, 0).len();
        faces_header(n, channels, size, len)
    }

    /// Appends one face (`channels × size × size` bytes, channel planes in order).
    pub fn push(&mut self, pixels: &[u8]) -> Result<(), CoreError> {
        use std::io::Write;
        let want = self.channels * self.size * self.size;
        if pixels.len() != want {
            return Err(CoreError::format(
                &self.path,
                format!(
                    "a face of {} bytes where {want} were expected",
                    pixels.len()
                ),
            ));
        }
        self.file
            .write_all(pixels)
            .map_err(CoreError::io(&self.path))?;
        self.n += 1;
        Ok(())
    }

    /// Faces written so far.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no face was written yet.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Writes the real face count into the header and flushes the file to disk.
    pub fn finish(self) -> Result<usize, CoreError> {
        use std::io::{Seek, SeekFrom, Write};
        let path = self.path;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| CoreError::io(&path)(e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(CoreError::io(&path))?;
        file.write_all(&Self::header(self.n, self.channels, self.size))
            .map_err(CoreError::io(&path))?;
        file.sync_all().map_err(CoreError::io(&path))?;
        Ok(self.n)
    }
}

/// Where the data of a `.npy` file starts (after its header), if the header is sound.
fn npy_data_offset(bytes: &[u8]) -> Option<usize> {
    match bytes.get(6)? {
        1 => Some(10 + usize::from(u16::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?]))),
        2 | 3 => {
            let len = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
            Some(12 + usize::try_from(len).ok()?)
        }
        _ => None,
    }
}

/// Refuses a header that is not one flat dict, before npyz parses it: valar's files
/// (a uint8 array, a string scalar) have one `{`, one `(` and no `[`, and npyz's
/// parser takes seconds on deeply nested brackets (found by the npy_string_scalar
/// fuzz target, a 139-byte file that took 16 s).
fn check_flat_header(bytes: &[u8]) -> Result<(), String> {
    let start = if bytes.get(6) == Some(&1) { 10 } else { 12 };
    let header = npy_data_offset(bytes)
        .and_then(|end| bytes.get(start..end))
        .filter(|_| bytes.starts_with(b"\x93NUMPY"))
        .ok_or("not a .npy file (no NUMPY magic or header)")?;
    let count = |c: u8| header.iter().filter(|&&b| b == c).count();
    if count(b'{') > 1 || count(b'(') > 1 || count(b'[') > 0 {
        return Err(format!(
            "the header `{}` is not a flat dict of descr, fortran_order and shape",
            String::from_utf8_lossy(header).trim()
        ));
    }
    Ok(())
}

/// Reads a `faces.npy` written by [`write_faces`] (or by numpy, as uint8 N×C×S×S).
pub fn read_faces(path: &Path) -> Result<Faces, CoreError> {
    let bytes = std::fs::read(path).map_err(CoreError::io(path))?;
    check_flat_header(&bytes).map_err(|e| CoreError::format(path, e))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| CoreError::format(path, e.to_string()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let expected = shape.iter().product::<usize>();
    let found = npy_data_offset(&bytes).map_or(0, |o| bytes.len().saturating_sub(o));
    if found < expected {
        return Err(CoreError::format(
            path,
            format!(
                "truncated: the header promises {expected} bytes of pixels (shape {shape:?}), the file holds {found}"
            ),
        ));
    }
    let [n, channels, h, w] = shape[..] else {
        return Err(CoreError::format(
            path,
            format!("expected a 4-D array N×C×S×S, found shape {shape:?}"),
        ));
    };
    if h != w {
        return Err(CoreError::format(
            path,
            format!("faces are not square: {h}×{w}"),
        ));
    }
    if npy.dtype().descr() != "'|u1'" && npy.dtype().descr() != "|u1" {
        return Err(CoreError::format(
            path,
            format!("expected uint8 pixels, found dtype {}", npy.dtype().descr()),
        ));
    }
    let data: Vec<u8> = npy
        .into_vec()
        .map_err(|e| CoreError::format(path, e.to_string()))?;
    Ok(Faces {
        n,
        channels,
        size: h,
        data,
    })
}

/// Encodes `value` as a `.npy` file holding a 0-d unicode string array, what
/// `numpy.save("x.npy", numpy.array("-0.176846"))` writes: AffectNet's newer release
/// stores each label this way. npyz writes the header and the UTF-32LE payload; its
/// header is 16-byte aligned where NumPy pads to 64, which NumPy reads fine.
pub fn npy_string_scalar(value: &str) -> std::io::Result<Vec<u8>> {
    // NumPy sizes `<U` to the string's code points; an empty string still gets `<U1`.
    let len = value.chars().count().max(1);
    let type_str: npyz::TypeStr = format!("<U{len}")
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let mut buf = Vec::with_capacity(128 + 4 * len);
    let mut writer = npyz::WriteOptions::<str>::new()
        .dtype(npyz::DType::Plain(type_str))
        .shape(&[])
        .writer(&mut buf)
        .begin_nd()?;
    writer.push(value)?;
    writer.finish()?;
    Ok(buf)
}

/// The largest label `.npy` valar reads: one scalar is under 200 bytes, so anything
/// near this is not a label (and is not read into memory whole).
const LABEL_FILE_LIMIT: u64 = 1 << 20;

/// A label read from a 0-d `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyScalar {
    /// A string scalar (dtype `<U…`), as AffectNet's newer release stores labels.
    Text(String),
    /// A number (float or integer dtypes), as `numpy.save(p, numpy.float64(v))` writes.
    Number(f64),
}

/// Reads a `.npy` file holding one NumPy string scalar (dtype `<U…`, shape `()`),
/// the way AffectNet's newer release stores each label.
pub fn read_npy_string_scalar(path: &Path) -> Result<String, CoreError> {
    let bytes = read_label_file(path)?;
    parse_npy_string_scalar(&bytes).map_err(|e| CoreError::format(path, e))
}

/// Reads a `.npy` file holding one scalar, a string or a number (see [`parse_npy_scalar`]).
pub fn read_npy_scalar(path: &Path) -> Result<NpyScalar, CoreError> {
    let bytes = read_label_file(path)?;
    parse_npy_scalar(&bytes).map_err(|e| CoreError::format(path, e))
}

/// A label file's bytes: a FIFO or a device in its place is an error, not a hang.
fn read_label_file(path: &Path) -> Result<Vec<u8>, CoreError> {
    crate::read_regular_file(path, LABEL_FILE_LIMIT).map_err(|source| CoreError::Read {
        path: path.to_path_buf(),
        source: source.with_limit_reason("a label file holds one value"),
    })
}

/// Parses the bytes of a `.npy` string scalar (see [`read_npy_string_scalar`]); the
/// error is a sentence saying what is wrong with them.
pub fn parse_npy_string_scalar(bytes: &[u8]) -> Result<String, String> {
    match parse_npy_scalar(bytes)? {
        NpyScalar::Text(text) => Ok(text),
        NpyScalar::Number(v) => Err(format!("not a string scalar: it holds the number {v}")),
    }
}

/// Parses the bytes of a 0-d `.npy` array: a unicode string, or a float (`f4`, `f8`)
/// or integer (1 to 8 bytes, signed or not) in either byte order. Whoever rewrites
/// AffectNet's string labels with NumPy gets floats; both mean the same label.
pub fn parse_npy_scalar(bytes: &[u8]) -> Result<NpyScalar, String> {
    use npyz::TypeChar::{Float, Int, Uint, UnicodeStr};
    check_flat_header(bytes)?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| e.to_string())?;
    if !npy.shape().is_empty() {
        return Err(format!("expected a scalar, found shape {:?}", npy.shape()));
    }
    let npyz::DType::Plain(type_str) = npy.dtype() else {
        return Err(format!(
            "dtype {} is a record, not a number or a string",
            npy.dtype().descr()
        ));
    };
    let number = |v: f64| Ok(NpyScalar::Number(v));
    match (type_str.type_char(), type_str.size_field()) {
        (UnicodeStr, _) => one::<String>(npy).map(NpyScalar::Text),
        (Float, 8) => one::<f64>(npy).and_then(number),
        (Float, 4) => one::<f32>(npy).and_then(|v| number(f64::from(v))),
        (Int, 1) => one::<i8>(npy).and_then(|v| number(f64::from(v))),
        (Int, 2) => one::<i16>(npy).and_then(|v| number(f64::from(v))),
        (Int, 4) => one::<i32>(npy).and_then(|v| number(f64::from(v))),
        (Int, 8) => one::<i64>(npy).and_then(|v| number(v as f64)),
        (Uint, 1) => one::<u8>(npy).and_then(|v| number(f64::from(v))),
        (Uint, 2) => one::<u16>(npy).and_then(|v| number(f64::from(v))),
        (Uint, 4) => one::<u32>(npy).and_then(|v| number(f64::from(v))),
        (Uint, 8) => one::<u64>(npy).and_then(|v| number(v as f64)),
        _ => Err(format!(
            "dtype {type_str} is neither a number (float or integer) nor a string"
        )),
    }
}

/// Reads a `.npy` file of numbers (see [`parse_npy_numbers`]): AffectNet's `_lnd.npy`.
pub fn read_npy_numbers(path: &Path) -> Result<Vec<f64>, CoreError> {
    let bytes = read_label_file(path)?;
    parse_npy_numbers(&bytes).map_err(|e| CoreError::format(path, e))
}

/// Parses the bytes of a `.npy` array of numbers, any shape, flattened in C order: floats
/// (`f4`, `f8`) or integers, as AffectNet's newer release stores landmarks (float64, 136);
/// or a string scalar of numbers separated by `;`, `,` or spaces.
pub fn parse_npy_numbers(bytes: &[u8]) -> Result<Vec<f64>, String> {
    use npyz::TypeChar::{Float, Int, Uint, UnicodeStr};
    check_flat_header(bytes)?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| e.to_string())?;
    if npy.order() == npyz::Order::Fortran {
        return Err("the array is in Fortran order; valar reads C order".into());
    }
    let npyz::DType::Plain(type_str) = npy.dtype() else {
        return Err(format!(
            "dtype {} is a record, not numbers",
            npy.dtype().descr()
        ));
    };
    fn all<T: npyz::Deserialize + Into<f64>>(
        npy: npyz::NpyFile<&[u8]>,
    ) -> Result<Vec<f64>, String> {
        let values: Vec<T> = npy.into_vec().map_err(|e| e.to_string())?;
        Ok(values.into_iter().map(Into::into).collect())
    }
    match (type_str.type_char(), type_str.size_field()) {
        (UnicodeStr, _) if npy.shape().is_empty() => {
            let text = one::<String>(npy)?;
            text.split([';', ',', ' ', '\n'])
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("`{}` is not a number", s.trim()))
                })
                .collect()
        }
        (Float, 8) => all::<f64>(npy),
        (Float, 4) => all::<f32>(npy),
        (Int, 2) => all::<i16>(npy),
        (Int, 4) => all::<i32>(npy),
        (Uint, 2) => all::<u16>(npy),
        (Uint, 4) => all::<u32>(npy),
        _ => Err(format!(
            "dtype {type_str} is not one valar reads numbers from (float, 16- or 32-bit integer, or a string)"
        )),
    }
}

/// The one value of a 0-d array.
fn one<T: npyz::Deserialize>(npy: npyz::NpyFile<&[u8]>) -> Result<T, String> {
    let mut values: Vec<T> = npy.into_vec().map_err(|e| e.to_string())?;
    values.pop().ok_or_else(|| "holds no value".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Two 1×3×3 faces holding 0..18.
    fn two_faces() -> Faces {
        Faces {
            n: 2,
            channels: 1,
            size: 3,
            data: (0..18).collect(),
        }
    }

    #[test]
    fn numbers_come_from_float_arrays_and_from_string_scalars() {
        let mut buf = Vec::new();
        let mut w = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(&[2, 2])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend([1.5, -2.0, 3.25, 4.0]).unwrap();
        w.finish().unwrap();
        assert_eq!(parse_npy_numbers(&buf).unwrap(), [1.5, -2.0, 3.25, 4.0]);
        let text = npy_string_scalar("1.5;-2;3.25;4").unwrap();
        assert_eq!(parse_npy_numbers(&text).unwrap(), [1.5, -2.0, 3.25, 4.0]);
        let bad = npy_string_scalar("1;x").unwrap();
        assert!(parse_npy_numbers(&bad).unwrap_err().contains("`x`"));
    }

    #[test]
    fn faces_round_trip_with_numpy_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faces.npy");
        let faces = two_faces();
        write_faces(&path, &faces).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header = String::from_utf8_lossy(&bytes[10..128]);
        assert!(header.contains("'descr': '|u1'"), "{header}");
        assert!(header.contains("'shape': (2, 1, 3, 3"), "{header}");
        assert_eq!(read_faces(&path).unwrap(), faces);
        assert_eq!(
            read_faces(&path).unwrap().face(1),
            &(9..18).collect::<Vec<u8>>()[..]
        );
    }

    #[test]
    fn faces_written_one_by_one_read_back_like_numpy_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faces.npy");
        let mut w = FacesWriter::create(&path, 3, 2).unwrap();
        for i in 0..5u8 {
            w.push(&[i; 12]).unwrap();
        }
        assert!(w.push(&[0; 11]).is_err(), "a face of the wrong size");
        assert_eq!(w.finish().unwrap(), 5);
        let faces = read_faces(&path).unwrap();
        assert_eq!((faces.n, faces.channels, faces.size), (5, 3, 2));
        assert_eq!(faces.face(4), &[4u8; 12][..]);
        let bytes = std::fs::read(&path).unwrap();
        // NumPy's own rule: the data starts at a multiple of 64.
        assert_eq!(npy_data_offset(&bytes).unwrap() % 64, 0);
        let empty = dir.path().join("empty.npy");
        FacesWriter::create(&empty, 1, 4).unwrap().finish().unwrap();
        assert_eq!(read_faces(&empty).unwrap().n, 0);
    }

    #[test]
    fn a_truncated_file_says_how_many_bytes_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faces.npy");
        let faces = two_faces();
        write_faces(&path, &faces).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = read_faces(&path).unwrap_err().to_string();
        assert!(
            err.contains("promises 18 bytes") && err.contains("holds 13"),
            "{err}"
        );
    }

    #[test]
    fn wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let faces = Faces {
            n: 2,
            channels: 1,
            size: 3,
            data: vec![0; 17],
        };
        assert!(write_faces(&dir.path().join("f.npy"), &faces).is_err());
    }

    /// Bytes exactly as `numpy.save("x.npy", numpy.array("-0.176846"))` writes them.
    fn numpy_string_scalar(value: &str) -> Vec<u8> {
        let payload: Vec<u8> = value
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        numpy_scalar(&format!("<U{}", value.chars().count()), &payload)
    }

    #[test]
    fn reads_affectnet_string_scalars() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0_val.npy");
        std::fs::write(&path, numpy_string_scalar("-0.176846")).unwrap();
        assert_eq!(read_npy_string_scalar(&path).unwrap(), "-0.176846");
    }

    #[test]
    fn encoded_string_scalars_have_numpys_header_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for value in ["-0.176846", "1;2.5;3", ""] {
            let bytes = npy_string_scalar(value).unwrap();
            assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
            let units = value.chars().count().max(1);
            assert!(
                header.starts_with(&format!(
                    "{{'descr': '<U{units}', 'fortran_order': False, 'shape': (), }}"
                )),
                "{header}"
            );
            assert!(header.ends_with('\n'));
            assert_eq!((10 + header_len) % 16, 0);
            assert_eq!(bytes.len() - 10 - header_len, units * 4);
            let path = dir.path().join("x.npy");
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_npy_string_scalar(&path).unwrap(), value);
        }
    }

    #[test]
    fn nested_brackets_are_refused_before_the_header_parser_sees_them() {
        // The fuzzer's slow input (16 s in npyz's parser), base64 as libFuzzer printed it.
        let b64 = "k05VTVBZAQB2AHt7e3t7e3t7e3sncGUnOiAoNiwpWwAAADwgfSAgICAgICAgICB0cmFuX28gICAgICAgICAgICAgICAgIAEAAAAAAAQAAic6ICg3LClbAAAAPCB9ICAgICAgICAgIHRyYW5fbyAgICAgcmFuX28gICAgICAgICAAAAAAAAAAAAAAAA==";
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = Vec::new();
        for c in b64.bytes().take_while(|&c| c != b'=') {
            let v = table.iter().position(|&t| t == c).unwrap() as u8;
            bits.extend((0..6).rev().map(|i| (v >> i) & 1));
        }
        let bytes: Vec<u8> = bits
            .chunks_exact(8)
            .map(|b| b.iter().fold(0u8, |acc, &bit| acc << 1 | bit))
            .collect();
        // The guard's own message: the input never reached npyz's parser.
        let err = parse_npy_string_scalar(&bytes).unwrap_err();
        assert!(err.contains("not a flat dict"), "{err}");
        let mut nested = b"\x93NUMPY\x01\x00".to_vec();
        let header = b"{'descr': [('a', '<U1')], 'fortran_order': False, 'shape': (), }\n";
        nested.extend((header.len() as u16).to_le_bytes());
        nested.extend(header);
        assert!(
            parse_npy_string_scalar(&nested)
                .unwrap_err()
                .contains("flat dict")
        );
        let plain = npy_string_scalar("0.5").unwrap();
        assert_eq!(parse_npy_string_scalar(&plain).unwrap(), "0.5");
    }

    /// A 0-d `.npy` of dtype `descr` holding `payload`, as NumPy pads it.
    fn numpy_scalar(descr: &str, payload: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (), }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(payload);
        bytes
    }

    #[test]
    fn numeric_scalars_are_read_as_numbers_in_either_byte_order() {
        let cases: [(&str, Vec<u8>, f64); 7] = [
            ("<f8", (-0.176846f64).to_le_bytes().to_vec(), -0.176846),
            (">f8", 0.5f64.to_be_bytes().to_vec(), 0.5),
            ("<f4", 0.25f32.to_le_bytes().to_vec(), 0.25),
            ("<i8", 3i64.to_le_bytes().to_vec(), 3.0),
            ("<i4", (-2i32).to_le_bytes().to_vec(), -2.0),
            ("|u1", vec![7], 7.0),
            ("|i1", vec![0xFE], -2.0),
        ];
        for (descr, payload, value) in cases {
            let bytes = numpy_scalar(descr, &payload);
            assert_eq!(
                parse_npy_scalar(&bytes).unwrap(),
                NpyScalar::Number(value),
                "{descr}"
            );
            assert!(parse_npy_string_scalar(&bytes).is_err(), "{descr}");
        }
        let text = numpy_string_scalar("0.5");
        assert_eq!(
            parse_npy_scalar(&text).unwrap(),
            NpyScalar::Text("0.5".into())
        );
        let err = parse_npy_scalar(&numpy_scalar("<c16", &[0; 16])).unwrap_err();
        assert!(err.contains("neither a number"), "{err}");
        let err = parse_npy_scalar(&numpy_scalar("|b1", &[1])).unwrap_err();
        assert!(err.contains("neither a number"), "{err}");
        // Too short for its dtype: an error, not a panic.
        assert!(parse_npy_scalar(&numpy_scalar("<f8", &[0; 3])).is_err());
    }

    #[test]
    fn numeric_array_is_not_a_string_scalar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let faces = Faces {
            n: 1,
            channels: 1,
            size: 1,
            data: vec![7],
        };
        write_faces(&path, &faces).unwrap();
        assert!(read_npy_string_scalar(&path).is_err());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(read_npy_string_scalar(&path).is_err());
    }
}
