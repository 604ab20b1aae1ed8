//! Synthetic video datasets in AFEW-VA's and Aff-Wild2's layouts: clips whose valence and
//! arousal drift smoothly from frame to frame, drawn on one person per clip, so that
//! neighbouring frames are near-duplicates as in real video.

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::SynthError;
use crate::dataset::{build_atomically, create_dir, write_file, write_jpeg};
use crate::face::Face;
use crate::labels::format_label;
use crate::picture::{Picture, render};

/// Which video dataset's layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoLayout {
    /// AFEW-VA: clip folders `001`… of PNG frames with `NNN.json` (labels in −10…10 and
    /// 68 landmarks per frame); two clips per actor.
    AfewVa,
    /// Aff-Wild2's VA track: `annotations/VA_Estimation_Challenge/{Train_Set,Validation_Set}/
    /// <video>.txt` and `cropped_aligned/<video>/<frame:05>.jpg`, with −5 frames and frames
    /// missing on disk.
    AffWild2,
}

/// Settings for [`synthesize_video`].
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSynthConfig {
    /// The layout.
    pub layout: VideoLayout,
    /// Clips (videos).
    pub clips: usize,
    /// Frames per clip.
    pub frames: usize,
    /// Seed; the same seed and settings give byte-identical output.
    pub seed: u64,
    /// Aff-Wild2: share of frames annotated −5 (invalid).
    pub invalid_fraction: f64,
    /// Aff-Wild2: share of annotated frames whose image is not written.
    pub missing_fraction: f64,
}

impl Default for VideoSynthConfig {
    fn default() -> Self {
        VideoSynthConfig {
            layout: VideoLayout::AfewVa,
            clips: 20,
            frames: 60,
            seed: 0,
            invalid_fraction: 0.05,
            missing_fraction: 0.02,
        }
    }
}

impl VideoSynthConfig {
    fn validate(&self) -> Result<(), SynthError> {
        let bad = |m: String| Err(SynthError::Config(m));
        if self.clips == 0 || self.clips > 999 {
            return bad(format!("clips must be 1 to 999, got {}", self.clips));
        }
        if self.frames == 0 || self.frames > 99_999 {
            return bad(format!("frames must be 1 to 99999, got {}", self.frames));
        }
        for (name, v) in [
            ("invalid_fraction", self.invalid_fraction),
            ("missing_fraction", self.missing_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return bad(format!("{name} must lie in [0, 1), got {v}"));
            }
        }
        Ok(())
    }
}

/// What [`synthesize_video`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSynthSummary {
    /// The dataset folder.
    pub root: PathBuf,
    /// What `valar prepare` reads labels from: the AFEW-VA folder, or Aff-Wild2's
    /// `VA_Estimation_Challenge`.
    pub annotations: PathBuf,
    /// Where the frames are (AFEW-VA: the same folder).
    pub frames: PathBuf,
    /// Clips written.
    pub clips: usize,
    /// Frames annotated, over all clips.
    pub annotated: usize,
    /// Frames annotated −5.
    pub invalid: usize,
    /// Frames with a valid label but no image.
    pub missing: usize,
}

/// Frame side of AFEW-VA's full frames, and of Aff-Wild2's aligned crops.
const AFEW_FRAME: (u32, u32) = (96, 80);
const CROP_SIDE: u32 = 64;

/// A clip's random streams: one for its plot (trajectory, which frames are invalid or
/// missing), one for its person and scene, reused unchanged for every frame.
fn clip_rng(seed: u64, clip: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Stream families 4 and 5: the image datasets use 0–3.
    rng.set_stream(((4 + stream) << 40) | clip as u64);
    rng
}

/// A smooth trajectory in [-1, 1]: a base level plus two slow sinusoids.
fn trajectory(rng: &mut impl Rng, frames: usize) -> Vec<f64> {
    let base = rng.random_range(-0.5..=0.5);
    let waves: Vec<(f64, f64, f64)> = (0..2)
        .map(|_| {
            let amplitude = rng.random_range(0.1..=0.3);
            let period = rng.random_range(0.5..=2.0) * frames.max(8) as f64;
            (amplitude, period, rng.random_range(0.0..TAU))
        })
        .collect();
    (0..frames)
        .map(|t| {
            let wave: f64 = waves
                .iter()
                .map(|(amp, period, phase)| amp * (TAU * t as f64 / period + phase).sin())
                .sum();
            (base + wave).clamp(-1.0, 1.0)
        })
        .collect()
}

/// One clip's labels (as drawn and written) and its per-frame fates.
struct Plot {
    valence: Vec<f64>,
    arousal: Vec<f64>,
    invalid: Vec<bool>,
    missing: Vec<bool>,
}

