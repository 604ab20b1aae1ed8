use crate::faces::{Chosen, Selection, select};
use crate::input::Loaded;
use crate::rejects::write_rejects;
use crate::stratify::{Strata, edges, source_histograms, stratify, val_count};
use crate::write::write_csv;
use crate::{PrepError, PrepareConfig, Reject, Stratify, exclude::exclude, input};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use valar_core::{
    ColorMode, Dimension, FacesWriter, IntervalCount, PartialDir, PrepInfo, PreparedDir, Progress,
    Split, VERSION,
};
use valar_face::Face;

/// A finished `valar prepare`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The output folder.
    pub out: PathBuf,
    /// What was done, as written to `prep.json`.
    pub info: PrepInfo,
}

/// Runs `valar prepare`: reads the input, drops unusable rows, draws a seeded
/// stratified sample, preprocesses the faces in parallel and writes the output
/// folder, which appears only once complete.
pub fn prepare(cfg: &PrepareConfig, progress: &dyn Progress) -> Result<Prepared, PrepError> {
    cfg.validate()?;
    let started = Instant::now();
    let mut timings = BTreeMap::new();
    let out = PartialDir::create(&cfg.out, cfg.force)?;
    let (planned, histograms) = plan(cfg, progress, &mut timings)?;

    let phase = Instant::now();
    let quota = (!cfg.keep_all).then_some(cfg.quota);
    let share = crate::shard::Share::new(cfg, &planned.strata, &planned.rejects, quota)?;
    let selection = write_faces(cfg, &planned, share.as_ref(), out.path(), progress)?;
    timings.insert("faces".to_string(), phase.elapsed().as_secs_f64());

    let phase = Instant::now();
    let Stratified {
        loaded,
        mut rejects,
        strata,
        ..
    } = planned;
    let splits = match crate::video::group_splits(&strata.table, &selection.chosen, cfg)
        .map_err(PrepError::table(cfg.input.source()))?
    {
        Some(splits) => splits,
        None => assign_splits(&selection, cfg),
    };
    share.iter().for_each(|s| s.keep_plan_rejects(&mut rejects));
    rejects.extend(selection.rejects.iter().cloned());
    let prepared = PreparedDir::new(out.path());
    write_tables(cfg, &prepared, &strata, &selection, &splits, &mut rejects)?;
    timings.insert("write".to_string(), phase.elapsed().as_secs_f64());
    timings.insert("total".to_string(), started.elapsed().as_secs_f64());

    let made = Made {
        strata: &strata,
        selection: &selection,
        splits: &splits,
        rejects: &rejects,
        rows_read: loaded.rows_read,
    };
    let mut info = prep_info(cfg, &made, histograms, timings);
    share.iter().for_each(|s| s.restrict(&mut info));
    warn_short(cfg, &info, progress);
    info.write(&prepared.prep_json())?;
    info.write_timings(&prepared.timings())?;
    if let Some(s) = &share {
        s.write(out.path(), &info)?;
    }
    let out = out.commit()?;
    Ok(Prepared { out, info })
}

/// Reads, excludes and stratifies, refusing an input with nothing usable left, and
/// counts the source's label histograms; records the phases' seconds in `timings`.
fn plan(
    cfg: &PrepareConfig,
    progress: &dyn Progress,
    timings: &mut BTreeMap<String, f64>,
) -> Result<(Stratified, valar_core::SourceHistograms), PrepError> {
    let planned = read_and_stratify(cfg, progress)?;
    timings.insert("read".to_string(), planned.read_seconds);
    if planned.usable == 0 {
        return Err(PrepError::NothingLeft {
            input: cfg.input.source().clone(),
            found: planned.loaded.found.clone(),
            why: nothing_left_why(planned.loaded.rows_read, &planned.rejects),
        });
    }
    let phase = Instant::now();
    let histograms =
        source_histograms(&planned.strata.table).map_err(PrepError::table(cfg.input.source()))?;
    timings.insert(
        "stratify".to_string(),
        planned.stratify_seconds + phase.elapsed().as_secs_f64(),
    );
    Ok((planned, histograms))
}

