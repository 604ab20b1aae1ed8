//! The `valar` binary: parses the command line, calls one library per stage, prints.

/// One module per subcommand: its arguments and the call into its library.
mod cmd;
/// Progress bars and terminal output shared by the subcommands.
mod ui;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Facial-affect research in valence and arousal: prepare AffectNet, train a CNN in
/// ONNX Runtime, and report the results as PNG figures.
#[derive(Debug, Parser)]
#[command(name = "valar", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a seeded synthetic dataset in AffectNet's layout (for demos, tests and benchmarks).
    Synth(cmd::synth::SynthArgs),
    /// Build a balanced subset of preprocessed faces from AffectNet or a CSV.
    Prepare(cmd::prepare::PrepareArgs),
    /// Train a CNN on a prepared dataset.
    Train(cmd::train::TrainArgs),
    /// Score a model on a prepared dataset.
    Evaluate(cmd::evaluate::EvaluateArgs),
    /// Predict valence and arousal for images.
    Predict(cmd::predict::PredictArgs),
    /// Draw PNG figures and a Markdown summary of a prepared dataset or a run.
    Report(cmd::report::ReportArgs),
    /// Run the whole pipeline: prepare, train, evaluate, report.
    Run(cmd::run::RunArgs),
    /// Combine the shard folders of a sharded prepare into one prepared dataset.
    Merge(cmd::merge::MergeArgs),
    /// Training sweeps: one `valar train` run per combination of settings, summarized.
    Sweep(cmd::sweep::SweepArgs),
    /// Write (and submit, when sbatch is on the PATH) Slurm job arrays for a sharded prepare or a sweep.
    Slurm(cmd::slurm::SlurmArgs),
    /// Find duplicate, leaking, unusable and mislabelled faces in a source or prepared folders.
    Audit(cmd::audit::AuditArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command()
        .mut_subcommand("train", cmd::train::document_defaults)
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Synth(args) => cmd::synth::run(args),
        Command::Prepare(args) => cmd::prepare::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Evaluate(args) => cmd::evaluate::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Sweep(args) => cmd::sweep::run(args),
        Command::Slurm(args) => cmd::slurm::run(args),
        Command::Audit(args) => cmd::audit::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if ui::is_broken_pipe(&err) => ExitCode::from(ui::BROKEN_PIPE_EXIT),
        Err(err) => {
            ui::error(&err);
            ExitCode::FAILURE
        }
    }
}
