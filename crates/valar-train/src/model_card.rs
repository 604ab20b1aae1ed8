//! `MODEL_CARD.md`: what a run's model.onnx is, on what data, how it was trained and how well
//! it does, for whoever receives the model without the run folder.
//!
//! The card is made from the run's own files every time (config.toml, checkpoint/loop.json,
//! the prepared folder's prep.json, model.onnx's metadata), so training and a later
//! `valar evaluate` write the same card from the same facts and it never drifts from them.
//! Its test section comes from the evaluation `valar evaluate` has just recorded beside its
//! predictions (evaluate never writes into model.onnx); training, which replaces the model,
//! writes the card without one.

use crate::TrainError;
use crate::calibrate::Calibration;
use crate::checkpoint::{LoopState, Resumable};
use crate::config::{Keep, TrainConfig};
use crate::model_meta::EXPRESSION_CLASSES_KEY;
use crate::outputs::EpochRecord;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use valar_core::{
    Dimension, EvaluationRecord, PrepInfo, PrepParams, PreparedDir, RunDir, write_atomic,
};

/// The epoch whose weights are in model.onnx: the best by validation score (the first of
/// equals, as early stopping counts them), or the last with `keep = last`.
fn model_epoch(config: &TrainConfig, history: &[EpochRecord]) -> Option<EpochRecord> {
    match config.keep {
        Keep::Last => history.last().cloned(),
        Keep::Best => history
            .iter()
            .filter(|r| r.score().is_finite())
            .fold(None::<&EpochRecord>, |best, r| match best {
                Some(b) if b.score() >= r.score() => Some(b),
                _ => Some(r),
            })
            .or(history.last())
            .cloned(),
    }
}

/// The header of the card's metric tables.
const METRICS_HEADER: &str =
    "| dimension | CCC | PCC | RMSE | SAGR | mean baseline RMSE |\n|---|---|---|---|---|---|\n";

fn f4(v: f64) -> String {
    format!("{v:.4}")
}

/// The dataset's name for the front matter, from prepare's input kind.
fn dataset_name(kind: &str) -> &'static str {
    match kind {
        "affect_net" | "affect_net_newer" => "AffectNet",
        "afew_va" => "AFEW-VA",
        "aff_wild2" => "Aff-Wild2",
        "generic" | "video_csv" => "custom",
        _ => "unknown",
    }
}

/// Writes `MODEL_CARD.md` into the run folder `run_dir` (atomically), from the run's files,
/// with the test section saying the model has not been evaluated yet.
pub fn write_model_card(run_dir: &Path) -> Result<PathBuf, TrainError> {
    write_model_card_tested(run_dir, None)
}

/// The test figures of an evaluation record as the card reads them: `rows`, `split`, `data`,
/// `<dim>.<metric>` and `baseline.<dim>.rmse`.
fn test_figures(record: &EvaluationRecord) -> BTreeMap<String, String> {
    let mut m = BTreeMap::from([
        ("rows".to_string(), record.rows.to_string()),
        ("split".to_string(), record.split.clone()),
        ("data".to_string(), record.data.display().to_string()),
    ]);
    for (dim, x) in &record.metrics {
        for (name, v) in [
            ("rmse", x.rmse),
            ("pcc", x.pcc),
            ("ccc", x.ccc),
            ("sagr", x.sagr),
        ] {
            m.insert(format!("{dim}.{name}"), v.to_string());
        }
    }
    for (dim, b) in &record.baseline {
        m.insert(format!("baseline.{dim}.rmse"), b.rmse.to_string());
    }
    if let Some(e) = &record.expression {
        m.insert("expression.accuracy".into(), e.accuracy.to_string());
        m.insert(
            "expression.balanced_accuracy".into(),
            e.balanced_accuracy.to_string(),
        );
        m.insert("expression.faces".into(), e.faces.to_string());
    }
    m
}

