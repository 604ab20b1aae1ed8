//! `valar train`.

/// Arguments of `valar train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {}

/// Runs `valar train`.
pub fn run(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar train` is not built yet")
}
