//! `valar prepare`.

/// Arguments of `valar prepare`.
#[derive(Debug, clap::Args)]
pub struct PrepareArgs {}

/// Runs `valar prepare`.
pub fn run(_args: PrepareArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar prepare` is not built yet")
}
