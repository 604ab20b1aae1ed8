//! The face decoder: JPEG (libjpeg-turbo at reduced scale), PNG and the rest through
//! `image`, cropped and resized. The first 9 bytes choose the box and the output.
#![no_main]

use valar_core::{ColorMode, FaceBox};
use valar_face::{FaceSpec, decode_face};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, image) = data.split_at(9);
    let coord = |i: usize| i64::from(i16::from_le_bytes([head[i], head[i + 1]]));
    let face_box = (head[8] & 1 == 1).then(|| FaceBox {
        x: coord(0),
        y: coord(2),
        width: coord(4),
        height: coord(6),
    });
    let spec = FaceSpec {
        size: u32::from(head[8] >> 3).max(1) * 4,
        color: if head[8] & 2 == 2 {
            ColorMode::Rgb
        } else {
            ColorMode::Gray
        },
        full_scale: head[8] & 4 == 4,
        // Small enough that a huge header is refused fast, as it is in prepare.
        max_pixels: 1 << 22,
        ..FaceSpec::default()
    };
    let _ = decode_face(image, face_box, &spec);
});
