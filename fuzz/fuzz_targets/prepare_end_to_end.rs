//! `valar prepare` end to end: a CSV (any kind `Input::from_csv` tells apart) and one
//! image, written to a folder and prepared with every face kept. The first two bytes
//! give the CSV's length; the rest after the CSV is the image, saved as `a.jpg` (the
//! decoder goes by content, not by name). Errors are fine (they are messages for the
//! user); a panic, hang or crash is what the fuzzer looks for.
#![no_main]

use valar_core::NoProgress;
use valar_prep::{Input, PrepareConfig, prepare};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (csv_text, image) = rest.split_at(len);
    let dir = std::env::temp_dir().join(format!("valar-fuzz-prepare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let images = dir.join("images");
    if std::fs::create_dir_all(&images).is_err() {
        return;
    }
    let csv = dir.join("input.csv");
    if std::fs::write(&csv, csv_text).is_err() || std::fs::write(images.join("a.jpg"), image).is_err() {
        return;
    }
    let Ok(input) = Input::from_csv(csv, images) else {
        return;
    };
    let mut cfg = PrepareConfig::recipe(input, dir.join("out"));
    cfg.keep_all = true;
    cfg.face.size = 8;
    let _ = prepare(&cfg, &NoProgress);
});
