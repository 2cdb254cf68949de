//! The writer: one thread owns the log file; request tasks hand it records over a bounded queue and wait
//! for their record to be durable (group commit).
//!
//! Why a thread and not a task: `write` and `fsync` block, and an fsync can take milliseconds; a dedicated
//! thread keeps that off the async workers and makes "one file, one owner" a fact rather than a convention.
//!
//! Why group commit: while one fsync runs, more records queue up; the next round writes all of them with one
//! `write` and covers them with one `sync_data`, so fsyncs per second stay bounded while throughput follows
//! load.
//!
//! Segments: the writer starts a new file when the current one reaches [`WriterConfig::segment_max_bytes`]
//! or [`WriterConfig::segment_max_age`]; every file begins with a `segment` line naming the file before it.
//!
//! Checkpoints: with a signing key, the writer appends a signed `checkpoint` line after every
//! [`CheckpointPolicy::every_records`] lines, after [`CheckpointPolicy::every`] when lines are waiting for one,
//! and at shutdown. A checkpoint is written in the same group (the same write and fsync) as the records it
//! covers, so it costs no extra sync.
//!
//! Failure is closed: if a write or sync fails, every record of that group is refused with
//! [`AuditError::Unavailable`], the file is cut back to its last good length (no half line survives), and the
//! next group first retries that cut and a sync; until it succeeds every commit is refused too.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_crypto::sign::SigningKey;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::chain::ChainHash;
use crate::format::{
    self, AuditRecord, EncodedRecord, EventKind, FormatError, PreviousSegment, RecordPolicy,
    MAX_LINE_BYTES,
};

#[cfg(test)]
mod tests;

/// Queue length when none is configured: about a second of records at a busy gateway, small in memory
/// because records are encoded before they queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// A group stops taking records once it holds this many bytes, so one write's buffer stays small even when
/// records are large; the rest wait for the next group.
const MAX_GROUP_BYTES: usize = 8 << 20;

/// When a commit is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// After the group's `write` and `sync_data` both succeed: an acknowledged record survives a crash of the
    /// process or the machine. The default.
    #[default]
    Fsync,
    /// After the group's `write` succeeds, without a sync: weaker. An acknowledged record survives a crash of
    /// the process but not of the machine or the OS; a power loss can lose the last records written. The file
    /// is synced only at shutdown.
    Buffered,
}

/// Default size at which a segment is closed and the next one started.
pub const DEFAULT_SEGMENT_MAX_BYTES: u64 = 64 << 20;
/// Default age at which a segment is closed.
pub const DEFAULT_SEGMENT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// When signed checkpoints are written.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckpointPolicy {
    /// The key that signs them.
    pub key: Arc<SigningKey>,
    /// A checkpoint after this many lines (at least 1).
    pub every_records: u64,
    /// A checkpoint when lines have waited this long for one.
    pub every: Duration,
}

impl CheckpointPolicy {
    /// Checkpoints signed by `key` every 1,000 lines or 10 seconds.
    pub fn new(key: Arc<SigningKey>) -> CheckpointPolicy {
        CheckpointPolicy {
            key,
            every_records: 1000,
            every: Duration::from_secs(10),
        }
    }
}

/// How a writer is opened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriterConfig {
    /// When a commit is acknowledged.
    pub durability: Durability,
    /// Records that may wait for the writer; when full, `commit` waits for room (records are never dropped).
    /// Also the most records one group writes. At least 1.
    pub queue_capacity: usize,
    /// Pseudonyms and sealing applied to every record.
    pub policy: RecordPolicy,
    /// A segment is closed once it holds at least this many bytes.
    pub segment_max_bytes: u64,
    /// A segment is closed at the first write after it is this old (counted from when this writer opened
    /// or created it).
    pub segment_max_age: Duration,
    /// Signed checkpoints, or none.
    pub checkpoints: Option<CheckpointPolicy>,
}

