//! `valar merge`.

use crate::ui::{Bars, outln};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `valar merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shard folders written by `valar prepare --shard K/N`, all N of them, in any order.
    #[arg(required = true, value_name = "SHARD")]
    pub shards: Vec<PathBuf>,
    /// The merged dataset folder: byte-identical (manifest.csv, faces.npy, rejects.csv) to
    /// what one `valar prepare` would write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output folder if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `valar merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let inputs: Vec<&std::path::Path> = args.shards.iter().map(PathBuf::as_path).collect();
    valar_core::refuse_input_as_output(&args.out, &inputs)?;
    let merged = valar_prep::merge(&args.shards, &args.out, args.force, &Bars::default())
        .with_context(|| format!("merging {} shards", args.shards.len()))?;
    outln!(
        "Merged {} shards: {} faces → {}",
        args.shards.len(),
        merged.info.faces,
        merged.out.display()
    );
    Ok(())
}
