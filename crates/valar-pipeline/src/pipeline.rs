use crate::config::{in_toml_words, prepare_settings};
use crate::fingerprint::{fingerprint, forget, is_current, is_ours, record, record_path};
use crate::{DataSource, PipelineConfig, PipelineError};
use std::path::{Path, PathBuf};
use std::time::Instant;
use valar_core::IoError;
use valar_core::{Progress, RunDir};
use valar_prep::{Input, PrepareConfig, prepare};
use valar_report::{ReportInputs, write_report};
use valar_synth::{Layout, SynthConfig, synthesize};
use valar_train::{
    EvaluateOptions, Evaluation, ModelKind, TrainObserver, TrainOverrides, evaluate, train,
};

/// What a stage did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageOutcome {
    /// It ran, taking this many seconds.
    Ran(f64),
    /// Its earlier output was still current.
    Reused,
}

/// Where the pipeline reports to.
pub struct Hooks<'a> {
    /// Progress of synthesis and preparation.
    pub progress: &'a dyn Progress,
    /// Progress of training.
    pub train: &'a mut dyn TrainObserver,
    /// Called when a stage starts (`None`) and when it ends.
    pub stage: &'a mut dyn FnMut(&str, Option<StageOutcome>),
}

/// What `valar run` produced.
#[derive(Debug)]
pub struct PipelineSummary {
    /// Each stage and what it did.
    pub stages: Vec<(String, StageOutcome)>,
    /// The prepared dataset.
    pub prepared: PathBuf,
    /// The training run folder.
    pub run: PathBuf,
    /// Scores on the test set (or the validation split when there is none).
    pub evaluation: Evaluation,
    /// The report's `report.md`, beside its PNGs.
    pub report: PathBuf,
}

/// Runs every stage under `out`: `synth/` (synthetic data only), `prepared/`, `test/`
/// (when there is a test set), `train/`, `evaluation/` and `report/`. A stage whose
/// fingerprint matches its last completed run is reused, unless `force`.
pub fn run(
    cfg: &PipelineConfig,
    out: &Path,
    force: bool,
    hooks: &mut Hooks,
) -> Result<PipelineSummary, PipelineError> {
    claim_out(cfg, out)?;
    let mut stages = Stages {
        force,
        done: Vec::new(),
    };

    // 1. Data.
    let (train_input, test_input, upstream) = data_stage(cfg, out, hooks, &mut stages)?;
    let upstream: Vec<&Path> = upstream.iter().map(PathBuf::as_path).collect();

    // 2. Prepare the training subset, and the test set whole.
    let prepared = out.join("prepared");
    let prep_cfg = prepare_config(cfg, train_input, &prepared, false)?;
    prepare_stage("prepare", &prep_cfg, &upstream, hooks, &mut stages)?;
    let test = match test_input {
        Some(input) => {
            let dir = out.join("test");
            let test_cfg = prepare_config(cfg, input, &dir, true)?;
            prepare_stage("prepare test set", &test_cfg, &upstream, hooks, &mut stages)?;
            Some(dir)
        }
        None => None,
    };

    // 3. Train.
    let run_dir = out.join("train");
    let train_cfg = train_overrides(cfg, &prepared).resolve()?;
    let fp = fingerprint("train", &train_cfg, &[&prepared]);
    stages.run("train", &run_dir, &fp, hooks, &mut |h| {
        train(&train_cfg, &run_dir, true, h.train)?;
        Ok(())
    })?;

    // 4. Evaluate on the test set (the validation split when there is none).
    let eval_dir = out.join("evaluation");
    let eval_data = test.clone().unwrap_or_else(|| prepared.clone());
    let (evaluation, ran) = evaluate_stage(&train_cfg, &run_dir, eval_data, &eval_dir, hooks)?;
    stages.done.push(("evaluate".to_string(), ran));

    // 5. Report.
    let report_dir = out.join("report");
    // The test evaluation is shown when there is a test set; without one it scored the
    // validation split, which the report already shows from the run folder.
    let report_inputs = ReportInputs {
        prepared: Some(prepared.clone()),
        run: Some(run_dir.clone()),
        evaluation: test.is_some().then(|| evaluation.predictions.clone()),
    };
    report_stage(
        &report_inputs,
        test.as_deref(),
        &report_dir,
        hooks,
        &mut stages,
    )?;

    Ok(PipelineSummary {
        stages: stages.done,
        prepared,
        run: run_dir,
        evaluation,
        report: report_dir.join("report.md"),
    })
}

