//! The audit record format, version 1, written as a spec so that a tool outside Rampart can verify a log.
//!
//! # Files
//!
//! A log is a directory. Records live in files named `audit-<N>.jsonl`, where `<N>` is the `seq` of the
//! file's first record, in decimal, zero-padded to 20 digits (`audit-00000000000000000000.jsonl`), so that
//! lexical order of names is record order. The writer starts a new file (a segment) when the current one
//! reaches a size or an age; readers walk them in order of `<N>`, the chain running on from one file into the next.
//!
//! # Line framing
//!
//! A file is a sequence of lines. A line is one JSON object (RFC 8259) encoded as UTF-8, with no raw newline
//! inside it, terminated by a single `\n` (0x0A). A line is at most [`MAX_LINE_BYTES`] (1 MiB) long, not
//! counting the `\n`; a reader MUST refuse longer lines instead of buffering them. Bytes after the last `\n` of
//! a file are a torn write (a crash mid-append): they are not a record. The writer removes them when it
//! reopens the log; a verifier reports them.
//!
//! # Records (version 2)
//!
//! Every line is one JSON object whose members the writer emits in exactly this order, compact (no
//! whitespace between tokens):
//!
//! ```text
//! {"v":2,"seq":<u64>,"time":"<time>","kind":"<kind>",<members of the kind>,"prev":"<64 hex>"}
//! ```
//!
//! | member | type | meaning |
//! |---|---|---|
//! | `v` | integer | format version, `2` |
//! | `seq` | integer, u64 | position in the log: the first line is `0`, each next one is `+1`, no gaps |
//! | `time` | string | RFC 3339 in UTC with exactly six fractional digits and `Z`: `2024-05-01T12:00:00.123456Z` |
//! | `kind` | string | `segment`, `decision`, `checkpoint`, `alert` or `action` (below) |
//! | `prev` | string | link to the previous line, 64 lowercase hex digits (see Chain) |
//!
//! ## `segment`: the first line of every file
//!
//! `"previous":null` in the first file; in every later file
//! `"previous":{"file":"<name of the file before>","last_seq":<its last seq>,"last_hash":"<hash of its last line>"}`.
//! `last_hash` equals this line's `prev` and `last_seq` is this line's `seq - 1`: a file names the one it
//! continues, so deleting a whole file breaks the next one's header as well as its link.
//!
//! ## `decision`: one request, pass or reject
//!
//! | member | type | meaning |
//! |---|---|---|
//! | `request_id` | string | the id sent to the client in `X-Request-Id` |
//! | `identity` | string | who asked: a name, or its keyed pseudonym `ps_<32 hex>` when pseudonymization is on (HMAC-SHA-256, see `rampart_crypto::pseudonym`); never a credential |
//! | `model` | string | model name |
//! | `model_version` | string | model version that answered (or would have) |
//! | `input_sha256` | string | SHA-256 of the canonical input bytes, 64 lowercase hex digits |
//! | `decision` | object | `{"outcome", "reason", "guard", "status"}`, members in that order (below) |
//! | `flags` | array | findings that did not change the response: objects `{"guard": string, "reason": string}` |
//! | `output` | any JSON | the sanitized output sent to the client; `null` when none was sent or when sealed |
//! | `sealed` | object or null | when encryption is on: `{"key":"<16 hex key id>","nonce":"<24 hex>","data":"<base64>"}`, else `null` |
//! | `latency_us` | integer, u64 | time spent on the request before the audit commit, in microseconds |
//!
//! `decision`: `outcome` is `"pass"`, `"reject"` or `"uncertain"` (held for review); `reason` is the stable
//! reason code (`"rate_limited"`) or `null`; `guard` is the id of the guard that decided, or `null`; `status`
//! is the HTTP status sent (integer, 100–599).
//!
//! `sealed.data` is AES-256-GCM (nonce `sealed.nonce`, standard base64 with padding, ciphertext then the
//! 16-byte tag) of the JSON object `{"output":<the output>,"input":<the raw input or null>}`, with associated
//! data `"rampart audit sealed v2\0"` followed by the record's `request_id` in UTF-8. The raw input is
//! stored only when the operator asks for it, and then only sealed. The chain covers the ciphertext, so a
//! log verifies without the key.
//!
//! ## `checkpoint`: a signed head
//!
//! `"key":"<16 hex: id of the ed25519 key>","sig":"<128 hex>"`. `sig` is an ed25519 signature (RFC 8032) over
//! the UTF-8 bytes of `"rampart audit checkpoint v2\n" ‖ seq ‖ "\n" ‖ prev ‖ "\n" ‖ time`, where `seq` (decimal),
//! `prev` (hex) and `time` are this line's own members. `prev` is the hash of the line before, which links
//! back to the first line: one good signature vouches for every line before it.
//!
//! ## `alert` and `action`: events
//!
//! `"alert":{…}` or `"action":{…}`: a JSON object describing an alert raised or an incident action taken
//! (its members are the server's; `identity`, when present, is pseudonymized like a decision's).
//!
//! `time` is the decision or event time. It is evidence, not an ordering: `seq` orders records, and `time`
//! may step backwards between neighbours (concurrent requests, clock adjustments).
//!
//! # Chain
//!
//! `prev` of the line with `seq = 0` is 64 `0` digits. `prev` of every other line is the SHA-256 of the
//! previous line's exact bytes as stored, without its `\n` (see [`crate::chain`]), across file boundaries. A
//! verifier hashes the bytes it read; it never re-serializes a record, so it needs no canonical JSON.
//! Changing, removing, inserting or reordering any line but the last breaks a link or the `seq` sequence;
//! lines after the last checkpoint are covered only by the next checkpoint (or a head hash kept elsewhere).
//!
//! # Versions
//!
//! A reader reads `v` first and MUST refuse a line whose version it does not know rather than guess. Version
//! 2 readers refuse unknown members and members that do not belong to the line's `kind`.

