//! Terminal output shared by the subcommands: progress bars, warnings, errors.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;
use valar_core::Progress;

/// Prints an error and its chain of causes, cargo-style.
pub fn error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// Progress bars on stderr, one phase at a time. indicatif hides them when stderr
/// is not a terminal, so logs and CI output stay clean.
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(guard) = self.current.lock()
            && let Some(bar) = guard.as_ref()
        {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: u64) {
        let bar = if total == 0 {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:>12.bold} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        } else {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12.bold} [{bar:30.cyan/blue}] {human_pos}/{human_len} {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        };
        bar.set_prefix(phase.to_string());
        if let Ok(mut guard) = self.current.lock() {
            if let Some(old) = guard.take() {
                old.finish_and_clear();
            }
            *guard = Some(bar);
        }
    }

    fn advance(&self, n: u64) {
        self.with_bar(|bar| bar.inc(n));
    }

    fn finish(&self) {
        if let Ok(mut guard) = self.current.lock()
            && let Some(bar) = guard.take()
        {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        let print = || eprintln!("warning: {message}");
        match self.current.lock().ok().and_then(|g| g.clone()) {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}
