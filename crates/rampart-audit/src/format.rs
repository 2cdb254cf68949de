//! The audit record format, version 1, written as a spec so that a tool outside Rampart can verify a log.
//!
//! # Files
//!
//! A log is a directory. Records live in files named `audit-<N>.jsonl`, where `<N>` is the `seq` of the
//! file's first record, in decimal, zero-padded to 20 digits (`audit-00000000000000000000.jsonl`), so that
//! lexical order of names is record order. This version of the writer keeps one file per log; readers MUST
//! already accept several and walk them in order of `<N>`, the chain running on from one file into the next.
//!
//! # Lines
//!
//! A file is a sequence of lines. A line is one JSON object (RFC 8259) encoded as UTF-8, with no raw newline
//! inside it, terminated by a single `\n` (0x0A). A line is at most [`MAX_LINE_BYTES`] (1 MiB) long, not
//! counting the `\n`; a reader MUST refuse longer lines instead of buffering them. Bytes after the last `\n` of
//! a file are a torn write (a crash mid-append): they are not a record. The writer removes them when it
//! reopens the log; a verifier reports them.
//!
//! # Record (version 1)
//!
//! The writer emits the members in exactly this order, compact (no whitespace between tokens), and no others:
//!
//! | member | type | meaning |
//! |---|---|---|
//! | `v` | integer | format version, `1` |
//! | `seq` | integer, u64 | position in the log: the first record is `0`, each next one is `+1`, no gaps |
//! | `time` | string | decision time, RFC 3339 in UTC with exactly six fractional digits and `Z`: `2024-05-01T12:00:00.123456Z` |
//! | `request_id` | string | the id sent to the client in `X-Request-Id` |
//! | `identity` | string | who asked; a name or a pseudonym, never a credential |
//! | `model` | string | model name |
//! | `model_version` | string | model version that answered (or would have) |
//! | `input_sha256` | string | SHA-256 of the canonical input bytes, 64 lowercase hex digits |
//! | `decision` | object | `{"outcome", "reason", "guard", "status"}`, members in that order (below) |
//! | `flags` | array | findings that did not change the response: objects `{"guard": string, "reason": string}` |
//! | `output` | any JSON | the sanitized output sent to the client, or `null` when none was sent |
//! | `latency_us` | integer, u64 | time spent on the request before the audit commit, in microseconds |
//! | `prev` | string | link to the previous line, 64 lowercase hex digits (below) |
//!
//! `decision`: `outcome` is `"pass"`, `"reject"` or `"uncertain"` (held for review); `reason` is the stable
//! reason code (`"rate_limited"`) or `null`; `guard` is the id of the guard that decided, or `null`; `status`
//! is the HTTP status sent (integer, 100–599).
//!
//! `time` is supplied by the request path (the moment of decision) or, when it supplies none, stamped from the
//! wall clock when the record is handed to the writer. It is evidence, not an ordering: `seq` orders records,
//! and `time` may step backwards between neighbours (concurrent requests, clock adjustments).
//!
//! # Chain
//!
//! `prev` of the record with `seq = 0` is 64 `0` digits. `prev` of every other record is the SHA-256 of the
//! previous line's exact bytes as stored, without its `\n` (see [`crate::chain`]). A verifier hashes the bytes
//! it read; it never re-serializes a record, so it needs no canonical JSON. Changing, removing, inserting or
//! reordering any line but the last breaks a link or the `seq` sequence; the last line — and whole lines cut
//! from the end — are covered only by the head hash compared against an outside copy (signed checkpoints, a
//! later format addition).
//!
//! # Versions
//!
//! A reader reads `v` first and MUST refuse a record whose version it does not know rather than guess. Version
//! 1 readers refuse unknown members.

use serde::{Deserialize, Serialize};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::chain::{self, ChainHash};

#[cfg(test)]
mod tests;

/// The version this crate writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The longest line, in bytes without its `\n`, that the writer produces and a reader accepts.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The prefix and suffix of a log file's name; between them, the first record's `seq` in 20 digits.
const FILE_PREFIX: &str = "audit-";
const FILE_SUFFIX: &str = ".jsonl";
const FILE_SEQ_DIGITS: usize = 20;

/// RFC 3339, UTC, microseconds, `Z`: one spelling per instant, so equal times are equal strings.
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// How a request ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Served normally.
    Pass,
    /// Refused with an error status.
    Reject,
    /// Answered `uncertain` and held for human review by the confidence gate.
    Uncertain,
}