use std::borrow::Cow;

use base64::Engine as _;
use rampart_crypto::container::AeadKey;
use rampart_crypto::keyfile::KeyId;
use rampart_crypto::pseudonym::PseudonymKey;
use rampart_crypto::seal::SealedValue;
use rampart_crypto::sign::SigningKey;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::chain::{self, ChainHash};

#[cfg(test)]
mod tests;

/// The version this crate writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 2;

/// The longest line, in bytes without its `\n`, that the writer produces and a reader accepts.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The prefix and suffix of a log file's name; between them, the first record's `seq` in 20 digits.
const FILE_PREFIX: &str = "audit-";
const FILE_SUFFIX: &str = ".jsonl";
const FILE_SEQ_DIGITS: usize = 20;

/// Domain of the associated data of a sealed decision record.
const SEAL_DOMAIN: &[u8] = b"rampart audit sealed v2\0";

/// RFC 3339, UTC, microseconds, `Z`: one spelling per instant, so equal times are equal strings.
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The first line of a file.
    Segment,
    /// A request's decision.
    Decision,
    /// A signed head.
    Checkpoint,
    /// An alert raised.
    Alert,
    /// An incident action taken.
    Action,
}

impl Kind {
    /// The name written in `kind`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Decision => "decision",
            Kind::Checkpoint => "checkpoint",
            Kind::Alert => "alert",
            Kind::Action => "action",
        }
    }
}

/// The kinds a caller may commit besides decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An alert raised.
    Alert,
    /// An incident action taken.
    Action,
}

impl EventKind {
    const fn kind(self) -> Kind {
        match self {
            EventKind::Alert => Kind::Alert,
            EventKind::Action => Kind::Action,
        }
    }
}

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

/// What the request path hands to the writer: one decision without the members the writer assigns
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
    /// Who asked: a name, never a credential. Pseudonymized by the writer when its policy says so.
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
    /// The raw input, kept (sealed) only when the writer's policy stores inputs; dropped otherwise.
    pub input: Option<serde_json::Value>,
    /// Time spent on the request before the audit commit, in microseconds.
    pub latency_us: u64,
}

impl AuditRecord {
    /// The `input_sha256` of some input bytes.
    pub fn input_digest(input: &[u8]) -> String {
        ChainHash::of_line(input).to_hex()
    }
}

/// What the writer does to a record before it is stored: pseudonymize identities, seal outputs and inputs.
///
/// Applied on the caller's task, so the key work is spread over the request workers, not the writer thread.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecordPolicy {
    /// Replace identities by keyed pseudonyms.
    pub pseudonyms: Option<PseudonymKey>,
    /// Seal each decision's output (and input, when stored) under this key.
    pub seal: Option<std::sync::Arc<AeadKey>>,
    /// Keep the raw input, sealed. Requires `seal`.
    pub store_input: bool,
}