/// Writes `MODEL_CARD.md` as [`write_model_card`] does, with `test` (the evaluation of the
/// run's model.onnx just recorded) in its test section.
pub(crate) fn write_model_card_tested(
    run_dir: &Path,
    test: Option<&EvaluationRecord>,
) -> Result<PathBuf, TrainError> {
    let run = RunDir::new(run_dir);
    let config = TrainConfig::read(&run.config())?;
    let state = LoopState::load(&run)?;
    let history = state.map(|s| s.history).unwrap_or_default();
    let meta = if run.model().is_file() {
        valar_engine::read_metadata(&run.model())?
    } else {
        BTreeMap::new()
    };
    let prep_path = PreparedDir::new(&config.data).prep_json();
    let prep = if prep_path.is_file() {
        Some(PrepInfo::read(&prep_path)?)
    } else {
        None
    };
    let test = test.map(test_figures).unwrap_or_default();
    let text = render(&config, &history, prep.as_ref(), &meta, &test);
    let path = run.model_card();
    write_atomic(&path, |w| w.write_all(text.as_bytes()))?;
    Ok(path)
}

/// The facts a model card is written from.
struct Card<'a> {
    config: &'a TrainConfig,
    history: &'a [EpochRecord],
    prep: Option<&'a PrepInfo>,
    /// model.onnx's `metadata_props`.
    meta: &'a BTreeMap<String, String>,
    /// The test figures of the evaluation just recorded ([`test_figures`]), empty when none.
    tested: &'a BTreeMap<String, String>,
    dims: &'a [Dimension],
    /// The epoch whose weights are in model.onnx.
    kept: Option<EpochRecord>,
    params: PrepParams,
}

fn render(
    config: &TrainConfig,
    history: &[EpochRecord],
    prep: Option<&PrepInfo>,
    meta: &BTreeMap<String, String>,
    tested: &BTreeMap<String, String>,
) -> String {
    let card = Card {
        config,
        history,
        prep,
        meta,
        tested,
        dims: config.targets.dimensions(),
        kept: model_epoch(config, history),
        params: prep.map(PrepInfo::prep_params).unwrap_or_default(),
    };
    let mut s = String::new();
    card.front_matter(&mut s);
    card.title(&mut s);
    card.data(&mut s);
    card.recipe(&mut s);
    card.validation(&mut s);
    card.calibration(&mut s);
    card.test_section(&mut s);
    card.training(&mut s);
    card.limitations(&mut s);
    s
}