impl WriterConfig {
    /// The given durability, [`DEFAULT_QUEUE_CAPACITY`], default segments, no pseudonyms, no sealing, no
    /// checkpoints.
    pub fn new(durability: Durability) -> WriterConfig {
        WriterConfig {
            durability,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            policy: RecordPolicy::default(),
            segment_max_bytes: DEFAULT_SEGMENT_MAX_BYTES,
            segment_max_age: DEFAULT_SEGMENT_MAX_AGE,
            checkpoints: None,
        }
    }

    /// Sets the queue capacity.
    pub fn queue_capacity(mut self, capacity: usize) -> WriterConfig {
        self.queue_capacity = capacity;
        self
    }

    /// Sets the record policy.
    pub fn policy(mut self, policy: RecordPolicy) -> WriterConfig {
        self.policy = policy;
        self
    }

    /// Sets when segments rotate.
    pub fn segments(mut self, max_bytes: u64, max_age: Duration) -> WriterConfig {
        self.segment_max_bytes = max_bytes;
        self.segment_max_age = max_age;
        self
    }

    /// Turns on signed checkpoints.
    pub fn checkpoints(mut self, checkpoints: CheckpointPolicy) -> WriterConfig {
        self.checkpoints = Some(checkpoints);
        self
    }
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig::new(Durability::default())
    }
}

/// Where the chain stands: the `seq` the next record gets and the hash it links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// `seq` of the next record.
    pub next_seq: u64,
    /// `prev` of the next record: the hash of the last line.
    pub prev: ChainHash,
}

impl ChainHead {
    /// The head of an empty log.
    pub const GENESIS: ChainHead = ChainHead {
        next_seq: 0,
        prev: ChainHash::GENESIS,
    };
}

/// A durable record: where it landed in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Committed {
    /// The record's `seq`.
    pub seq: u64,
    /// SHA-256 of the record's line: the next record's `prev`, and the chain head until then.
    pub hash: ChainHash,
}

/// Counters for metrics, read without stopping the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditStats {
    /// Records written (and synced, under [`Durability::Fsync`]) since open.
    pub records_written: u64,
    /// Groups written successfully: each is one `write` call.
    pub groups: u64,
    /// Successful `sync_data` calls: one per group under [`Durability::Fsync`].
    pub syncs: u64,
    /// Groups refused because a write, sync or recovery failed.
    pub failed_groups: u64,
    /// False from a failure until the writer has recovered.
    pub available: bool,
    /// The last failure, as text.
    pub last_error: Option<String>,
}

/// Why a commit, or opening the log, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log cannot be written now; the record is not in the log. Fail closed: answer 503
    /// `audit_unavailable`. The writer retries on the next group.
    #[error("audit log unavailable: {0}")]
    Unavailable(#[source] Arc<io::Error>),
    /// The writer has shut down; treat as [`AuditError::Unavailable`].
    #[error("audit writer is shut down")]
    Closed,
    /// The record cannot be written in this format (bad digest, line over the size limit); a caller bug.
    #[error("audit record refused: {0}")]
    InvalidRecord(#[from] FormatError),
    /// Opening or recovering the log failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The newest file's last record cannot be parsed, so the chain cannot be continued from it; run
    /// [`verify_dir`](crate::verify_dir) to find the first bad record.
    #[error("audit log {} cannot be continued: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The configuration cannot work.
    #[error("invalid audit writer config: {0}")]
    Config(&'static str),
}

/// What the writer thread writes to: a file in production; anything that can fail on demand in tests.
///
/// Public so that tests outside this crate (and embedders) can point a writer at a sink that fails, such as
/// `/dev/full`.
pub trait Sink: Send + 'static {
    /// Appends all of `buf`, or fails (possibly after writing part of it).
    ///
    /// # Errors
    /// Any I/O error; the writer then cuts the sink back with [`Sink::truncate`].
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes what was written durable.
    ///
    /// # Errors
    /// Any I/O error.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the sink back to `len` bytes, so the next write lands at `len`.
    ///
    /// # Errors
    /// Any I/O error.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Syncs the current segment and starts a new, empty one whose first line will have `first_seq`;
    /// returns the name of the segment just closed. `Ok(None)`: this sink has one segment only (the
    /// default), keep writing to it.
    ///
    /// # Errors
    /// Any I/O error; the current segment stays in use.
    fn rotate(&mut self, first_seq: u64) -> io::Result<Option<String>> {
        let _ = first_seq;
        Ok(None)
    }
}

/// The sink of a log directory: one file per segment.
struct DirSink {
    dir: PathBuf,
    file: File,
    name: String,
}

impl Sink for DirSink {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.file, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        Sink::truncate(&mut self.file, len)
    }

    fn rotate(&mut self, first_seq: u64) -> io::Result<Option<String>> {
        self.file.sync_data()?;
        let name = format::file_name(first_seq);
        let path = self.dir.join(&name);
        let file = match create_file(&path) {
            Ok(f) => f,
            // A file left empty by a crash between its creation and its first write is taken over.
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists && fs::metadata(&path)?.len() == 0 =>
            {
                OpenOptions::new().read(true).append(true).open(&path)?
            }
            Err(e) => return Err(e),
        };
        sync_dir(&self.dir)?;
        self.file = file;
        Ok(Some(std::mem::replace(&mut self.name, name)))
    }
}

