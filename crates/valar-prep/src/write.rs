use polars::prelude::*;
use std::path::Path;
use valar_core::write_atomic;

/// Writes a table as CSV with polars, atomically.
pub(crate) fn write_csv(path: &Path, df: &mut DataFrame) -> PolarsResult<()> {
    write_atomic(path, |w| {
        CsvWriter::new(w).finish(df).map_err(std::io::Error::other)
    })
    .map_err(|e| PolarsError::ComputeError(e.to_string().into()))
}
