//! `valar predict`.

use std::path::PathBuf;
use valar_core::Targets;
use valar_train::{DeviceChoice, PredictInput, PredictOptions};

/// Arguments of `valar predict`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["images", "csv"])))]
pub struct PredictArgs {
    /// The model (a run's model.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Image files, each used whole (no face detection).
    pub images: Vec<PathBuf>,
    /// A CSV with a `path` column and optionally face_x, face_y, face_width, face_height.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Folder the CSV's relative paths start from [default: the CSV's folder].
    #[arg(long = "images-root", value_name = "DIR", requires = "csv")]
    pub root: Option<PathBuf>,
    /// Write the CSV (path,valence,arousal,error) here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What the model predicts: valence | arousal | both [default: from the run's config.toml,
    /// else both for a two-output model].
    #[arg(long)]
    pub targets: Option<Targets>,
    /// Context around a face box, as a share of its size (use what `valar prepare` used).
    #[arg(long, default_value_t = 0.0)]
    pub margin: f32,
    /// Where to run: cpu | cuda.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
}

/// Runs `valar predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        let mut inputs: Vec<&std::path::Path> = vec![&args.model];
        inputs.extend(args.images.iter().map(PathBuf::as_path));
        inputs.extend(args.csv.as_deref());
        crate::cmd::claim_output_file(out, &inputs)?;
    }
    let input = match args.csv {
        Some(file) => PredictInput::Csv {
            file,
            root: args.root,
        },
        None => PredictInput::Images(args.images),
    };
    let rows = valar_train::predict(&PredictOptions {
        model: args.model,
        input,
        targets: args.targets,
        device: args.device,
        margin: args.margin,
    })?;
    match &args.out {
        Some(path) => valar_train::save_predict_csv(path, &rows)?,
        None => valar_train::write_predict_csv(&mut std::io::stdout().lock(), &rows)?,
    }
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "{} images predicted, {failed} could not be used",
        rows.len() - failed
    );
    Ok(())
}
