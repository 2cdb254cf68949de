//! Writing an output file all or nothing (`rampart_registry::atomic`, which the registry uses for its own
//! files): a failed command (a chunk that did not authenticate, a full disk) never leaves a partial output
//! behind. This wrapper adds the binary's messages.

use std::io::BufWriter;
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
    rampart_registry::atomic::write_new(out, write)
        .with_context(|| format!("writing {}", out.display()))
}
