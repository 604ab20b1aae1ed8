//! Face preprocessing shared by `valar prepare` and `valar predict`: decode an image,
//! crop it to the face box, make it gray (or keep RGB) and resize it to S×S.
//!
//! Both stages call [`decode_face`], so a model sees at prediction time exactly the
//! pixels it was trained on.

/// Alignment from landmarks: eyes levelled and placed.
mod align;
/// Decoding: JPEG through libjpeg-turbo at a reduced DCT scale, straight to luma; the rest through `image`.
mod decode;
/// The error type, with a short reason code per failure.
mod error;
/// Resolving image paths under a root without letting them escape it.
mod paths;
/// Crop, colour conversion and resize.
mod pipeline;

pub use align::{Alignment, Eyes, LANDMARKS};
/// The reduced-scale decoding rules, public for the decode-floor example (`just bench-prep`),
/// which must decode exactly as `prepare` does.
pub use decode::{rows_needed, scale_numerator};
pub use error::FaceError;
pub use paths::{check_relative, resolve_under_root};
pub use pipeline::{
    Face, FaceSpec, decode_aligned, decode_face, image_file_limit, load_aligned, load_face,
    read_image,
};