impl RecordPolicy {
    /// The identity as it will be stored.
    pub fn identity<'a>(&self, name: &'a str) -> Cow<'a, str> {
        match &self.pseudonyms {
            Some(key) => Cow::Owned(key.pseudonym(name)),
            None => Cow::Borrowed(name),
        }
    }
}

/// The previous file, as a segment header names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousSegment {
    /// Its file name.
    pub file: String,
    /// The `seq` of its last line.
    pub last_seq: u64,
    /// The hash of its last line.
    #[serde(with = "hash_hex")]
    pub last_hash: ChainHash,
}

/// A decision as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEntry {
    /// The id sent to the client.
    pub request_id: String,
    /// Who asked (a name or a pseudonym).
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
    /// The sanitized output, or null (none sent, or sealed).
    pub output: serde_json::Value,
    /// The sealed output and input, when encryption is on.
    pub sealed: Option<SealedValue>,
    /// Latency before the commit, microseconds.
    pub latency_us: u64,
}

/// What a sealed decision holds once opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opened {
    /// The sanitized output sent to the client.
    pub output: serde_json::Value,
    /// The raw input, when it was stored.
    pub input: Option<serde_json::Value>,
}

impl DecisionEntry {
    /// Opens the sealed part with `key`.
    ///
    /// # Errors
    /// [`rampart_crypto::seal::SealError`] as text when the key is wrong or the value was altered;
    /// [`FormatError::Malformed`] when there is nothing sealed or the plaintext is not the documented object.
    pub fn open(&self, key: &AeadKey) -> Result<Opened, FormatError> {
        let sealed = self
            .sealed
            .as_ref()
            .ok_or_else(|| FormatError::Malformed("record is not sealed".into()))?;
        let plain = key
            .open_sealed(&seal_aad(&self.request_id), sealed)
            .map_err(|e| FormatError::Malformed(e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|e| FormatError::Malformed(e.to_string()))
    }
}

/// What a line records, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryBody {
    /// First line of a file; `None` for the first file of the log.
    Segment(Option<PreviousSegment>),
    /// A request's decision.
    Decision(Box<DecisionEntry>),
    /// A signed head.
    Checkpoint {
        /// Id of the signing key.
        key: KeyId,
        /// The signature.
        sig: [u8; 64],
    },
    /// An alert: its members.
    Alert(serde_json::Map<String, serde_json::Value>),
    /// An incident action: its members.
    Action(serde_json::Map<String, serde_json::Value>),
}

/// One line as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Format version.
    pub v: u32,
    /// Position in the log.
    pub seq: u64,
    /// Record time, microsecond precision, UTC.
    pub time: OffsetDateTime,
    /// What it records.
    pub body: EntryBody,
    /// Hash of the previous line.
    pub prev: ChainHash,
}

impl LogEntry {
    /// The line's kind.
    pub fn kind(&self) -> Kind {
        match self.body {
            EntryBody::Segment(_) => Kind::Segment,
            EntryBody::Decision(_) => Kind::Decision,
            EntryBody::Checkpoint { .. } => Kind::Checkpoint,
            EntryBody::Alert(_) => Kind::Alert,
            EntryBody::Action(_) => Kind::Action,
        }
    }

    /// The decision, for a decision line.
    pub fn decision(&self) -> Option<&DecisionEntry> {
        match &self.body {
            EntryBody::Decision(d) => Some(d),
            _ => None,
        }
    }
}

/// A record that cannot be written, or a line that is not a version-2 record.
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
    /// The line is not a well-formed version-2 record.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// A record encoded by the caller, waiting for the writer to give it a `seq` and a `prev`.
///
/// Encoding happens on the caller's task so the single writer thread only concatenates bytes.
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    time: String,
    /// The members from `kind` to the last before `prev`, serialized, without the surrounding braces.
    body: Vec<u8>,
}

/// The members of a decision line between `kind` and `prev`, borrowed, in the spec's order.
#[derive(Serialize)]
struct DecisionBody<'a> {
    kind: Kind,
    request_id: &'a str,
    identity: &'a str,
    model: &'a str,
    model_version: &'a str,
    input_sha256: &'a str,
    decision: &'a Decision,
    flags: &'a [Flag],
    output: &'a serde_json::Value,
    sealed: Option<SealedJson>,
    latency_us: u64,
}

