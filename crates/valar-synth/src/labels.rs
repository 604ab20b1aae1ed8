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
    /// Affect the drawn face encodes; equals the written labels for valid easy rows,
    /// and is the noise-free truth behind them for hard rows.
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

/// One AffectNet annotator's error, as a standard deviation: two annotators differ
/// by RMSE 0.34 (valence) and 0.36 (arousal), and the difference of two independent
/// errors has √2 times one error's spread.
pub(crate) const ANNOTATOR_SD: (f64, f64) = (
    0.34 / std::f64::consts::SQRT_2,
    0.36 / std::f64::consts::SQRT_2,
);

/// Spread of the true affect around its expression's mean. Small, because the
/// annotator noise on top already widens each expression's labels to roughly
/// AffectNet's (validation sd 0.47 valence, 0.38 arousal).
const WITHIN_EXPRESSION_SD: f64 = 0.08;

/// The eight usable expressions with AffectNet's mean (valence, arousal) and its
/// manually annotated training-set counts (Mollahosseini et al. 2017): Happy and
/// Neutral are almost three quarters of the usable rows.
const EXPRESSIONS: [(u8, (f64, f64), u32); 8] = [
    (expr::NEUTRAL, (-0.02, -0.02), 74_874),
    (expr::HAPPY, (0.67, 0.08), 134_415),
    (expr::SAD, (-0.63, -0.27), 25_459),
    (expr::SURPRISE, (0.18, 0.70), 14_090),
    (expr::FEAR, (-0.12, 0.76), 6_378),
    (expr::DISGUST, (-0.68, 0.45), 3_803),
    (expr::ANGER, (-0.43, 0.55), 24_882),
    (expr::CONTEMPT, (-0.51, 0.58), 3_750),
];

/// Which AffectNet split a hard row imitates: the skewed training set or the
/// validation set, balanced over the eight expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Balance {
    /// Expressions drawn with AffectNet's training frequencies.
    Training,
    /// Every expression equally likely, like AffectNet's validation set.
    Balanced,
}

/// An expression and its mean affect, drawn as `balance` says.
fn sample_expression(rng: &mut impl Rng, balance: Balance) -> (u8, (f64, f64)) {
    let i = match balance {
        Balance::Balanced => rng.random_range(0..EXPRESSIONS.len()),
        Balance::Training => {
            let total: u32 = EXPRESSIONS.iter().map(|e| e.2).sum();
            let mut u = rng.random_range(0..total);
            let mut i = 0;
            while u >= EXPRESSIONS[i].2 {
                u -= EXPRESSIONS[i].2;
                i += 1;
            }
            i
        }
    };
    (EXPRESSIONS[i].0, EXPRESSIONS[i].1)
}

