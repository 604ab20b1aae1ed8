//! NumPy string scalars (`<U…`, shape `()`), the newer AffectNet release's label files.

use npyz::WriterBuilder;

/// Serializes `s` as a `.npy` file holding a 0-d unicode string array, what
/// `numpy.save('x.npy', numpy.array('-0.176846'))` writes. npyz writes the header
/// and UTF-32LE payload; NumPy reads its 16-byte-aligned header fine.
pub(crate) fn string_scalar(s: &str) -> std::io::Result<Vec<u8>> {
    // NumPy sizes `<U` to the string's code points; an empty string still gets `<U1`.
    let len = s.chars().count().max(1);
    let type_str: npyz::TypeStr = format!("<U{len}")
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let mut buf = Vec::with_capacity(128 + 4 * len);
    let mut writer = npyz::WriteOptions::<str>::new()
        .dtype(npyz::DType::Plain(type_str))
        .shape(&[])
        .writer(&mut buf)
        .begin_nd()?;
    writer.push(s)?;
    writer.finish()?;
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_and_payload_match_numpy() {
        let bytes = string_scalar("-0.176846").unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            header.starts_with("{'descr': '<U9', 'fortran_order': False, 'shape': (), }"),
            "{header}"
        );
        assert!(header.ends_with('\n'));
        assert_eq!((10 + header_len) % 16, 0);
        let payload = &bytes[10 + header_len..];
        assert_eq!(payload.len(), 9 * 4);
        let decoded: String = payload
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap())
            .collect();
        assert_eq!(decoded, "-0.176846");
    }

    #[test]
    fn npyz_reads_it_back() {
        let bytes = string_scalar("1;2.5;3").unwrap();
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert!(file.shape().is_empty());
        assert_eq!(
            file.into_vec::<String>().unwrap(),
            vec!["1;2.5;3".to_string()]
        );
    }
}