impl Sink for File {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(self, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        // Files opened for append ignore the position; others would write past the cut and leave a hole.
        self.seek(SeekFrom::Start(len)).map(drop)
    }
}

/// A cheap, cloneable handle to the audit writer. Dropping the last handle flushes what is queued, syncs,
/// and waits for the writer thread to finish.
#[derive(Clone)]
pub struct AuditWriter {
    inner: Arc<Inner>,
}

// Field order matters: `tx` drops first, which closes the queue, and only then `_thread` waits for the writer
// to drain it.
struct Inner {
    tx: mpsc::Sender<Msg>,
    policy: RecordPolicy,
    stats: Arc<Stats>,
    _thread: Joiner,
}

struct Joiner(Option<JoinHandle<()>>);

impl Drop for Joiner {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            if handle.join().is_err() {
                tracing::error!("audit writer thread panicked");
            }
        }
    }
}

enum Msg {
    Commit(Pending),
    /// Time passed: write a checkpoint if one is due.
    Tick,
    Shutdown(oneshot::Sender<Result<(), AuditError>>),
}

struct Pending {
    record: EncodedRecord,
    reply: oneshot::Sender<Result<Committed, AuditError>>,
}

#[derive(Default)]
struct Stats {
    records_written: AtomicU64,
    groups: AtomicU64,
    syncs: AtomicU64,
    failed_groups: AtomicU64,
    unavailable: AtomicBool,
    last_error: parking_lot::Mutex<Option<String>>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Opens (or creates) the log in `dir` with the default queue capacity. See [`AuditWriter::open_with`].
    ///
    /// # Errors
    /// As [`AuditWriter::open_with`].
    pub fn open(dir: &Path, durability: Durability) -> Result<AuditWriter, AuditError> {
        AuditWriter::open_with(dir, WriterConfig::new(durability))
    }

    /// Opens (or creates) the log in `dir` and starts the writer thread.
    ///
    /// Creates `dir` (mode 0700 on Unix) and, for a new log, `audit-00000000000000000000.jsonl` (mode 0600).
    /// For an existing log, continues the chain from the last complete line of the newest file; bytes after
    /// that line's `\n` are a torn write and are cut away with a warning. Only that last line is read: run
    /// [`verify_dir`](crate::verify_dir) to check the whole log.
    ///
    /// # Errors
    /// [`AuditError::Config`], [`AuditError::Io`], or [`AuditError::Corrupt`] when the last line is not a
    /// valid record.
    pub fn open_with(dir: &Path, config: WriterConfig) -> Result<AuditWriter, AuditError> {
        check_config(&config)?;
        create_dir(dir)?;
        let (sink, len, head, previous) = open_newest(dir)?;
        AuditWriter::start(sink, head, len, previous, config)
    }

