//! What every command family shares: the output type and reading files with a clear error.

use hpl_runtime::store::{read_regular_file, MAX_BUNDLE_BYTES};
use std::io::Write;
use std::path::Path;

pub type Out<'a> = &'a mut dyn Write;

/// The largest inventory, configuration or key file read (a 5,000-package inventory is about
/// 1 MB).
pub const MAX_TEXT_BYTES: u64 = 64 * 1024 * 1024;

/// The file's text, or `None` after saying why it cannot be read. Only regular files, never
/// more than [`MAX_TEXT_BYTES`]: a FIFO or `/dev/zero` given by mistake cannot hang `hpl`.
pub fn read_text(path: &Path, err: Out<'_>) -> std::io::Result<Option<String>> {
    let text = read_regular_file(path, MAX_TEXT_BYTES).and_then(|b| {
        String::from_utf8(b)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    });
    match text {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", path.display())?;
            Ok(None)
        }
    }
}

/// A bundle file's bytes, with the store's limits (regular file, at most 64 MiB).
pub fn read_bundle(path: &Path) -> std::io::Result<Vec<u8>> {
    read_regular_file(path, MAX_BUNDLE_BYTES)
}
