//! The generic CSV (path, valence, arousal, optional box and expression).
#![no_main]

#[path = "csv_input.rs"]
mod csv_input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    csv_input::plan(data, |csv, images| valar_prep::Input::Generic { csv, images });
});
