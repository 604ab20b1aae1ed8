//! The `valar.*` keys of model.onnx's `metadata_props`: what a consumer needs to feed the model
//! faces as `valar prepare` made them, and to read its outputs. README, "What model.onnx says
//! about itself", documents every key; this file is where they are written and read.

use crate::TrainError;
use crate::calibrate::Calibration;
use crate::config::{InputNorm, TrainConfig};
use std::collections::BTreeMap;
use std::path::Path;
use valar_core::{EXPRESSIONS, MARGINS, PrepInfo, PreparedDir, Targets, VERSION};
use valar_engine::ExportInfo;
use valar_face::Alignment;

/// Version of the key set, raised when a key changes meaning.
pub const METADATA_FORMAT: &str = "1";
/// The pixel mapping every valar model expects before its first layer.
pub const PIXEL_SCALING: &str = "x/127.5-1";

/// The metadata keys written at export, in the order they are written.
pub const EXPORT_KEYS: [&str; 18] = [
    "valar.format",
    "valar.version",
    "valar.outputs",
    "valar.targets",
    "valar.label_range",
    "valar.input_size",
    "valar.channels",
    "valar.color",
    "valar.pixel_scaling",
    "valar.standardization_folded",
    "valar.crop.margin",
    "valar.crop.box_source",
    "valar.crop.alignment",
    "valar.decode.scale_rule",
    "valar.resize",
    "valar.recipe",
    "valar.data",
    "valar.prep_sha256",
];

/// The key naming the classes of a model's second output, `expression`, in column order
/// (only a model trained with an expression head has it).
pub const EXPRESSION_CLASSES_KEY: &str = "valar.expression_classes";

/// The name of the output holding the predicted dimensions, in `targets`' order.
pub fn output_name(targets: Targets) -> &'static str {
    match targets {
        Targets::Both => "valence_arousal",
        Targets::Valence => "valence",
        Targets::Arousal => "arousal",
    }
}

fn targets_text(t: Targets) -> String {
    t.dimensions()
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_targets(s: &str) -> Option<Targets> {
    match s {
        "valence,arousal" => Some(Targets::Both),
        "valence" => Some(Targets::Valence),
        "arousal" => Some(Targets::Arousal),
        _ => None,
    }
}

/// How `valar prepare` cut the faces of a prepared folder, from its `prep.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct CropRule {
    /// Context around the box, as a share of its size.
    pub margin: f32,
    /// Where the face box came from (see [`box_source`]).
    pub box_source: String,
    /// `jpeg_draft` (JPEGs decoded at the smallest DCT scale that keeps the face at least the
    /// face size) or `full`.
    pub scale_rule: String,
    /// Where the eyes were placed, for faces aligned by their landmarks (`prepare --align`).
    pub alignment: Option<Alignment>,
}

/// Where each input kind of `valar prepare` takes its face box from.
fn box_source(kind: &str) -> &'static str {
    match kind {
        "affect_net" => "csv_box",
        "generic" | "video_csv" => "csv_box_or_whole_image",
        "afew_va" => "landmarks_square",
        "affect_net_newer" | "aff_wild2" => "whole_image",
        _ => "unknown",
    }
}

impl CropRule {
    /// The rule recorded in a prepared folder's `prep.json`; `None` when the folder has none
    /// (a folder not made by `valar prepare`).
    pub fn of_prepared(dir: &Path) -> Result<Option<(Self, String)>, TrainError> {
        let path = PreparedDir::new(dir).prep_json();
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(TrainError::io(&path))?;
        let info = PrepInfo::read(&path)?;
        let p = info.prep_params();
        let rule = CropRule {
            margin: p.margin.unwrap_or(0.0) as f32,
            box_source: box_source(p.input_kind()).to_string(),
            scale_rule: if p.full_scale == Some(true) {
                "full".into()
            } else {
                "jpeg_draft".into()
            },
            alignment: p.align.map(|(eye_distance, eye_y)| Alignment {
                eye_distance,
                eye_y,
            }),
        };
        Ok(Some((rule, sha256_hex(&bytes))))
    }

    /// The rule a model's metadata records; `None` for a model without it. A margin that is
    /// not a number prepare accepts is an error naming `model`, the key and the value: used as
    /// it is, NaN would crop as 0 and a negative or huge one would put every box outside its
    /// image, blamed on the face box.
    pub fn of_model(
        model: &Path,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, TrainError> {
        let Some(text) = meta.get("valar.crop.margin") else {
            return Ok(None);
        };
        let margin = text
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|m| MARGINS.contains(m))
            .ok_or_else(|| {
                bad_key(
                    model,
                    "valar.crop.margin",
                    text,
                    format!(
                        "a margin is a number from {} to {}, as `valar prepare --margin` takes",
                        MARGINS.start(),
                        MARGINS.end()
                    ),
                )
            })?;
        let (Some(box_source), Some(scale_rule)) = (
            meta.get("valar.crop.box_source"),
            meta.get("valar.decode.scale_rule"),
        ) else {
            return Ok(None);
        };
        // Models from before alignment existed say nothing: their faces were cut from boxes.
        let alignment = match meta.get("valar.crop.alignment") {
            None => None,
            Some(text) => Alignment::from_key_text(text)
                .map_err(|why| bad_key(model, "valar.crop.alignment", text, why))?,
        };
        Ok(Some(CropRule {
            margin,
            box_source: box_source.clone(),
            scale_rule: scale_rule.clone(),
            alignment,
        }))
    }
}

