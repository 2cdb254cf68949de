//! Walking a dataset directory: regular files only, paths relative and `/`-separated, sorted.
//!
//! Symlinks are the way a dataset directory could make a manifest cover files elsewhere (or read a
//! device): a symlink whose target resolves inside the directory to a regular file is recorded under the
//! link's path with the target's content; any other symlink — leaving the directory, dangling, or to a
//! directory — is refused, and so are sockets, FIFOs and devices.

use std::path::{Path, PathBuf};

/// Why a directory cannot be walked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// Reading the directory or a file's metadata failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A symlink points outside the directory (or nowhere, or at a directory).
    #[error("{path}: symlink to {target} leaves the dataset directory or is not a file: refused")]
    SymlinkLeaves {
        /// The link, relative to the directory.
        path: String,
        /// Where it points.
        target: PathBuf,
    },
    /// Not a regular file, directory or symlink.
    #[error("{path}: not a regular file (socket, FIFO or device): refused")]
    NotAFile {
        /// The path, relative to the directory.
        path: String,
    },
    /// Manifest paths are UTF-8 so that they compare the same everywhere.
    #[error("{path}: file name is not UTF-8")]
    NotUtf8 {
        /// The path, lossily converted.
        path: String,
    },
}

/// A file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Relative, `/`-separated.
    pub rel: String,
    /// The file to read (for an in-directory symlink, the link itself; opening follows it).
    pub abs: PathBuf,
}

/// Every regular file under `root`, sorted by relative path (bytewise).
///
/// # Errors
/// See [`WalkError`].
pub fn walk(root: &Path) -> Result<Vec<Found>, WalkError> {
    let canonical_root = root.canonicalize().map_err(|source| WalkError::Io {
        path: root.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let io = |source| WalkError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(WalkError::NotUtf8 {
                    path: format!("{prefix}{}", name.to_string_lossy()),
                });
            };
            let rel = format!("{prefix}{name}");
            let abs = entry.path();
            let kind = entry.file_type().map_err(|source| WalkError::Io {
                path: abs.clone(),
                source,
            })?;
            if kind.is_dir() {
                stack.push((abs, format!("{rel}/")));
            } else if kind.is_file() {
                out.push(Found { rel, abs });
            } else if kind.is_symlink() {
                check_symlink(&canonical_root, &abs, &rel)?;
                out.push(Found { rel, abs });
            } else {
                return Err(WalkError::NotAFile { path: rel });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn check_symlink(root: &Path, link: &Path, rel: &str) -> Result<(), WalkError> {
    let target = std::fs::read_link(link).unwrap_or_default();
    let refuse = || WalkError::SymlinkLeaves {
        path: rel.to_owned(),
        target: target.clone(),
    };
    let resolved = link.canonicalize().map_err(|_| refuse())?;
    let is_file = std::fs::metadata(&resolved).is_ok_and(|m| m.is_file());
    if resolved.starts_with(root) && is_file {
        Ok(())
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests;