    /// Starts a writer on any sink, continuing the chain from `head`, with `len` bytes already in the sink.
    ///
    /// Intended for tests (a sink that fails) and embedders; [`AuditWriter::open_with`] is the normal way in.
    ///
    /// # Errors
    /// [`AuditError::Config`], or [`AuditError::Io`] if the thread cannot be started.
    pub fn from_sink<S: Sink>(
        sink: S,
        head: ChainHead,
        len: u64,
        config: WriterConfig,
    ) -> Result<AuditWriter, AuditError> {
        AuditWriter::start(sink, head, len, None, config)
    }

    fn start<S: Sink>(
        sink: S,
        head: ChainHead,
        len: u64,
        previous: Option<String>,
        config: WriterConfig,
    ) -> Result<AuditWriter, AuditError> {
        check_config(&config)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let stats = Arc::new(Stats::default());
        if let Some(cp) = &config.checkpoints {
            start_ticker(tx.downgrade(), cp.every.min(Duration::from_secs(1)))?;
        }
        let state = State {
            sink,
            durability: config.durability,
            head,
            good_len: len,
            previous,
            segment_max_bytes: config.segment_max_bytes,
            segment_max_age: config.segment_max_age,
            segment_started: Instant::now(),
            checkpoints: config.checkpoints.clone(),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            force_checkpoint: false,
            poisoned: false,
            buf: Vec::new(),
            done: Vec::new(),
            stats: Arc::clone(&stats),
        };
        let max_group = config.queue_capacity;
        let thread = std::thread::Builder::new()
            .name("rampart-audit".into())
            .spawn(move || state.run(rx, max_group))
            .map_err(|source| AuditError::Io {
                what: "starting writer thread for",
                path: PathBuf::new(),
                source,
            })?;
        Ok(AuditWriter {
            inner: Arc::new(Inner {
                tx,
                policy: config.policy,
                stats,
                _thread: Joiner(Some(thread)),
            }),
        })
    }

    /// Appends `record` and waits until it is durable (per [`Durability`]); returns its place in the chain.
    ///
    /// When the queue is full this waits for room: backpressure, never a dropped record. The record is
    /// encoded on the caller's task, and a missing `time` is stamped from the wall clock now. If the future
    /// is dropped after the record was queued, the record is still written.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`] when the log cannot be written (fail closed), [`AuditError::Closed`] after
    /// shutdown, [`AuditError::InvalidRecord`] for a record the format cannot hold.
    pub async fn commit(&self, record: AuditRecord) -> Result<Committed, AuditError> {
        let record = format::encode(&record, OffsetDateTime::now_utc(), &self.inner.policy)?;
        self.send(record).await
    }

    /// Appends an event (an alert raised, an action taken) and waits until it is durable, as
    /// [`AuditWriter::commit`]. `fields` must be a JSON object; its `identity`, if any, is pseudonymized per
    /// the policy.
    ///
    /// # Errors
    /// As [`AuditWriter::commit`].
    pub async fn commit_event(
        &self,
        kind: EventKind,
        fields: &serde_json::Value,
    ) -> Result<Committed, AuditError> {
        let record =
            format::encode_event(kind, fields, OffsetDateTime::now_utc(), &self.inner.policy)?;
        self.send(record).await
    }

    /// The policy applied to records: callers that show identities elsewhere (alerts, logs) use it to show
    /// the same pseudonyms.
    pub fn policy(&self) -> &RecordPolicy {
        &self.inner.policy
    }

    async fn send(&self, record: EncodedRecord) -> Result<Committed, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Commit(Pending { record, reply }))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Writes everything queued before this call, syncs, and stops the writer; later commits, from any
    /// clone, get [`AuditError::Closed`]. Calling it again returns `Ok`.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`] if the final sync failed or the writer had not recovered from a failure.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let (reply, answer) = oneshot::channel();
        if self.inner.tx.send(Msg::Shutdown(reply)).await.is_err() {
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AuditStats {
        let s = &self.inner.stats;
        AuditStats {
            records_written: s.records_written.load(Ordering::Relaxed),
            groups: s.groups.load(Ordering::Relaxed),
            syncs: s.syncs.load(Ordering::Relaxed),
            failed_groups: s.failed_groups.load(Ordering::Relaxed),
            available: !s.unavailable.load(Ordering::Relaxed),
            last_error: s.last_error.lock().clone(),
        }
    }
}

