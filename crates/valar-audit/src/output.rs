use crate::dupes::Group;
use crate::flags::{Flag, aspect_score, blur_score, information_score};
use crate::load::{Dataset, Item};
use crate::residuals::Residual;
use crate::{AuditConfig, AuditError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use valar_core::{AuditKind, AuditRow, Progress, VERSION, write_atomic, write_audit};
use valar_report::{ScoreHistogram, SheetSection, Tile, contact_sheet, score_histograms};

/// One finding about an item, before it becomes a row of `audit.csv`.
pub(crate) struct Finding {
    item: usize,
    kind: AuditKind,
    group: Option<u64>,
    score: f64,
    detail: String,
}

impl Finding {
    /// A duplicate or leak group member; the detail is filled in once all groups are known.
    pub fn member(item: usize, kind: AuditKind, group: &Group, score: f64) -> Self {
        Finding {
            item,
            kind,
            group: Some(group.id),
            score,
            detail: String::new(),
        }
    }

    /// A flag on one item.
    pub fn flag(item: usize, flag: Flag) -> Self {
        Finding {
            item,
            kind: flag.kind,
            group: None,
            score: flag.score,
            detail: flag.detail,
        }
    }
}

/// What an audit found, in numbers: also `audit.json`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    /// valar's version.
    pub valar_version: String,
    /// The audited data.
    pub audited: String,
    /// Faces audited (decoded and measured).
    pub faces: usize,
    /// Rows whose image could not be used (prepare rejects them too).
    pub unreadable: usize,
    /// Rows with AffectNet's unusable labels (−2, expressions 8–10), which prepare drops: not audited.
    pub skipped_labels: usize,
    /// Rows that did not parse.
    pub malformed_rows: usize,
    /// Findings (rows of audit.csv) by kind.
    pub counts: BTreeMap<String, usize>,
    /// Duplicate groups in the audited data.
    pub duplicate_groups: usize,
    /// Groups that span splits or folders.
    pub leak_groups: usize,
    /// Label disagreement between copies of one image (exact and same-face groups):
    /// measured label noise, comparable to AffectNet's inter-annotator RMSE.
    pub label_noise: LabelNoise,
    /// The folders looked for leaks in.
    pub against: Vec<String>,
    /// The thresholds used.
    pub thresholds: crate::Thresholds,
    /// The output folder (not in audit.json).
    #[serde(skip)]
    pub out: PathBuf,
    /// Wall time (not in audit.json, which stays byte-identical between runs).
    #[serde(skip)]
    pub seconds: f64,
    /// Faces audited per second (not in audit.json).
    #[serde(skip)]
    pub faces_per_second: f64,
}

/// How far the labels of copies of one image disagree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabelNoise {
    /// Groups of copies with two or more labelled members.
    pub groups: usize,
    /// RMSE between two copies' valence labels (√2 × the pooled within-group SD).
    pub valence_rmse: Option<f64>,
    /// The same for arousal.
    pub arousal_rmse: Option<f64>,
}

fn label_noise(items: &[Item], groups: &[Group]) -> LabelNoise {
    let copies: Vec<&Group> = groups
        .iter()
        .filter(|g| {
            g.members
                .iter()
                .filter(|m| m.kind != AuditKind::NearDuplicate)
                .count()
                > 1
        })
        .collect();
    let rmse = |get: fn(&Item) -> f64| -> Option<f64> {
        let (mut ss, mut df) = (0.0, 0usize);
        for g in &copies {
            let v: Vec<f64> = g
                .members
                .iter()
                .filter(|m| m.kind != AuditKind::NearDuplicate)
                .map(|m| get(&items[m.item]))
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            ss += v.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
            df += v.len() - 1;
        }
        (df > 0).then(|| (2.0 * ss / df as f64).sqrt())
    };
    LabelNoise {
        groups: copies.len(),
        valence_rmse: rmse(|i| i.valence),
        arousal_rmse: rmse(|i| i.arousal),
    }
}

fn where_is(item: &Item) -> String {
    match item.split {
        Some(s) => format!("row {} ({s})", item.row),
        None => format!("row {}", item.row),
    }
}

fn group_detail(items: &[Item], g: &Group, this: usize, datasets: &[Dataset]) -> String {
    let spread = |get: fn(&Item) -> f64| {
        let v = g.members.iter().map(|m| get(&items[m.item]));
        let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
        hi - lo
    };
    let others: Vec<String> = g
        .members
        .iter()
        .filter(|m| m.item != this)
        .take(8)
        .map(|m| {
            let o = &items[m.item];
            let place = where_is(o);
            if o.dataset == items[this].dataset {
                place
            } else {
                format!("{place} of {}", datasets[o.dataset].name)
            }
        })
        .collect();
    let it = &items[this];
    format!(
        "group of {} with {}; labels valence {:+.3} arousal {:+.3}, spread in the group valence {:.3} arousal {:.3}",
        g.members.len(),
        others.join(", "),
        it.valence,
        it.arousal,
        spread(|i| i.valence),
        spread(|i| i.arousal)
    )
}

