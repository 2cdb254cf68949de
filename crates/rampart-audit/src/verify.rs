//! Walks a log and checks every line against the format, the chain, the segment headers and (given the public
//! key) the checkpoint signatures; names the first line that fails.
//!
//! Reading is bounded: a line is read at most [`MAX_LINE_BYTES`] + 1 bytes at a time, so a hostile file
//! cannot make the verifier buffer it whole. Segments are checked in parallel (one thread per core), then
//! their links to each other in order; the failure reported is always the first in log order.
//!
//! What a verification proves: every line is a version-2 record, `seq` runs from 0 without gaps across
//! files, each `prev` is the hash of the line before, every file starts with a header naming the file before
//! it, and — with a public key — every checkpoint is signed by that key over its place in the chain. What it
//! cannot prove alone: that lines after the last checkpoint, or whole segments cut from the end, are intact —
//! [`VerifyReport::unsigned_tail`] says how many lines no signature covers, and an outside copy of a recent
//! checkpoint (an alert sink, a printed head) covers the rest.
//!
//! Verify a log at rest: a writer appending meanwhile can leave a half-written last line, reported as
//! [`VerifyFailure::TornTail`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rampart_crypto::keyfile::KeyId;
use rampart_crypto::sign::VerifyingKey;

use crate::chain::ChainHash;
use crate::format::{self, FormatError, Kind, Link, LogEntry, PreviousSegment, MAX_LINE_BYTES};
use crate::writer::list_log_files;

#[cfg(test)]
mod tests;

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Lines in the log, of every kind.
    pub records: u64,
    /// Decision lines.
    pub decisions: u64,
    /// Alert and action lines.
    pub events: u64,
    /// Checkpoint lines.
    pub checkpoints: u64,
    /// Whether checkpoint signatures were checked (a public key was given).
    pub signatures_checked: bool,
    /// `seq` of the last checkpoint, if any.
    pub last_checkpoint: Option<u64>,
    /// Lines after the last checkpoint: covered by the chain but by no signature yet.
    pub unsigned_tail: u64,
    /// Hash of the last line ([`ChainHash::GENESIS`] for an empty log): what the next line links to.
    pub head_hash: ChainHash,
    /// Log files walked.
    pub files: usize,
    /// `seq` of the first line: 0 unless the log was verified as partial.
    pub first_seq: u64,
    /// `prev` of the first line: [`ChainHash::GENESIS`] unless the log was verified as partial.
    pub first_prev: ChainHash,
}

/// How to verify.
#[derive(Default, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// Check every checkpoint's signature with this key (and that it is this key's).
    pub public_key: Option<&'a VerifyingKey>,
    /// Called with the number of bytes read since the last call (for a progress bar).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Accept a log that starts mid-chain (an exported range): the first file's first line is trusted as the
    /// start, and everything after it must link to it. Compare [`VerifyReport::first_seq`] and
    /// [`VerifyReport::first_prev`] with the export's signed manifest.
    pub partial: bool,
}

/// The first line that does not verify, and why.
#[derive(Debug, thiserror::Error)]
#[error("audit log fails at seq {seq} ({}, line {line}): {what}", file.display())]
#[non_exhaustive]
pub struct VerifyError {
    /// The `seq` the failing line should have had: the first line that does not verify.
    pub seq: u64,
    /// The file it is in (the directory, for a failure to list it).
    pub file: PathBuf,
    /// Its line number in `file`, from 1; 0 when the failure is not about one line.
    pub line: u64,
    /// What is wrong.
    pub what: VerifyFailure,
}