fn check_config(config: &WriterConfig) -> Result<(), AuditError> {
    if config.queue_capacity == 0 {
        return Err(AuditError::Config("queue_capacity must be at least 1"));
    }
    if config.policy.store_input && config.policy.seal.is_none() {
        return Err(AuditError::Config(
            "storing raw inputs requires an encryption key: inputs are never written in clear",
        ));
    }
    if config.segment_max_bytes == 0 || config.segment_max_age.is_zero() {
        return Err(AuditError::Config(
            "segment_max_bytes and segment_max_age must be positive",
        ));
    }
    if let Some(cp) = &config.checkpoints {
        if cp.every_records == 0 || cp.every.is_zero() {
            return Err(AuditError::Config(
                "checkpoint every_records and every must be positive",
            ));
        }
    }
    Ok(())
}

/// Wakes the writer so a checkpoint is written even when no record arrives. Holds only a weak sender: when
/// the last handle drops, the queue closes as if the ticker did not exist, and the ticker ends at its next
/// tick.
fn start_ticker(tx: mpsc::WeakSender<Msg>, period: Duration) -> Result<(), AuditError> {
    std::thread::Builder::new()
        .name("rampart-audit-tick".into())
        .spawn(move || loop {
            std::thread::sleep(period);
            let Some(tx) = tx.upgrade() else { return };
            // A full queue means records are flowing, and their groups write the due checkpoint.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Msg::Tick) {
                return;
            }
        })
        .map(drop)
        .map_err(|source| AuditError::Io {
            what: "starting checkpoint timer for",
            path: PathBuf::new(),
            source,
        })
}

/// Everything the writer thread owns.
struct State<S> {
    sink: S,
    durability: Durability,
    head: ChainHead,
    /// Length of the current segment up to the end of the last acknowledged group: where a failed group is
    /// cut back to. Zero means the segment is empty and the next group starts with its header.
    good_len: u64,
    /// The segment before the current one, named in the current one's header.
    previous: Option<String>,
    segment_max_bytes: u64,
    segment_max_age: Duration,
    segment_started: Instant,
    checkpoints: Option<CheckpointPolicy>,
    /// Lines written since the last checkpoint.
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// Write a checkpoint with the next group whatever the counters say (shutdown).
    force_checkpoint: bool,
    /// A write or sync failed and the sink has not been cut back and synced since.
    poisoned: bool,
    buf: Vec<u8>,
    done: Vec<Committed>,
    stats: Arc<Stats>,
}