/// What an audit found, ready to be written: the datasets read (the audited one first),
/// their items, the duplicate groups within the audited data, the leak groups across
/// `--against` folders, the findings and a run's largest residuals.
pub(crate) struct Found<'a> {
    pub datasets: &'a [Dataset],
    pub items: &'a [Item],
    pub own: &'a [Group],
    pub across: &'a [Group],
    pub findings: &'a [Finding],
    pub residuals: &'a [Residual],
}

/// A row of `audit.csv` with the item it is about (`usize::MAX` for a run's residual,
/// which is not one of the audited items).
type ItemRow = (usize, AuditRow);

/// Writes audit.csv, audit.json, the pages and report.md into `dir`.
pub(crate) fn write_outputs(
    dir: &Path,
    cfg: &AuditConfig,
    found: &Found,
    progress: &dyn Progress,
) -> Result<AuditSummary, AuditError> {
    let rows = audit_rows(found);
    let table: Vec<AuditRow> = rows.iter().map(|(_, r)| r.clone()).collect();
    write_audit(&dir.join("audit.csv"), &table)?;
    let summary = summarize(cfg, found, &table);
    write_json(&dir.join("audit.json"), &summary)?;

    progress.start("pages", 0);
    let pages = Pages::create(dir.join("pages"), cfg, found)?.write_all(&rows)?;
    progress.finish();

    let md = report_md(&summary, &pages, found.residuals);
    write_atomic(&dir.join("report.md"), |w| w.write_all(md.as_bytes()))?;
    Ok(summary)
}

/// The rows of `audit.csv`: every finding (a group member's detail names its group) and
/// every residual, sorted by kind, group, source and row.
fn audit_rows(found: &Found) -> Vec<ItemRow> {
    let items = found.items;
    let by_id: BTreeMap<u64, &Group> = found
        .own
        .iter()
        .chain(found.across)
        .map(|g| (g.id, g))
        .collect();
    let mut rows: Vec<ItemRow> = found
        .findings
        .iter()
        .map(|f| {
            let it = &items[f.item];
            let detail = match f.group.and_then(|g| by_id.get(&g)) {
                Some(g) => group_detail(items, g, f.item, found.datasets),
                None => f.detail.clone(),
            };
            (
                f.item,
                AuditRow {
                    source: it.source.clone(),
                    row: it.row,
                    path: it.path.clone(),
                    kind: f.kind,
                    group: f.group,
                    score: round(f.score),
                    split: it.split.map(|s| s.name().to_string()),
                    expression: it.expression,
                    detail,
                },
            )
        })
        .collect();
    rows.extend(found.residuals.iter().map(|r| {
        (
            usize::MAX,
            AuditRow {
                source: r.source.clone(),
                row: r.index,
                path: r.path.clone(),
                kind: r.flag.kind,
                group: None,
                score: round(r.flag.score),
                split: None,
                expression: None,
                detail: r.flag.detail.clone(),
            },
        )
    }));
    rows.sort_by(|(_, a), (_, b)| {
        a.kind
            .cmp(&b.kind)
            .then(a.group.cmp(&b.group))
            .then(a.source.cmp(&b.source))
            .then(a.row.cmp(&b.row))
    });
    rows
}

/// The numbers of `audit.json`, from the written table and the groups.
fn summarize(cfg: &AuditConfig, found: &Found, table: &[AuditRow]) -> AuditSummary {
    let mut counts = BTreeMap::new();
    for r in table {
        *counts.entry(r.kind.name().to_string()).or_insert(0) += 1;
    }
    let primary = &found.datasets[0];
    AuditSummary {
        valar_version: VERSION.to_string(),
        audited: primary.name.clone(),
        faces: audited(found.items).count(),
        unreadable: primary.unreadable.len(),
        skipped_labels: primary.skipped,
        malformed_rows: primary.malformed,
        counts,
        duplicate_groups: found.own.len(),
        leak_groups: found.own.iter().filter(|g| g.leak).count() + found.across.len(),
        label_noise: label_noise(found.items, found.own),
        against: found.datasets[1..].iter().map(|d| d.name.clone()).collect(),
        thresholds: cfg.thresholds.clone(),
        out: PathBuf::new(),
        seconds: 0.0,
        faces_per_second: 0.0,
    }
}

