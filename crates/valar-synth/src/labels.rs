//! Valence/arousal sampling, expression codes and AffectNet-style number formatting.

use rand::Rng;

/// AffectNet's expression codes that matter here.
pub(crate) mod expr {
    pub const NEUTRAL: u8 = 0;
    pub const HAPPY: u8 = 1;
    pub const SAD: u8 = 2;
    pub const SURPRISE: u8 = 3;
    pub const FEAR: u8 = 4;
    pub const DISGUST: u8 = 5;
    pub const ANGER: u8 = 6;
    pub const CONTEMPT: u8 = 7;
    pub const NONE: u8 = 8;
    pub const UNCERTAIN: u8 = 9;
    pub const NON_FACE: u8 = 10;
}

/// The value AffectNet writes for valence and arousal of unusable rows.
pub(crate) const INVALID_LABEL: f64 = -2.0;

/// How a row is unusable, mirroring AffectNet's three kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Expression 8 (None) with ordinary valence/arousal.
    NoneExpr,
    /// Expression 9 (Uncertain), labels -2; a face is still drawn.
    Uncertain,
    /// Expression 10 (Non-Face), labels -2; no face is drawn.
    NonFace,
}

impl Invalid {
    /// Picks a kind; AffectNet's -2 rows dominate its unusable ones.
    pub(crate) fn sample(rng: &mut impl Rng) -> Self {
        let u: f64 = rng.random();
        if u < 0.4 {
            Invalid::Uncertain
        } else if u < 0.8 {
            Invalid::NonFace
        } else {
            Invalid::NoneExpr
        }
    }
}

/// What one row's CSV/NPY labels say, and the affect its drawn face shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RowLabels {
    /// Expression code written to the file.
    pub expression: u8,
    /// Valence written to the file (-2 for Uncertain and Non-Face).
    pub valence: f64,
    /// Arousal written to the file (-2 for Uncertain and Non-Face).
    pub arousal: f64,
    /// Affect the drawn face encodes; equals the written labels for valid rows.
    pub drawn: (f64, f64),
    /// Whether a face is drawn at all.
    pub has_face: bool,
}

impl RowLabels {
    /// Draws labels for a row, valid or of the given unusable kind.
    pub(crate) fn sample(rng: &mut impl Rng, invalid: Option<Invalid>) -> Self {
        let (v, a) = sample_va(rng);
        match invalid {
            None => RowLabels {
                expression: expression_for(v, a, rng),
                valence: v,
                arousal: a,
                drawn: (v, a),
                has_face: true,
            },
            Some(Invalid::NoneExpr) => RowLabels {
                expression: expr::NONE,
                valence: v,
                arousal: a,
                drawn: (v, a),
                has_face: true,
            },
            Some(kind) => RowLabels {
                expression: if kind == Invalid::Uncertain {
                    expr::UNCERTAIN
                } else {
                    expr::NON_FACE
                },
                valence: INVALID_LABEL,
                arousal: INVALID_LABEL,
                drawn: (v, a),
                has_face: kind == Invalid::Uncertain,
            },
        }
    }
}

/// Draws (valence, arousal): 60% uniform over the square so every interval is
/// populated, 40% a blob near mildly positive affect, skewed like AffectNet.
pub(crate) fn sample_va(rng: &mut impl Rng) -> (f64, f64) {
    let (v, a) = if rng.random_bool(0.6) {
        (rng.random_range(-1.0..=1.0), rng.random_range(-1.0..=1.0))
    } else {
        let (z1, z2) = standard_normal_pair(rng);
        (0.2 + 0.35 * z1, 0.1 + 0.35 * z2)
    };
    // Rounded to what the files hold, so the drawn face matches the written label exactly.
    (round6(v.clamp(-1.0, 1.0)), round6(a.clamp(-1.0, 1.0)))
}

