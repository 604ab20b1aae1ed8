//! `valar predict`.

/// Arguments of `valar predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {}

/// Runs `valar predict`.
pub fn run(_args: PredictArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar predict` is not built yet")
}