/// What is wrong with the first failing line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// The log could not be read.
    #[error("read failed: {0}")]
    Io(#[source] io::Error),
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("line is over {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// The line is not a version-2 record.
    #[error("{0}")]
    Format(#[source] FormatError),
    /// The line's `seq` is not the next one: a line was removed, inserted or moved.
    #[error("seq is {found}, expected the next in sequence")]
    SeqMismatch {
        /// The `seq` written in the line.
        found: u64,
    },
    /// The line's `prev` is not the hash of the line before: that line, or this link, was altered.
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
    /// A file's name says its first line is `named`, but the chain is elsewhere: a segment before it was
    /// deleted, or it was renamed.
    #[error(
        "file name says its first seq is {named}: a segment before it is missing or was renamed"
    )]
    FileStart {
        /// The first seq in the file's name.
        named: u64,
    },
    /// A segment header is missing, misplaced, or names another predecessor than the file before it.
    #[error("segment header: {0}")]
    SegmentHeader(String),
    /// A checkpoint was signed by another key than the one given.
    #[error("checkpoint signed by key {found}, but the public key given is {expected}")]
    UnknownKey {
        /// The key given.
        expected: KeyId,
        /// The key named in the checkpoint.
        found: KeyId,
    },
    /// A checkpoint's signature does not verify: the checkpoint, or the chain it signs, was altered.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

/// Verifies every file of the log in `dir`, in order, without checking signatures. An empty directory is an
/// empty, valid log.
///
/// # Errors
/// The first line that does not verify, as a [`VerifyError`].
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, VerifyError> {
    verify_dir_with(dir, VerifyOptions::default())
}

/// What one file holds, checked on its own; its links to the file before are checked afterwards, in order.
#[derive(Default)]
struct FileWalk {
    /// From the first line: its `prev` and the header's predecessor.
    first_prev: Option<ChainHash>,
    header: Option<PreviousSegment>,
    next_seq: u64,
    last_hash: ChainHash,
    decisions: u64,
    events: u64,
    checkpoints: u64,
    last_checkpoint: Option<u64>,
    error: Option<VerifyError>,
}

/// Verifies the log in `dir` with `options`.
///
/// # Errors
/// The first line that does not verify, as a [`VerifyError`].
pub fn verify_dir_with(
    dir: &Path,
    options: VerifyOptions<'_>,
) -> Result<VerifyReport, VerifyError> {
    let files = list_log_files(dir).map_err(|e| VerifyError {
        seq: 0,
        file: dir.into(),
        line: 0,
        what: VerifyFailure::Io(e),
    })?;
    let walks = walk_all(&files, options);
    let mut report = VerifyReport {
        records: 0,
        decisions: 0,
        events: 0,
        checkpoints: 0,
        signatures_checked: options.public_key.is_some(),
        last_checkpoint: None,
        unsigned_tail: 0,
        head_hash: ChainHash::GENESIS,
        files: files.len(),
        first_seq: 0,
        first_prev: ChainHash::GENESIS,
    };
    let mut previous_name: Option<String> = None;
    // `records` counts from the first seq; the chain is followed by `next_seq`.
    let mut next_seq = 0;
    for (i, ((named, path), walk)) in files.iter().zip(walks).enumerate() {
        if i == 0 && options.partial {
            next_seq = *named;
            report.first_seq = *named;
            report.head_hash = walk.first_prev.unwrap_or_default();
            report.first_prev = report.head_hash;
            previous_name = walk.header.as_ref().map(|h| h.file.clone());
        }
        let fail = |line, what| VerifyError {
            seq: next_seq,
            file: path.clone(),
            line,
            what,
        };
        if *named != next_seq {
            return Err(fail(0, VerifyFailure::FileStart { named: *named }));
        }
        if let Some(first_prev) = walk.first_prev {
            if first_prev != report.head_hash {
                return Err(fail(
                    1,
                    VerifyFailure::PrevMismatch {
                        found: first_prev,
                        expected: report.head_hash,
                    },
                ));
            }
            let names_predecessor = match (&walk.header, &previous_name) {
                (None, None) => true,
                (Some(h), Some(name)) => &h.file == name,
                _ => false,
            };
            if !names_predecessor {
                return Err(fail(
                    1,
                    VerifyFailure::SegmentHeader(format!(
                        "names {:?} as the file before, but the file before is {:?}",
                        walk.header.as_ref().map(|h| h.file.as_str()),
                        previous_name
                    )),
                ));
            }
        }
        if let Some(error) = walk.error {
            return Err(error);
        }
        next_seq = walk.next_seq;
        report.head_hash = walk.last_hash;
        report.decisions += walk.decisions;
        report.events += walk.events;
        report.checkpoints += walk.checkpoints;
        report.last_checkpoint = walk.last_checkpoint.or(report.last_checkpoint);
        previous_name = Some(format::file_name(*named));
    }
    report.records = next_seq - report.first_seq;
    report.unsigned_tail = next_seq - report.last_checkpoint.map_or(report.first_seq, |cp| cp + 1);
    Ok(report)
}

/// Walks every file, on as many threads as there are cores (at most one per file).
fn walk_all(files: &[(u64, PathBuf)], options: VerifyOptions<'_>) -> Vec<FileWalk> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, FileWalk)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((named, path)) = files.get(i) else {
                            return done;
                        };
                        done.push((i, walk_file(*named, path, options)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                // A walk never panics on input; a panicking worker is a bug, reported as an unreadable file.
                w.join().unwrap_or_default()
            })
            .collect()
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    let mut walks: Vec<FileWalk> = Vec::with_capacity(files.len());
    let mut results = results.into_iter().peekable();
    for (i, (_, path)) in files.iter().enumerate() {
        match results.next_if(|(j, _)| *j == i) {
            Some((_, walk)) => walks.push(walk),
            None => walks.push(FileWalk {
                error: Some(VerifyError {
                    seq: 0,
                    file: path.clone(),
                    line: 0,
                    what: VerifyFailure::Io(io::Error::other("verifier thread failed")),
                }),
                ..FileWalk::default()
            }),
        }
    }
    walks
}

