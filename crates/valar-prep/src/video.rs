//! What changes when the input is video: frames are sampled per video before
//! stratification, and the train/validation split is drawn per video (or subject), since
//! frames of one video are near-duplicates and a frame-level split leaks.
//!
//! Readers of video layouts add `video`, `frame`, `group` (the subject or the video) and
//! `given_split` (a split the layout assigns) to their table; image inputs have none of
//! these, and every function here leaves them as they were.

use crate::faces::Chosen;
use crate::input::Loaded;
use crate::rejects::reason;
use crate::{PrepError, PrepareConfig};
use polars::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use valar_core::{Progress, Split};

/// Which frames of each video to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameSampling {
    /// Every `step`-th frame of each video, in frame order, from its first (1: all).
    pub step: usize,
    /// Then at most this many frames per video, a seeded draw.
    pub per_video: Option<usize>,
}

impl Default for FrameSampling {
    fn default() -> Self {
        FrameSampling {
            step: 1,
            per_video: None,
        }
    }
}

fn is_video(table: &DataFrame) -> bool {
    table.column("video").is_ok()
}

/// The one-line hook after reading: for a video input, refuses a layout whose given
/// splits put one video on two sides, warns about frames missing on disk, and samples
/// frames. An image input passes through untouched.
pub(crate) fn prepare_frames(
    mut loaded: Loaded,
    cfg: &PrepareConfig,
    progress: &dyn Progress,
) -> Result<Loaded, PrepError> {
    if !is_video(&loaded.table) {
        return Ok(loaded);
    }
    let source = cfg.input.source();
    check_given_splits(&loaded.table).map_err(|e| match e {
        Check::Table(t) => PrepError::table(source)(t),
        Check::Leak { video, detail } => PrepError::VideoLeak {
            input: source.clone(),
            video,
            detail,
        },
        Check::Partial {
            row,
            video,
            given_row,
            given,
        } => PrepError::PartialSplits {
            input: source.clone(),
            row,
            video,
            given_row,
            given,
        },
    })?;
    let missing = loaded
        .rejects
        .iter()
        .filter(|r| r.reason == reason::MISSING_FRAME)
        .count();
    if missing > 0 {
        progress.warn(&format!(
            "{missing} annotated frames are not on disk (reason {} in rejects.csv)",
            reason::MISSING_FRAME
        ));
    }
    loaded.table = sample(&loaded.table, cfg.frames, cfg.seed).map_err(PrepError::table(source))?;
    Ok(loaded)
}

enum Check {
    Table(PolarsError),
    Leak {
        video: String,
        detail: String,
    },
    Partial {
        row: u64,
        video: String,
        given_row: u64,
        given: String,
    },
}

impl From<PolarsError> for Check {
    fn from(e: PolarsError) -> Self {
        Check::Table(e)
    }
}

/// Every group's given split must be one split, and either every row gives a split or
/// none does (a half-given split would be silently redrawn).
fn check_given_splits(table: &DataFrame) -> Result<(), Check> {
    let group = table.column("group")?.str()?;
    let video = table.column("video")?.str()?;
    let given = table.column("given_split")?.str()?;
    if given.null_count() > 0 && given.null_count() < given.len() {
        let rows = table.column("row")?.cast(&DataType::UInt64)?;
        let rows = rows.u64()?;
        let first = |has: bool| (0..table.height()).find(|&i| given.get(i).is_some() == has);
        if let (Some(without), Some(with)) = (first(false), first(true)) {
            return Err(Check::Partial {
                row: rows.get(without).unwrap_or_default(),
                video: video.get(without).unwrap_or_default().to_string(),
                given_row: rows.get(with).unwrap_or_default(),
                given: given.get(with).unwrap_or_default().to_string(),
            });
        }
    }
    let mut seen: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for i in 0..table.height() {
        let (Some(g), Some(s)) = (group.get(i), given.get(i)) else {
            continue;
        };
        let v = video.get(i).unwrap_or(g);
        match seen.get(g) {
            Some(&(first_split, first_video)) if first_split != s => {
                let name = if g == v { v.to_string() } else { g.to_string() };
                return Err(Check::Leak {
                    video: name,
                    detail: format!(
                        "video {first_video} is given split `{first_split}` and video {v} split `{s}`"
                    ),
                });
            }
            Some(_) => {}
            None => {
                seen.insert(g, (s, v));
            }
        }
    }
    Ok(())
}