/// Makes `out`, after checking that no stage's folder in it holds the user's data:
/// checked before any stage runs, since each replaces its folder whole.
fn claim_out(cfg: &PipelineConfig, out: &Path) -> Result<(), PipelineError> {
    let inputs = data_inputs(cfg);
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    for stage in STAGE_FOLDERS {
        valar_core::refuse_input_as_output(&out.join(stage), &inputs)?;
    }
    std::fs::create_dir_all(out).map_err(IoError::at(out))?;
    Ok(())
}

/// The data stage: synthesizes the demo's faces when there is no data (reused while
/// current), and names the training input, the test input, and the folder they came
/// from (none for the user's data, which is not the pipeline's to fingerprint).
fn data_stage(
    cfg: &PipelineConfig,
    out: &Path,
    hooks: &mut Hooks,
    stages: &mut Stages,
) -> Result<(Input, Option<Input>, Option<PathBuf>), PipelineError> {
    Ok(match &cfg.data {
        DataSource::Synthetic { n, test_n, seed } => {
            let dir = out.join("synth");
            let synth_cfg = SynthConfig {
                n: *n,
                val_n: *test_n,
                seed: *seed,
                layout: Layout::Original,
                ..SynthConfig::default()
            };
            let fp = fingerprint("synth", &(n, test_n, seed), &[]);
            stages.run("synth", &dir, &fp, hooks, &mut |h| {
                remove_dir(&dir)?;
                h.progress.start("synthesizing", (n + test_n) as u64);
                synthesize(&dir, &synth_cfg, &|| h.progress.advance(1))?;
                h.progress.finish();
                Ok(())
            })?;
            let lists = dir.join("Manually_Annotated_file_lists");
            let images = dir.join("Manually_Annotated_Images");
            let input = |csv: &str| Input::AffectNet {
                csv: lists.join(csv),
                images: images.clone(),
            };
            let test = (*test_n > 0).then(|| input("validation.csv"));
            (input("training.csv"), test, Some(dir))
        }
        DataSource::AffectNet {
            csv,
            images,
            test_csv,
        } => (
            Input::from_csv(csv.clone(), images.clone())?,
            test_csv
                .as_ref()
                .map(|t| Input::from_csv(t.clone(), images.clone()))
                .transpose()?,
            None,
        ),
        DataSource::AffectNetNewer { set, test_set } => (
            Input::AffectNetNewer { dir: set.clone() },
            test_set
                .as_ref()
                .map(|d| Input::AffectNetNewer { dir: d.clone() }),
            None,
        ),
        DataSource::AfewVa { dir } => (Input::AfewVa { dir: dir.clone() }, None, None),
        DataSource::AffWild2 {
            annotations,
            frames,
        } => (
            Input::AffWild2 {
                annotations: annotations.clone(),
                frames: frames.clone(),
            },
            None,
            None,
        ),
    })
}

/// Scores the run's model on `data` into `dir`. Evaluation takes seconds; rerunning it
/// every time is how the summary gets its numbers, so it has no record to be reused by.
fn evaluate_stage(
    train_cfg: &valar_train::TrainConfig,
    run_dir: &Path,
    data: PathBuf,
    dir: &Path,
    hooks: &mut Hooks,
) -> Result<(Evaluation, StageOutcome), PipelineError> {
    let opts = EvaluateOptions {
        model: RunDir::new(run_dir).model(),
        data,
        split: None,
        out: Some(dir.join(RunDir::PREDICTIONS)),
        targets: Some(train_cfg.targets),
        device: train_cfg.device,
        smoothing: valar_train::Smoothing::Auto,
    };
    std::fs::create_dir_all(dir).map_err(IoError::at(dir))?;
    (hooks.stage)("evaluate", None);
    let started = Instant::now();
    let evaluation = evaluate(&opts)?;
    let ran = StageOutcome::Ran(started.elapsed().as_secs_f64());
    (hooks.stage)("evaluate", Some(ran));
    Ok((evaluation, ran))
}

/// Writes the report of the prepared set, the run and the test evaluation (if any).
fn report_stage(
    inputs: &ReportInputs,
    test: Option<&Path>,
    dir: &Path,
    hooks: &mut Hooks,
    stages: &mut Stages,
) -> Result<(), PipelineError> {
    // The evaluation is rewritten on every run; it is a function of the model (in the run
    // folder) and the test set, so those, not its file time, say whether the report is current.
    let mut from: Vec<&Path> = inputs
        .prepared
        .iter()
        .chain(&inputs.run)
        .map(PathBuf::as_path)
        .collect();
    from.extend(test);
    let fp = fingerprint(
        "report",
        &(valar_core::VERSION, inputs.evaluation.is_some()),
        &from,
    );
    stages.run("report", dir, &fp, hooks, &mut |_| {
        // Stages::run has checked that the pipeline may replace it.
        write_report(inputs, dir, true)?;
        Ok(())
    })
}