fn plot(cfg: &VideoSynthConfig, clip: usize) -> Plot {
    let mut rng = clip_rng(cfg.seed, clip, 0);
    let mut valence = trajectory(&mut rng, cfg.frames);
    let mut arousal = trajectory(&mut rng, cfg.frames);
    let (invalid, missing) = match cfg.layout {
        VideoLayout::AfewVa => {
            // AFEW-VA's labels are integers in −10…10: the face shows the rounded label.
            for x in valence.iter_mut().chain(arousal.iter_mut()) {
                *x = (*x * 10.0).round() / 10.0;
            }
            (vec![false; cfg.frames], vec![false; cfg.frames])
        }
        VideoLayout::AffWild2 => {
            let invalid: Vec<bool> = (0..cfg.frames)
                .map(|_| rng.random_bool(cfg.invalid_fraction))
                .collect();
            let missing = invalid
                .iter()
                .map(|&bad| rng.random_bool(cfg.missing_fraction) && !bad)
                .collect();
            (invalid, missing)
        }
    };
    Plot {
        valence,
        arousal,
        invalid,
        missing,
    }
}

/// Frame `t` of a clip: the clip's person, showing the label at `t`, drifting slowly.
fn draw(
    cfg: &VideoSynthConfig,
    clip: usize,
    t: usize,
    va: (f64, f64),
    size: (u32, u32),
) -> (Picture, Face) {
    let (w, h) = size;
    let side = w.min(h) as f32 * 0.8;
    let drift = (t as f32 / 12.0).sin() * side * 0.04;
    let centre = (w as f32 / 2.0 + drift, h as f32 / 2.0);
    let mut person = clip_rng(cfg.seed, clip, 1);
    let face = Face::sample(&mut person, va, centre, side / 2.0);
    let picture = render(&mut person, w, h, Some(&face), false, false);
    (picture, face)
}

/// Writes a synthetic video dataset to `out`, atomically like [`crate::synthesize`].
/// `on_frame` is called once per annotated frame, from worker threads.
pub fn synthesize_video(
    out: &Path,
    cfg: &VideoSynthConfig,
    on_frame: &(dyn Fn() + Sync),
) -> Result<VideoSynthSummary, SynthError> {
    cfg.validate()?;
    let counts = build_atomically(out, |partial| {
        (0..cfg.clips)
            .into_par_iter()
            .map(|clip| match cfg.layout {
                VideoLayout::AfewVa => write_afew_clip(partial, cfg, clip, on_frame),
                VideoLayout::AffWild2 => write_aff_wild2_clip(partial, cfg, clip, on_frame),
            })
            .collect::<Result<Vec<(usize, usize)>, SynthError>>()
    })?;
    let root = out.to_path_buf();
    let (annotations, frames) = match cfg.layout {
        VideoLayout::AfewVa => (root.clone(), root.clone()),
        VideoLayout::AffWild2 => (
            root.join("annotations").join("VA_Estimation_Challenge"),
            root.join("cropped_aligned"),
        ),
    };
    Ok(VideoSynthSummary {
        root,
        annotations,
        frames,
        clips: cfg.clips,
        annotated: cfg.clips * cfg.frames,
        invalid: counts.iter().map(|c| c.0).sum(),
        missing: counts.iter().map(|c| c.1).sum(),
    })
}

fn write_png(path: &Path, picture: &Picture) -> Result<(), SynthError> {
    let saved = match picture {
        Picture::Rgb(img) => img.save_with_format(path, image::ImageFormat::Png),
        Picture::Gray(img) => img.save_with_format(path, image::ImageFormat::Png),
    };
    saved.map_err(|source| SynthError::Encode {
        path: path.to_path_buf(),
        source,
    })
}

/// Clip `clip` of AFEW-VA (clip folders are numbered from 001); two clips per actor.
fn write_afew_clip(
    root: &Path,
    cfg: &VideoSynthConfig,
    clip: usize,
    on_frame: &(dyn Fn() + Sync),
) -> Result<(usize, usize), SynthError> {
    let id = format!("{:03}", clip + 1);
    let dir = root.join(&id);
    create_dir(&dir)?;
    let p = plot(cfg, clip);
    let mut frames = serde_json::Map::new();
    for t in 0..cfg.frames {
        let (picture, face) = draw(cfg, clip, t, (p.valence[t], p.arousal[t]), AFEW_FRAME);
        let name = format!("{t:05}");
        write_png(&dir.join(format!("{name}.png")), &picture)?;
        let landmarks: Vec<[f64; 2]> = face
            .landmarks()
            .iter()
            .map(|&(x, y)| {
                [
                    (f64::from(x) * 100.0).round() / 100.0,
                    (f64::from(y) * 100.0).round() / 100.0,
                ]
            })
            .collect();
        frames.insert(
            name,
            serde_json::json!({
                "valence": (p.valence[t] * 10.0).round() as i64,
                "arousal": (p.arousal[t] * 10.0).round() as i64,
                "landmarks": landmarks,
            }),
        );
        on_frame();
    }
    let doc = serde_json::json!({
        "actor": format!("actor_{:03}", clip / 2),
        "video_id": id,
        "frames": frames,
    });
    let json = dir.join(format!("{id}.json"));
    write_file(&json, doc.to_string().as_bytes())?;
    Ok((0, 0))
}