/// The decision recorded for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// How the request ended.
    pub outcome: Outcome,
    /// Stable reason code (`"rate_limited"`), or `None` for a plain pass.
    pub reason: Option<String>,
    /// Id of the guard that decided, or `None` when no guard did.
    pub guard: Option<String>,
    /// HTTP status sent to the client.
    pub status: u16,
}

/// A finding recorded without changing the response (a guard in observe mode, or a `Flag` verdict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// Id of the guard that flagged.
    pub guard: String,
    /// Stable reason code.
    pub reason: String,
}

/// What the request path hands to the writer: one record without the members the writer assigns
/// (`v`, `seq`, `prev`).
///
/// `time` is the decision time from the caller's clock; `None` means "now", read from the wall clock when
/// [`AuditWriter::commit`](crate::AuditWriter::commit) is called. Callers with an injected clock pass it, so
/// tests and replays produce exact records.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Decision time; `None` stamps the wall clock at commit.
    pub time: Option<OffsetDateTime>,
    /// The id sent to the client in `X-Request-Id`.
    pub request_id: String,
    /// Who asked: a name or a pseudonym, never a credential.
    pub identity: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// SHA-256 of the canonical input bytes, 64 lowercase hex digits; see [`AuditRecord::input_digest`].
    pub input_sha256: String,
    /// The decision.
    pub decision: Decision,
    /// Findings that did not change the response.
    pub flags: Vec<Flag>,
    /// The sanitized output sent to the client, or `Value::Null`.
    pub output: serde_json::Value,
    /// Time spent on the request before the audit commit, in microseconds.
    pub latency_us: u64,
}

impl AuditRecord {
    /// The `input_sha256` of some input bytes.
    pub fn input_digest(input: &[u8]) -> String {
        ChainHash::of_line(input).to_hex()
    }
}

/// One record as stored: every member of the format, in order. What a reader gets back from a line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// Format version.
    pub v: u32,
    /// Position in the log.
    pub seq: u64,
    /// Decision time, microsecond precision, UTC.
    #[serde(with = "time_micros")]
    pub time: OffsetDateTime,
    /// The id sent to the client.
    pub request_id: String,
    /// Who asked.
    pub identity: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// SHA-256 of the input, hex.
    pub input_sha256: String,
    /// The decision.
    pub decision: Decision,
    /// Findings that did not change the response.
    pub flags: Vec<Flag>,
    /// The sanitized output, or null.
    pub output: serde_json::Value,
    /// Latency before the commit, microseconds.
    pub latency_us: u64,
    /// Hash of the previous line.
    #[serde(with = "hash_hex")]
    pub prev: ChainHash,
}

/// A record that cannot be written, or a line that is not a version-1 record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// `input_sha256` is not 64 lowercase hex digits.
    #[error("input_sha256 is not 64 lowercase hex digits")]
    BadInputDigest,
    /// The line would be, or is, over [`MAX_LINE_BYTES`].
    #[error("line of {len} bytes is over the {MAX_LINE_BYTES}-byte limit")]
    LineTooLong {
        /// Length in bytes (for an encoded record, an upper bound).
        len: usize,
    },
    /// The time cannot be written as a four-digit UTC year.
    #[error("time is out of the representable range")]
    TimeOutOfRange,
    /// The line's `v` is not a version this crate reads.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u64),
    /// The line is not a well-formed version-1 record.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// A record encoded by the caller, waiting for the writer to give it a `seq` and a `prev`.
///
/// Encoding happens on the caller's task so the single writer thread only concatenates bytes.
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    time: String,
    /// The members from `request_id` to `latency_us`, serialized, without the surrounding braces.
    body: Vec<u8>,
}

/// The members between `time` and `prev`, borrowed, so serde writes them in the spec's order.
#[derive(Serialize)]
struct Body<'a> {
    request_id: &'a str,
    identity: &'a str,
    model: &'a str,
    model_version: &'a str,
    input_sha256: &'a str,
    decision: &'a Decision,
    flags: &'a [Flag],
    output: &'a serde_json::Value,
    latency_us: u64,
}

/// Longest possible framing around a body: `{"v":1,"seq":<20 digits>,"time":"<27>",` + `,"prev":"<64>"}`.
const MAX_FRAME_BYTES: usize = r#"{"v":1,"seq":,"time":"",,"prev":""}"#.len() + 20 + 27 + 64;