/// Hard-mode labels: an expression first, the true affect around its mean, and the
/// written labels one simulated annotator's noisy reading of that affect.
pub(crate) fn sample_hard(
    rng: &mut impl Rng,
    balance: Balance,
    invalid: Option<Invalid>,
) -> RowLabels {
    let (expression, (mv, ma)) = sample_expression(rng, balance);
    let (z1, z2) = standard_normal_pair(rng);
    let truth = (
        round6((mv + WITHIN_EXPRESSION_SD * z1).clamp(-1.0, 1.0)),
        round6((ma + WITHIN_EXPRESSION_SD * z2).clamp(-1.0, 1.0)),
    );
    let (n1, n2) = standard_normal_pair(rng);
    let written = (
        round6((truth.0 + ANNOTATOR_SD.0 * n1).clamp(-1.0, 1.0)),
        round6((truth.1 + ANNOTATOR_SD.1 * n2).clamp(-1.0, 1.0)),
    );
    match invalid {
        None => RowLabels {
            expression,
            valence: written.0,
            arousal: written.1,
            drawn: truth,
            has_face: true,
        },
        Some(Invalid::NoneExpr) => RowLabels {
            expression: expr::NONE,
            valence: written.0,
            arousal: written.1,
            drawn: truth,
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
            drawn: truth,
            has_face: kind == Invalid::Uncertain,
        },
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

    /// Mean, population sd and quantiles of `x`.
    fn stats(x: &mut [f64]) -> (f64, f64, [f64; 5]) {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        x.sort_by(f64::total_cmp);
        let q = [0.05, 0.25, 0.5, 0.75, 0.95].map(|p| x[((x.len() - 1) as f64 * p) as usize]);
        (mean, sd, q)
    }

    fn hard_rows(balance: Balance, n: usize, seed: u64) -> Vec<RowLabels> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| sample_hard(&mut rng, balance, None))
            .collect()
    }

    #[test]
    fn balanced_hard_labels_match_affectnet_validation() {
        let rows = hard_rows(Balance::Balanced, 40_000, 11);
        let mut v: Vec<f64> = rows.iter().map(|r| r.valence).collect();
        let mut a: Vec<f64> = rows.iter().map(|r| r.arousal).collect();
        let (mv, sv, qv) = stats(&mut v);
        let (ma, sa, qa) = stats(&mut a);
        // AffectNet's validation set: valence -0.19 ± 0.47, arousal 0.35 ± 0.38.
        assert!((mv + 0.19).abs() < 0.03, "valence mean {mv}");
        assert!((ma - 0.35).abs() < 0.03, "arousal mean {ma}");
        assert!((sv - 0.47).abs() < 0.05, "valence sd {sv}");
        assert!((sa - 0.38).abs() < 0.07, "arousal sd {sa}");
        // Quantiles (5, 25, 50, 75, 95 %) within 0.15 of AffectNet's.
        for (got, want) in qv.iter().zip([-0.81, -0.61, -0.18, 0.03, 0.75]) {
            assert!((got - want).abs() < 0.15, "valence quantiles {qv:?}");
        }
        for (got, want) in qa.iter().zip([-0.32, 0.02, 0.44, 0.67, 0.86]) {
            assert!((got - want).abs() < 0.15, "arousal quantiles {qa:?}");
        }
        let mut counts = [0usize; 8];
        for r in &rows {
            counts[r.expression as usize] += 1;
        }
        for c in counts {
            assert!(
                (c as f64 / 5000.0 - 1.0).abs() < 0.08,
                "expressions {counts:?}"
            );
        }
    }

    #[test]
    fn training_hard_labels_pile_up_at_neutral_and_happy() {
        let rows = hard_rows(Balance::Training, 40_000, 12);
        let share = |e: u8| rows.iter().filter(|r| r.expression == e).count() as f64 / 40_000.0;
        let (happy, neutral) = (share(expr::HAPPY), share(expr::NEUTRAL));
        assert!(
            (happy - 0.467).abs() < 0.015 && (neutral - 0.26).abs() < 0.015,
            "happy {happy}, neutral {neutral}"
        );
        // Valence clusters near 0 and +0.7, few faces have arousal below -0.4, and the
        // middle half of arousal lies inside [-0.3, 0.6].
        let near =
            |c: f64| rows.iter().filter(|r| (r.drawn.0 - c).abs() < 0.25).count() as f64 / 40_000.0;
        assert!(
            near(0.0) > 0.25 && near(0.67) > 0.4,
            "valence modes {} {}",
            near(0.0),
            near(0.67)
        );
        let low = rows.iter().filter(|r| r.arousal < -0.4).count() as f64 / 40_000.0;
        assert!(low < 0.08, "arousal below -0.4: {low}");
        let mut a: Vec<f64> = rows.iter().map(|r| r.arousal).collect();
        let (ma, _, qa) = stats(&mut a);
        assert!(ma > 0.0 && ma < 0.25, "arousal mean {ma}");
        assert!(qa[1] > -0.3 && qa[3] < 0.6, "arousal quartiles {qa:?}");
    }

    #[test]
    fn hard_labels_carry_one_annotators_noise() {
        let rows = hard_rows(Balance::Balanced, 40_000, 13);
        // Away from the clip at ±1 the written label is the truth plus N(0, sd²).
        for (dim, want) in [(0, ANNOTATOR_SD.0), (1, ANNOTATOR_SD.1)] {
            let err: Vec<f64> = rows
                .iter()
                .map(|r| {
                    if dim == 0 {
                        (r.valence, r.drawn.0)
                    } else {
                        (r.arousal, r.drawn.1)
                    }
                })
                .filter(|&(_, t)| t.abs() < 0.2)
                .map(|(w, t)| w - t)
                .collect();
            let n = err.len() as f64;
            let mean = err.iter().sum::<f64>() / n;
            let sd = (err.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n).sqrt();
            assert!(err.len() > 3000, "{} rows near 0", err.len());
            assert!(mean.abs() < 0.015, "dim {dim}: noise mean {mean}");
            assert!(
                (sd - want).abs() < 0.01,
                "dim {dim}: noise sd {sd}, want {want}"
            );
        }
        // Two independent annotators would then disagree by RMSE 0.34 / 0.36.
        assert!((ANNOTATOR_SD.0 * 2f64.sqrt() - 0.34).abs() < 1e-12);
        assert!((ANNOTATOR_SD.1 * 2f64.sqrt() - 0.36).abs() < 1e-12);
        for r in &rows {
            assert!(r.valence.abs() <= 1.0 && r.arousal.abs() <= 1.0);
            assert!(r.drawn.0.abs() <= 1.0 && r.drawn.1.abs() <= 1.0);
            assert_eq!(r.valence, round6(r.valence));
        }
    }

    #[test]
    fn hard_labels_are_deterministic_and_keep_invalid_kinds() {
        assert_eq!(
            hard_rows(Balance::Training, 100, 5),
            hard_rows(Balance::Training, 100, 5)
        );
        assert_ne!(
            hard_rows(Balance::Training, 100, 5),
            hard_rows(Balance::Training, 100, 6)
        );
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let nf = sample_hard(&mut rng, Balance::Training, Some(Invalid::NonFace));
        assert_eq!(
            (nf.expression, nf.valence, nf.arousal, nf.has_face),
            (10, -2.0, -2.0, false)
        );
        let u = sample_hard(&mut rng, Balance::Balanced, Some(Invalid::Uncertain));
        assert_eq!((u.expression, u.valence, u.has_face), (9, -2.0, true));
        let none = sample_hard(&mut rng, Balance::Balanced, Some(Invalid::NoneExpr));
        assert_eq!(none.expression, 8);
        assert!(none.valence.abs() <= 1.0);
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
