//! What every command family shares: the output type and reading files with a clear error.

use std::io::Write;
use std::path::Path;

pub type Out<'a> = &'a mut dyn Write;

/// The file's text, or `None` after saying why it cannot be read.
pub fn read_text(path: &Path, err: Out<'_>) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", path.display())?;
            Ok(None)
        }
    }
}