/// Aff-Wild2's name for clip `clip`: the first two clips are the left and right person of
/// one recording, as Aff-Wild2 names two people in one video.
fn aff_wild2_name(clip: usize, clips: usize) -> String {
    match clip {
        0 if clips > 1 => "video000_left".to_string(),
        1 => "video000_right".to_string(),
        _ => format!("video{clip:03}"),
    }
}

/// Clip `clip` of Aff-Wild2: the last quarter of the clips form the validation set.
fn write_aff_wild2_clip(
    root: &Path,
    cfg: &VideoSynthConfig,
    clip: usize,
    on_frame: &(dyn Fn() + Sync),
) -> Result<(usize, usize), SynthError> {
    let val_clips = if cfg.clips > 1 {
        cfg.clips.div_ceil(4)
    } else {
        0
    };
    let set = if clip >= cfg.clips - val_clips {
        "Validation_Set"
    } else {
        "Train_Set"
    };
    let name = aff_wild2_name(clip, cfg.clips);
    let notes = root.join("annotations/VA_Estimation_Challenge").join(set);
    let images = root.join("cropped_aligned").join(&name);
    create_dir(&notes)?;
    create_dir(&images)?;
    let p = plot(cfg, clip);
    let mut text = String::from("valence,arousal\n");
    for t in 0..cfg.frames {
        if p.invalid[t] {
            text.push_str("-5,-5\n");
        } else {
            let va = (p.valence[t], p.arousal[t]);
            text.push_str(&format!("{},{}\n", format_label(va.0), format_label(va.1)));
        }
        // Frames are numbered from 1; an invalid frame still has its image, as in Aff-Wild2.
        if !p.missing[t] {
            let (picture, _) = draw(
                cfg,
                clip,
                t,
                (p.valence[t], p.arousal[t]),
                (CROP_SIDE, CROP_SIDE),
            );
            write_jpeg(&images.join(format!("{:05}.jpg", t + 1)), &picture, 92)?;
        }
        on_frame();
    }
    write_file(&notes.join(format!("{name}.txt")), text.as_bytes())?;
    let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
    Ok((count(&p.invalid), count(&p.missing)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn trajectories_are_smooth_and_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = trajectory(&mut rng, 200);
        assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
        let max_step = x
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max);
        assert!(max_step < 0.05, "step {max_step}");
        let spread =
            x.iter().cloned().fold(f64::MIN, f64::max) - x.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 0.1, "spread {spread}");
    }

    #[test]
    fn aff_wild2_layout_has_invalid_and_missing_frames_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = VideoSynthConfig {
            layout: VideoLayout::AffWild2,
            clips: 4,
            frames: 30,
            seed: 5,
            invalid_fraction: 0.2,
            missing_fraction: 0.1,
        };
        let a = synthesize_video(&dir.path().join("a"), &cfg, &|| {}).unwrap();
        let b = synthesize_video(&dir.path().join("b"), &cfg, &|| {}).unwrap();
        assert!(a.invalid > 0 && a.missing > 0, "{a:?}");
        let text = |root: &Path, set: &str, v: &str| {
            std::fs::read_to_string(
                root.join(format!("annotations/VA_Estimation_Challenge/{set}/{v}.txt")),
            )
            .unwrap()
        };
        let t = text(&a.root, "Train_Set", "video000_left");
        assert_eq!(t, text(&b.root, "Train_Set", "video000_left"));
        assert!(t.starts_with("valence,arousal\n"));
        assert_eq!(t.lines().count(), 31);
        assert!(text(&a.root, "Validation_Set", "video003").contains(','));
        let jpgs = |root: &Path| {
            let mut n = 0;
            for v in std::fs::read_dir(root.join("cropped_aligned")).unwrap() {
                n += std::fs::read_dir(v.unwrap().path()).unwrap().count();
            }
            n
        };
        assert_eq!(jpgs(&a.root), 4 * 30 - a.missing);
        let f = "cropped_aligned/video003/00001.jpg";
        if a.root.join(f).exists() {
            assert_eq!(
                std::fs::read(a.root.join(f)).unwrap(),
                std::fs::read(b.root.join(f)).unwrap()
            );
        }
    }

    #[test]
    fn afew_va_layout_writes_integer_labels_and_68_landmarks() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = VideoSynthConfig {
            clips: 2,
            frames: 3,
            ..VideoSynthConfig::default()
        };
        let s = synthesize_video(&dir.path().join("afew"), &cfg, &|| {}).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.root.join("002/002.json")).unwrap())
                .unwrap();
        assert_eq!(doc["actor"], "actor_000");
        let f = &doc["frames"]["00002"];
        assert!(
            f["valence"]
                .as_i64()
                .is_some_and(|v| (-10..=10).contains(&v))
        );
        assert_eq!(f["landmarks"].as_array().unwrap().len(), 68);
        assert!(s.root.join("002/00002.png").is_file());
    }
}
