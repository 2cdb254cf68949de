//! Reading the registry's small metadata files with a cap: a file much larger than any manifest, signature or
//! pointer the registry writes is not one, and is never read whole into memory.

use std::io::Read;
use std::path::Path;

/// Why a bounded read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Opening or reading.
    Io(std::io::Error),
    /// Larger than the cap.
    TooLarge(u64),
    /// Not UTF-8.
    NotText,
}

/// Reads `path` as UTF-8, refusing more than `cap` bytes.
pub(crate) fn read_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    // One byte more than the cap tells "exactly at the cap" from "over it".
    let mut limited = file.take(cap + 1);
    let mut bytes = Vec::new();
    std::io::copy(&mut limited, &mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::TooLarge(cap) => write!(f, "larger than {cap} bytes"),
            Self::NotText => f.write_str("not UTF-8 text"),
        }
    }
}