/// Reads a file's lines, each at most [`MAX_LINE_BYTES`], calling `f` with its number (from 1) and bytes.
fn for_each_line(
    path: &Path,
    progress: Option<&(dyn Fn(u64) + Sync)>,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), VerifyFailure>,
) -> Result<(), (u64, VerifyFailure)> {
    const PROGRESS_EVERY: u64 = 1 << 20;
    let file = File::open(path).map_err(|e| (0, VerifyFailure::Io(e)))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut unreported = 0u64;
    loop {
        line_no += 1;
        buf.clear();
        // One byte more than a line and its `\n` may take: reading that many means the line is too long.
        let cap = MAX_LINE_BYTES as u64 + 2;
        let n = (&mut reader)
            .take(cap)
            .read_until(b'\n', &mut buf)
            .map_err(|e| (line_no, VerifyFailure::Io(e)))?;
        if n == 0 {
            if let Some(report) = progress {
                report(unreported);
            }
            return Ok(());
        }
        unreported += n as u64;
        if unreported >= PROGRESS_EVERY {
            if let Some(report) = progress {
                report(unreported);
            }
            unreported = 0;
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            let what = if n as u64 == cap {
                VerifyFailure::LineTooLong
            } else {
                VerifyFailure::TornTail { bytes: n as u64 }
            };
            return Err((line_no, what));
        };
        if line.len() > MAX_LINE_BYTES {
            return Err((line_no, VerifyFailure::LineTooLong));
        }
        f(line_no, line).map_err(|what| (line_no, what))?;
    }
}