/// Encodes everything but `seq` and `prev`; `now` stands in for a missing `time`.
///
/// # Errors
/// [`FormatError::BadInputDigest`], [`FormatError::TimeOutOfRange`], or [`FormatError::LineTooLong`] when
/// the finished line could exceed [`MAX_LINE_BYTES`].
pub fn encode(record: &AuditRecord, now: OffsetDateTime) -> Result<EncodedRecord, FormatError> {
    if !chain::is_lower_hex_256(&record.input_sha256) {
        return Err(FormatError::BadInputDigest);
    }
    let time = format_time(record.time.unwrap_or(now))?;
    let body = Body {
        request_id: &record.request_id,
        identity: &record.identity,
        model: &record.model,
        model_version: &record.model_version,
        input_sha256: &record.input_sha256,
        decision: &record.decision,
        flags: &record.flags,
        output: &record.output,
        latency_us: record.latency_us,
    };
    let mut body = serde_json::to_vec(&body).map_err(|e| FormatError::Malformed(e.to_string()))?;
    // serde_json wrote `{...}` with at least one member; keep the members only.
    body.pop();
    body.remove(0);
    let max_len = body.len() + MAX_FRAME_BYTES;
    if max_len > MAX_LINE_BYTES {
        return Err(FormatError::LineTooLong { len: max_len });
    }
    Ok(EncodedRecord { time, body })
}

impl EncodedRecord {
    /// Appends the finished line, without `\n`, to `out`. The bytes equal serde_json's compact serialization
    /// of the matching [`LogEntry`] (a unit test holds that).
    pub fn frame_into(&self, seq: u64, prev: &ChainHash, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"v":"#);
        out.extend_from_slice(FORMAT_VERSION.to_string().as_bytes());
        out.extend_from_slice(br#","seq":"#);
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(br#","time":""#);
        // The time string is digits and `-:.TZ` only, so it needs no escaping.
        out.extend_from_slice(self.time.as_bytes());
        out.extend_from_slice(br#"","#);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(br#","prev":""#);
        out.extend_from_slice(prev.to_hex().as_bytes());
        out.extend_from_slice(br#""}"#);
    }

    /// The `time` member as it will be written.
    pub fn time(&self) -> &str {
        &self.time
    }

    /// An upper bound on the finished line's length, `\n` included.
    pub fn max_line_len(&self) -> usize {
        self.body.len() + MAX_FRAME_BYTES + 1
    }
}

/// Parses one line (without its `\n`) as a version-1 record.
///
/// Checks the size bound first, then `v`, then the full shape; it does not check the chain (that needs the
/// neighbours: see [`crate::verify`]).
///
/// # Errors
/// [`FormatError::LineTooLong`], [`FormatError::UnsupportedVersion`], [`FormatError::BadInputDigest`] or
/// [`FormatError::Malformed`].
pub fn decode_line(line: &[u8]) -> Result<LogEntry, FormatError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        v: u64,
    }
    if line.len() > MAX_LINE_BYTES {
        return Err(FormatError::LineTooLong { len: line.len() });
    }
    let version: VersionOnly =
        serde_json::from_slice(line).map_err(|e| FormatError::Malformed(e.to_string()))?;
    if version.v != u64::from(FORMAT_VERSION) {
        return Err(FormatError::UnsupportedVersion(version.v));
    }
    let entry: LogEntry =
        serde_json::from_slice(line).map_err(|e| FormatError::Malformed(e.to_string()))?;
    if !chain::is_lower_hex_256(&entry.input_sha256) {
        return Err(FormatError::BadInputDigest);
    }
    Ok(entry)
}

/// Formats a time the one way the format allows.
///
/// # Errors
/// [`FormatError::TimeOutOfRange`] if the instant has no four-digit UTC year.
pub fn format_time(t: OffsetDateTime) -> Result<String, FormatError> {
    let utc = t
        .checked_to_offset(UtcOffset::UTC)
        .ok_or(FormatError::TimeOutOfRange)?;
    if !(0..=9999).contains(&utc.year()) {
        return Err(FormatError::TimeOutOfRange);
    }
    utc.format(TIME_FORMAT)
        .map_err(|_| FormatError::TimeOutOfRange)
}

/// Parses a `time` member strictly: exactly the spelling [`format_time`] writes.
///
/// # Errors
/// [`FormatError::Malformed`] for any other spelling.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, FormatError> {
    PrimitiveDateTime::parse(s, TIME_FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| FormatError::Malformed(format!("time {s:?}: {e}")))
}

/// The file name of a log file whose first record has `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!(
        "{FILE_PREFIX}{first_seq:0width$}{FILE_SUFFIX}",
        width = FILE_SEQ_DIGITS
    )
}

/// The first `seq` encoded in a log file's name, or `None` if the name is not a log file's.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != FILE_SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

mod time_micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = super::format_time(*t).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_time(&text).map_err(serde::de::Error::custom)
    }
}

mod hash_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::chain::ChainHash;

    pub(super) fn serialize<S: Serializer>(h: &ChainHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChainHash, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ChainHash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}
