//! `valar run`.

/// Arguments of `valar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `valar run`.
pub fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar run` is not built yet")
}