/// Preprocesses the chosen faces (this shard's cells only, for a shard) into `faces.npy`,
/// and PNGs with `--png`; refuses a run in which every image tried failed.
fn write_faces(
    cfg: &PrepareConfig,
    planned: &Stratified,
    share: Option<&crate::shard::Share>,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Selection, PrepError> {
    let mut faces = FacesWriter::create(
        &PreparedDir::new(dir).faces(),
        cfg.face.color.channels(),
        cfg.face.size as usize,
    )?;
    let mut sink = |c: &Chosen, face: &Face| -> Result<(), PrepError> {
        if cfg.png {
            write_png(dir, faces.len(), c.cell, &face.pixels, cfg)?;
        }
        faces.push(&face.pixels)?;
        Ok(())
    };
    let selection = select(
        &planned.strata,
        (!cfg.keep_all).then_some(cfg.quota),
        share.map(|s| &s.owned[..]),
        &planned.loaded.image_root,
        &cfg.face,
        progress,
        &mut sink,
    )?;
    faces.finish()?;
    if selection.chosen.is_empty() && !selection.rejects.is_empty() {
        // Every image tried failed: as much an empty result as every row excluded.
        return Err(PrepError::NothingLeft {
            input: cfg.input.source().clone(),
            found: planned.loaded.found.clone(),
            why: no_image_why(&selection.rejects),
        });
    }
    Ok(selection)
}

/// Writes `manifest.csv` and `rejects.csv`.
fn write_tables(
    cfg: &PrepareConfig,
    prepared: &PreparedDir,
    strata: &Strata,
    selection: &Selection,
    splits: &[Split],
    rejects: &mut [Reject],
) -> Result<(), PrepError> {
    let source = cfg.input.source();
    let mut manifest = manifest_table(&strata.table, &selection.chosen, splits)
        .map_err(PrepError::table(source))?;
    write_csv(&prepared.manifest(), &mut manifest).map_err(PrepError::table(source))?;
    write_rejects(&prepared.rejects(), source, rejects).map_err(PrepError::table(source))?;
    Ok(())
}

/// Warns of each interval that had fewer usable faces than the quota.
fn warn_short(cfg: &PrepareConfig, info: &PrepInfo, progress: &dyn Progress) {
    for &cell in &info.short_intervals {
        let c = &info.intervals[cell as usize];
        progress.warn(&format!(
            "interval {} {} has {} usable faces, fewer than the quota of {}",
            cell,
            describe_range(c),
            c.selected,
            cfg.quota
        ));
    }
}

/// Prepare's read, exclude and stratify phases, which `--dry-run` ([`crate::plan_only`])
/// runs alone: both must see the same rows.
pub(crate) struct Stratified {
    /// What was read; its `table` and `rejects` are moved out into the fields below.
    pub loaded: Loaded,
    /// Rows left after the label rules and the audit exclusions.
    pub usable: usize,
    /// Rows dropped so far, and why.
    pub rejects: Vec<Reject>,
    /// The usable rows, shuffled with the seed and grouped into cells.
    pub strata: Strata,
    /// Seconds spent reading (and sampling video frames).
    pub read_seconds: f64,
    /// Seconds spent excluding and stratifying.
    pub stratify_seconds: f64,
}

/// Reads the input (sampling video frames), drops the rows the label rules and
/// `--exclude` name, and stratifies the rest with the seed.
pub(crate) fn read_and_stratify(
    cfg: &PrepareConfig,
    progress: &dyn Progress,
) -> Result<Stratified, PrepError> {
    let started = Instant::now();
    let table_err = || PrepError::table(cfg.input.source());
    progress.start("reading", 0);
    let loaded = input::load(&cfg.input, cfg.face.align.is_some())?;
    progress.finish();
    let mut loaded = crate::video::prepare_frames(loaded, cfg, progress)?;
    let read_seconds = started.elapsed().as_secs_f64();

    let phase = Instant::now();
    let mut rejects = std::mem::take(&mut loaded.rejects);
    let table = std::mem::take(&mut loaded.table);
    let usable = exclude(&table, &mut rejects).map_err(table_err())?;
    let usable = crate::audit_exclude::exclude_audited(&usable, cfg, &mut rejects)?;
    let strata = stratify(&usable, cfg.stratify, cfg.intervals, cfg.seed).map_err(table_err())?;
    Ok(Stratified {
        loaded,
        usable: usable.height(),
        rejects,
        strata,
        read_seconds,
        stratify_seconds: phase.elapsed().as_secs_f64(),
    })
}

/// Splits each cell: with `keep_all` everything is test; otherwise the last
/// `val_count` faces of each cell (in seeded order) go to validation.
fn assign_splits(selection: &Selection, cfg: &PrepareConfig) -> Vec<Split> {
    let mut per_cell: BTreeMap<usize, usize> = BTreeMap::new();
    for c in &selection.chosen {
        *per_cell.entry(c.cell).or_default() += 1;
    }
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    selection
        .chosen
        .iter()
        .map(|c| {
            if cfg.keep_all {
                return Split::Test;
            }
            let n = per_cell[&c.cell];
            let k = seen.entry(c.cell).or_default();
            *k += 1;
            if *k > n - val_count(n, cfg.val_fraction) {
                Split::Val
            } else {
                Split::Train
            }
        })
        .collect()
}

fn manifest_table(
    table: &DataFrame,
    chosen: &[Chosen],
    splits: &[Split],
) -> PolarsResult<DataFrame> {
    let positions: Vec<IdxSize> = chosen.iter().map(|c| c.pos as IdxSize).collect();
    let picked = table.take(&IdxCa::from_vec("pos".into(), positions))?;
    let n = chosen.len();
    let boxes = |f: fn(&Chosen) -> i64| chosen.iter().map(f).collect::<Vec<i64>>();
    let mut columns = vec![
        Column::new("index".into(), (0..n as u64).collect::<Vec<_>>()),
        picked.column("path")?.clone(),
        picked.column("valence")?.clone(),
        picked.column("arousal")?.clone(),
        picked.column("expression")?.clone(),
        Column::new(
            "interval".into(),
            chosen.iter().map(|c| c.cell as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "split".into(),
            splits.iter().map(|s| s.name()).collect::<Vec<_>>(),
        ),
        Column::new("face_x".into(), boxes(|c| c.face_box.x)),
        Column::new("face_y".into(), boxes(|c| c.face_box.y)),
        Column::new("face_width".into(), boxes(|c| c.face_box.width)),
        Column::new("face_height".into(), boxes(|c| c.face_box.height)),
        Column::new(
            "sha256".into(),
            chosen.iter().map(|c| c.sha256.as_str()).collect::<Vec<_>>(),
        ),
    ];
    columns.extend(crate::video::manifest_columns(&picked)?);
    DataFrame::new(n, columns)
}

/// Writes one face as `png/interval_<cell>/<index>.png`.
fn write_png(
    dir: &Path,
    index: usize,
    cell: usize,
    pixels: &[u8],
    cfg: &PrepareConfig,
) -> Result<(), PrepError> {
    let s = cfg.face.size;
    let folder = PreparedDir::new(dir).png_interval(cell);
    std::fs::create_dir_all(&folder).map_err(PrepError::io(&folder))?;
    let path = folder.join(format!("{index:06}.png"));
    let (pixels, color) = match cfg.face.color {
        ColorMode::Gray => (pixels.to_vec(), image::ExtendedColorType::L8),
        ColorMode::Rgb => {
            let plane = (s * s) as usize;
            let rgb = (0..plane)
                .flat_map(|i| [pixels[i], pixels[plane + i], pixels[2 * plane + i]])
                .collect();
            (rgb, image::ExtendedColorType::Rgb8)
        }
    };
    image::save_buffer_with_format(&path, &pixels, s, s, color, image::ImageFormat::Png)
        .map_err(|e| PrepError::io(&path)(std::io::Error::other(e)))
}

/// "all 40 rows were excluded: 30 no_label, 10 out_of_range, for example" and the first
/// rows with what was wrong with each, or why there were none.
fn nothing_left_why(rows_read: usize, rejects: &[crate::Reject]) -> String {
    if rows_read == 0 {
        return "there are no rows to read".to_string();
    }
    format!(
        "all {rows_read} rows were excluded: {}{}",
        reason_counts(rejects),
        examples(rejects)
    )
}

/// "30 no_label, 10 out_of_range": how many rejects each reason has, reasons in order.
fn reason_counts(rejects: &[crate::Reject]) -> String {
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rejects {
        *by_reason.entry(r.reason).or_default() += 1;
    }
    let counts: Vec<String> = by_reason
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    counts.join(", ")
}

/// "none of the 3 images tried could be used: 3 missing_file, for example" and the
/// first failures, each with its row, path and reason.
fn no_image_why(rejects: &[crate::Reject]) -> String {
    format!(
        "none of the {} images tried could be used: {}{}",
        rejects.len(),
        reason_counts(rejects),
        examples(rejects)
    )
}

/// How many rejected rows an error about an empty result shows, at least.
const EXAMPLES: usize = 3;

/// ", for example:" and one line per row shown (row, path, reason and detail), then
/// how many more there were: no `rejects.csv` is written when nothing is left, so
/// this is the only place a user learns what was wrong with the rows. The first row of
/// each reason is shown, then the earliest others up to [`EXAMPLES`].
fn examples(rejects: &[crate::Reject]) -> String {
    let mut by_row: Vec<&crate::Reject> = rejects.iter().collect();
    by_row.sort_by_key(|r| r.row);
    let mut shown: Vec<&crate::Reject> = Vec::new();
    for r in &by_row {
        if !shown.iter().any(|s| s.reason == r.reason) {
            shown.push(r);
        }
    }
    for r in &by_row {
        if shown.len() >= EXAMPLES {
            break;
        }
        if !shown.iter().any(|s| std::ptr::eq(*s, *r)) {
            shown.push(r);
        }
    }
    if shown.is_empty() {
        return String::new();
    }
    shown.sort_by_key(|r| r.row);
    let mut text = ", for example:".to_string();
    for r in &shown {
        text.push_str(&format!(
            "\n  row {} ({}): {}: {}",
            r.row, r.path, r.reason, r.detail
        ));
    }
    let more = rejects.len() - shown.len();
    if more > 0 {
        text.push_str(&format!("\n  and {more} more rows"));
    }
    text
}

fn describe_range(c: &IntervalCount) -> String {
    let r =
        |name: &str, v: Option<[f64; 2]>| v.map(|[lo, hi]| format!("{name} [{lo:+.1}, {hi:+.1}]"));
    [r("valence", c.valence), r("arousal", c.arousal)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" × ")
}

/// What a run chose and dropped, for `prep.json`.
struct Made<'a> {
    strata: &'a Strata,
    selection: &'a Selection,
    splits: &'a [Split],
    rejects: &'a [Reject],
    rows_read: usize,
}

fn prep_info(
    cfg: &PrepareConfig,
    made: &Made,
    source_histograms: valar_core::SourceHistograms,
    timings_s: BTreeMap<String, f64>,
) -> PrepInfo {
    let intervals = interval_counts(cfg, made.strata, made.selection);
    let quota = (!cfg.keep_all).then_some(cfg.quota);
    let short_intervals = intervals
        .iter()
        .filter(|c| quota.is_some_and(|q| c.selected < q))
        .map(|c| c.interval)
        .collect();
    PrepInfo {
        valar_version: VERSION.to_string(),
        seed: cfg.seed,
        // Every setting, the face's flat beside the rest (see `PrepareConfig`'s serde).
        params: serde_json::to_value(cfg).unwrap_or_default(),
        stratify: cfg.stratify.name().to_string(),
        edges: edges(made.strata.k),
        rows_read: made.rows_read,
        faces: made.selection.chosen.len(),
        splits: count(made.splits.iter().map(|s| s.name())),
        intervals,
        short_intervals,
        rejects_by_reason: count(made.rejects.iter().map(|r| r.reason)),
        timings_s,
        source_histograms,
    }
}

/// How many times each name occurs.
fn count<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Each cell's range, and its rows available, wanted and chosen.
fn interval_counts(
    cfg: &PrepareConfig,
    strata: &Strata,
    selection: &Selection,
) -> Vec<IntervalCount> {
    let k = strata.k;
    let e = edges(k);
    let range = |i: usize| [e[i], e[i + 1]];
    let mut selected = vec![0usize; strata.order.len()];
    for c in &selection.chosen {
        selected[c.cell] += 1;
    }
    let quota = (!cfg.keep_all).then_some(cfg.quota);
    (0..strata.order.len())
        .map(|cell| {
            let (valence, arousal) = match cfg.stratify {
                Stratify::One(Dimension::Valence) => (Some(range(cell)), None),
                Stratify::One(Dimension::Arousal) => (None, Some(range(cell))),
                Stratify::Grid => (Some(range(cell / k)), Some(range(cell % k))),
            };
            IntervalCount {
                interval: cell as i64,
                valence,
                arousal,
                available: strata.order[cell].len(),
                quota,
                selected: selected[cell],
                image_rejects: selection.failures[cell],
            }
        })
        .collect()
}