impl Card<'_> {
    fn figure(&self, key: &str) -> Option<&String> {
        self.tested.get(key)
    }

    fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }

    /// YAML front matter, as the Hugging Face Hub reads it.
    fn front_matter(&self, s: &mut String) {
        s.push_str("---\nlibrary_name: valar\n");
        s.push_str(
            "tags:\n  - valence-arousal\n  - affective-computing\n  - facial-expression\n  - onnx\n",
        );
        let _ = writeln!(
            s,
            "datasets:\n  - {}",
            dataset_name(self.params.input_kind())
        );
        s.push_str("metrics:\n  - ccc\n  - rmse\n  - pcc\n  - sagr\n");
        s.push_str("results:\n");
        if let Some(r) = &self.kept {
            for &d in self.dims {
                if let Some(m) = r.metrics(d) {
                    let _ = writeln!(
                        s,
                        "  - {{split: validation, dimension: {}, epoch: {}, ccc: {}, rmse: {}, pcc: {}, sagr: {}}}",
                        d.name(),
                        r.epoch,
                        f4(m.ccc),
                        f4(m.rmse),
                        f4(m.pcc),
                        f4(m.sagr)
                    );
                }
            }
        }
        for &d in self.dims {
            let n = d.name();
            let test = |k: &str| self.figure(&format!("{n}.{k}"));
            if let (Some(ccc), Some(rmse), Some(pcc), Some(sagr)) =
                (test("ccc"), test("rmse"), test("pcc"), test("sagr"))
            {
                let p = |v: &String| v.parse::<f64>().map(f4).unwrap_or_else(|_| v.clone());
                let _ = writeln!(
                    s,
                    "  - {{split: test, dimension: {n}, ccc: {}, rmse: {}, pcc: {}, sagr: {}}}",
                    p(ccc),
                    p(rmse),
                    p(pcc),
                    p(sagr)
                );
            }
        }
        s.push_str("---\n\n");
    }

    /// The heading and what model.onnx takes and returns.
    fn title(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# valar model: {} on {}\n",
            self.config.model,
            self.dims
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        let size = self.meta("valar.input_size").unwrap_or("?");
        let color = self.meta("valar.color").unwrap_or("?");
        let _ = writeln!(
            s,
            "`model.onnx` takes `[batch, {}, {size}, {size}]` ({color}) faces scaled by `{}` and returns `{}` \
             (columns {}), clipped to [-1, 1]. Its `metadata_props` (`valar.*` keys) say how to cut and \
             scale the faces; see valar's README, \"What model.onnx says about itself\".\n",
            self.meta("valar.channels").unwrap_or("?"),
            self.meta("valar.pixel_scaling").unwrap_or("x/127.5-1"),
            self.meta("valar.outputs")
                .and_then(|o| o.split(',').next())
                .unwrap_or("?"),
            self.meta("valar.targets").unwrap_or("?"),
        );
        if let Some(classes) = self.meta(EXPRESSION_CLASSES_KEY) {
            let _ = writeln!(
                s,
                "A second output, `expression` (`[batch, {}]`), holds the expression head's logits                  (unnormalised; softmax gives probabilities) over {} (trained with weight {} beside                  the valence/arousal loss).\n",
                classes.split(',').count(),
                classes.replace(',', ", "),
                self.config.expression_weight
            );
        }
    }

    /// The prepared folder: its source, counts, splits, stratification and rejects.
    fn data(&self, s: &mut String) {
        s.push_str("## Data\n\n");
        let _ = writeln!(s, "- Prepared folder: `{}`", self.config.data.display());
        let Some(p) = self.prep else {
            s.push_str("- The prepared folder has no prep.json: source and counts unknown.\n");
            return;
        };
        let kind = self.params.input_kind();
        let source = self
            .params
            .input
            .as_ref()
            .map(|i| {
                i.paths
                    .iter()
                    .map(|(k, v)| format!("{k} `{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = writeln!(s, "- Source: {} ({kind}), {source}", dataset_name(kind));
        let _ = writeln!(
            s,
            "- Counts: {} source rows read, {} faces written",
            p.rows_read, p.faces
        );
        let splits: Vec<String> = p.splits.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "- Splits: {}", splits.join(", "));
        let _ = writeln!(
            s,
            "- Stratification: {} over {} interval edges, seed {}",
            p.stratify,
            p.edges.len(),
            p.seed
        );
        let rejects: Vec<String> = p
            .rejects_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "- Rejects: {}",
            if rejects.is_empty() {
                "none".to_string()
            } else {
                rejects.join(", ")
            }
        );
        if let Some(sha) = self.meta("valar.prep_sha256") {
            let _ = writeln!(s, "- prep.json SHA-256: `{sha}`");
        }
    }

    /// Every training setting but the data folder, as config.toml holds it.
    fn recipe(&self, s: &mut String) {
        s.push_str("\n## Recipe\n\n| setting | value |\n|---|---|\n");
        if let Ok(toml::Value::Table(t)) = toml::Value::try_from(self.config) {
            for (k, v) in t {
                if k != "data" {
                    let _ = writeln!(s, "| {k} | {v} |");
                }
            }
        }
    }

    /// The kept epoch's validation metrics beside the mean baseline's RMSE.
    fn validation(&self, s: &mut String) {
        s.push_str("\n## Validation\n\n");
        let Some(r) = &self.kept else {
            s.push_str("No epoch has finished.\n");
            return;
        };
        if r.val_loss.is_none() {
            let _ = writeln!(
                s,
                "No validation was run: the prepared folder has no val split (prepared with \
                 `--val-fraction 0`), so every face trained and model.onnx holds the last \
                 epoch's weights (epoch {} of {}).",
                r.epoch,
                self.history.len()
            );
            return;
        }
        let how = match self.config.keep {
            Keep::Best => "the epoch with the best mean validation CCC",
            Keep::Last => "the last epoch (keep = last)",
        };
        let _ = writeln!(
            s,
            "Protocol: the val split of the prepared folder, epoch {} of {} run ({how}), \
             test-time flip averaging {}; mean baseline = the training split's mean label.\n",
            r.epoch,
            self.history.len(),
            if self.config.tta { "on" } else { "off" }
        );
        s.push_str(METRICS_HEADER);
        for &d in self.dims {
            if let Some(m) = r.metrics(d) {
                let base = match d {
                    Dimension::Valence => r.valence_baseline_rmse,
                    Dimension::Arousal => r.arousal_baseline_rmse,
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    d.name(),
                    f4(m.ccc),
                    f4(m.pcc),
                    f4(m.rmse),
                    f4(m.sagr),
                    base.map_or("—".into(), f4)
                );
            }
        }
    }

    /// The map `--calibrate` folded into model.onnx (its `valar.calibration` key), with the
    /// validation figures before and after it; nothing for a model without one.
    fn calibration(&self, s: &mut String) {
        let Some(text) = self.meta(Calibration::KEY) else {
            return;
        };
        s.push_str("\n## Calibration\n\n");
        let Some(cal) = Calibration::from_json(text) else {
            let _ = writeln!(
                s,
                "model.onnx has a `{}` key this valar cannot read: `{text}`",
                Calibration::KEY
            );
            return;
        };
        let _ = writeln!(
            s,
            "model.onnx maps each raw output p to scale·p + shift before its clip (`--calibrate`), \
             fitted on the validation predictions of epoch {}: k = min(1, 1.6·r), the share of the \
             training labels' spread the predictions get, keeps RMSE under the mean's (see valar's \
             README, \"Calibration\"). The validation table above is the network before the map; \
             predictions.csv and the test section are model.onnx with it.\n",
            cal.epoch
        );
        s.push_str(
            "| dimension | r | k | scale | shift | CCC before → after | RMSE before → after | mean baseline RMSE |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let v = |x: Option<f64>| x.map_or("—".into(), f4);
        for d in &cal.dimensions {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} → {} | {} → {} | {} |",
                d.dimension.name(),
                f4(d.r),
                f4(d.k),
                f4(f64::from(d.scale)),
                f4(f64::from(d.shift)),
                v(d.ccc_before),
                v(d.ccc_after),
                v(d.rmse_before),
                v(d.rmse_after),
                v(d.mean_rmse)
            );
        }
    }

    /// The test evaluation's metrics, or how to get them.
    fn test_section(&self, s: &mut String) {
        s.push_str("\n## Test\n\n");
        let Some(rows) = self.figure("rows") else {
            s.push_str(
                "Not evaluated yet: `valar evaluate --model model.onnx --data <test folder>` fills this section.\n",
            );
            return;
        };
        let _ = writeln!(
            s,
            "Protocol: `valar evaluate` on the {} split of `{}` ({rows} faces), with model.onnx as \
             it is (test-time flip averaging {}); mean baseline = the training split's mean label \
             (CCC 0).\n",
            self.figure("split").map_or("test", String::as_str),
            self.figure("data").map_or("?", String::as_str),
            if self.config.tta { "on" } else { "off" }
        );
        s.push_str(METRICS_HEADER);
        let number = |k: String| {
            self.figure(&k)
                .and_then(|v| v.parse::<f64>().ok())
                .map_or("—".into(), f4)
        };
        for &d in self.dims {
            let n = d.name();
            let v = |k: &str| number(format!("{n}.{k}"));
            let base = number(format!("baseline.{n}.rmse"));
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {} | {base} |",
                v("ccc"),
                v("pcc"),
                v("rmse"),
                v("sagr")
            );
        }
        if let (Some(acc), Some(bal), Some(n)) = (
            self.figure("expression.accuracy"),
            self.figure("expression.balanced_accuracy"),
            self.figure("expression.faces"),
        ) {
            let pct = |v: &String| {
                v.parse::<f64>()
                    .map_or("?".into(), |v| format!("{:.1}%", v * 100.0))
            };
            let _ = writeln!(
                s,
                "\nExpression head: accuracy {}, balanced accuracy {} on the {n} faces with an expression class \
                 (the confusion matrix is in the evaluation record and `valar report`'s figure).",
                pct(acc),
                pct(bal)
            );
        }
    }

    /// How long training took, where, and with which valar.
    fn training(&self, s: &mut String) {
        s.push_str("\n## Training\n\n");
        let seconds: f64 = self.history.iter().map(|r| r.seconds).sum();
        let _ = writeln!(
            s,
            "- {} epochs in {:.1} s on {}",
            self.history.len(),
            seconds,
            self.meta("valar.device").unwrap_or("an unrecorded device")
        );
        let _ = writeln!(s, "- valar {}", self.meta("valar.version").unwrap_or("?"));
    }

    /// What the figures cannot tell.
    fn limitations(&self, s: &mut String) {
        let size = self.meta("valar.input_size").unwrap_or("?");
        let color = self.meta("valar.color").unwrap_or("?");
        let aligned = self
            .meta("valar.crop.alignment")
            .filter(|a| *a != "none")
            .map(|a| {
                format!(
                    "- Faces were aligned by their eyes (`{a}`): every face it is given needs its 68 landmarks (`valar predict` reads them from a CSV's `facial_landmarks` column or from AffectNet's `annotations/<id>_lnd.npy`), and landmarks found by another detector place the eyes slightly differently.\n"
                )
            })
            .unwrap_or_default();
        let _ = write!(
            s,
            "\n## Limitations\n\n\
             - Faces are {size}×{size} {color}: expressions that need finer detail are lost at this resolution.\n\
             - Faces must be cut as the metadata says (crop margin, box source, alignment, decode rule); other crops give other predictions.\n\
             {aligned}\
             - The labels are single-annotator valence and arousal (as AffectNet's): annotators disagree with each other by RMSE about 0.34 (valence) and 0.36 (arousal), which bounds what any model can show.\n\
             - Figures are on the splits named above, not on a benchmark's official protocol.\n\
             - The training data's licence is not valar's: check the dataset's terms before sharing or using this model.\n"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use valar_core::Targets;

    /// The calibration section shows each dimension's r, k, map and figures before → after
    /// beside the mean's RMSE, and is absent for a model without a map.
    #[test]
    fn calibration_section_reads_the_models_metadata() {
        let config = TrainConfig::defaults(PathBuf::from("/data/prep"));
        let truth = [0.1f32, -0.4, 0.3, 0.5, -0.2, 0.0];
        let raw = [0.5f32, -1.5, 0.2, 1.9, -0.3, 0.4];
        let cal = Calibration::fit(4, Targets::Arousal, &truth, &truth, &raw);
        let meta = BTreeMap::from([(Calibration::KEY.to_string(), cal.to_json())]);
        let none = BTreeMap::new();
        let card = render(&config, &[], None, &meta, &none);
        let d = &cal.dimensions[0];
        let row = format!(
            "| arousal | {} | {} | {} | {} | {} → {} | {} → {} | {} |",
            f4(d.r),
            f4(d.k),
            f4(f64::from(d.scale)),
            f4(f64::from(d.shift)),
            f4(d.ccc_before.unwrap()),
            f4(d.ccc_after.unwrap()),
            f4(d.rmse_before.unwrap()),
            f4(d.rmse_after.unwrap()),
            f4(d.mean_rmse.unwrap())
        );
        assert!(
            card.contains("## Calibration") && card.contains("epoch 4"),
            "{card}"
        );
        assert!(card.contains(&row), "{row}\n{card}");
        assert!(d.rmse_after.unwrap() < d.rmse_before.unwrap());
        assert!(!render(&config, &[], None, &none, &none).contains("## Calibration"));
    }
}