/// A sealed value as written: hex key id and nonce, base64 data.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedJson {
    key: String,
    nonce: String,
    data: String,
}

impl SealedJson {
    fn of(v: &SealedValue) -> SealedJson {
        SealedJson {
            key: v.key.to_string(),
            nonce: hex::encode(v.nonce),
            data: base64::engine::general_purpose::STANDARD.encode(&v.data),
        }
    }

    fn parse(&self) -> Result<SealedValue, FormatError> {
        let bad = |what: &str| FormatError::Malformed(format!("sealed.{what} is malformed"));
        let key = KeyId::parse(&self.key).ok_or_else(|| bad("key"))?;
        let mut nonce = [0u8; rampart_crypto::seal::NONCE_LEN];
        hex::decode_to_slice(&self.nonce, &mut nonce).map_err(|_| bad("nonce"))?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .map_err(|_| bad("data"))?;
        Ok(SealedValue { key, nonce, data })
    }
}

fn seal_aad(request_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_DOMAIN.len() + request_id.len());
    aad.extend_from_slice(SEAL_DOMAIN);
    aad.extend_from_slice(request_id.as_bytes());
    aad
}

/// Longest possible framing around a body: `{"v":2,"seq":<20 digits>,"time":"<27>",` + `,"prev":"<64>"}`.
const MAX_FRAME_BYTES: usize = r#"{"v":2,"seq":,"time":"",,"prev":""}"#.len() + 20 + 27 + 64;

fn members(value: &impl Serialize) -> Result<Vec<u8>, FormatError> {
    let mut body = serde_json::to_vec(value).map_err(|e| FormatError::Malformed(e.to_string()))?;
    // serde_json wrote `{...}` with at least one member; keep the members only.
    body.pop();
    body.remove(0);
    Ok(body)
}

fn finish(time: String, body: Vec<u8>) -> Result<EncodedRecord, FormatError> {
    let max_len = body.len() + MAX_FRAME_BYTES;
    if max_len > MAX_LINE_BYTES {
        return Err(FormatError::LineTooLong { len: max_len });
    }
    Ok(EncodedRecord { time, body })
}

/// Encodes a decision, applying `policy`, with everything but `seq` and `prev`; `now` stands in for a
/// missing `time`.
///
/// # Errors
/// [`FormatError::BadInputDigest`], [`FormatError::TimeOutOfRange`], or [`FormatError::LineTooLong`] when
/// the finished line could exceed [`MAX_LINE_BYTES`].
pub fn encode(
    record: &AuditRecord,
    now: OffsetDateTime,
    policy: &RecordPolicy,
) -> Result<EncodedRecord, FormatError> {
    if !chain::is_lower_hex_256(&record.input_sha256) {
        return Err(FormatError::BadInputDigest);
    }
    let time = format_time(record.time.unwrap_or(now))?;
    let identity = policy.identity(&record.identity);
    let null = serde_json::Value::Null;
    let (output, sealed) = match &policy.seal {
        Some(key) => {
            let opened = Opened {
                output: record.output.clone(),
                input: record.input.clone().filter(|_| policy.store_input),
            };
            let plain =
                serde_json::to_vec(&opened).map_err(|e| FormatError::Malformed(e.to_string()))?;
            let sealed = key.seal(&seal_aad(&record.request_id), &plain);
            (&null, Some(SealedJson::of(&sealed)))
        }
        None => (&record.output, None),
    };
    let body = members(&DecisionBody {
        kind: Kind::Decision,
        request_id: &record.request_id,
        identity: &identity,
        model: &record.model,
        model_version: &record.model_version,
        input_sha256: &record.input_sha256,
        decision: &record.decision,
        flags: &record.flags,
        output,
        sealed,
        latency_us: record.latency_us,
    })?;
    finish(time, body)
}

