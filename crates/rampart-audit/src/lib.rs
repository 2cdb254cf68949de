//! # rampart-audit
//!
//! The tamper-evident audit log of every decision Rampart makes, pass or reject.
//!
//! **Owns**: the record format ([`format`](mod@format), written as a spec so outside tools can verify a log:
//! segments, decisions, signed checkpoints, events), the hash chain ([`chain`]), the durable writer with group
//! commit, segment rotation, checkpoints and fail-closed errors ([`writer`]), and the verifier and reader
//! ([`verify`]).
//!
//! **Must not**: decide anything about a request (the pipeline does, and hands over a finished
//! [`AuditRecord`]); write a secret (identities become keyed pseudonyms when configured, inputs are digests,
//! and a raw input is kept only sealed under an AES-256-GCM key); drop a record to keep up (the queue is
//! bounded and a full queue makes callers wait); acknowledge a record before it is written (and, by default,
//! synced).
//!
//! **Main types**:
//! - [`AuditRecord`]: what the request path hands over; [`LogEntry`]: a line as stored.
//! - [`AuditWriter`]: cloneable handle; [`AuditWriter::commit`] returns once the record is durable, or
//!   [`AuditError::Unavailable`], which the server answers with 503 `audit_unavailable`;
//!   [`AuditWriter::commit_event`] records alerts and incident actions the same way.
//! - [`WriterConfig`]: durability, segment size and age, [`RecordPolicy`] (pseudonyms, sealing, stored
//!   inputs), [`CheckpointPolicy`] (the ed25519 key and how often it signs).
//! - [`ChainHash`]: the SHA-256 link between lines.
//! - [`verify_dir_with`]: walks a log, in parallel per segment, and names the first line that does not
//!   verify; [`read_log`]: every line in order, for queries and exports.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_audit::AuditError> {
//! use rampart_audit::{AuditRecord, AuditWriter, Decision, Durability, Outcome};
//!
//! let writer = AuditWriter::open("/var/lib/rampart/audit".as_ref(), Durability::Fsync)?;
//! let committed = writer
//!     .commit(AuditRecord {
//!         time: None,
//!         request_id: "req-1".into(),
//!         identity: "alice".into(),
//!         model: "iris".into(),
//!         model_version: "3".into(),
//!         input_sha256: AuditRecord::input_digest(b"[[5.1,3.5,1.4,0.2]]"),
//!         decision: Decision { outcome: Outcome::Pass, reason: None, guard: None, status: 200 },
//!         flags: vec![],
//!         output: serde_json::json!({"label": "setosa"}),
//!         input: None,
//!         latency_us: 640,
//!     })
//!     .await?;
//! println!("record {} is durable, chain head {}", committed.seq, committed.hash);
//! writer.shutdown().await
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chain;
pub mod format;
pub mod verify;
pub mod writer;

pub use chain::ChainHash;
pub use format::{
    AuditRecord, Decision, DecisionEntry, EntryBody, EventKind, Flag, FormatError, Kind, LogEntry,
    Opened, Outcome, PreviousSegment, RecordPolicy,
};
pub use verify::{
    log_files, read_log, verify_dir, verify_dir_with, VerifyError, VerifyFailure, VerifyOptions,
    VerifyReport,
};
pub use writer::{
    AuditError, AuditStats, AuditWriter, ChainHead, CheckpointPolicy, Committed, Durability, Sink,
    WriterConfig,
};
