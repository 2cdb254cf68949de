//! The activation history of one model: `<root>/<name>/history.jsonl`, append-only.
//!
//! # Format
//!
//! One JSON object per line, oldest first, each line fsynced before the active pointer changes:
//!
//! ```json
//! {"time":"2026-11-25T14:00:00Z","action":"activate","from":"2","to":"3","who":"alice","why":"retrained",
//!  "key_id":"3f9a0c51d2e47b86","model_sha256":"<64 hex>"}
//! ```
//!
//! `action` is `activate` or `rollback`; `from` is `null` for a model's first activation; `key_id` and
//! `model_sha256` are `null` when the version was activated without signature verification
//! (`--allow-unsigned`). Lines are never rewritten: an edited file shows only as a line that does not parse.
//!
//! # What "previous" means
//!
//! Replaying the file gives a stack of versions: `activate` pushes `to`, `rollback` pops. Rolling back
//! returns to the version below the top, so rolling back twice after activating 1, 2, 3 gives 2 then 1
//! (never back to 3: an automated responder that rolls back twice must not reinstate the bad version).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::name::Version;

/// The history's file name in a model directory.
pub const HISTORY_FILE: &str = "history.jsonl";
/// A history file larger than this is refused rather than read (a million activations is far beyond it).
const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// What a history line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `activate`: `to` became active.
    Activate,
    /// `rollback`: back to the previous version.
    Rollback,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// When, RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub time: time::OffsetDateTime,
    /// Activate or roll back.
    pub action: Action,
    /// The version active before, if any.
    pub from: Option<Version>,
    /// The version active after.
    pub to: Version,
    /// Who did it (free text: a user, a responder's name).
    pub who: String,
    /// Why (free text; may be empty).
    pub why: String,
    /// The key that verified `to`, or `null` when activated unsigned.
    pub key_id: Option<String>,
    /// `to`'s ONNX file's SHA-256 when verified.
    pub model_sha256: Option<Sha256Digest>,
}

/// Why the history could not be read or appended to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// Reading or writing failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A line does not parse, or the lines do not replay (a rollback with nothing to return to).
    #[error("{path} line {line}: {reason} (the history was edited or a write was cut short)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Reads every entry; a missing file is an empty history.
pub(crate) fn read(path: &Path) -> Result<Vec<HistoryEntry>, HistoryError> {
    let io = |cause| HistoryError::Io {
        path: path.to_owned(),
        cause,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    if file.metadata().map_err(io)?.len() > MAX_HISTORY_BYTES {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_HISTORY_BYTES} bytes: refused"
        ))));
    }
    let reader = std::io::BufReader::new(std::io::Read::take(file, MAX_HISTORY_BYTES));
    let mut entries = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let entry = serde_json::from_str(&line).map_err(|e| HistoryError::Corrupt {
            path: path.to_owned(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Appends one entry as a line and fsyncs it (and the directory, when the file is new).
pub(crate) fn append(path: &Path, entry: &HistoryEntry) -> Result<(), HistoryError> {
    let io = |cause| HistoryError::Io {
        path: path.to_owned(),
        cause,
    };
    let mut line = serde_json::to_vec(entry).map_err(|e| io(e.into()))?;
    line.push(b'\n');
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io)?;
    // One write of the whole line: with O_APPEND it lands at the end in one piece.
    file.write_all(&line).map_err(io)?;
    file.sync_all().map_err(io)?;
    if !existed {
        if let Some(dir) = path.parent() {
            crate::atomic::sync_dir(dir).map_err(io)?;
        }
    }
    Ok(())
}

/// The activation stack the history replays to (see the module doc), oldest at the bottom.
pub(crate) fn stack(path: &Path, entries: &[HistoryEntry]) -> Result<Vec<Version>, HistoryError> {
    let mut stack: Vec<Version> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let corrupt = |reason: String| HistoryError::Corrupt {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        if e.from.as_ref() != stack.last() {
            return Err(corrupt(format!(
                "records a change from {}, but the version active then was {}",
                show(e.from.as_ref()),
                show(stack.last())
            )));
        }
        match e.action {
            Action::Activate => stack.push(e.to.clone()),
            Action::Rollback => {
                stack.pop();
                if stack.last() != Some(&e.to) {
                    return Err(corrupt(format!(
                        "records a rollback to {}, but the previous version was {}",
                        e.to,
                        show(stack.last())
                    )));
                }
            }
        }
    }
    Ok(stack)
}

fn show(v: Option<&Version>) -> String {
    v.map_or_else(|| "none".to_owned(), ToString::to_string)
}
