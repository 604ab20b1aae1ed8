//! `valar predict`.

use std::path::PathBuf;
use valar_core::Targets;
use valar_train::{Device, PredictInput, PredictOptions};

/// Arguments of `valar predict`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["images", "csv"])))]
pub struct PredictArgs {
    /// The model (a run's model.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Image files, each used whole (no face detection). For a model trained on aligned
    /// faces, each needs AffectNet's annotations/<id>_lnd.npy beside its images/ folder.
    pub images: Vec<PathBuf>,
    /// A CSV with a `path` column and optionally face_x, face_y, face_width, face_height, and
    /// facial_landmarks (136 numbers, x;y;…) for a model trained on aligned faces.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Folder the CSV's relative paths start from [default: the CSV's folder].
    #[arg(long = "images-root", value_name = "DIR", requires = "csv")]
    pub root: Option<PathBuf>,
    /// Write the CSV (path,valence,arousal,error) here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override what the model predicts: valence | arousal | both [default: as model.onnx
    /// says; for an older model, its run's config.toml, else both for two outputs].
    #[arg(long)]
    pub targets: Option<Targets>,
    /// Override the context around a face box, as a share of its size [default: the margin
    /// model.onnx records (what `valar prepare` used); 0 for an older model].
    #[arg(long)]
    pub margin: Option<f32>,
    /// Where to run: cpu | cuda.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
}

/// Runs `valar predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let input = match args.csv {
        Some(file) => PredictInput::Csv {
            file,
            root: args.root,
        },
        None => PredictInput::Images(args.images),
    };
    if let Some(out) = &args.out {
        // Every image a CSV lists is an input too.
        let files = valar_train::input_files(&input)?;
        let mut inputs: Vec<&std::path::Path> = vec![&args.model];
        inputs.extend(files.iter().map(PathBuf::as_path));
        crate::cmd::claim_output_file(out, &inputs)?;
    }
    let model = args.model.clone();
    let out = valar_train::predict(&PredictOptions {
        model: args.model,
        input,
        targets: args.targets,
        device: args.device,
        margin: args.margin,
    })?;
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    match &args.out {
        Some(path) => valar_train::save_predict_csv(path, &out)?,
        None => valar_train::write_predict_csv(&mut std::io::stdout().lock(), &out)?,
    }
    let rows = &out.rows;
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "{} images predicted, {failed} could not be used",
        rows.len() - failed
    );
    // A run that predicted nothing is a failure, whatever the reasons per row.
    if failed == rows.len() {
        anyhow::bail!(
            "no input could be used with {} ({} given; see the error column)",
            model.display(),
            rows.len()
        );
    }
    Ok(())
}