impl<S: Sink> State<S> {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>, max_group: usize) {
        let mut group = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut shutdown = None;
            let mut bytes = 0;
            match first {
                Msg::Commit(p) => {
                    bytes += p.record.max_line_len();
                    group.push(p);
                }
                Msg::Tick => {}
                Msg::Shutdown(reply) => shutdown = Some(reply),
            }
            // Take what is already queued, without waiting: that is the group one write and one sync cover.
            while shutdown.is_none() && group.len() < max_group && bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(Msg::Commit(p)) => {
                        bytes += p.record.max_line_len();
                        group.push(p);
                    }
                    Ok(Msg::Tick) => {}
                    Ok(Msg::Shutdown(reply)) => shutdown = Some(reply),
                    Err(_) => break,
                }
            }
            if !group.is_empty() || self.checkpoint_due(0) {
                self.write_group(&mut group);
            }
            if let Some(reply) = shutdown {
                // Records queued behind the shutdown are refused with `Closed` when `rx` drops.
                rx.close();
                let _ = reply.send(self.finish());
                return;
            }
        }
        let _ = self.finish();
    }

    /// Whether a checkpoint is due once `pending` more lines are written.
    fn checkpoint_due(&self, pending: u64) -> bool {
        let Some(cp) = &self.checkpoints else {
            return false;
        };
        let waiting = self.since_checkpoint + pending;
        waiting > 0
            && (self.force_checkpoint
                || waiting >= cp.every_records
                || self.last_checkpoint.elapsed() >= cp.every)
    }

    /// Starts a new segment when the current one is full or old. A failure here refuses the group like a
    /// failed write (the current segment stays in use and is retried next time).
    fn maybe_rotate(&mut self) -> io::Result<()> {
        if self.good_len == 0 {
            return Ok(());
        }
        if self.good_len < self.segment_max_bytes
            && self.segment_started.elapsed() < self.segment_max_age
        {
            return Ok(());
        }
        if let Some(closed) = self.sink.rotate(self.head.next_seq)? {
            tracing::info!(closed = %closed, next_seq = self.head.next_seq, "audit segment rotated");
            self.previous = Some(closed);
            self.good_len = 0;
            self.segment_started = Instant::now();
        }
        Ok(())
    }

    /// Frames one line at the head into the group's buffer.
    fn frame(&mut self, record: &EncodedRecord, head: &mut ChainHead) -> Committed {
        let start = self.buf.len();
        record.frame_into(head.next_seq, &head.prev, &mut self.buf);
        let hash = ChainHash::of_line(&self.buf[start..]);
        self.buf.push(b'\n');
        let committed = Committed {
            seq: head.next_seq,
            hash,
        };
        *head = ChainHead {
            next_seq: head.next_seq + 1,
            prev: hash,
        };
        committed
    }

    /// The writer's own lines: a segment header (for an empty segment) and a checkpoint, each time-stamped
    /// now.
    fn own_line(&mut self, head: &mut ChainHead, header: bool) -> Result<(), FormatError> {
        let now = OffsetDateTime::now_utc();
        let record = if header {
            let previous = match (&self.previous, head.next_seq) {
                (_, 0) => None,
                (Some(file), seq) => Some(PreviousSegment {
                    file: file.clone(),
                    last_seq: seq - 1,
                    last_hash: head.prev,
                }),
                (None, _) => None,
            };
            format::encode_segment(previous.as_ref(), now)?
        } else {
            let Some(cp) = &self.checkpoints else {
                return Ok(());
            };
            let time = format::format_time(now)?;
            let body = format::checkpoint_body(&cp.key, head.next_seq, &head.prev, &time);
            EncodedRecord::from_parts(time, body)
        };
        self.frame(&record, head);
        Ok(())
    }

    fn write_group(&mut self, group: &mut Vec<Pending>) {
        if self.poisoned {
            if let Err(e) = self.recover() {
                self.fail(group, e);
                return;
            }
        }
        if let Err(e) = self.maybe_rotate() {
            self.fail(group, e);
            return;
        }
        self.buf.clear();
        self.done.clear();
        let mut head = self.head;
        let header = self.good_len == 0;
        if header {
            if let Err(e) = self.own_line(&mut head, true) {
                self.fail(group, io::Error::other(e));
                return;
            }
        }
        for pending in group.iter() {
            let committed = self.frame(&pending.record, &mut head);
            self.done.push(committed);
        }
        let lines = head.next_seq - self.head.next_seq;
        let checkpoint = self.checkpoint_due(lines);
        if checkpoint {
            if let Err(e) = self.own_line(&mut head, false) {
                self.fail(group, io::Error::other(e));
                return;
            }
        }
        if let Err(e) = self.sink.write_all(&self.buf) {
            // Cut the partial group off now; if that fails too, the next group retries it before writing.
            self.poisoned = true;
            if self.sink.truncate(self.good_len).is_ok() {
                tracing::debug!(len = self.good_len, "audit log cut back after failed write");
            }
            self.fail(group, e);
            return;
        }
        if self.durability == Durability::Fsync {
            if let Err(e) = self.sink.sync_data() {
                // After a failed fsync the kernel may have dropped the pages; nothing of this group is
                // acknowledged, so remove it rather than leave records that might or might not survive.
                self.poisoned = true;
                let _ = self.sink.truncate(self.good_len);
                self.fail(group, e);
                return;
            }
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.head = head;
        self.good_len += self.buf.len() as u64;
        if checkpoint {
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        } else {
            self.since_checkpoint += lines;
        }
        self.stats
            .records_written
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        self.stats.groups.fetch_add(1, Ordering::Relaxed);
        for (pending, committed) in group.drain(..).zip(self.done.drain(..)) {
            // A caller that stopped waiting still has its record in the log.
            let _ = pending.reply.send(Ok(committed));
        }
    }

    fn recover(&mut self) -> io::Result<()> {
        self.sink.truncate(self.good_len)?;
        self.sink.sync_data()?;
        self.poisoned = false;
        self.stats.unavailable.store(false, Ordering::Relaxed);
        tracing::info!(next_seq = self.head.next_seq, "audit log writable again");
        Ok(())
    }

    fn fail(&mut self, group: &mut Vec<Pending>, error: io::Error) {
        tracing::error!(%error, records = group.len(), "audit write failed; refusing records (fail closed)");
        *self.stats.last_error.lock() = Some(error.to_string());
        self.stats.unavailable.store(true, Ordering::Relaxed);
        self.stats.failed_groups.fetch_add(1, Ordering::Relaxed);
        let error = Arc::new(error);
        for pending in group.drain(..) {
            let _ = pending
                .reply
                .send(Err(AuditError::Unavailable(Arc::clone(&error))));
        }
    }

    /// The last sync before the thread exits: under [`Durability::Buffered`] the only one.
    fn finish(&mut self) -> Result<(), AuditError> {
        if self.poisoned {
            self.recover()
                .map_err(|e| AuditError::Unavailable(Arc::new(e)))?;
        }
        if self.checkpoints.is_some() && self.since_checkpoint > 0 {
            // Sign what is there, so a clean shutdown leaves no unsigned tail.
            self.force_checkpoint = true;
            self.write_group(&mut Vec::new());
            if self.poisoned {
                return Err(AuditError::Unavailable(Arc::new(io::Error::other(
                    "final checkpoint could not be written",
                ))));
            }
        }
        self.sink
            .sync_data()
            .map_err(|e| AuditError::Unavailable(Arc::new(e)))
    }
}

