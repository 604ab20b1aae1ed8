pub mod audit;
pub mod evaluate;
pub mod merge;
pub mod predict;
pub mod prepare;
pub mod report;
pub mod run;
pub mod slurm;
pub mod sweep;
pub mod synth;
pub mod train;

use std::path::Path;

/// Checks a file output before any work: it is none of the run's `inputs` and not a folder;
/// its parent folder is created, as every command does for `--out`.
pub(crate) fn claim_output_file(out: &Path, inputs: &[&Path]) -> anyhow::Result<()> {
    valar_core::refuse_input_as_output(out, inputs)?;
    if out.is_dir() {
        anyhow::bail!(
            "{}: is a folder; --out takes the file to write",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
    }
    Ok(())
}
