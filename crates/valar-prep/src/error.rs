use std::path::PathBuf;

/// Why `valar prepare` could not run at all. (Bad rows never end up here: they
/// become lines of `rejects.csv` and the run goes on.)
#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    /// The CSV lacks columns the chosen input kind needs.
    #[error("{path}: missing columns {missing:?}; found [{}], expected [{}]", found.join(", "), expected.join(", "))]
    MissingColumns {
        /// The CSV.
        path: PathBuf,
        /// The needed columns that are absent.
        missing: Vec<String>,
        /// The columns the file has.
        found: Vec<String>,
        /// The columns this input kind reads.
        expected: Vec<String>,
    },
    /// An input file or folder cannot be read.
    #[error(transparent)]
    Io(#[from] valar_core::IoError),
    /// polars could not parse or process a table.
    #[error("{path}: {source}")]
    Table {
        /// The file the table came from or goes to.
        path: PathBuf,
        /// The underlying error.
        source: polars::error::PolarsError,
    },
    /// A setting's value makes no sense (zero intervals, a split fraction outside [0, 1),
    /// …). `key` is the setting's name (`val_fraction`); each front end words it its own
    /// way ([`PrepError::setting_message`]).
    #[error("invalid setting: {key} {reason}")]
    InvalidSetting {
        /// The setting, as named in valar.toml's `[prepare]` and by its flag (`--val-fraction`).
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// Two settings that cannot be given together.
    #[error("invalid setting: {key} cannot be combined with {other} ({why})")]
    Conflict {
        /// The setting refused.
        key: &'static str,
        /// The setting it clashes with.
        other: &'static str,
        /// Why, and what to do instead.
        why: String,
    },
    /// The input settings name no single source: not one of `csv` with `images`, `set`,
    /// `afew_va`, or `aff_wild2` with `frames`.
    #[error("invalid setting: give one input: csv with images, set, afew_va, or aff_wild2 with frames (given: {})", given.join(", "))]
    SourceChoice {
        /// The source settings given.
        given: Vec<&'static str>,
    },
    /// Something else makes no sense: a shard folder that does not fit its plan, an
    /// input folder of the wrong shape.
    #[error("invalid setting: {0}")]
    Config(String),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] valar_core::CoreError),
    /// No usable row was left after exclusions, or the input held none.
    #[error("no usable rows in {}: {found}; {why}", input.display())]
    NothingLeft {
        /// The input.
        input: PathBuf,
        /// What the input held.
        found: String,
        /// Why nothing of it is usable: the rejects, counted by reason.
        why: String,
    },
    /// A split would put one video (or subject) on two sides.
    #[error("{}: video `{video}` would be in two splits: {detail}", input.display())]
    VideoLeak {
        /// The input.
        input: PathBuf,
        /// The video or subject.
        video: String,
        /// Where it was found on each side.
        detail: String,
    },
    /// Some rows of a video input give a split and others do not, so the given splits
    /// could be honoured only for some videos.
    #[error(
        "{}: row {row} (video `{video}`) has no split, but row {given_row} gives `{given}`; \
         give every row a split, or none and let valar draw them per video",
        input.display()
    )]
    PartialSplits {
        /// The input.
        input: PathBuf,
        /// The first row without a split.
        row: u64,
        /// Its video.
        video: String,
        /// The first row with one.
        given_row: u64,
        /// The split that row gives.
        given: String,
    },
}

impl PrepError {
    /// A setting error worded with `name` giving each setting's name in the front end's
    /// terms (`--val-fraction`, `prepare.val_fraction`); `None` for any other error.
    pub fn setting_message(&self, name: &dyn Fn(&str) -> String) -> Option<String> {
        match self {
            PrepError::InvalidSetting { key, reason } => Some(format!("{} {reason}", name(key))),
            PrepError::Conflict { key, other, why } => Some(format!(
                "{} cannot be combined with {} ({why})",
                name(key),
                name(other)
            )),
            PrepError::SourceChoice { given } => {
                let n = |k: &[&str]| k.iter().map(|k| name(k)).collect::<Vec<_>>().join(" with ");
                let given = given.iter().map(|k| name(k)).collect::<Vec<_>>();
                Some(format!(
                    "give {}, {}, {}, or {}{}",
                    n(&["csv", "images"]),
                    n(&["set"]),
                    n(&["afew_va"]),
                    n(&["aff_wild2", "frames"]),
                    if given.is_empty() {
                        String::new()
                    } else {
                        format!(" (given: {})", given.join(", "))
                    }
                ))
            }
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| PrepError::Io(valar_core::IoError { path, source })
    }

    pub(crate) fn table(
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(polars::error::PolarsError) -> Self {
        let path = path.into();
        move |source| PrepError::Table { path, source }
    }
}