/// The items of the audited data (not of an `--against` folder).
fn audited(items: &[Item]) -> impl Iterator<Item = &Item> {
    items.iter().filter(|i| i.dataset == 0)
}

/// Writes `value` as pretty JSON.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), AuditError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| AuditError::Config(e.to_string()))?;
    write_atomic(path, |w| w.write_all(&json))?;
    Ok(())
}

/// A face's labels, as a tile's second caption line.
fn labels(it: &Item) -> String {
    format!("v {:+.2} a {:+.2}", it.valence, it.arousal)
}

/// The `pages/` folder: contact sheets of the duplicate groups, the leaks and each flag,
/// and the score histograms, each listed (title, path) for report.md as it is written.
struct Pages<'a> {
    dir: PathBuf,
    cfg: &'a AuditConfig,
    found: &'a Found<'a>,
    written: Vec<(String, String)>,
}

impl<'a> Pages<'a> {
    fn create(
        dir: PathBuf,
        cfg: &'a AuditConfig,
        found: &'a Found<'a>,
    ) -> Result<Self, AuditError> {
        std::fs::create_dir_all(&dir)
            .map_err(valar_core::IoError::at(&dir))
            .map_err(valar_core::CoreError::from)?;
        Ok(Pages {
            dir,
            cfg,
            found,
            written: Vec::new(),
        })
    }

    /// Writes every page, in report order, and returns their titles and paths.
    fn write_all(mut self, rows: &[ItemRow]) -> Result<Vec<(String, String)>, AuditError> {
        self.duplicates()?;
        self.leaks()?;
        for kind in AuditKind::ALL
            .into_iter()
            .filter(|k| !k.is_duplicate() && *k != AuditKind::Leak && *k != AuditKind::Residual)
        {
            self.flagged(kind, rows)?;
        }
        self.scores()?;
        Ok(self.written)
    }

    /// Writes `<name>.png` and its tile index `<name>.tiles.json`.
    fn sheet(
        &mut self,
        name: &str,
        title: &str,
        sections: &[SheetSection],
    ) -> Result<(), AuditError> {
        let file = format!("{name}.png");
        let places = contact_sheet(&self.dir.join(&file), title, sections)?;
        write_json(&self.dir.join(format!("{name}.tiles.json")), &places)?;
        self.written
            .push((title.to_string(), format!("pages/{file}")));
        Ok(())
    }

    /// Item `i`'s face with its place and `second` as the caption; `None` when its
    /// pixels were not kept.
    fn tile(&self, i: usize, second: String) -> Option<Tile> {
        let it = &self.found.items[i];
        let rgb = self.found.datasets[it.dataset].store.rgb(it.slot)?;
        Some(Tile {
            rgb,
            size: crate::features::SIDE,
            caption: format!("{}\n{second}", where_is(it)),
            key: format!("{}:{}", it.source, it.row),
        })
    }

    /// A section per group (at most `sheet_groups`), its faces labelled.
    fn group_sections(&self, groups: &[&Group]) -> Vec<SheetSection> {
        let items = self.found.items;
        groups
            .iter()
            .take(self.cfg.sheet_groups)
            .map(|g| SheetSection {
                heading: format!(
                    "group {} · {} faces · {}",
                    g.id,
                    g.members.len(),
                    g.members
                        .iter()
                        .map(|m| m.kind.name())
                        .min()
                        .unwrap_or_default()
                ),
                tiles: g
                    .members
                    .iter()
                    .take(self.cfg.sheet_faces)
                    .filter_map(|m| self.tile(m.item, labels(&items[m.item])))
                    .collect(),
            })
            .collect()
    }

    /// `duplicates.png`: largest groups first, as they are where most of the repetition is.
    fn duplicates(&mut self) -> Result<(), AuditError> {
        let mut dupes: Vec<&Group> = self.found.own.iter().collect();
        dupes.sort_by_key(|g| (std::cmp::Reverse(g.members.len()), g.id));
        let sections = self.group_sections(&dupes);
        self.sheet("duplicates", "Duplicate groups", &sections)
    }

    /// `leaks.png`, whenever leaks were looked for (across splits or folders) or found.
    fn leaks(&mut self) -> Result<(), AuditError> {
        let found = self.found;
        let leaks: Vec<&Group> = found
            .own
            .iter()
            .filter(|g| g.leak)
            .chain(found.across)
            .collect();
        let looked =
            !self.cfg.against.is_empty() || matches!(self.cfg.target, crate::Target::Prepared(_));
        if leaks.is_empty() && !looked {
            return Ok(());
        }
        let sections = self.group_sections(&leaks);
        self.sheet("leaks", "Leaks across splits and folders", &sections)
    }

