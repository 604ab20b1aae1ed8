//! `valar prepare`.

use crate::ui::Bars;
use crate::ui::outln;
use anyhow::Context;
use std::path::PathBuf;
use valar_prep::{PrepError, PrepareConfig, PrepareSettings, SourceArgs, plan_only, prepare};

/// Arguments of `valar prepare`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["csv", "set", "afew_va", "aff_wild2"])))]
pub struct PrepareArgs {
    /// Where the samples come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output folder.
    #[arg(long, required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,
    /// Replace the output folder if it exists.
    #[arg(long)]
    pub force: bool,
    /// Sampling, face and video settings (valar.toml's `[prepare]` takes the same).
    #[command(flatten)]
    pub settings: PrepareSettings,
    /// Read, exclude and stratify, print the counts, and stop before opening any image.
    #[arg(long)]
    pub dry_run: bool,
    /// Preprocess only shard K of N (0-based) of the same seeded plan into --out;
    /// `valar merge` combines the N shard folders.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<valar_prep::Shard>,
    /// Drop the rows a `valar audit` of this input found (its audit.csv) before
    /// stratifying, each with a rejects.csv row; of each duplicate group the lowest row stays.
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// Act only on these kinds of finding (repeatable; default: all), e.g. exact_duplicate.
    #[arg(long, requires = "exclude", value_parser = parse_kind)]
    pub exclude_kind: Vec<valar_core::AuditKind>,
}

fn parse_kind(name: &str) -> Result<valar_core::AuditKind, String> {
    valar_core::AuditKind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = valar_core::AuditKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        format!("unknown kind; one of {}", names.join(", "))
    })
}

/// A setting's flag: `val_fraction` is `--val-fraction`.
pub fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// A library error in the command line's terms: settings named by their flags.
pub fn in_flag_words(err: PrepError) -> anyhow::Error {
    match err.setting_message(&flag) {
        Some(message) => anyhow::anyhow!(message),
        None => err.into(),
    }
}

impl PrepareArgs {
    /// The library configuration these arguments ask for, checked.
    pub fn config(&self) -> anyhow::Result<PrepareConfig> {
        let Some(input) = self.source.input().map_err(in_flag_words)? else {
            // clap's "input" group asks for one; this guards a group edited away.
            return Err(in_flag_words(PrepError::SourceChoice { given: Vec::new() }));
        };
        let mut cfg = PrepareConfig::new(
            input,
            self.out.clone().unwrap_or_default(),
            self.settings.clone(),
        );
        cfg.force = self.force;
        cfg.shard = self.shard;
        cfg.exclude = self.exclude.clone();
        cfg.exclude_kinds = self.exclude_kind.clone();
        cfg.validate().map_err(in_flag_words)?;
        Ok(cfg)
    }
}

/// Runs `valar prepare`.
pub fn run(args: PrepareArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    if args.dry_run {
        let plan = plan_only(&cfg)?;
        outln!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let inputs: Vec<&std::path::Path> = args
        .source
        .paths()
        .into_iter()
        .chain([args.exclude.as_deref()])
        .flatten()
        .collect();
    valar_core::refuse_input_as_output(&cfg.out, &inputs)?;
    let prepared = prepare(&cfg, &Bars::default())
        .with_context(|| format!("preparing {}", cfg.input.source().display()))?;
    let info = &prepared.info;
    outln!(
        "Prepared {} faces from {} rows in {:.1} s → {}",
        info.faces,
        info.rows_read,
        info.timings_s.get("total").copied().unwrap_or_default(),
        prepared.out.display()
    );
    let splits: Vec<String> = info
        .splits
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    outln!("  splits: {}", splits.join(", "));
    let counts: Vec<String> = info
        .intervals
        .iter()
        .map(|c| c.selected.to_string())
        .collect();
    outln!("  faces per interval: {}", counts.join(" "));
    if !info.short_intervals.is_empty() {
        outln!(
            "  short of the quota of {}: intervals {:?} (see prep.json)",
            cfg.quota,
            info.short_intervals
        );
    }
    let rejected: usize = info.rejects_by_reason.values().sum();
    if rejected > 0 {
        let reasons: Vec<String> = info
            .rejects_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        outln!(
            "  rejected {rejected} rows (rejects.csv): {}",
            reasons.join(", ")
        );
    }
    Ok(())
}
