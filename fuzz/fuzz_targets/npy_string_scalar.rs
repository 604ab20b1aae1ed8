//! The `.npy` string scalar of AffectNet's newer release's annotations.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = valar_core::parse_npy_string_scalar(data);
});