fn walk_file(named: u64, path: &Path, options: VerifyOptions<'_>) -> FileWalk {
    let mut walk = FileWalk {
        next_seq: named,
        ..FileWalk::default()
    };
    let result = for_each_line(path, options.progress, |line_no, line| {
        let link = format::decode_link(line).map_err(VerifyFailure::Format)?;
        if link.seq != walk.next_seq {
            return Err(VerifyFailure::SeqMismatch { found: link.seq });
        }
        if line_no == 1 {
            walk.first_prev = Some(link.prev);
            walk.header = header(&link, named)?;
        } else {
            if link.prev != walk.last_hash {
                return Err(VerifyFailure::PrevMismatch {
                    found: link.prev,
                    expected: walk.last_hash,
                });
            }
            match link.kind {
                Kind::Segment => {
                    return Err(VerifyFailure::SegmentHeader(
                        "segment header inside a file (only its first line may be one)".into(),
                    ))
                }
                Kind::Decision => walk.decisions += 1,
                Kind::Alert | Kind::Action => walk.events += 1,
                Kind::Checkpoint => {
                    check_signature(&link, options.public_key)?;
                    walk.checkpoints += 1;
                    walk.last_checkpoint = Some(link.seq);
                }
            }
        }
        walk.last_hash = ChainHash::of_line(line);
        walk.next_seq += 1;
        Ok(())
    });
    if let Err((line, what)) = result {
        walk.error = Some(VerifyError {
            seq: walk.next_seq,
            file: path.into(),
            line,
            what,
        });
    }
    walk
}

/// Checks a file's first line: a segment header consistent with its own place.
fn header(entry: &Link<'_>, named: u64) -> Result<Option<PreviousSegment>, VerifyFailure> {
    if entry.kind != Kind::Segment {
        return Err(VerifyFailure::SegmentHeader(format!(
            "the first line is a {} line, not a segment header",
            entry.kind.as_str()
        )));
    }
    match &entry.previous {
        None if named == 0 => Ok(None),
        None => Err(VerifyFailure::SegmentHeader(
            "names no file before it, but does not start the log".into(),
        )),
        Some(_) if named == 0 => Err(VerifyFailure::SegmentHeader(
            "names a file before the first one".into(),
        )),
        Some(p) if p.last_seq != named - 1 || p.last_hash != entry.prev => {
            Err(VerifyFailure::SegmentHeader(format!(
                "says the file before ends at seq {} with hash {}, but this line continues seq {} with prev {}",
                p.last_seq,
                p.last_hash,
                named - 1,
                entry.prev
            )))
        }
        Some(p) => Ok(Some(p.clone())),
    }
}

fn check_signature(
    link: &Link<'_>,
    public_key: Option<&VerifyingKey>,
) -> Result<(), VerifyFailure> {
    let (Some(public), Some((key, sig))) = (public_key, &link.checkpoint) else {
        return Ok(());
    };
    if *key != public.id() {
        return Err(VerifyFailure::UnknownKey {
            expected: public.id(),
            found: *key,
        });
    }
    // The time as written: the signature covers the line's own spelling.
    public
        .verify(
            &format::checkpoint_message(link.seq, &link.prev, &link.time),
            sig,
        )
        .map_err(|_| VerifyFailure::BadSignature)
}

/// Reads every line of a log in order, parsed, for queries and exports. Stops at the first line that does not
/// parse (run [`verify_dir_with`] to check the chain).
///
/// # Errors
/// The first unreadable or malformed line.
pub fn read_log(
    dir: &Path,
    progress: Option<&(dyn Fn(u64) + Sync)>,
    mut f: impl FnMut(&LogEntry, &[u8]),
) -> Result<(), VerifyError> {
    let files = list_log_files(dir).map_err(|e| VerifyError {
        seq: 0,
        file: dir.into(),
        line: 0,
        what: VerifyFailure::Io(e),
    })?;
    for (named, path) in &files {
        let mut seq = *named;
        for_each_line(path, progress, |_, line| {
            let entry = format::decode_line(line).map_err(VerifyFailure::Format)?;
            seq = entry.seq + 1;
            f(&entry, line);
            Ok(())
        })
        .map_err(|(line, what)| VerifyError {
            seq,
            file: path.clone(),
            line,
            what,
        })?;
    }
    Ok(())
}

/// The log files of `dir`, in order, with their first `seq`.
///
/// # Errors
/// When the directory cannot be listed.
pub fn log_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    list_log_files(dir)
}