/// Encodes an event (`alert` or `action`): `fields` must be a JSON object; its `identity` member, when a
/// string, is pseudonymized per `policy`.
///
/// # Errors
/// [`FormatError::Malformed`] when `fields` is not an object, [`FormatError::TimeOutOfRange`],
/// [`FormatError::LineTooLong`].
pub fn encode_event(
    kind: EventKind,
    fields: &serde_json::Value,
    time: OffsetDateTime,
    policy: &RecordPolicy,
) -> Result<EncodedRecord, FormatError> {
    let serde_json::Value::Object(map) = fields else {
        return Err(FormatError::Malformed(format!(
            "{} must be a JSON object",
            kind.kind().as_str()
        )));
    };
    let mut map = map.clone();
    if let Some(serde_json::Value::String(name)) = map.get("identity") {
        let stored = policy.identity(name).into_owned();
        map.insert("identity".into(), serde_json::Value::String(stored));
    }
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(b"\"kind\":\"");
    body.extend_from_slice(kind.kind().as_str().as_bytes());
    body.extend_from_slice(b"\",\"");
    body.extend_from_slice(kind.kind().as_str().as_bytes());
    body.extend_from_slice(b"\":");
    serde_json::to_writer(&mut body, &map).map_err(|e| FormatError::Malformed(e.to_string()))?;
    finish(format_time(time)?, body)
}

/// The header line of a file: the writer's, never a caller's.
pub(crate) fn encode_segment(
    previous: Option<&PreviousSegment>,
    time: OffsetDateTime,
) -> Result<EncodedRecord, FormatError> {
    #[derive(Serialize)]
    struct Body<'a> {
        kind: Kind,
        previous: Option<&'a PreviousSegment>,
    }
    let body = members(&Body {
        kind: Kind::Segment,
        previous,
    })?;
    finish(format_time(time)?, body)
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_message(seq: u64, prev: &ChainHash, time: &str) -> Vec<u8> {
    format!("rampart audit checkpoint v2\n{seq}\n{prev}\n{time}").into_bytes()
}

/// The members of a checkpoint line, signed for its place in the chain.
pub(crate) fn checkpoint_body(key: &SigningKey, seq: u64, prev: &ChainHash, time: &str) -> Vec<u8> {
    let sig = key.sign(&checkpoint_message(seq, prev, time));
    format!(
        r#""kind":"checkpoint","key":"{}","sig":"{}""#,
        key.id(),
        hex::encode(sig)
    )
    .into_bytes()
}

impl EncodedRecord {
    /// A record from a finished time and body (the writer's own lines).
    pub(crate) fn from_parts(time: String, body: Vec<u8>) -> EncodedRecord {
        EncodedRecord { time, body }
    }

