//! `valar merge`: the shard folders of one plan become the folder a single-process
//! `valar prepare` writes. `manifest.csv`, `faces.npy` and `rejects.csv` come out
//! byte-identical; `prep.json` differs only in the output path it records, and `timings.json`
//! holds the merge's own timings.
//!
//! The CSVs are merged record by record as raw bytes (only the manifest's leading index is
//! rewritten), so nothing is parsed and printed again and nothing can change on the way.

use crate::shard::{SHARD_FILE, ShardInfo, fingerprint};
use crate::{PrepError, Prepared};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use valar_core::{
    Faces, FacesWriter, PartialDir, PrepInfo, PreparedDir, Progress, read_faces, write_atomic,
};

/// A CSV split into its header and its records, each record's bytes as written.
struct RawCsv {
    header: Vec<u8>,
    records: Vec<RawRecord>,
}

struct RawRecord {
    bytes: Vec<u8>,
    fields: csv::ByteRecord,
}

impl RawCsv {
    fn read(path: &Path) -> Result<Self, PrepError> {
        let bytes = std::fs::read(path).map_err(PrepError::io(path))?;
        let mut reader = csv::ReaderBuilder::new().from_reader(&bytes[..]);
        let bad = |e: csv::Error| PrepError::Config(format!("{}: {e}", path.display()));
        reader.byte_headers().map_err(bad)?;
        let mut starts = vec![reader.position().byte() as usize];
        let mut fields = Vec::new();
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).map_err(bad)? {
            fields.push(record.clone());
            starts.push(reader.position().byte() as usize);
        }
        let header = bytes[..starts[0]].to_vec();
        let records = fields
            .into_iter()
            .enumerate()
            .map(|(i, fields)| RawRecord {
                bytes: bytes[starts[i]..starts[i + 1]].to_vec(),
                fields,
            })
            .collect();
        Ok(RawCsv { header, records })
    }

    /// The position of a column, or an error naming the file.
    fn column(&self, path: &Path, name: &str) -> Result<usize, PrepError> {
        let header = String::from_utf8_lossy(&self.header);
        header
            .trim_end()
            .split(',')
            .position(|c| c == name)
            .ok_or_else(|| PrepError::Config(format!("{}: no `{name}` column", path.display())))
    }
}

/// A finished shard folder, checked.
struct ShardDir {
    dir: PathBuf,
    info: ShardInfo,
}

/// A shard's manifest and faces, read and checked, with where each of its intervals'
/// rows lie: `spans[cell]` is (first row, rows), (0, 0) for an interval it does not own.
struct ShardData {
    manifest: RawCsv,
    faces: Faces,
    spans: Vec<(usize, usize)>,
}

impl ShardData {
    /// Reads shard `k`, checking that every row is in an interval it owns and that
    /// faces.npy and manifest.csv agree.
    fn read(s: &ShardDir, k: usize, owner: &[usize]) -> Result<Self, PrepError> {
        let count = owner.len();
        let path = PreparedDir::new(&s.dir).manifest();
        let manifest = RawCsv::read(&path)?;
        let interval = manifest.column(&path, "interval")?;
        let mut spans = vec![(0, 0); count];
        for (i, r) in manifest.records.iter().enumerate() {
            let cell = std::str::from_utf8(r.fields.get(interval).unwrap_or_default())
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&c| c < count && owner[c] == k)
                .ok_or_else(|| {
                    PrepError::Config(format!(
                        "{}: row {} is in an interval this shard does not own",
                        path.display(),
                        i + 2
                    ))
                })?;
            let span = &mut spans[cell];
            if span.1 == 0 {
                span.0 = i;
            }
            span.1 += 1;
        }
        let faces = read_faces(&PreparedDir::new(&s.dir).faces())?;
        if faces.n != manifest.records.len() {
            return Err(PrepError::Config(format!(
                "{}: faces.npy holds {} faces but manifest.csv {} rows",
                s.dir.display(),
                faces.n,
                manifest.records.len()
            )));
        }
        Ok(ShardData {
            manifest,
            faces,
            spans,
        })
    }
}

