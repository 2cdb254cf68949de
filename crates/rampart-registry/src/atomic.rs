//! Writing a file all or nothing: into a temporary file in the target's directory, flushed and fsynced, then
//! renamed onto the target, then the directory fsynced — so a crash or a failed write never leaves a partial
//! file under the target's name, and a completed one survives a power cut. The `rampart` binary writes its
//! outputs through this module too.

use std::io::{BufWriter, Write};
use std::path::Path;

/// Runs `write` on a buffered temporary file beside `out`, then renames it to `out`, refusing to replace an
/// existing file (`AlreadyExists`). When `write` fails, the temporary file is deleted and its error returned
/// inside the `Ok`.
///
/// # Errors
/// Creating, writing, syncing or renaming the file.
pub fn write_new<T, E>(
    out: &Path,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<T, E>,
) -> std::io::Result<Result<T, E>> {
    write_with(out, write, false)
}

/// As [`write_new`], but atomically replaces `out` when it exists (readers see the old file or the new one,
/// never a mix).
///
/// # Errors
/// Creating, writing, syncing or renaming the file.
pub fn replace<T, E>(
    out: &Path,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<T, E>,
) -> std::io::Result<Result<T, E>> {
    write_with(out, write, true)
}

/// [`replace`] for bytes already in memory, readable by everyone (mode 0644 on Unix, where the other
/// functions keep the temporary file's 0600): for the registry's metadata, which is not secret and which a
/// server running as another user must read.
///
/// # Errors
/// Creating, writing, syncing or renaming the file.
pub fn replace_bytes(out: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(out, |w| {
        w.write_all(bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            w.get_ref()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        Ok::<(), std::io::Error>(())
    })?
}

fn write_with<T, E>(
    out: &Path,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<T, E>,
    clobber: bool,
) -> std::io::Result<Result<T, E>> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rampart-partial-")
        .tempfile_in(dir)?;
    let mut w = BufWriter::new(tmp.as_file_mut());
    let value = match write(&mut w) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    w.flush()?;
    drop(w);
    tmp.as_file().sync_all()?;
    if clobber {
        tmp.persist(out).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(out).map_err(|e| e.error)?;
    }
    sync_dir(dir)?;
    Ok(Ok(value))
}

/// Makes a rename or a file creation in `dir` durable.
///
/// # Errors
/// Opening or syncing the directory.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file; NTFS journals the rename itself.
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
