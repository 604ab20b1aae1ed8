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

/// Reads a `faces.npy` written by [`write_faces`] (or by numpy, as uint8 N×C×S×S).
pub fn read_faces(path: &Path) -> Result<Faces, CoreError> {
    let bytes = std::fs::read(path).map_err(CoreError::io(path))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| CoreError::format(path, e.to_string()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
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

/// Reads a `.npy` file holding one NumPy string scalar (dtype `<U…`, shape `()`),
/// the way AffectNet's newer release stores each label.
pub fn read_npy_string_scalar(path: &Path) -> Result<String, CoreError> {
    let bytes = std::fs::read(path).map_err(CoreError::io(path))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| CoreError::format(path, e.to_string()))?;
    if !npy.shape().is_empty() {
        return Err(CoreError::format(
            path,
            format!("expected a scalar, found shape {:?}", npy.shape()),
        ));
    }
    let mut values: Vec<String> = npy
        .into_vec()
        .map_err(|e| CoreError::format(path, format!("not a string scalar: {e}")))?;
    values
        .pop()
        .ok_or_else(|| CoreError::format(path, "holds no value"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn faces_round_trip_with_numpy_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faces.npy");
        let faces = Faces {
            n: 2,
            channels: 1,
            size: 3,
            data: (0..18).collect(),
        };
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
        let mut header = format!(
            "{{'descr': '<U{}', 'fortran_order': False, 'shape': (), }}",
            value.chars().count()
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for c in value.chars() {
            bytes.extend((c as u32).to_le_bytes());
        }
        bytes
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
