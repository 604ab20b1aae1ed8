//! What a training run reports as it goes (the CLI draws it; the library prints nothing).

use crate::outputs::EpochRecord;

/// Facts about a run, reported once when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// Settings the data could not serve, turned off, each with why (for the user to read).
    pub notes: Vec<String>,
    /// The device the engine runs on (after any CUDA fallback).
    pub device: String,
    /// Why CUDA was not used, when it was asked for and not used.
    pub cuda_fallback: Option<String>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training faces.
    pub train_rows: usize,
    /// Validation faces.
    pub val_rows: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// The epoch training starts at (1-based; above 1 when resumed).
    pub first_epoch: usize,
    /// The last epoch training may run.
    pub epochs: usize,
}

/// Receives a run's progress; every method has a do-nothing default.
pub trait TrainObserver {
    /// The run starts (or resumes).
    fn run_started(&mut self, _start: &RunStart) {}
    /// An epoch starts: `images` training faces in `steps` steps.
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _images: usize, _steps: usize) {}
    /// A step ended with batch loss `loss` on `images` faces.
    fn step_done(&mut self, _images: usize, _loss: f32) {}
    /// An epoch ended; `best` says whether it is the best so far.
    fn epoch_done(&mut self, _record: &EpochRecord, _best: bool) {}
}

/// An observer that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl TrainObserver for Quiet {}