    /// Appends the finished line, without `\n`, to `out`.
    pub fn frame_into(&self, seq: u64, prev: &ChainHash, out: &mut Vec<u8>) {
        use std::io::Write as _;
        out.extend_from_slice(br#"{"v":"#);
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{FORMAT_VERSION}");
        out.extend_from_slice(br#","seq":"#);
        let _ = write!(out, "{seq}");
        out.extend_from_slice(br#","time":""#);
        // The time string is digits and `-:.TZ` only, so it needs no escaping.
        out.extend_from_slice(self.time.as_bytes());
        out.extend_from_slice(br#"","#);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(br#","prev":""#);
        prev.write_hex(out);
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

/// Every member any kind may have; which ones a line must and must not have is checked per kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine<'a> {
    v: u32,
    seq: u64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    kind: Kind,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    input_sha256: Option<String>,
    #[serde(default)]
    decision: Option<Decision>,
    #[serde(default)]
    flags: Option<Vec<Flag>>,
    #[serde(default, deserialize_with = "present")]
    output: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    sealed: Option<Option<SealedJson>>,
    #[serde(default)]
    latency_us: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    previous: Option<Option<PreviousSegment>>,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sig: Option<Cow<'a, str>>,
    #[serde(default)]
    alert: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    action: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow)]
    prev: Cow<'a, str>,
}

/// A member that is present, even as `null` (absent stays `None` through `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn missing(kind: Kind, member: &str) -> FormatError {
    FormatError::Malformed(format!("{} line without `{member}`", kind.as_str()))
}

impl RawLine<'_> {
    /// Names of the members that are present, for the "does not belong to this kind" check.
    fn present_members(&self) -> [(&'static str, bool); 15] {
        [
            ("request_id", self.request_id.is_some()),
            ("identity", self.identity.is_some()),
            ("model", self.model.is_some()),
            ("model_version", self.model_version.is_some()),
            ("input_sha256", self.input_sha256.is_some()),
            ("decision", self.decision.is_some()),
            ("flags", self.flags.is_some()),
            ("output", self.output.is_some()),
            ("sealed", self.sealed.is_some()),
            ("latency_us", self.latency_us.is_some()),
            ("previous", self.previous.is_some()),
            ("key", self.key.is_some()),
            ("sig", self.sig.is_some()),
            ("alert", self.alert.is_some()),
            ("action", self.action.is_some()),
        ]
    }

    fn body(self) -> Result<EntryBody, FormatError> {
        let kind = self.kind;
        check_members(kind, &self.present_members())?;
        match kind {
            Kind::Segment => Ok(EntryBody::Segment(
                self.previous.ok_or_else(|| missing(kind, "previous"))?,
            )),
            Kind::Checkpoint => {
                let key = self.key.ok_or_else(|| missing(kind, "key"))?;
                let sig = self.sig.ok_or_else(|| missing(kind, "sig"))?;
                let key = KeyId::parse(&key)
                    .ok_or_else(|| FormatError::Malformed("checkpoint key is not 16 hex".into()))?;
                let mut bytes = [0u8; 64];
                hex::decode_to_slice(sig.as_bytes(), &mut bytes)
                    .map_err(|_| FormatError::Malformed("checkpoint sig is not 128 hex".into()))?;
                Ok(EntryBody::Checkpoint { key, sig: bytes })
            }
            Kind::Alert => Ok(EntryBody::Alert(
                self.alert.ok_or_else(|| missing(kind, "alert"))?,
            )),
            Kind::Action => Ok(EntryBody::Action(
                self.action.ok_or_else(|| missing(kind, "action"))?,
            )),
            Kind::Decision => {
                let input_sha256 = self
                    .input_sha256
                    .ok_or_else(|| missing(kind, "input_sha256"))?;
                if !chain::is_lower_hex_256(&input_sha256) {
                    return Err(FormatError::BadInputDigest);
                }
                let sealed = match self.sealed.ok_or_else(|| missing(kind, "sealed"))? {
                    Some(s) => Some(s.parse()?),
                    None => None,
                };
                Ok(EntryBody::Decision(Box::new(DecisionEntry {
                    request_id: self.request_id.ok_or_else(|| missing(kind, "request_id"))?,
                    identity: self.identity.ok_or_else(|| missing(kind, "identity"))?,
                    model: self.model.ok_or_else(|| missing(kind, "model"))?,
                    model_version: self
                        .model_version
                        .ok_or_else(|| missing(kind, "model_version"))?,
                    input_sha256,
                    decision: self.decision.ok_or_else(|| missing(kind, "decision"))?,
                    flags: self.flags.ok_or_else(|| missing(kind, "flags"))?,
                    output: self.output.ok_or_else(|| missing(kind, "output"))?,
                    sealed,
                    latency_us: self.latency_us.ok_or_else(|| missing(kind, "latency_us"))?,
                })))
            }
        }
    }
}

/// The members a line of `kind` may have besides `v`, `seq`, `time`, `kind` and `prev`.
const fn allowed_members(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Segment => &["previous"],
        Kind::Checkpoint => &["key", "sig"],
        Kind::Alert => &["alert"],
        Kind::Action => &["action"],
        Kind::Decision => &[
            "request_id",
            "identity",
            "model",
            "model_version",
            "input_sha256",
            "decision",
            "flags",
            "output",
            "sealed",
            "latency_us",
        ],
    }
}

/// Refuses a member that does not belong to `kind` and a member `kind` requires but lacks.
fn check_members(kind: Kind, present: &[(&'static str, bool)]) -> Result<(), FormatError> {
    let allowed = allowed_members(kind);
    for (name, is_present) in present {
        if *is_present && !allowed.contains(name) {
            return Err(FormatError::Malformed(format!(
                "`{name}` does not belong in a {} line",
                kind.as_str()
            )));
        }
        if !*is_present && allowed.contains(name) {
            return Err(missing(kind, name));
        }
    }
    Ok(())
}

/// What the verifier needs from a line — its place in the chain and, for headers and checkpoints, their
/// members — read without building the record: the other members are checked for presence and skipped.
#[derive(Debug)]
pub(crate) struct Link<'a> {
    pub(crate) seq: u64,
    pub(crate) time: Cow<'a, str>,
    pub(crate) kind: Kind,
    pub(crate) prev: ChainHash,
    pub(crate) previous: Option<PreviousSegment>,
    pub(crate) checkpoint: Option<(KeyId, [u8; 64])>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkLine<'a> {
    v: u32,
    seq: u64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    kind: Kind,
    #[serde(default, deserialize_with = "present")]
    request_id: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    identity: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    model: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    model_version: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    input_sha256: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    decision: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    flags: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    output: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    sealed: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    latency_us: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    previous: Option<Option<PreviousSegment>>,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sig: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    alert: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    action: Option<IgnoredAny>,
    #[serde(borrow)]
    prev: Cow<'a, str>,
}

/// Reads a line's link (see [`Link`]); decisions and events are checked for shape, not decoded.
pub(crate) fn decode_link(line: &[u8]) -> Result<Link<'_>, FormatError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(FormatError::LineTooLong { len: line.len() });
    }
    let raw: LinkLine<'_> = serde_json::from_slice(line).map_err(|e| {
        // The full decoder names an unknown version and every shape error the same way.
        match decode_line(line) {
            Err(full) => full,
            Ok(_) => FormatError::Malformed(e.to_string()),
        }
    })?;
    if raw.v != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(u64::from(raw.v)));
    }
    check_time_shape(&raw.time)?;
    check_members(
        raw.kind,
        &[
            ("request_id", raw.request_id.is_some()),
            ("identity", raw.identity.is_some()),
            ("model", raw.model.is_some()),
            ("model_version", raw.model_version.is_some()),
            ("input_sha256", raw.input_sha256.is_some()),
            ("decision", raw.decision.is_some()),
            ("flags", raw.flags.is_some()),
            ("output", raw.output.is_some()),
            ("sealed", raw.sealed.is_some()),
            ("latency_us", raw.latency_us.is_some()),
            ("previous", raw.previous.is_some()),
            ("key", raw.key.is_some()),
            ("sig", raw.sig.is_some()),
            ("alert", raw.alert.is_some()),
            ("action", raw.action.is_some()),
        ],
    )?;
    let prev =
        ChainHash::from_hex(&raw.prev).map_err(|e| FormatError::Malformed(format!("prev: {e}")))?;
    let checkpoint = match (&raw.key, &raw.sig) {
        (Some(key), Some(sig)) => {
            let key = KeyId::parse(key)
                .ok_or_else(|| FormatError::Malformed("checkpoint key is not 16 hex".into()))?;
            let mut bytes = [0u8; 64];
            hex::decode_to_slice(sig.as_bytes(), &mut bytes)
                .map_err(|_| FormatError::Malformed("checkpoint sig is not 128 hex".into()))?;
            Some((key, bytes))
        }
        _ => None,
    };
    Ok(Link {
        seq: raw.seq,
        time: raw.time,
        kind: raw.kind,
        prev,
        previous: raw.previous.flatten(),
        checkpoint,
    })
}