/// A metadata value valar cannot use, named with its model, key and value.
fn bad_key(model: &Path, key: &str, value: &str, why: String) -> TrainError {
    TrainError::data(
        model,
        format!("metadata {key} = `{value}` cannot be used: {why}"),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The recipe as one JSON object: every training setting, less the data folder and the
/// device, which say where the model was trained rather than how.
fn recipe_json(config: &TrainConfig) -> String {
    let mut v = serde_json::to_value(config).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("data");
        o.remove("device");
    }
    v.to_string()
}

/// How the trainer should finish model.onnx for a run of `config` on faces of `size` ×
/// `size` × `channels` from `data`: the output's name, the clip to [-1, 1] and the keys.
pub(crate) fn export_info(
    config: &TrainConfig,
    data: &Path,
    size: usize,
    channels: usize,
) -> Result<ExportInfo, TrainError> {
    let mut m: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| m.push((k.to_string(), v));
    put("valar.format", METADATA_FORMAT.into());
    put("valar.version", VERSION.into());
    let mut outputs = output_name(config.targets).to_string();
    if config.expression_weight > 0.0 {
        outputs.push_str(",expression");
    }
    put("valar.outputs", outputs);
    put("valar.targets", targets_text(config.targets));
    put("valar.label_range", "-1,1".into());
    if config.expression_weight > 0.0 {
        // Written only for a model with the head: its second output's columns, in order.
        put(EXPRESSION_CLASSES_KEY, EXPRESSIONS.join(","));
    }
    put("valar.input_size", size.to_string());
    put("valar.channels", channels.to_string());
    put(
        "valar.color",
        if channels == 1 { "gray" } else { "rgb" }.into(),
    );
    put("valar.pixel_scaling", PIXEL_SCALING.into());
    put(
        "valar.standardization_folded",
        (config.normalize == InputNorm::Standardize).to_string(),
    );
    let prepared = CropRule::of_prepared(data)?;
    if let Some((rule, _)) = &prepared {
        put("valar.crop.margin", rule.margin.to_string());
        put("valar.crop.box_source", rule.box_source.clone());
        let alignment = rule.alignment.map_or("none".into(), |a| a.key_text());
        put("valar.crop.alignment", alignment);
        put("valar.decode.scale_rule", rule.scale_rule.clone());
    }
    // Catmull-Rom, the filter of Pillow's `Image.BICUBIC`.
    put("valar.resize", "bicubic".into());
    put("valar.recipe", recipe_json(config));
    put("valar.data", data.display().to_string());
    if let Some((_, sha)) = prepared {
        put("valar.prep_sha256", sha);
    }
    Ok(ExportInfo {
        output_name: output_name(config.targets).into(),
        clip: Some((-1.0, 1.0)),
        calibration: None,
        metadata: m,
    })
}

/// `info` with `calibration` folded in: its map before the clip, and the map with its
/// validation figures under the `valar.calibration` key (JSON, see [`Calibration`]).
pub(crate) fn with_calibration(info: &ExportInfo, calibration: &Calibration) -> ExportInfo {
    let mut info = info.clone();
    info.calibration = Some(calibration.pairs());
    info.metadata
        .push((Calibration::KEY.into(), calibration.to_json()));
    info
}

/// What a model's metadata says about its inputs and outputs; every field `None` for a model
/// written before valar recorded them (or by another tool).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelInfo {
    /// The predicted dimensions, in output order.
    pub targets: Option<Targets>,
    /// How faces must be cut for it.
    pub crop: Option<CropRule>,
}

impl ModelInfo {
    /// Reads the `valar.*` keys of `model`. A value valar does not recognise is an error
    /// naming the model, the key and the value, never ignored: ignored, `arousal,valence`
    /// would be scored as valence, arousal.
    pub fn read(model: &Path, meta: &BTreeMap<String, String>) -> Result<Self, TrainError> {
        let targets = match meta.get("valar.targets") {
            None => None,
            Some(t) => Some(parse_targets(t).ok_or_else(|| {
                bad_key(
                    model,
                    "valar.targets",
                    t,
                    "valar reads `valence,arousal` (two outputs, in that order), `valence` or \
                     `arousal`; a model whose outputs are in another order or of other \
                     dimensions would be scored wrongly"
                        .into(),
                )
            })?),
        };
        Ok(ModelInfo {
            targets,
            crop: CropRule::of_model(model, meta)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unrecognised_or_out_of_range_values_are_errors_naming_key_and_value() {
        let model = Path::new("m/model.onnx");
        let crop = |margin: &str| {
            meta(&[
                ("valar.crop.margin", margin),
                ("valar.crop.box_source", "csv_box"),
                ("valar.decode.scale_rule", "full"),
            ])
        };
        let ok = ModelInfo::read(model, &crop("0.25")).unwrap();
        assert_eq!(ok.crop.unwrap().margin, 0.25);
        assert_eq!(ok.targets, None);
        for bad in [
            "NaN", "nan", "-0.1", "inf", "-inf", "1.5", "1e9", "wide", "",
        ] {
            let err = ModelInfo::read(model, &crop(bad)).unwrap_err().to_string();
            assert!(
                err.contains("m/model.onnx")
                    && err.contains("valar.crop.margin")
                    && err.contains(&format!("`{bad}`")),
                "{err}"
            );
        }
        for (text, t) in [
            ("valence,arousal", Targets::Both),
            ("valence", Targets::Valence),
            ("arousal", Targets::Arousal),
        ] {
            let info = ModelInfo::read(model, &meta(&[("valar.targets", text)])).unwrap();
            assert_eq!(info.targets, Some(t));
        }
        for bad in ["arousal,valence", "foo", "valence, arousal", ""] {
            let err = ModelInfo::read(model, &meta(&[("valar.targets", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("valar.targets") && err.contains(&format!("`{bad}`")),
                "{err}"
            );
        }
        // A model without the keys (older, or another tool's) is not an error.
        assert_eq!(
            ModelInfo::read(model, &BTreeMap::new()).unwrap(),
            ModelInfo::default()
        );
    }
}
