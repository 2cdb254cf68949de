//! Walks a log and checks every line against the format and the chain; names the first record that fails.
//!
//! Reading is bounded: a line is read at most [`MAX_LINE_BYTES`] + 1 bytes at a time, so a hostile file
//! cannot make the verifier buffer it whole.
//!
//! What a verification proves: every line is a version-1 record, `seq` runs from 0 without gaps, and each
//! `prev` is the hash of the line before. What it cannot prove alone: that the last record is unaltered or that
//! no records were cut from the end — compare [`VerifyReport::head_hash`] and [`VerifyReport::records`] with a
//! copy kept elsewhere (a later version signs checkpoints for that).
//!
//! Verify a log at rest: a writer appending meanwhile can leave a half-written last line, reported as
//! [`VerifyFailure::TornTail`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::chain::ChainHash;
use crate::format::{self, FormatError, MAX_LINE_BYTES};
use crate::writer::list_log_files;

#[cfg(test)]
mod tests;

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records in the log.
    pub records: u64,
    /// Hash of the last line ([`ChainHash::GENESIS`] for an empty log): what the next record links to.
    pub head_hash: ChainHash,
    /// Log files walked.
    pub files: usize,
}

/// The first record that does not verify, and why.
#[derive(Debug, thiserror::Error)]
#[error("audit log fails at seq {seq} ({}, line {line}): {what}", file.display())]
#[non_exhaustive]
pub struct VerifyError {
    /// The `seq` the failing line should have had: the first record that does not verify.
    pub seq: u64,
    /// The file it is in (the directory, for a failure to list it).
    pub file: PathBuf,
    /// Its line number in `file`, from 1; 0 when the failure is not about one line.
    pub line: u64,
    /// What is wrong.
    pub what: VerifyFailure,
}

/// What is wrong with the first failing record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// The log could not be read.
    #[error("read failed: {0}")]
    Io(#[source] io::Error),
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("line is over {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// The line is not a version-1 record.
    #[error("{0}")]
    Format(#[source] FormatError),
    /// The record's `seq` is not the next one: a record was removed, inserted or moved.
    #[error("seq is {found}, expected the next in sequence")]
    SeqMismatch {
        /// The `seq` written in the line.
        found: u64,
    },
    /// The record's `prev` is not the hash of the line before: that line, or this link, was altered.
    #[error("prev is {found}, but the previous line hashes to {expected}")]
    PrevMismatch {
        /// The `prev` written in the line.
        found: ChainHash,
        /// The hash of the previous line as read.
        expected: ChainHash,
    },
    /// The file ends with bytes that are not a complete line (a torn write, or a cut).
    #[error("file ends with {bytes} bytes that are not a complete line")]
    TornTail {
        /// How many.
        bytes: u64,
    },
    /// A file's name says its first record is `named`, but the chain is elsewhere.
    #[error("file name says its first seq is {named}")]
    FileStart {
        /// The first seq in the file's name.
        named: u64,
    },
}

/// Verifies every file of the log in `dir`, in order. An empty directory is an empty, valid log.
///
/// # Errors
/// The first record that does not verify, as a [`VerifyError`].
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let files = list_log_files(dir).map_err(|e| VerifyError {
        seq: 0,
        file: dir.into(),
        line: 0,
        what: VerifyFailure::Io(e),
    })?;
    let mut walk = Walk {
        next_seq: 0,
        prev: ChainHash::GENESIS,
    };
    for (named, path) in &files {
        if *named != walk.next_seq {
            return Err(walk.fail(path, 0, VerifyFailure::FileStart { named: *named }));
        }
        walk.file(path)?;
    }
    Ok(VerifyReport {
        records: walk.next_seq,
        head_hash: walk.prev,
        files: files.len(),
    })
}

struct Walk {
    next_seq: u64,
    prev: ChainHash,
}

impl Walk {
    fn fail(&self, file: &Path, line: u64, what: VerifyFailure) -> VerifyError {
        VerifyError {
            seq: self.next_seq,
            file: file.into(),
            line,
            what,
        }
    }

    fn file(&mut self, path: &Path) -> Result<(), VerifyError> {
        let file = File::open(path).map_err(|e| self.fail(path, 0, VerifyFailure::Io(e)))?;
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut buf = Vec::new();
        let mut line_no = 0;
        loop {
            line_no += 1;
            buf.clear();
            // One byte more than a line and its `\n` may take: reading that many means the line is too long.
            let cap = MAX_LINE_BYTES as u64 + 2;
            let n = (&mut reader)
                .take(cap)
                .read_until(b'\n', &mut buf)
                .map_err(|e| self.fail(path, line_no, VerifyFailure::Io(e)))?;
            if n == 0 {
                return Ok(());
            }
            let Some(line) = buf.strip_suffix(b"\n") else {
                let what = if n as u64 == cap {
                    VerifyFailure::LineTooLong
                } else {
                    VerifyFailure::TornTail { bytes: n as u64 }
                };
                return Err(self.fail(path, line_no, what));
            };
            if line.len() > MAX_LINE_BYTES {
                return Err(self.fail(path, line_no, VerifyFailure::LineTooLong));
            }
            self.line(line)
                .map_err(|what| self.fail(path, line_no, what))?;
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<(), VerifyFailure> {
        let entry = format::decode_line(line).map_err(VerifyFailure::Format)?;
        if entry.seq != self.next_seq {
            return Err(VerifyFailure::SeqMismatch { found: entry.seq });
        }
        if entry.prev != self.prev {
            return Err(VerifyFailure::PrevMismatch {
                found: entry.prev,
                expected: self.prev,
            });
        }
        self.prev = ChainHash::of_line(line);
        self.next_seq += 1;
        Ok(())
    }
}
