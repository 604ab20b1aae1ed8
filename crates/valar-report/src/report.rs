use crate::ReportError;
use crate::data_charts::{self, Prepared};
use crate::error_charts;
use crate::expression_chart;
use crate::markdown::{self, Contents, Figure};
use crate::run_files::{self, Epoch, Predictions};
use crate::training_charts;
use crate::video_charts;
use serde::de::IgnoredAny;
use std::path::{Path, PathBuf};
use valar_core::{
    Dimension, EvaluationRecord, LoopState, PartialDir, PreparedDir, RunConfigSummary, RunDir,
    TrainingMean, sha256_file,
};

/// What `valar evaluate` names its predictions on a test split by default, beside the model:
/// the test evaluation a run folder holds when it has one.
pub const TEST_PREDICTIONS: &str = "predictions-test.csv";

/// What to report on: a prepared folder, a run folder, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportInputs {
    /// A folder written by `valar prepare` (`prep.json`, `manifest.csv`).
    pub prepared: Option<PathBuf>,
    /// A folder written by `valar train` (`metrics.csv`, and where present
    /// `predictions.csv` and `config.toml`). Without `prepared`, the prepared folder
    /// is found from the `data` key of the run's `config.toml`.
    pub run: Option<PathBuf>,
    /// A test-set evaluation: the predictions CSV `valar evaluate` wrote. Without it, the run
    /// folder's [`TEST_PREDICTIONS`] is shown when present.
    pub evaluation: Option<PathBuf>,
}

/// What [`report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    /// The PNG figures, in the order `report.md` shows them.
    pub pngs: Vec<PathBuf>,
    /// `report.md`, which embeds every PNG.
    pub markdown: PathBuf,
    /// The prepared folder the data figures were drawn from, if any.
    pub prepared: Option<PathBuf>,
    /// Parts left out and why (a run without predictions, say); also listed in `report.md`.
    pub notes: Vec<String>,
}

/// Every figure name this crate writes: a folder of these, `report.md` and the marker is an
/// earlier report, redrawn without `--force`.
const ALL_FIGURES: [&str; 16] = [
    data_charts::HISTOGRAM_VALENCE,
    data_charts::HISTOGRAM_AROUSAL,
    data_charts::DENSITY,
    data_charts::INTERVALS,
    data_charts::REJECTS,
    training_charts::LOSS,
    training_charts::CCC,
    error_charts::SCATTER,
    error_charts::BY_INTERVAL,
    error_charts::RESIDUALS,
    error_charts::TEST_SCATTER,
    error_charts::TEST_BY_INTERVAL,
    error_charts::TEST_RESIDUALS,
    expression_chart::TEST_CONFUSION,
    video_charts::VIDEO_CCC,
    video_charts::VIDEO_TRACES,
];

/// The training mean the mean-prediction baseline predicts, and the manifest it came from:
/// the train rows of the data the run trained on (its `config.toml`), as `valar evaluate`
/// takes it, else those of the prepared folder reported on.
fn training_mean(
    run_data: Option<&Path>,
    prepared: Option<&Prepared>,
) -> Option<(PathBuf, TrainingMean)> {
    let from_run = run_data.and_then(|dir| {
        let manifest = PreparedDir::new(dir).manifest();
        let rows = match prepared {
            Some(p) if p.dir == dir => p.manifest.clone(),
            // Unreadable here means no baseline from it, not a failed report.
            _ => valar_core::read_manifest(&manifest).ok()?,
        };
        TrainingMean::of_train_rows(&rows).map(|m| (manifest, m))
    });
    from_run.or_else(|| {
        let p = prepared?;
        TrainingMean::of_train_rows(&p.manifest).map(|m| (PreparedDir::new(&p.dir).manifest(), m))
    })
}