fn create_dir(dir: &Path) -> Result<(), AuditError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        // Records name identities and models: only the gateway's user may read them.
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| AuditError::Io {
        what: "creating",
        path: dir.into(),
        source,
    })
}

/// Log files in `dir`, in record order.
pub(crate) fn list_log_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(first) = entry.file_name().to_str().and_then(format::parse_file_name) {
            files.push((first, entry.path()));
        }
    }
    files.sort_unstable_by_key(|(first, _)| *first);
    Ok(files)
}

/// Opens the segment to append to, repairing a torn tail, and finds where the chain stands; also returns the
/// name of the segment before it (for an empty newest segment's header).
fn open_newest(dir: &Path) -> Result<(DirSink, u64, ChainHead, Option<String>), AuditError> {
    let files = list_log_files(dir).map_err(io_err("listing", dir))?;
    let Some((first_seq, path)) = files.last().cloned() else {
        let name = format::file_name(0);
        let path = dir.join(&name);
        let file = create_file(&path).map_err(io_err("creating", &path))?;
        sync_dir(dir).map_err(io_err("syncing", dir))?;
        let sink = DirSink {
            dir: dir.into(),
            file,
            name,
        };
        return Ok((sink, 0, ChainHead::GENESIS, None));
    };
    let previous = files
        .iter()
        .rev()
        .nth(1)
        .map(|(seq, _)| format::file_name(*seq));
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .map_err(io_err("opening", &path))?;
    let len = repair_torn_tail(&mut file, &path)?;
    let head = match last_line(&mut file, &path, len)? {
        Some(line) => head_after(&line, &path, first_seq)?,
        None if first_seq == 0 => ChainHead::GENESIS,
        None => {
            // An empty newest file continues the chain of the file before it.
            let Some((_, prev_path)) = files.iter().rev().nth(1) else {
                return Err(AuditError::Corrupt {
                    path,
                    what: format!("starts at seq {first_seq} with no earlier file"),
                });
            };
            let mut prev_file = File::open(prev_path).map_err(io_err("opening", prev_path))?;
            let prev_len = prev_file
                .metadata()
                .map_err(io_err("reading", prev_path))?
                .len();
            let line = last_line(&mut prev_file, prev_path, prev_len)?.ok_or_else(|| {
                AuditError::Corrupt {
                    path: prev_path.clone(),
                    what: "no complete record".into(),
                }
            })?;
            head_after(&line, prev_path, 0)?
        }
    };
    if head.next_seq < first_seq || (len == 0 && head.next_seq != first_seq) {
        return Err(AuditError::Corrupt {
            path,
            what: format!(
                "next seq {} does not fit the file's first seq {first_seq}",
                head.next_seq
            ),
        });
    }
    let sink = DirSink {
        dir: dir.into(),
        file,
        name: format::file_name(first_seq),
    };
    Ok((sink, len, head, previous))
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> AuditError + 'a {
    move |source| AuditError::Io {
        what,
        path: path.into(),
        source,
    }
}

