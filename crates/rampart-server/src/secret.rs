//! Secret sources. A secret in the config is never the secret itself: it is a file path, or `env:NAME` for an
//! environment variable (how container platforms hand secrets over). Bytes read are held in [`Zeroizing`]
//! buffers, wiped when dropped, and no error message ever quotes them.

use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Largest secret file read (a PEM key is a few KiB; anything larger is not a key).
const MAX_SECRET_BYTES: u64 = 1 << 20;

/// Why a secret could not be read. Messages name the source, never the content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read the file: a key that others can read is no longer a secret.
    #[error("{path} is readable by group or others (mode {mode:o}): chmod 600 it")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The environment variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// Larger than any key.
    #[error("{0} is larger than {MAX_SECRET_BYTES} bytes: not a key")]
    TooLarge(String),
}

/// Whether a configured secret value is the secret itself rather than a reference to it (PEM text, an API
/// key, or anything spanning lines): such values are refused by config validation.
pub(crate) fn looks_inline(value: &str) -> bool {
    value.contains("-----BEGIN")
        || value.starts_with(crate::auth::KEY_PREFIX)
        || value.contains('\n')
        || value.is_empty()
}

/// Reads a secret from `env:NAME` or from a file (relative paths resolved by `resolve`), refusing a file that
/// group or others can read.
///
/// # Errors
/// [`SecretError`], naming the source only.
pub fn read(
    value: &str,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    if let Some(name) = value.strip_prefix("env:") {
        return std::env::var(name)
            .map(|v| Zeroizing::new(v.into_bytes()))
            .map_err(|_| SecretError::MissingEnv(name.to_owned()));
    }
    let path = resolve(Path::new(value));
    read_private_file(&path)
}

/// Reads a file that must be private to its owner.
///
/// # Errors
/// [`SecretError`].
pub fn read_private_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let rerr = |source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(rerr)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(rerr)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut buf = Zeroizing::new(Vec::new());
    // Bounded by `take` just above; the ban targets unbounded reads.
    #[allow(clippy::disallowed_methods)]
    let n = file
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(rerr)?;
    if n as u64 > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge(path.display().to_string()));
    }
    Ok(buf)
}
