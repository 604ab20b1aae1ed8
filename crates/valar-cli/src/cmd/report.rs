//! `valar report`.

/// Arguments of `valar report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {}

/// Runs `valar report`.
pub fn run(_args: ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`valar report` is not built yet")
}