/// Merges the shard folders of one plan into `out` (written as `<out>.partial` and renamed
/// when complete). Refuses folders that are not finished shards, shards of different plans
/// (naming the setting that differs), and missing or repeated shards.
pub fn merge(
    shards: &[PathBuf],
    out: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<Prepared, PrepError> {
    let started = Instant::now();
    let shards = check(shards)?;
    let partial = PartialDir::create(out, force)?;
    let owner = owners(&shards)?;

    progress.start("merging", shards.len() as u64);
    let mut data = Vec::with_capacity(shards.len());
    for (k, s) in shards.iter().enumerate() {
        data.push(ShardData::read(s, k, &owner)?);
        progress.advance(1);
    }
    progress.finish();

    let merged = PreparedDir::new(partial.path());
    let faces = write_faces_and_manifest(&merged, &data, &owner)?;
    let by_reason = write_rejects(&merged, &shards)?;
    let info = merged_info(&shards, &owner, out, faces, by_reason, started)?;
    info.write(&merged.prep_json())?;
    info.write_timings(&merged.timings())?;
    let out = partial.commit()?;
    Ok(Prepared { out, info })
}

/// Which shard owns each interval of the plan (`usize::MAX` for none), refusing an
/// interval claimed twice.
fn owners(shards: &[ShardDir]) -> Result<Vec<usize>, PrepError> {
    let mut owner = vec![usize::MAX; shards[0].info.cell_count];
    for (k, s) in shards.iter().enumerate() {
        for &c in &s.info.cells {
            if owner[c] != usize::MAX {
                return Err(PrepError::Config(format!(
                    "interval {c} is claimed by both {} and {}",
                    shards[owner[c]].dir.display(),
                    s.dir.display()
                )));
            }
            owner[c] = k;
        }
    }
    Ok(owner)
}

/// Writes faces.npy and manifest.csv in the single run's order (every shard holds its
/// intervals in order; the single run holds all intervals in order), renumbering the
/// manifest's index. Returns the faces written.
fn write_faces_and_manifest(
    merged: &PreparedDir,
    data: &[ShardData],
    owner: &[usize],
) -> Result<usize, PrepError> {
    let (channels, size) = (data[0].faces.channels, data[0].faces.size);
    let mut writer = FacesWriter::create(&merged.faces(), channels, size)?;
    let mut manifest = data[0].manifest.header.clone();
    let mut index = 0usize;
    for (cell, &k) in owner.iter().enumerate() {
        if k == usize::MAX {
            continue;
        }
        let shard = &data[k];
        let (start, len) = shard.spans[cell];
        for i in start..start + len {
            let record = &shard.manifest.records[i].bytes;
            // The index is an unquoted integer: everything from the first comma is kept.
            let rest = memchr::memchr(b',', record).map_or(&record[..0], |p| &record[p..]);
            manifest.extend(index.to_string().as_bytes());
            manifest.extend(rest);
            writer.push(shard.faces.face(i))?;
            index += 1;
        }
    }
    writer.finish()?;
    write_bytes(&merged.manifest(), &manifest)?;
    Ok(index)
}

/// Writes rejects.csv, every shard's records in the single run's order, and returns the
/// count per reason.
fn write_rejects(
    merged: &PreparedDir,
    shards: &[ShardDir],
) -> Result<BTreeMap<String, usize>, PrepError> {
    let mut rejects = Vec::new();
    let mut header = Vec::new();
    for s in shards {
        let path = PreparedDir::new(&s.dir).rejects();
        let csv = RawCsv::read(&path)?;
        let (row, reason) = (csv.column(&path, "row")?, csv.column(&path, "reason")?);
        header = csv.header.clone();
        for r in csv.records {
            let n: u64 = std::str::from_utf8(r.fields.get(row).unwrap_or_default())
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            let why = r.fields.get(reason).unwrap_or_default().to_vec();
            rejects.push((n, why, r.bytes));
        }
    }
    // The single run's order: by row, then by reason (a stable sort, as there).
    rejects.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut bytes = header;
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for (_, why, record) in &rejects {
        *by_reason
            .entry(String::from_utf8_lossy(why).into_owned())
            .or_default() += 1;
        bytes.extend(record);
    }
    write_bytes(&merged.rejects(), &bytes)?;
    Ok(by_reason)
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), PrepError> {
    write_atomic(path, |w| w.write_all(bytes))?;
    Ok(())
}

/// Reads every shard's `shard.json` and checks that together they are one whole plan.
fn check(dirs: &[PathBuf]) -> Result<Vec<ShardDir>, PrepError> {
    if dirs.is_empty() {
        return Err(PrepError::Config("no shard folders to merge".into()));
    }
    let mut shards = Vec::new();
    for dir in dirs {
        if !dir.join(SHARD_FILE).is_file() {
            let mut partial = dir.as_os_str().to_os_string();
            partial.push(".partial");
            let why = if Path::new(&partial).exists() {
                "its run did not finish (a .partial folder is left); rerun that shard"
            } else {
                "not a finished shard folder (no shard.json); run `valar prepare --shard K/N` into it"
            };
            return Err(PrepError::Config(format!("{}: {why}", dir.display())));
        }
        let info = ShardInfo::read(dir)?;
        if fingerprint(&info.settings, &info.input_digest) != info.plan {
            return Err(PrepError::Config(format!(
                "{}: shard.json's plan fingerprint does not match its settings (edited?)",
                dir.display()
            )));
        }
        shards.push(ShardDir {
            dir: dir.clone(),
            info,
        });
    }
    let first = &shards[0];
    for s in &shards[1..] {
        if let Some(why) = mismatch(&first.info, &s.info) {
            return Err(PrepError::Config(format!(
                "{} and {} are shards of different plans: {why}",
                first.dir.display(),
                s.dir.display()
            )));
        }
    }
    let count = first.info.shard.count;
    let mut seen: Vec<Option<&Path>> = vec![None; count];
    for s in &shards {
        let k = s.info.shard.index;
        if k >= count || s.info.cells.iter().any(|&c| c >= s.info.cell_count) {
            return Err(PrepError::Config(format!(
                "{}: shard.json names a shard or interval outside the plan (edited?)",
                s.dir.display()
            )));
        }
        if let Some(other) = seen[k] {
            return Err(PrepError::Config(format!(
                "shard {} is given twice: {} and {}",
                s.info.shard,
                other.display(),
                s.dir.display()
            )));
        }
        seen[k] = Some(&s.dir);
    }
    let missing: Vec<String> = (0..count)
        .filter(|&k| seen[k].is_none())
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(PrepError::Config(format!(
            "missing shard{} {} of the plan (run them, then merge all {count})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    shards.sort_by_key(|s| s.info.shard.index);
    Ok(shards)
}

/// What makes two shards' plans differ, in words, or `None` when they are one plan.
fn mismatch(a: &ShardInfo, b: &ShardInfo) -> Option<String> {
    if a.valar_version != b.valar_version {
        return Some(format!(
            "valar {} against valar {}",
            a.valar_version, b.valar_version
        ));
    }
    if a.shard.count != b.shard.count {
        return Some(format!(
            "shard {} is one of {}, shard {} one of {}",
            a.shard, a.shard.count, b.shard, b.shard.count
        ));
    }
    if a.settings != b.settings {
        let (sa, sb) = (a.settings.as_object(), b.settings.as_object());
        let keys: std::collections::BTreeSet<&String> =
            sa.into_iter().chain(sb).flat_map(|o| o.keys()).collect();
        let differing: Vec<String> = keys
            .into_iter()
            .filter(|k| a.settings.get(k.as_str()) != b.settings.get(k.as_str()))
            .map(|k| {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or_else(|| "(none)".to_string(), |v| v.to_string())
                };
                format!(
                    "{k} {} against {}",
                    show(a.settings.get(k.as_str())),
                    show(b.settings.get(k.as_str()))
                )
            })
            .collect();
        return Some(format!("settings differ: {}", differing.join("; ")));
    }
    if a.input_digest != b.input_digest {
        return Some(format!(
            "the same settings but a different input (digest {} against {}): the input changed between shards",
            &a.input_digest[..12.min(a.input_digest.len())],
            &b.input_digest[..12.min(b.input_digest.len())]
        ));
    }
    if a.plan != b.plan {
        return Some(format!("plan {} against {}", a.plan, b.plan));
    }
    None
}

/// The merged `prep.json`: shard 0's plan-wide counts (every shard computed them), each
/// cell's faces and image failures from the shard that owned it, totals recounted. Each
/// timing is the slowest shard's, since shards run side by side, plus the merge's own.
fn merged_info(
    shards: &[ShardDir],
    owner: &[usize],
    out: &Path,
    faces: usize,
    rejects_by_reason: BTreeMap<String, usize>,
    started: Instant,
) -> Result<PrepInfo, PrepError> {
    let infos: Vec<PrepInfo> = shards
        .iter()
        .map(|s| PrepInfo::read(&PreparedDir::new(&s.dir).prep_json()))
        .collect::<Result<_, _>>()?;
    let mut info = infos[0].clone();
    for (cell, c) in info.intervals.iter_mut().enumerate() {
        if let Some(src) = owner.get(cell).and_then(|&k| infos.get(k)) {
            let theirs = &src.intervals[cell];
            c.selected = theirs.selected;
            c.image_rejects = theirs.image_rejects;
        }
    }
    info.faces = faces;
    info.splits = BTreeMap::new();
    for i in &infos {
        for (k, v) in &i.splits {
            *info.splits.entry(k.clone()).or_default() += v;
        }
    }
    info.short_intervals = info
        .intervals
        .iter()
        .filter(|c| c.quota.is_some_and(|q| c.selected < q))
        .map(|c| c.interval)
        .collect();
    info.rejects_by_reason = rejects_by_reason;
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    for s in shards {
        for (k, v) in PrepInfo::read_timings(&PreparedDir::new(&s.dir).timings())? {
            let t = timings.entry(k.clone()).or_default();
            *t = t.max(v);
        }
    }
    timings.insert("merge".to_string(), started.elapsed().as_secs_f64());
    info.timings_s = timings;
    if let Some(params) = info.params.as_object_mut() {
        params.remove("shard");
        params.insert("out".into(), out.display().to_string().into());
        params.insert("force".into(), false.into());
    }
    Ok(info)
}
