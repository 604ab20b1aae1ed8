//! Shared by the two CSV targets: the input written to a file, read and stratified
//! exactly as `valar prepare --dry-run` does it.

use std::path::PathBuf;
use valar_prep::{Input, PrepareConfig, plan_only};

/// Runs the dry-run plan over `data` as a CSV. Errors are fine (they are messages
/// for the user); a panic, hang or crash is what the fuzzer looks for.
pub fn plan(data: &[u8], input: fn(PathBuf, PathBuf) -> Input) {
    let dir = std::env::temp_dir().join(format!("valar-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let csv = dir.join("input.csv");
    if std::fs::write(&csv, data).is_err() {
        return;
    }
    let cfg = PrepareConfig::recipe(input(csv, dir.clone()), dir.join("out"));
    let _ = plan_only(&cfg);
}