/// Draws the figures of an error table `preds` under the names `files` (scatter, by
/// interval, residuals), adding them to `figures`.
fn draw_error_figures(
    preds: &Predictions,
    view: error_charts::View<'_>,
    files: [&'static str; 3],
    out: &Path,
    figures: &mut Vec<Figure>,
) -> Result<(), ReportError> {
    type Draw = fn(&Predictions, error_charts::View<'_>, &Path) -> Result<(), ReportError>;
    let baseline = if view.mean.is_some() {
        " (grey: predicting the training mean)"
    } else {
        ""
    };
    let charts: [(&str, Draw); 3] = [
        (
            "Predicted against true labels, with the identity line",
            error_charts::scatter,
        ),
        (
            "Mean absolute error per interval of the true label",
            error_charts::by_interval,
        ),
        (
            "Distribution of residuals (predicted − true)",
            error_charts::residuals,
        ),
    ];
    for (file, (caption, draw)) in files.into_iter().zip(charts) {
        draw(preds, view, &out.join(file))?;
        let extra = if file == files[2] { "" } else { baseline };
        figures.push(Figure {
            file,
            caption: format!("{caption}, {}{extra}", view.subject),
        });
    }
    Ok(())
}

/// The test evaluation's figures: its error figures and, for a model with an expression head,
/// the confusion matrix its evaluation record holds.
fn draw_test_figures(
    evaluation: Option<&(PathBuf, Predictions)>,
    view: error_charts::View<'_>,
    out: &Path,
) -> Result<Vec<Figure>, ReportError> {
    let mut figures = Vec::new();
    let Some((path, preds)) = evaluation else {
        return Ok(figures);
    };
    let files = [
        error_charts::TEST_SCATTER,
        error_charts::TEST_BY_INTERVAL,
        error_charts::TEST_RESIDUALS,
    ];
    draw_error_figures(preds, view, files, out, &mut figures)?;
    if let Some(score) = EvaluationRecord::read(path)?.and_then(|r| r.expression) {
        let file = expression_chart::TEST_CONFUSION;
        expression_chart::confusion(&score, view.subject, &out.join(file))?;
        figures.push(Figure {
            file,
            caption: format!(
                "Expression head: share of each labelled class (rows) predicted as each class (columns), {}",
                view.subject
            ),
        });
    }
    Ok(figures)
}

/// The video evaluation to show: the files `valar evaluate` wrote beside the evaluation's
/// predictions, else beside the run folder's test or validation predictions; never those
/// of a model other than the run's current one.
fn video_files(
    inputs: &ReportInputs,
    evaluation: Option<&Path>,
) -> Result<Option<video_charts::VideoFiles>, ReportError> {
    let run = inputs.run.as_deref();
    let candidates = evaluation.map(Path::to_path_buf).into_iter().chain(
        run.into_iter()
            .flat_map(|r| [r.join(TEST_PREDICTIONS), r.join("predictions-val.csv")]),
    );
    // Per-video scores of a model the run has since replaced are not shown either.
    let current = |p: &Path| match run {
        Some(r) => !matches!(check_evaluation(r, p), Ok(EvaluationCheck::Stale(_))),
        None => true,
    };
    candidates
        .filter(|p| !p.is_file() || current(p))
        .filter_map(|p| video_charts::find(&p))
        .map(|(videos, frames)| video_charts::read(&videos, &frames))
        .next()
        .transpose()
}

/// The file in a report folder that says `valar report` drew it, so that a later report
/// may redraw it without `--force` (as long as it holds nothing else).
pub const REPORT_MARKER: &str = ".valar-report";

/// Draws the figures of a prepared folder, a run, or both into `out`, and a
/// `report.md` that embeds them.
///
/// `out` is claimed like every output: locked for the whole run (a second report into it
/// fails at once), refused when it is or holds one of the inputs, and a non-empty folder
/// is replaced only with `force`, or when it holds nothing but an earlier report of
/// valar's. The report is drawn in `<out>.partial` and renamed into place whole, so
/// `out` always holds one report's figures and its `report.md`.
pub fn report(inputs: &ReportInputs, out: &Path) -> Result<ReportSummary, ReportError> {
    write_report(inputs, out, false)
}

/// [`report`], replacing a non-empty `out` when `force` (`valar report --force`).
pub fn write_report(
    inputs: &ReportInputs,
    out: &Path,
    force: bool,
) -> Result<ReportSummary, ReportError> {
    if inputs.prepared.is_none() && inputs.run.is_none() {
        return Err(ReportError::NoInputs);
    }
    let input_paths = input_paths(inputs);
    let input_refs: Vec<&Path> = input_paths.iter().map(PathBuf::as_path).collect();
    valar_core::refuse_input_as_output(out, &input_refs)?;
    let partial = PartialDir::create(out, force || is_earlier_report(out))?;
    let drawn = match draw(inputs, partial.path()) {
        Ok(drawn) => drawn,
        Err(e) => {
            partial.discard();
            return Err(e);
        }
    };
    let marker = partial.path().join(REPORT_MARKER);
    std::fs::write(&marker, "drawn by `valar report`\n").map_err(ReportError::io(&marker))?;
    partial.commit()?;
    let moved = |p: &Path| out.join(p.file_name().unwrap_or_default());
    Ok(ReportSummary {
        pngs: drawn.pngs.iter().map(|p| moved(p)).collect(),
        markdown: moved(&drawn.markdown),
        ..drawn
    })
}

/// What a report reads: the folders and file given, and the data folder a run names.
fn input_paths(inputs: &ReportInputs) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [&inputs.prepared, &inputs.run, &inputs.evaluation]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if let Some(run) = &inputs.run
        && let Ok(config) = RunDir::new(run).read_config_summary()
    {
        paths.extend(config.prepared(run));
    }
    paths
}

/// Whether `out` holds an earlier report of valar's and nothing else: its marker,
/// `report.md` and figure names only.
fn is_earlier_report(out: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(out) else {
        return false;
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.iter().any(|n| n == REPORT_MARKER)
        && names
            .iter()
            .all(|n| n == REPORT_MARKER || n == "report.md" || ALL_FIGURES.contains(&n.as_str()))
}

/// What a run folder gives the report: its epochs, validation predictions and
/// configuration, each empty when the run has none.
#[derive(Default)]
struct RunInputs {
    epochs: Vec<Epoch>,
    predictions: Option<Predictions>,
    config: Option<RunConfigSummary>,
}

/// Reads the run folder `run`, noting in `notes` the files it lacks.
fn read_run(run: &Path, notes: &mut Vec<String>) -> Result<RunInputs, ReportError> {
    if !run.is_dir() {
        return Err(ReportError::Missing {
            path: run.to_path_buf(),
            what: "a run folder written by `valar train`",
        });
    }
    let run_dir = RunDir::new(run);
    let epochs = run_files::read_metrics(&run_dir.metrics())?;
    let config_path = run_dir.config();
    let config = if config_path.is_file() {
        Some(RunConfigSummary::read(&config_path)?)
    } else {
        notes.push(format!(
            "{} not found: the configuration is not shown.",
            config_path.display()
        ));
        None
    };
    let predictions_path = run_dir.predictions();
    let predictions = if predictions_path.is_file() {
        Some(run_files::read_predictions(&predictions_path)?)
    } else {
        notes.push(format!(
            "{} not found: no error figures.",
            predictions_path.display()
        ));
        None
    };
    Ok(RunInputs {
        epochs,
        predictions,
        config,
    })
}

/// The test evaluation to show: the one given, else the run folder's, unless it is another
/// model's than the run's current one; what a reader must know about it goes in `warnings`.
fn read_evaluation(
    inputs: &ReportInputs,
    warnings: &mut Vec<String>,
) -> Result<Option<(PathBuf, Predictions)>, ReportError> {
    let path = inputs.evaluation.clone().or_else(|| {
        let found = inputs.run.as_ref()?.join(TEST_PREDICTIONS);
        found.is_file().then_some(found)
    });
    let path = match (&inputs.run, path) {
        (Some(run), Some(p)) => match check_evaluation(run, &p)? {
            EvaluationCheck::Current => Some(p),
            EvaluationCheck::Unverified(why) => {
                warnings.push(why);
                Some(p)
            }
            EvaluationCheck::Stale(why) => {
                warnings.push(why);
                None
            }
        },
        (_, p) => p,
    };
    path.map(|p| run_files::read_predictions(&p).map(|preds| (p, preds)))
        .transpose()
}

/// The prepared folder to draw the data figures from: the one given, else the one the run's
/// `config.toml` names (`run_data`), noting in `notes` why there is none.
fn prepared_folder(
    inputs: &ReportInputs,
    config: Option<&RunConfigSummary>,
    run_data: Option<&Path>,
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    match (&inputs.prepared, &inputs.run, config) {
        (Some(p), _, _) => Some(p.clone()),
        (None, Some(_), Some(c)) => {
            let found = run_data.map(Path::to_path_buf);
            if found.is_none() {
                notes.push(match &c.data {
                    Some(d) => format!(
                        "the run's config.toml names data folder {}, which was not found: no data figures (pass the prepared folder explicitly).",
                        d.display()
                    ),
                    None => "the run's config.toml has no `data` key: no data figures (pass the prepared folder explicitly).".to_string(),
                });
            }
            found
        }
        _ => None,
    }
}

/// Draws the figures of the prepared folder `p` into `out`, noting in `notes` those left out.
fn draw_data_figures(
    p: &Prepared,
    out: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Figure>, ReportError> {
    let mut figures = Vec::new();
    for (dim, file) in [
        (Dimension::Valence, data_charts::HISTOGRAM_VALENCE),
        (Dimension::Arousal, data_charts::HISTOGRAM_AROUSAL),
    ] {
        data_charts::histogram(p, dim, &out.join(file))?;
        figures.push(Figure {
            file,
            caption: format!(
                "{} labels in the source and in the prepared subset",
                crate::canvas::dim_title(dim)
            ),
        });
    }
    data_charts::density(p, &out.join(data_charts::DENSITY))?;
    figures.push(Figure {
        file: data_charts::DENSITY,
        caption: if p.stratified(Dimension::Valence) || p.stratified(Dimension::Arousal) {
            "Joint valence × arousal density, source and prepared subset \
             (dashed: stratification edges)"
                .into()
        } else {
            "Joint valence × arousal density, source and prepared subset".into()
        },
    });
    if p.info.intervals.is_empty() {
        notes.push("prep.json lists no intervals: no interval figure.".into());
    } else {
        data_charts::intervals(p, &out.join(data_charts::INTERVALS))?;
        figures.push(Figure {
            file: data_charts::INTERVALS,
            caption: "Faces available and selected per interval, with the quota".into(),
        });
    }
    if data_charts::rejects(p, &out.join(data_charts::REJECTS))? {
        figures.push(Figure {
            file: data_charts::REJECTS,
            caption: "Source rows rejected, by reason".into(),
        });
    }
    Ok(figures)
}

/// Draws the loss and CCC curves of `epochs` into `out` (none without epochs), noting in
/// `notes` a CCC figure left out.
fn draw_training_figures(
    epochs: &[Epoch],
    out: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Figure>, ReportError> {
    let mut figures = Vec::new();
    if epochs.is_empty() {
        return Ok(figures);
    }
    training_charts::loss(epochs, &out.join(training_charts::LOSS))?;
    figures.push(Figure {
        file: training_charts::LOSS,
        caption: "Training and validation loss per epoch".into(),
    });
    if training_charts::ccc(epochs, &out.join(training_charts::CCC))? {
        figures.push(Figure {
            file: training_charts::CCC,
            caption: "Validation CCC per dimension per epoch".into(),
        });
    } else {
        notes.push("metrics.csv has no per-dimension metrics: no CCC figure.".into());
    }
    Ok(figures)
}

/// Everything a report is drawn from, read and checked, with what the reader must know
/// about it so far.
struct Sources {
    run: RunInputs,
    evaluation: Option<(PathBuf, Predictions)>,
    /// Whether the run finished, in a sentence; `None` without a run.
    run_status: Option<String>,
    prepared: Option<Prepared>,
    /// The training mean the baseline predicts, and the manifest it came from.
    mean: Option<(PathBuf, TrainingMean)>,
    notes: Vec<String>,
    warnings: Vec<String>,
}

/// Reads what `inputs` name: the run, the test evaluation, the prepared folder and the
/// training mean.
fn read_sources(inputs: &ReportInputs) -> Result<Sources, ReportError> {
    let mut notes = Vec::new();
    let run = match &inputs.run {
        Some(run) => read_run(run, &mut notes)?,
        None => RunInputs::default(),
    };
    let mut warnings = Vec::new();
    let evaluation = read_evaluation(inputs, &mut warnings)?;
    let run_status = match &inputs.run {
        Some(dir) => {
            let status = run_status(dir, run.config.as_ref(), run.epochs.len())?;
            if let RunStatus::Unfinished(why) = &status {
                warnings.push(why.clone());
            }
            Some(status.sentence())
        }
        None => None,
    };
    let run_data = match (&inputs.run, &run.config) {
        (Some(dir), Some(c)) => c.prepared(dir),
        _ => None,
    };
    let prepared_dir =
        prepared_folder(inputs, run.config.as_ref(), run_data.as_deref(), &mut notes);
    let prepared = prepared_dir.as_deref().map(Prepared::read).transpose()?;
    let mean = training_mean(run_data.as_deref(), prepared.as_ref());
    if mean.is_none() && (run.predictions.is_some() || evaluation.is_some()) {
        notes.push(
            "no training rows found (neither the run's data folder nor the prepared folder has a `train` split): \
             the mean baseline's full metrics are not shown."
                .into(),
        );
    }
    Ok(Sources {
        run,
        evaluation,
        run_status,
        prepared,
        mean,
        notes,
        warnings,
    })
}

/// Draws the report into the fresh folder `out`.
fn draw(inputs: &ReportInputs, out: &Path) -> Result<ReportSummary, ReportError> {
    let Sources {
        run,
        evaluation,
        run_status,
        prepared,
        mean,
        mut notes,
        warnings,
    } = read_sources(inputs)?;
    let data_figures = match &prepared {
        Some(p) => draw_data_figures(p, out, &mut notes)?,
        None => Vec::new(),
    };
    let training_figures = draw_training_figures(&run.epochs, out, &mut notes)?;
    let view = |subject| error_charts::View {
        subject,
        mean: mean.as_ref().map(|(_, m)| m),
    };
    let mut error_figures = Vec::new();
    if let Some(preds) = &run.predictions {
        let files = [
            error_charts::SCATTER,
            error_charts::BY_INTERVAL,
            error_charts::RESIDUALS,
        ];
        let view = view("validation split");
        draw_error_figures(preds, view, files, out, &mut error_figures)?;
    }
    let test_figures = draw_test_figures(evaluation.as_ref(), view("test set"), out)?;
    let videos = video_files(inputs, evaluation.as_ref().map(|(p, _)| p.as_path()))?;
    let video_figures = match &videos {
        Some(v) => video_charts::draw(v, out)?,
        None => Vec::new(),
    };
    let mut text = markdown::render(&Contents {
        prepared: prepared.as_ref(),
        run: inputs.run.as_deref(),
        epochs: &run.epochs,
        predictions: run.predictions.as_ref(),
        evaluation: evaluation.as_ref().map(|(p, e)| (p.as_path(), e)),
        mean: mean.as_ref().map(|(p, m)| (p.as_path(), m)),
        config: run.config.as_ref(),
        data_figures: &data_figures,
        training_figures: &training_figures,
        error_figures: &error_figures,
        test_figures: &test_figures,
        notes: &notes,
        run_status: run_status.as_deref(),
        warnings: &warnings,
    });
    if let Some(v) = &videos {
        text.push_str(&video_charts::section(v, &video_figures));
    }
    let markdown = out.join("report.md");
    valar_core::write_atomic(&markdown, |w| w.write_all(text.as_bytes()))?;
    let written = [
        &data_figures,
        &training_figures,
        &error_figures,
        &test_figures,
        &video_figures,
    ];
    Ok(ReportSummary {
        pngs: written
            .iter()
            .flat_map(|f| f.iter())
            .map(|f| out.join(f.file))
            .collect(),
        markdown,
        prepared: prepared.map(|p| p.dir),
        notes: warnings.into_iter().chain(notes).collect(),
    })
}

/// Whether a run finished, as far as its files tell.
enum RunStatus {
    /// `checkpoint/loop.json` says why it ended.
    Finished(String),
    /// It stopped before the end (killed, or failed), and why we think so.
    Unfinished(String),
    /// Nothing tells (a run folder without `checkpoint/loop.json`).
    Unknown(String),
}

impl RunStatus {
    fn sentence(&self) -> String {
        match self {
            RunStatus::Finished(why) => format!("The run finished: {why}."),
            RunStatus::Unfinished(why) | RunStatus::Unknown(why) => why.clone(),
        }
    }
}

/// Reads the run's `checkpoint/loop.json` (written after every epoch, with `finished` set
/// only when training ended) to tell a finished run from one that was killed or failed.
fn run_status(
    run: &Path,
    config: Option<&RunConfigSummary>,
    epochs_in_metrics: usize,
) -> Result<RunStatus, ReportError> {
    let planned = config.and_then(|c| c.epochs);
    let of_planned = planned.map_or_else(String::new, |p| format!(" of the {p} configured"));
    let resume = format!("`valar train --resume {}` continues it", run.display());
    let run_dir = RunDir::new(run);
    let loop_json = run_dir.loop_state();
    // Only whether and why it ended matter here: the trainer's own parts are skipped.
    let state = if loop_json.is_file() {
        LoopState::<IgnoredAny, IgnoredAny>::read(&run_dir)?
    } else {
        None
    };
    let Some(state) = state else {
        let no_model = !run_dir.model().is_file();
        let short = planned.is_some_and(|p| epochs_in_metrics < p);
        return Ok(if no_model && short {
            RunStatus::Unfinished(format!(
                "The run is unfinished: {epochs_in_metrics} epoch(s){of_planned} in metrics.csv and no model.onnx."
            ))
        } else if short {
            RunStatus::Unknown(format!(
                "Whether the run finished is unknown: {} is missing and metrics.csv has {epochs_in_metrics} epoch(s){of_planned} (it may have stopped early or been killed).",
                loop_json.display()
            ))
        } else {
            RunStatus::Unknown(format!(
                "{} is missing: whether the run finished is not recorded.",
                loop_json.display()
            ))
        });
    };
    let done = state.epochs_done;
    Ok(match state.finished {
        Some(why) => RunStatus::Finished(why),
        None => RunStatus::Unfinished(format!(
            "The run is unfinished: it stopped after {done} epoch(s){of_planned} (killed or failed); \
             the figures show only those, and {resume}."
        )),
    })
}

/// Whether a test evaluation is of the run's current model.
enum EvaluationCheck {
    /// The SHA-256 recorded by `valar evaluate` is the current `model.onnx`'s.
    Current,
    /// No record to check against (an evaluation written before valar recorded one): shown,
    /// with this warning.
    Unverified(String),
    /// Another model's: not shown, for this reason.
    Stale(String),
}

/// Checks the test predictions at `evaluation` against the run's current model:
/// `valar evaluate` records the SHA-256 of the model it scored beside them, and a resumed
/// or retrained run replaces `model.onnx`.
fn check_evaluation(run: &Path, evaluation: &Path) -> Result<EvaluationCheck, ReportError> {
    let model = RunDir::new(run).model();
    let rerun = format!(
        "run `valar evaluate --model {} --data …` again",
        model.display()
    );
    let Some(record) = EvaluationRecord::read(evaluation)? else {
        return Ok(EvaluationCheck::Unverified(format!(
            "{} does not say which model made it (no {}): its test metrics may be another model's than the run's current model.onnx; {rerun} to be sure.",
            evaluation.display(),
            EvaluationRecord::path_for(evaluation).display()
        )));
    };
    if !model.is_file() {
        return Ok(EvaluationCheck::Stale(format!(
            "{} has no model.onnx, so the test predictions in {} cannot be matched to it: their metrics are not shown.",
            run.display(),
            evaluation.display()
        )));
    }
    let current = sha256_file(&model)?;
    if current == record.model_sha256 {
        return Ok(EvaluationCheck::Current);
    }
    Ok(EvaluationCheck::Stale(format!(
        "the test predictions in {} are from another model (sha256 {}…) than the run's current {} (sha256 {}…), which has since replaced it: their metrics are not shown; {rerun}.",
        evaluation.display(),
        &record.model_sha256[..record.model_sha256.len().min(12)],
        model.display(),
        &current[..12]
    )))
}