/// Two independent N(0,1) draws by Box–Muller (rand 0.9 has no normal distribution
/// without pulling in rand_distr, and this is all we need).
fn standard_normal_pair(rng: &mut impl Rng) -> (f64, f64) {
    // 1 - u lies in (0, 1], keeping ln finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}

/// An expression code consistent with the circumplex quadrant of (v, a).
pub(crate) fn expression_for(v: f64, a: f64, rng: &mut impl Rng) -> u8 {
    if v.hypot(a) < 0.2 {
        return expr::NEUTRAL;
    }
    match (v > 0.0, a > 0.0) {
        (true, true) => {
            // Surprise lives at high arousal, happiness everywhere on the right.
            if a > v && rng.random_bool(0.5) {
                expr::SURPRISE
            } else {
                expr::HAPPY
            }
        }
        (true, false) => {
            if v > 0.35 {
                expr::HAPPY
            } else {
                pick(rng, &[expr::HAPPY, expr::NEUTRAL])
            }
        }
        (false, true) => pick(rng, &[expr::ANGER, expr::FEAR, expr::DISGUST]),
        (false, false) => pick(rng, &[expr::SAD, expr::CONTEMPT]),
    }
}

/// One of `options`, uniformly.
fn pick<R: Rng + ?Sized>(rng: &mut R, options: &[u8]) -> u8 {
    options[rng.random_range(0..options.len())]
}

/// Rounds to 6 decimals, AffectNet's precision.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Formats a label like AffectNet: up to 6 decimals, no trailing zeros (`-0.176846`, `0.5`, `-2`).
pub(crate) fn format_label(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn labels_format_like_affectnet() {
        assert_eq!(format_label(-0.176846), "-0.176846");
        assert_eq!(format_label(0.5), "0.5");
        assert_eq!(format_label(-2.0), "-2");
        assert_eq!(format_label(1.0), "1");
        assert_eq!(format_label(-0.0000001), "0");
        assert_eq!(format_label(0.0), "0");
    }

    #[test]
    fn mixture_covers_every_arousal_interval_and_skews_positive() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let mut bins = [0usize; 10];
        let mut mean_v = 0.0;
        for _ in 0..n {
            let (v, a) = sample_va(&mut rng);
            assert!((-1.0..=1.0).contains(&v) && (-1.0..=1.0).contains(&a));
            assert_eq!(v, round6(v));
            bins[(((a + 1.0) / 0.2) as usize).min(9)] += 1;
            mean_v += v / n as f64;
        }
        // 97% valid rows at the default invalid share must still leave > 1000 per interval.
        for (i, &c) in bins.iter().enumerate() {
            assert!(
                c as f64 * 0.97 > 1050.0,
                "arousal interval {i} has only {c} rows"
            );
        }
        assert!(
            mean_v > 0.05,
            "valence should skew positive like AffectNet, mean {mean_v}"
        );
    }

    #[test]
    fn expressions_agree_with_quadrants() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..5000 {
            let (v, a) = sample_va(&mut rng);
            let e = expression_for(v, a, &mut rng);
            let ok = match e {
                expr::NEUTRAL => v.hypot(a) < 0.2 || (v > 0.0 && a <= 0.0),
                expr::HAPPY => v > 0.0,
                expr::SURPRISE => v > 0.0 && a > 0.0,
                expr::ANGER | expr::FEAR | expr::DISGUST => v <= 0.0 && a > 0.0,
                expr::SAD | expr::CONTEMPT => v <= 0.0 && a <= 0.0,
                _ => false,
            };
            assert!(ok, "expression {e} for v={v} a={a}");
        }
    }

    #[test]
    fn invalid_kinds_carry_affectnet_labels() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let u = RowLabels::sample(&mut rng, Some(Invalid::Uncertain));
        assert_eq!(
            (u.expression, u.valence, u.arousal, u.has_face),
            (9, -2.0, -2.0, true)
        );
        let nf = RowLabels::sample(&mut rng, Some(Invalid::NonFace));
        assert_eq!(
            (nf.expression, nf.valence, nf.arousal, nf.has_face),
            (10, -2.0, -2.0, false)
        );
        let none = RowLabels::sample(&mut rng, Some(Invalid::NoneExpr));
        assert_eq!(none.expression, 8);
        assert!((-1.0..=1.0).contains(&none.valence));
    }
}