/// The spelling [`format_time`] writes, checked byte by byte (the verifier's hot path; [`parse_time`] is
/// the full parse).
fn check_time_shape(t: &str) -> Result<(), FormatError> {
    const SHAPE: &[u8; 27] = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    let ok = t.len() == SHAPE.len()
        && t.bytes().zip(SHAPE.iter()).all(|(b, s)| match s {
            b'd' => b.is_ascii_digit(),
            other => b == *other,
        });
    if ok {
        Ok(())
    } else {
        Err(FormatError::Malformed(format!(
            "time {t:?} is not RFC 3339 UTC with six fractional digits"
        )))
    }
}

/// Parses one line (without its `\n`) as a version-2 record.
///
/// Checks the size bound first, then `v`, then the full shape for the line's kind; it does not check the
/// chain or signatures (that needs the neighbours and a key: see [`crate::verify`]).
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
    let raw: RawLine<'_> = match serde_json::from_slice(line) {
        Ok(raw) => raw,
        Err(e) => {
            // Name an unknown version before any shape error: a newer log is not a corrupt one.
            if let Ok(version) = serde_json::from_slice::<VersionOnly>(line) {
                if version.v != u64::from(FORMAT_VERSION) {
                    return Err(FormatError::UnsupportedVersion(version.v));
                }
            }
            return Err(FormatError::Malformed(e.to_string()));
        }
    };
    if raw.v != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(u64::from(raw.v)));
    }
    let seq = raw.seq;
    let time = parse_time(&raw.time)?;
    let prev =
        ChainHash::from_hex(&raw.prev).map_err(|e| FormatError::Malformed(format!("prev: {e}")))?;
    let v = raw.v;
    let body = raw.body()?;
    Ok(LogEntry {
        v,
        seq,
        time,
        body,
        prev,
    })
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
