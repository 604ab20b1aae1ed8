//! `valar synth`.

/// Arguments of `valar synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {}

/// Runs `valar synth`.
pub fn run(_args: SynthArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar synth` is not built yet")
}