/// Runs stages, or skips those whose output is still current.
struct Stages {
    force: bool,
    done: Vec<(String, StageOutcome)>,
}

type Body<'b> = dyn FnMut(&mut Hooks) -> Result<(), PipelineError> + 'b;

impl Stages {
    /// Runs `body` to make `output`, unless the record beside `output` has this
    /// fingerprint. The record is written only after `body` succeeds.
    fn run(
        &mut self,
        name: &str,
        output: &Path,
        fp: &str,
        hooks: &mut Hooks,
        body: &mut Body,
    ) -> Result<(), PipelineError> {
        if !self.force && is_current(output, fp) {
            (hooks.stage)(name, Some(StageOutcome::Reused));
            self.done.push((name.to_string(), StageOutcome::Reused));
            return Ok(());
        }
        // Every stage replaces its folder whole: only one this pipeline made (it has a
        // record), unless the user says so.
        if !self.force
            && !is_ours(output)
            && valar_core::output_dir_state(output)? == valar_core::OutputDir::NonEmpty
        {
            return Err(PipelineError::Config {
                path: output.to_path_buf(),
                reason: format!(
                    "already exists and is not empty, and `valar run` did not make it (no {} beside it): \
                     refusing to replace it; pass --force to replace it, or choose another --out",
                    record_path(output)
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                ),
            });
        }
        (hooks.stage)(name, None);
        forget(output, name)?;
        let started = Instant::now();
        body(hooks)?;
        record(output, name, fp)?;
        let outcome = StageOutcome::Ran(started.elapsed().as_secs_f64());
        (hooks.stage)(name, Some(outcome));
        self.done.push((name.to_string(), outcome));
        Ok(())
    }
}

/// The folders under `--out` that stages replace whole.
const STAGE_FOLDERS: [&str; 6] = ["synth", "prepared", "test", "train", "evaluation", "report"];

/// Every file or folder of the user's data that the pipeline reads.
fn data_inputs(cfg: &PipelineConfig) -> Vec<PathBuf> {
    match &cfg.data {
        DataSource::Synthetic { .. } => Vec::new(),
        DataSource::AffectNet {
            csv,
            images,
            test_csv,
        } => [csv, images].into_iter().chain(test_csv).cloned().collect(),
        DataSource::AffectNetNewer { set, test_set } => {
            std::iter::once(set).chain(test_set).cloned().collect()
        }
        DataSource::AfewVa { dir } => vec![dir.clone()],
        DataSource::AffWild2 {
            annotations,
            frames,
        } => vec![annotations.clone(), frames.clone()],
    }
}

fn prepare_stage(
    name: &str,
    cfg: &PrepareConfig,
    upstream: &[&Path],
    hooks: &mut Hooks,
    stages: &mut Stages,
) -> Result<(), PipelineError> {
    let mut inputs: Vec<&Path> = upstream.to_vec();
    inputs.push(cfg.input.source());
    // Every setting, the face's included (as prep.json's params hold them).
    let fp = fingerprint("prepare", cfg, &inputs);
    stages.run(name, &cfg.out, &fp, hooks, &mut |h| {
        prepare(cfg, h.progress)?;
        Ok(())
    })
}

/// The prepare stage's configuration: `[prepare]` over the defaults for `input` into
/// `out`, the test set kept whole.
fn prepare_config(
    cfg: &PipelineConfig,
    input: Input,
    out: &Path,
    test_set: bool,
) -> Result<PrepareConfig, PipelineError> {
    let mut settings = prepare_settings(&cfg.prepare, cfg.is_synthetic());
    settings.all = test_set;
    let mut prep = PrepareConfig::new(input, out.to_path_buf(), settings);
    prep.force = true;
    // PipelineConfig::read has checked these, naming the file; this guards
    // configurations built in code.
    prep.validate().map_err(|e| PipelineError::Config {
        path: PathBuf::from("valar.toml"),
        reason: in_toml_words(e),
    })?;
    Ok(prep)
}

/// The training settings: the user's, over the data source's defaults. Real data trains
/// with valar's defaults (`recipe = "seed"` reproduces the original); the synthetic demo,
/// whose faces are easy, trains the small compact model briefly.
fn train_overrides(cfg: &PipelineConfig, prepared: &Path) -> TrainOverrides {
    let base = if cfg.is_synthetic() {
        TrainOverrides {
            model: Some(ModelKind::Compact),
            epochs: Some(12),
            ..TrainOverrides::default()
        }
    } else {
        TrainOverrides::default()
    };
    let mut o = cfg.train.clone().over(base);
    o.data = Some(prepared.to_path_buf());
    o
}

fn remove_dir(dir: &Path) -> Result<(), PipelineError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(IoError::at(dir)(e).into()),
        _ => Ok(()),
    }
}
