use crate::dupes::{Group, groups};
use crate::load::{Dataset, Item, load_prepared, load_target};
use crate::output::{AuditSummary, Finding, Found, write_outputs};
use crate::{AuditConfig, AuditError, flags, residuals};
use std::time::Instant;
use valar_core::{AuditKind, PartialDir, Progress};

/// Runs `valar audit`: reads and measures every face once, groups duplicates, looks
/// for leaks, raises the quality and label flags, ranks a run's residuals, and writes
/// the output folder, which appears only once complete.
pub fn audit(cfg: &AuditConfig, progress: &dyn Progress) -> Result<AuditSummary, AuditError> {
    cfg.validate()?;
    let started = Instant::now();
    let out = PartialDir::create(&cfg.out, cfg.force)?;
    let mut datasets: Vec<Dataset> = vec![load_target(
        &cfg.target,
        cfg.margin,
        cfg.max_pixels,
        progress,
    )?];
    for (k, dir) in cfg.against.iter().enumerate() {
        datasets.push(load_prepared(dir, k + 1, progress)?);
    }
    let items: Vec<Item> = datasets
        .iter_mut()
        .flat_map(|d| std::mem::take(&mut d.items))
        .collect();
    let audited = items.iter().take_while(|i| i.dataset == 0).count();
    for d in &datasets {
        for (row, path, why) in d.unreadable.iter().take(3) {
            progress.warn(&format!(
                "{}: row {row} `{path}` cannot be used: {why}",
                d.name
            ));
        }
    }

    progress.start("comparing", 0);
    let own = groups(&items[..audited], &cfg.thresholds);
    let across = if cfg.against.is_empty() {
        Vec::new()
    } else {
        cross_leaks(&items, &cfg.thresholds, own.len() as u64)
    };
    progress.finish();
    let residuals = match &cfg.run {
        Some(run) => residuals::largest(run, cfg.top_residuals)?,
        None => Vec::new(),
    };

    let mut findings = Vec::new();
    for g in &own {
        for m in &g.members {
            findings.push(Finding::member(m.item, m.kind, g, m.score));
        }
    }
    let mut leaked = vec![false; items.len()];
    for g in own.iter().filter(|g| g.leak).chain(&across) {
        for m in &g.members {
            if !std::mem::replace(&mut leaked[m.item], true) {
                findings.push(Finding::member(m.item, AuditKind::Leak, g, m.score));
            }
        }
    }
    for (i, item) in items[..audited].iter().enumerate() {
        for f in flags::quality(item, &cfg.thresholds)
            .into_iter()
            .chain(flags::labels(item, &cfg.thresholds))
        {
            findings.push(Finding::flag(i, f));
        }
    }
    let found = Found {
        datasets: &datasets,
        items: &items,
        own: &own,
        across: &across,
        findings: &findings,
        residuals: &residuals,
    };
    let summary = write_outputs(out.path(), cfg, &found, progress)?;
    let out_dir = out.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(AuditSummary {
        out: out_dir,
        seconds,
        faces_per_second: audited as f64 / seconds.max(1e-9),
        ..summary
    })
}

/// Groups over every dataset together that hold faces of the audited one and of an
/// `--against` folder: each is a leak. Ids continue after the audited data's own groups.
fn cross_leaks(items: &[Item], t: &crate::Thresholds, offset: u64) -> Vec<Group> {
    let mut out: Vec<Group> = groups(items, t)
        .into_iter()
        .filter(|g| {
            g.members.iter().any(|m| items[m.item].dataset == 0)
                && g.members.iter().any(|m| items[m.item].dataset != 0)
        })
        .collect();
    for (k, g) in out.iter_mut().enumerate() {
        g.id = offset + k as u64 + 1;
        g.leak = true;
    }
    out
}
