//! AffectNet's original CSV (both the landmark-skipping reader and the general one).
#![no_main]

#[path = "csv_input.rs"]
mod csv_input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    csv_input::plan(data, |csv, images| valar_prep::Input::AffectNet { csv, images });
});
