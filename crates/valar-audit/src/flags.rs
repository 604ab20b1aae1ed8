use crate::Thresholds;
use crate::load::Item;
use valar_core::AuditKind;

/// A flag raised on one face: its kind, the measured score and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flag {
    pub kind: AuditKind,
    pub score: f64,
    pub detail: String,
}

/// The blurry score: CleanVision's 1 − exp(−σ·0.01) of the edge filter's σ, taken on
/// the contrast-stretched face (see `features::stretch`).
pub(crate) fn blur_score(edge_std: f64) -> f64 {
    1.0 - (-edge_std * 0.01).exp()
}

/// The low-information score: entropy in bits times CleanVision's 0.1.
pub(crate) fn information_score(entropy: f64) -> f64 {
    entropy * 0.1
}

/// The face box's min(w/h, h/w).
pub(crate) fn aspect_score(item: &Item) -> f64 {
    let (w, h) = (item.face_box.width as f64, item.face_box.height as f64);
    (w / h).min(h / w)
}

/// The quality flags of one face's crop and box.
pub(crate) fn quality(item: &Item, t: &Thresholds) -> Vec<Flag> {
    let m = &item.measures;
    let mut flags = Vec::new();
    let mut flag = |kind, score: f64, below: f64, what: &str| {
        if score < below {
            flags.push(Flag {
                kind,
                score,
                detail: format!("{what} {score:.3} < {below}"),
            });
        }
    };
    flag(
        AuditKind::Dark,
        m.bright_p99,
        t.dark,
        "99th-percentile brightness",
    );
    flag(
        AuditKind::Light,
        1.0 - m.bright_p5,
        t.light,
        "1 − 5th-percentile brightness",
    );
    flag(
        AuditKind::Blurry,
        blur_score(m.edge_std),
        t.blurry,
        "stretched edge score 1 − exp(−σ/100)",
    );
    flag(
        AuditKind::LowInformation,
        information_score(m.entropy),
        t.low_information,
        "entropy × 0.1",
    );
    flag(
        AuditKind::OddAspect,
        aspect_score(item),
        t.odd_aspect,
        "box min(w/h, h/w)",
    );
    let side = item.face_box.width.min(item.face_box.height);
    if side < i64::from(t.small_face) {
        flags.push(Flag {
            kind: AuditKind::SmallFace,
            score: side as f64,
            detail: format!(
                "face box {}×{} is under {} px: the face is upscaled",
                item.face_box.width, item.face_box.height, t.small_face
            ),
        });
    }
    if item.colour_known && m.spread <= t.grayscale_spread {
        flags.push(Flag {
            kind: AuditKind::Grayscale,
            score: f64::from(m.spread),
            detail: format!("no pixel's channels differ by more than {}", m.spread),
        });
    }
    flags
}

/// An expression's plausible region: which label must not lie beyond a bound.
struct Rule {
    expressions: &'static [i32],
    name: &'static str,
    valence: bool,
    /// The label must not be below (−1) or above (+1) `bound × margin`.
    side: f64,
    bound: f64,
}

/// The expression rules, in units of the label margin m (0.25 by default): Happy
/// with valence below −m; Sad, Fear, Disgust, Anger or Contempt with valence above
/// +m; Surprise or Fear with arousal below −m; Neutral with |valence| above 3m.
const RULES: [Rule; 5] = [
    Rule {
        expressions: &[1],
        name: "Happy",
        valence: true,
        side: -1.0,
        bound: 1.0,
    },
    Rule {
        expressions: &[2, 4, 5, 6, 7],
        name: "a negative expression",
        valence: true,
        side: 1.0,
        bound: 1.0,
    },
    Rule {
        expressions: &[3, 4],
        name: "Surprise or Fear",
        valence: false,
        side: -1.0,
        bound: 1.0,
    },
    Rule {
        expressions: &[0],
        name: "Neutral",
        valence: true,
        side: 1.0,
        bound: 3.0,
    },
    Rule {
        expressions: &[0],
        name: "Neutral",
        valence: true,
        side: -1.0,
        bound: 3.0,
    },
];

/// Label checks: values outside [-1, 1], and expressions their labels contradict.
pub(crate) fn labels(item: &Item, t: &Thresholds) -> Vec<Flag> {
    let (v, a) = (item.valence, item.arousal);
    if !(-1.0..=1.0).contains(&v) || !(-1.0..=1.0).contains(&a) {
        let score = (v.abs() - 1.0).max(a.abs() - 1.0);
        return vec![Flag {
            kind: AuditKind::LabelOutOfRange,
            score,
            detail: format!("valence {v}, arousal {a}: labels must lie in [-1, 1]"),
        }];
    }
    let Some(e) = item.expression else {
        return Vec::new();
    };
    RULES
        .iter()
        .filter(|r| r.expressions.contains(&e))
        .filter_map(|r| {
            let value = if r.valence { v } else { a };
            let limit = r.side * r.bound * t.label_margin;
            let beyond = (value - limit) * r.side;
            (beyond > 0.0).then(|| Flag {
                kind: AuditKind::LabelConflict,
                score: beyond,
                detail: format!(
                    "{} (expression {e}) with {} {value:+.3}, {} {limit:+.2}",
                    r.name,
                    if r.valence { "valence" } else { "arousal" },
                    if r.side < 0.0 { "below" } else { "above" }
                ),
            })
        })
        .take(1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{SIDE, measure};
    use valar_core::FaceBox;

    fn item(expression: Option<i32>, valence: f64, arousal: f64) -> Item {
        let rgb: Vec<u8> = (0..SIDE * SIDE * 3)
            .map(|i| ((i * 7919) % 251) as u8)
            .collect();
        Item {
            dataset: 0,
            slot: 0,
            source: "a.csv".into(),
            row: 2,
            path: "a.jpg".into(),
            split: None,
            expression,
            valence,
            arousal,
            face_box: FaceBox {
                x: 0,
                y: 0,
                width: 100,
                height: 100,
            },
            sha256: String::new(),
            colour_known: true,
            measures: measure(&rgb),
        }
    }

    #[test]
    fn contradicting_expressions_are_flagged_and_consistent_ones_are_not() {
        let t = Thresholds::default();
        let kinds = |e, v, a| {
            labels(&item(Some(e), v, a), &t)
                .iter()
                .map(|f| f.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(1, -0.6, 0.1), [AuditKind::LabelConflict]);
        assert!(kinds(1, 0.6, 0.1).is_empty());
        assert_eq!(kinds(6, 0.7, 0.5), [AuditKind::LabelConflict]);
        assert!(kinds(6, -0.5, 0.5).is_empty());
        assert_eq!(kinds(3, 0.2, -0.6), [AuditKind::LabelConflict]);
        assert!(kinds(0, 0.1, 0.0).is_empty());
        assert_eq!(kinds(0, -0.9, 0.0), [AuditKind::LabelConflict]);
        assert_eq!(kinds(1, 1.5, 0.0), [AuditKind::LabelOutOfRange]);
    }

    #[test]
    fn a_textured_colour_face_raises_no_quality_flag() {
        let t = Thresholds::default();
        let flags = quality(&item(None, 0.0, 0.0), &t);
        assert!(flags.is_empty(), "{flags:?}");
        let mut small = item(None, 0.0, 0.0);
        small.face_box.width = 20;
        let kinds: Vec<_> = quality(&small, &t).iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [AuditKind::OddAspect, AuditKind::SmallFace]);
    }
}
