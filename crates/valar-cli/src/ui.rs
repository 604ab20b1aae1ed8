//! Terminal output shared by the subcommands: progress bars, warnings, errors.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;
use valar_core::Progress;

/// Prints an error and its chain of causes, cargo-style. A cause whose text the lines
/// above already hold (an I/O error that its wrapper quotes) is not repeated.
pub fn error(err: &anyhow::Error) {
    let mut shown = err.to_string();
    eprintln!("error: {shown}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            eprintln!("  caused by: {text}");
            shown.push_str(&text);
        }
    }
}

/// The exit status of a command-line tool whose reader went away (128 + SIGPIPE), as a
/// shell reports `yes | head`.
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// Whether an error comes from writing to a closed pipe (`valar … | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes a line to stdout; when the reader has gone away, exits quietly as
/// command-line tools do, instead of panicking as `println!` would.
pub fn print_line(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(BROKEN_PIPE_EXIT));
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` that ends the process quietly on a closed pipe (see [`print_line`]).
macro_rules! outln {
    () => { $crate::ui::print_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::ui::print_line(format_args!($($arg)*)) };
}
pub(crate) use outln;

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