/// A seeded 64-bit hash: FNV-1a over the seed and the parts, then a SplitMix64 finish,
/// so a draw depends on the seed and the names, not on row order.
fn keyed_hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed
        .to_le_bytes()
        .iter()
        .chain(parts.iter().flat_map(|p| p.iter()))
    {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Keeps every `step`-th frame of each video, then at most `per_video` of them drawn
/// with the seed; rows stay in input order.
fn sample(table: &DataFrame, how: FrameSampling, seed: u64) -> PolarsResult<DataFrame> {
    if how == FrameSampling::default() {
        return Ok(table.clone());
    }
    let video = table.column("video")?.str()?;
    let frame = table.column("frame")?.u64()?;
    let mut by_video: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
    for i in 0..table.height() {
        by_video
            .entry(video.get(i).unwrap_or(""))
            .or_default()
            .push((frame.get(i).unwrap_or(0), i));
    }
    let mut keep = vec![false; table.height()];
    for (name, mut frames) in by_video {
        frames.sort();
        let mut kept: Vec<(u64, usize)> = frames.into_iter().step_by(how.step).collect();
        if let Some(n) = how.per_video
            && kept.len() > n
        {
            kept.sort_by_key(|(f, _)| keyed_hash(seed, &[name.as_bytes(), &f.to_le_bytes()]));
            kept.truncate(n);
        }
        for (_, i) in kept {
            keep[i] = true;
        }
    }
    table.filter(&BooleanChunked::from_slice("keep".into(), &keep))
}

/// The split of each chosen frame for a video input, `None` for images (whose split is
/// drawn per interval). A split the layout gives is kept; otherwise whole groups (subjects
/// or videos) go to validation, in seeded order, until they hold the validation share of
/// the plan's frames, and at least one group stays in training. The split is decided on the
/// plan (every usable frame), not on the frames whose images decoded, so that each shard
/// of a `--shard K/N` run, which decodes only its own intervals, draws the same split.
pub(crate) fn group_splits(
    table: &DataFrame,
    chosen: &[Chosen],
    cfg: &PrepareConfig,
) -> PolarsResult<Option<Vec<Split>>> {
    if !is_video(table) {
        return Ok(None);
    }
    if cfg.keep_all {
        return Ok(Some(vec![Split::Test; chosen.len()]));
    }
    let group = table.column("group")?.str()?;
    let given = table.column("given_split")?.str()?;
    let group_of = |c: &Chosen| group.get(c.pos).unwrap_or("");
    if given.null_count() == 0 {
        return Ok(Some(
            chosen
                .iter()
                .map(|c| match given.get(c.pos) {
                    Some("val") => Split::Val,
                    Some("test") => Split::Test,
                    _ => Split::Train,
                })
                .collect(),
        ));
    }
    let mut frames: BTreeMap<&str, usize> = BTreeMap::new();
    for g in group.iter() {
        *frames.entry(g.unwrap_or("")).or_default() += 1;
    }
    let mut order: Vec<&str> = frames.keys().copied().collect();
    order.sort_by_key(|g| (keyed_hash(cfg.seed, &[g.as_bytes()]), *g));
    let target = crate::stratify::val_count(group.len(), cfg.val_fraction);
    let mut val: BTreeSet<&str> = BTreeSet::new();
    let mut held = 0;
    for g in order.iter().take(order.len().saturating_sub(1)) {
        if held >= target {
            break;
        }
        held += frames[g];
        val.insert(g);
    }
    Ok(Some(
        chosen
            .iter()
            .map(|c| {
                if val.contains(group_of(c)) {
                    Split::Val
                } else {
                    Split::Train
                }
            })
            .collect(),
    ))
}

/// `manifest.csv`'s `video` and `frame` columns for the chosen rows: empty for images.
pub(crate) fn manifest_columns(picked: &DataFrame) -> PolarsResult<[Column; 2]> {
    if is_video(picked) {
        return Ok([
            picked.column("video")?.clone(),
            picked.column("frame")?.clone(),
        ]);
    }
    let n = picked.height();
    Ok([
        Column::full_null("video".into(), n, &DataType::String),
        Column::full_null("frame".into(), n, &DataType::UInt64),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Three videos of 10 frames; video `c` belongs to subject `s1` with `a`.
    fn table() -> DataFrame {
        let (mut v, mut f, mut g) = (vec![], vec![], vec![]);
        for (video, group) in [("a", "s1"), ("b", "s2"), ("c", "s1")] {
            for frame in 0..10u64 {
                v.push(video);
                f.push(frame);
                g.push(group);
            }
        }
        let n = v.len();
        DataFrame::new(
            n,
            vec![
                Column::new("video".into(), v),
                Column::new("frame".into(), f),
                Column::new("group".into(), g),
                Column::new("given_split".into(), vec![None::<&str>; n]),
            ],
        )
        .unwrap()
    }

    fn frames_of(t: &DataFrame, video: &str) -> Vec<u64> {
        let v = t.column("video").unwrap().str().unwrap();
        let f = t.column("frame").unwrap().u64().unwrap();
        (0..t.height())
            .filter(|&i| v.get(i) == Some(video))
            .map(|i| f.get(i).unwrap())
            .collect()
    }

    #[test]
    fn every_kth_frame_then_a_seeded_draw_per_video() {
        let t = table();
        let every3 = FrameSampling {
            step: 3,
            per_video: None,
        };
        assert_eq!(
            frames_of(&sample(&t, every3, 0).unwrap(), "b"),
            [0, 3, 6, 9]
        );
        let at_most = |seed| {
            let s = FrameSampling {
                step: 1,
                per_video: Some(4),
            };
            sample(&t, s, seed).unwrap()
        };
        assert_eq!(at_most(1).height(), 12);
        assert_eq!(frames_of(&at_most(1), "a"), frames_of(&at_most(1), "a"));
        let draws: BTreeSet<Vec<u64>> = (0..5).map(|s| frames_of(&at_most(s), "a")).collect();
        assert!(draws.len() > 1, "the seed changes the draw");
    }

    #[test]
    fn a_subject_stays_on_one_side_and_a_given_split_that_splits_one_is_refused() {
        let t = table();
        let chosen: Vec<Chosen> = (0..t.height())
            .map(|pos| Chosen {
                pos,
                cell: 0,
                face_box: valar_core::FaceBox::whole(1, 1),
                sha256: String::new(),
            })
            .collect();
        let mut cfg = PrepareConfig::recipe(crate::Input::AfewVa { dir: "d".into() }, "o".into());
        cfg.val_fraction = 0.3;
        let g = t.column("group").unwrap().str().unwrap();
        for seed in 0..8 {
            cfg.seed = seed;
            let splits = group_splits(&t, &chosen, &cfg).unwrap().unwrap();
            let mut side: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for (i, s) in splits.iter().enumerate() {
                side.entry(g.get(i).unwrap()).or_default().insert(s.name());
            }
            assert!(side.values().all(|s| s.len() == 1), "{side:?}");
            assert!(splits.contains(&Split::Train) && splits.contains(&Split::Val));
        }
        let mut leaky = t.clone();
        // Video a (subject s1) in train, b and c (also s1) in validation.
        let given: Vec<Option<&str>> = (0..30)
            .map(|i| Some(if i < 10 { "train" } else { "val" }))
            .collect();
        leaky
            .replace("given_split", Column::new("given_split".into(), given))
            .unwrap();
        match check_given_splits(&leaky) {
            Err(Check::Leak { video, detail }) => {
                assert_eq!(video, "s1");
                assert!(
                    detail.contains("video a") && detail.contains("video c"),
                    "{detail}"
                );
            }
            _ => panic!("a subject on two sides must be refused"),
        }
    }
}