    /// `<kind>.png`: the faces with this flag, worst first; nothing when none has it.
    fn flagged(&mut self, kind: AuditKind, rows: &[ItemRow]) -> Result<(), AuditError> {
        let mut flagged: Vec<&ItemRow> = rows.iter().filter(|(_, r)| r.kind == kind).collect();
        if flagged.is_empty() {
            return Ok(());
        }
        // Worst first: most flags are "below a threshold", a conflict "beyond" one.
        let about_labels = matches!(kind, AuditKind::LabelConflict | AuditKind::LabelOutOfRange);
        flagged.sort_by(|a, b| {
            let o = a.1.score.total_cmp(&b.1.score);
            (if about_labels { o.reverse() } else { o }).then(a.1.row.cmp(&b.1.row))
        });
        let tiles = flagged
            .iter()
            .take(self.cfg.sheet_faces)
            .filter_map(|(i, r)| {
                let it = &self.found.items[*i];
                let second = if about_labels {
                    format!("{} e{}", labels(it), it.expression.unwrap_or(-1))
                } else {
                    format!("score {:.3}", r.score)
                };
                self.tile(*i, second)
            })
            .collect();
        let title = format!("{} ({} faces, worst first)", kind.name(), flagged.len());
        let section = SheetSection {
            heading: String::new(),
            tiles,
        };
        self.sheet(kind.name(), &title, &[section])
    }

    /// `scores.png`: each quality score of every audited face, with its threshold.
    fn scores(&mut self) -> Result<(), AuditError> {
        let t = &self.cfg.thresholds;
        let measure =
            |f: &dyn Fn(&Item) -> f64| audited(self.found.items).map(f).collect::<Vec<f64>>();
        let panel = |title: &str, values: Vec<f64>, threshold: f64| ScoreHistogram {
            title: title.into(),
            values,
            threshold: Some(threshold),
        };
        let panels = [
            panel(
                "dark: 99th-pct brightness",
                measure(&|i| i.measures.bright_p99),
                t.dark,
            ),
            panel(
                "light: 1 − 5th-pct brightness",
                measure(&|i| 1.0 - i.measures.bright_p5),
                t.light,
            ),
            panel(
                "blurry: edge score, stretched",
                measure(&|i| blur_score(i.measures.edge_std)),
                t.blurry,
            ),
            panel(
                "low information: entropy × 0.1",
                measure(&|i| information_score(i.measures.entropy)),
                t.low_information,
            ),
            panel(
                "box aspect min(w/h, h/w)",
                measure(&aspect_score),
                t.odd_aspect,
            ),
            panel(
                "box shorter side (px)",
                measure(&|i| i.face_box.width.min(i.face_box.height) as f64),
                f64::from(t.small_face),
            ),
        ];
        score_histograms(
            &self.dir.join("scores.png"),
            "Quality scores of every face (red: threshold)",
            &panels,
        )?;
        self.written
            .push(("Quality scores".to_string(), "pages/scores.png".to_string()));
        Ok(())
    }
}

/// Six decimals: enough for any threshold, and stable text.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn report_md(s: &AuditSummary, pages: &[(String, String)], residuals: &[Residual]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Audit of {}\n", s.audited);
    let _ = writeln!(
        md,
        "{} faces audited; {} unreadable, {} with unusable labels not audited, {} malformed rows. {} duplicate groups, {} leak groups.\n",
        s.faces,
        s.unreadable,
        s.skipped_labels,
        s.malformed_rows,
        s.duplicate_groups,
        s.leak_groups
    );
    if let (Some(v), Some(a)) = (s.label_noise.valence_rmse, s.label_noise.arousal_rmse) {
        let _ = writeln!(
            md,
            "Copies of one image in {} groups disagree by RMSE {v:.3} (valence) and {a:.3} (arousal): measured label noise.\n",
            s.label_noise.groups
        );
    }
    let _ = writeln!(md, "| kind | findings |\n|---|---:|");
    for k in AuditKind::ALL {
        let _ = writeln!(
            md,
            "| {} | {} |",
            k.name(),
            s.counts.get(k.name()).copied().unwrap_or(0)
        );
    }
    if !residuals.is_empty() {
        let _ = writeln!(
            md,
            "\nLargest residuals of the run (candidate label errors), in `audit.csv` as `residual`: "
        );
        for r in residuals.iter().take(10) {
            let _ = writeln!(md, "- `{}`: {}", r.path, r.flag.detail);
        }
    }
    let _ = writeln!(
        md,
        "\nAct on it: `valar prepare … --exclude audit.csv` drops every flagged row and all but the lowest row of each duplicate group.\n"
    );
    for (title, file) in pages {
        let _ = writeln!(md, "## {title}\n\n![{title}]({file})\n");
    }
    md
}
