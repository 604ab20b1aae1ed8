//! `valar evaluate`.

/// Arguments of `valar evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {}

/// Runs `valar evaluate`.
pub fn run(_args: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar evaluate` is not built yet")
}