fn head_after(line: &[u8], path: &Path, first_seq: u64) -> Result<ChainHead, AuditError> {
    let entry = format::decode_line(line).map_err(|e| AuditError::Corrupt {
        path: path.into(),
        what: format!("last record: {e}"),
    })?;
    if entry.seq < first_seq || entry.seq == u64::MAX {
        return Err(AuditError::Corrupt {
            path: path.into(),
            what: format!("last record has seq {}", entry.seq),
        });
    }
    Ok(ChainHead {
        next_seq: entry.seq + 1,
        prev: ChainHash::of_line(line),
    })
}

fn create_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a new file's directory entry durable, so a crash cannot lose the file that holds acknowledged records.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Cuts bytes after the last `\n` (a write torn by a crash) and returns the file's new length.
fn repair_torn_tail(file: &mut File, path: &Path) -> Result<u64, AuditError> {
    let len = file.metadata().map_err(io_err("reading", path))?.len();
    let good = rfind_newline(file, len, len)
        .map_err(io_err("reading", path))?
        .map_or(0, |at| at + 1);
    if good < len {
        tracing::warn!(path = %path.display(), torn_bytes = len - good, "audit log ends in a torn write; cutting it away");
        file.set_len(good).map_err(io_err("truncating", path))?;
        file.sync_data().map_err(io_err("syncing", path))?;
    }
    Ok(good)
}

/// The last complete line (without `\n`) of a file whose `len` bytes end in `\n`, or `None` if it is empty.
fn last_line(file: &mut File, path: &Path, len: u64) -> Result<Option<Vec<u8>>, AuditError> {
    if len == 0 {
        return Ok(None);
    }
    let end = len - 1;
    let limit = MAX_LINE_BYTES as u64 + 1;
    let start = rfind_newline(file, end, limit)
        .map_err(io_err("reading", path))?
        .map_or(0, |at| at + 1);
    if end - start > MAX_LINE_BYTES as u64 {
        return Err(AuditError::Corrupt {
            path: path.into(),
            what: "last line is over the size limit".into(),
        });
    }
    let mut line = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start))
        .map_err(io_err("reading", path))?;
    file.read_exact(&mut line)
        .map_err(io_err("reading", path))?;
    Ok(Some(line))
}

/// Position of the last `\n` in `[end - limit, end)`, reading backwards in blocks.
fn rfind_newline(file: &mut File, end: u64, limit: u64) -> io::Result<Option<u64>> {
    const BLOCK: u64 = 64 * 1024;
    let floor = end.saturating_sub(limit);
    let mut hi = end;
    let mut block = vec![0; BLOCK as usize];
    while hi > floor {
        let lo = hi.saturating_sub(BLOCK).max(floor);
        let chunk = &mut block[..(hi - lo) as usize];
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}
