//! Terminal output shared by the subcommands.

/// Prints an error and its chain of causes, cargo-style.
pub fn error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
