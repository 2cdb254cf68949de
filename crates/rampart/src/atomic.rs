//! Writing an output file all or nothing: into a temporary file in the same directory, renamed over the
//! target only when complete, so a failed command (a chunk that did not authenticate, a full disk) never
//! leaves a partial output behind.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

/// Runs `write` on a buffered temporary file beside `out`; on `Ok`, flushes, fsyncs and renames it to
/// `out` (refusing to replace an existing file). On `Err`, the temporary file is deleted.
pub(crate) fn write_file<T, E>(
    out: &Path,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<T, E>,
) -> anyhow::Result<Result<T, E>> {
    if out.exists() {
        anyhow::bail!("{} already exists: refusing to overwrite it", out.display());
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rampart-partial-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut w = BufWriter::new(tmp.as_file_mut());
    let value = match write(&mut w) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    w.flush().context("writing the output")?;
    drop(w);
    tmp.as_file().sync_all().context("syncing the output")?;
    tmp.persist_noclobber(out)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the output to {}", out.display()))?;
    Ok(Ok(value))
}
