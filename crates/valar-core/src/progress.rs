/// Receives progress from long-running library calls; the CLI draws bars with it.
///
/// The libraries stay free of any terminal code, and tests pass [`NoProgress`].
pub trait Progress: Sync {
    /// A phase with `total` steps begins (a total of 0 means unknown).
    fn start(&self, phase: &str, total: u64);
    /// `n` more steps of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is over.
    fn finish(&self);
    /// A message worth the user's attention, printed without disturbing the bar.
    fn warn(&self, message: &str);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
    fn warn(&self, _message: &str) {}
}
