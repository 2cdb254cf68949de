//! Lineage: signed provenance statements, an append-only store, the chain from an artifact back to its
//! datasets, and its verification.
//!
//! # Statements
//!
//! Each statement is an in-toto Statement v1 (<https://github.com/in-toto/attestation>) whose predicate
//! (`predicateType` = [`PREDICATE_TYPE`]) records one step, SLSA-style:
//!
//! ```json
//! { "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [ { "name": "model.onnx", "digest": { "sha256": "<hex>" } } ],
//!   "predicateType": "rampart.lineage/v1",
//!   "predicate": { "step": "train", "params": { "epochs": "10" },
//!                  "materials": [ { "name": "data/manifest.json", "digest": { "sha256": "<hex>" } } ],
//!                  "time": "2026-11-25T12:00:00Z", "who": "alice", "prev": "<hex>" } }
//! ```
//!
//! # Store
//!
//! A JSON-lines file, one DSSE-style envelope per line (<https://github.com/secure-systems-lab/dsse>),
//! the payload kept as a JSON string rather than base64 so the store stays readable:
//! `{"payloadType": "application/vnd.in-toto+json", "payload": "<statement>", "signatures": [{"keyid", "sig"}]}`.
//! The signature is ed25519 over DSSE's pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`. Each statement's `prev` is the SHA-256 of the
//! previous line (64 zeros for the first), and is signed with it, so deleting, reordering or editing a line
//! breaks the chain at that line. Lines are only ever appended.
//!
//! # Verification
//!
//! Every line parses, links to its predecessor and carries a valid signature by a trusted key; every file
//! named that exists on disk has the digest of its latest mention; and every material that some statement
//! produced was produced with that digest (otherwise the link to its producer is broken).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rampart_crypto::keyfile::KeyId;
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::sha256_file;

/// The statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of Rampart's lineage statements.
pub const PREDICATE_TYPE: &str = "rampart.lineage/v1";
/// The DSSE payload type.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// How deep `show` follows a chain (a cycle cannot occur with digests, but a store is input).
const MAX_DEPTH: usize = 64;
/// One store line is one statement: larger is not one.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Why the lineage store cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineageError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A store line is not a statement envelope.
    #[error("{path}:{line}: {reason}")]
    Format {
        /// The store.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No statement has the artifact as its subject.
    #[error("no lineage recorded for {name} (sha256 {digest}): the chain is broken here")]
    NoLineage {
        /// The artifact.
        name: String,
        /// Its digest.
        digest: String,
    },
    /// A step needs an output.
    #[error("a statement needs at least one --output")]
    NoSubject,
}

/// A named artifact and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDescriptor {
    /// Path as recorded (relative to where the command ran).
    pub name: String,
    /// `{"sha256": hex}`.
    pub digest: DigestSet,
}

/// Digests by algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    /// SHA-256, hex.
    pub sha256: String,
}

/// The step a statement records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// What was done (`ingest`, `train`, `register`, …).
    pub step: String,
    /// Its parameters, in the order given.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The inputs.
    pub materials: Vec<ResourceDescriptor>,
    /// RFC 3339.
    pub time: String,
    /// Who ran it.
    pub who: String,
    /// SHA-256 of the previous store line, hex (64 zeros for the first).
    pub prev: String,
}

/// An in-toto statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// The outputs.
    pub subject: Vec<ResourceDescriptor>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The step.
    pub predicate: Predicate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeSignature {
    keyid: String,
    sig: String,
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &str) -> Vec<u8> {
    format!(
        "DSSEv1 {} {payload_type} {} {payload}",
        payload_type.len(),
        payload.len()
    )
    .into_bytes()
}

/// One step to record: paths of outputs and inputs (hashed when recorded), the step and its parameters.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// What was done.
    pub step: String,
    /// Inputs (files).
    pub inputs: Vec<PathBuf>,
    /// Outputs (files).
    pub outputs: Vec<PathBuf>,
    /// `k=v` parameters, in order.
    pub params: Vec<(String, String)>,
    /// Who ran it.
    pub who: String,
}

/// One parsed store line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// The statement.
    pub statement: Statement,
    /// The signer's key id, as recorded.
    pub key_id: String,
    envelope: Envelope,
    raw_hash: [u8; 32],
}

/// The lineage store: an append-only JSON-lines file.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// The statements, in order.
    pub entries: Vec<Entry>,
}

fn describe(path: &Path) -> Result<ResourceDescriptor, LineageError> {
    Ok(ResourceDescriptor {
        name: path.to_string_lossy().into_owned(),
        digest: DigestSet {
            sha256: sha256_file(path).map_err(|source| LineageError::Io {
                path: path.to_owned(),
                source,
            })?,
        },
    })
}

impl Store {
    /// Reads the store; a missing file is an empty store.
    ///
    /// # Errors
    /// [`LineageError::Io`], [`LineageError::Format`] naming the line.
    pub fn open(path: &Path) -> Result<Self, LineageError> {
        let io = |source| LineageError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.to_owned(),
                    entries: Vec::new(),
                })
            }
            Err(e) => return Err(io(e)),
        };
        let mut reader = std::io::BufReader::new(file);
        let mut entries = Vec::new();
        let mut raw = String::new();
        for line in 1.. {
            raw.clear();
            let n = std::io::Read::take(&mut reader, MAX_LINE_BYTES)
                .read_line(&mut raw)
                .map_err(io)?;
            if n == 0 {
                break;
            }
            let format = |reason: String| LineageError::Format {
                path: path.to_owned(),
                line,
                reason,
            };
            let text = raw.strip_suffix('\n').ok_or_else(|| {
                format("unterminated or over-long line (the store was truncated or edited)".into())
            })?;
            let envelope: Envelope =
                serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
            let statement: Statement = serde_json::from_str(&envelope.payload)
                .map_err(|e| format(format!("payload: {e}")))?;
            let key_id = envelope
                .signatures
                .first()
                .map(|s| s.keyid.clone())
                .ok_or_else(|| format("unsigned statement".into()))?;
            entries.push(Entry {
                line,
                statement,
                key_id,
                envelope,
                raw_hash: Sha256::digest(text.as_bytes()).into(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// Hashes the step's files, signs the statement and appends it (fsynced); returns its line number.
    ///
    /// # Errors
    /// [`LineageError::NoSubject`], [`LineageError::Io`] for a file that cannot be hashed or the store.
    pub fn record(&mut self, step: &Step, key: &SigningKey) -> Result<usize, LineageError> {
        if step.outputs.is_empty() {
            return Err(LineageError::NoSubject);
        }
        let subject = step
            .outputs
            .iter()
            .map(|p| describe(p))
            .collect::<Result<_, _>>()?;
        let materials = step
            .inputs
            .iter()
            .map(|p| describe(p))
            .collect::<Result<_, _>>()?;
        let prev = self
            .entries
            .last()
            .map_or_else(|| "0".repeat(64), |e| hex::encode(e.raw_hash));
        let statement = Statement {
            type_: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate: Predicate {
                step: step.step.clone(),
                params: step
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
                materials,
                time: time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                who: step.who.clone(),
                prev,
            },
        };
        let io = |source| LineageError::Io {
            path: self.path.clone(),
            source,
        };
        let payload = serde_json::to_string(&statement).map_err(|e| io(e.into()))?;
        let sig = key.sign(&pae(PAYLOAD_TYPE, &payload));
        let envelope = Envelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload,
            signatures: vec![EnvelopeSignature {
                keyid: key.id().to_string(),
                sig: hex::encode(sig),
            }],
        };
        let text = serde_json::to_string(&envelope).map_err(|e| io(e.into()))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(format!("{text}\n").as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        let line = self.entries.len() + 1;
        self.entries.push(Entry {
            line,
            statement,
            key_id: key.id().to_string(),
            envelope,
            raw_hash: Sha256::digest(text.as_bytes()).into(),
        });
        Ok(line)
    }

    /// The latest statement whose subject has `digest`.
    fn producer(&self, digest: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| {
            e.statement
                .subject
                .iter()
                .any(|s| s.digest.sha256 == digest)
        })
    }

    /// The chain from the artifact at `path` back to its sources.
    ///
    /// # Errors
    /// [`LineageError::Io`] hashing it, [`LineageError::NoLineage`] when no statement produced it.
    pub fn chain(&self, path: &Path) -> Result<Node, LineageError> {
        let d = describe(path)?;
        if self.producer(&d.digest.sha256).is_none() {
            return Err(LineageError::NoLineage {
                name: d.name,
                digest: d.digest.sha256,
            });
        }
        Ok(self.node(&d, 0))
    }

    fn node(&self, d: &ResourceDescriptor, depth: usize) -> Node {
        let producer = self
            .producer(&d.digest.sha256)
            .filter(|_| depth < MAX_DEPTH);
        Node {
            name: d.name.clone(),
            sha256: d.digest.sha256.clone(),
            produced_by: producer.map(|e| Producer {
                line: e.line,
                step: e.statement.predicate.step.clone(),
                params: e.statement.predicate.params.clone(),
                time: e.statement.predicate.time.clone(),
                who: e.statement.predicate.who.clone(),
                key_id: e.key_id.clone(),
            }),
            inputs: producer.map_or_else(Vec::new, |e| {
                e.statement
                    .predicate
                    .materials
                    .iter()
                    .map(|m| self.node(m, depth + 1))
                    .collect()
            }),
        }
    }

    /// Checks every line's link and signature, every file's digest, every material's link to its
    /// producer. Files are resolved relative to `base` (where `record` ran).
    pub fn verify(&self, keys: &[VerifyingKey], base: &Path) -> Report {
        let mut r = Report::default();
        let mut prev = [0u8; 32];
        let mut latest: HashMap<&str, (&str, usize)> = HashMap::new();
        let mut produced: HashMap<&str, HashSet<&str>> = HashMap::new();
        for e in &self.entries {
            r.statements += 1;
            let mut finding = |message: String| {
                r.findings.push(Finding {
                    line: e.line,
                    message,
                })
            };
            if e.statement.predicate.prev != hex::encode(prev) {
                finding("chain broken: `prev` is not the hash of the previous line (a line was deleted, \
                         reordered or edited)".into());
            }
            prev = e.raw_hash;
            let signed = pae(&e.envelope.payload_type, &e.envelope.payload);
            // `open` refuses unsigned lines; record writes exactly one signature.
            let Some(sig) = e.envelope.signatures.first() else {
                finding("unsigned statement".into());
                continue;
            };
            match (
                KeyId::parse(&sig.keyid),
                keys.iter().find(|k| k.id().to_string() == sig.keyid),
            ) {
                (Some(id), Some(k)) => {
                    if let Err(err) = k.verify_hex(&signed, id, &sig.sig) {
                        finding(format!("signature: {err}"));
                    }
                }
                _ => finding(format!("signed by key {}, which is not trusted", sig.keyid)),
            }
            for m in &e.statement.predicate.materials {
                latest.insert(&m.name, (&m.digest.sha256, e.line));
                if let Some(digests) = produced.get(m.name.as_str()) {
                    if !digests.contains(m.digest.sha256.as_str()) {
                        finding(format!(
                            "broken link: material {} (sha256 {}) is not the version any statement produced",
                            m.name,
                            short(&m.digest.sha256)
                        ));
                    }
                }
            }
            for s in &e.statement.subject {
                latest.insert(&s.name, (&s.digest.sha256, e.line));
                produced
                    .entry(&s.name)
                    .or_default()
                    .insert(&s.digest.sha256);
            }
        }
        let mut names: Vec<_> = latest.into_iter().collect();
        names.sort();
        for (name, (digest, line)) in names {
            let path = base.join(name);
            match sha256_file(&path) {
                Ok(actual) if actual == digest => r.files_checked += 1,
                Ok(actual) => r.findings.push(Finding {
                    line,
                    message: format!(
                        "{name}: sha256 {} on disk, {} recorded: modified since it was recorded",
                        short(&actual),
                        short(digest)
                    ),
                }),
                Err(_) => r.files_absent.push(name.to_owned()),
            }
        }
        r
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// What `verify` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Statements read.
    pub statements: usize,
    /// Files whose digest matched.
    pub files_checked: usize,
    /// Files named but not present here (not a finding: datasets may live elsewhere).
    pub files_absent: Vec<String>,
    /// Every problem.
    pub findings: Vec<Finding>,
}

/// One problem, at a store line.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// 1-based store line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// An artifact in a chain.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// As recorded.
    pub name: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// The statement that produced it (none: a source).
    pub produced_by: Option<Producer>,
    /// Its materials.
    pub inputs: Vec<Node>,
}

/// The step that produced an artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Producer {
    /// Store line.
    pub line: usize,
    /// The step.
    pub step: String,
    /// Its parameters.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// When.
    pub time: String,
    /// Who.
    pub who: String,
    /// Signing key id.
    pub key_id: String,
}

impl Node {
    /// A text tree, one artifact per line, its producing step beside it.
    pub fn render_tree(&self) -> String {
        let mut out = String::new();
        self.render(&mut out, "", "");
        out
    }

    fn render(&self, out: &mut String, first: &str, rest: &str) {
        out.push_str(&format!(
            "{first}{}  sha256:{}",
            self.name,
            short(&self.sha256)
        ));
        match &self.produced_by {
            Some(p) => {
                out.push_str(&format!(
                    "  ← {} (line {}, {}, by {}, key {})",
                    p.step, p.line, p.time, p.who, p.key_id
                ));
                let params: Vec<String> = p
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                if !params.is_empty() {
                    out.push_str(&format!(" [{}]", params.join(" ")));
                }
            }
            None => out.push_str("  (source)"),
        }
        out.push('\n');
        for (i, child) in self.inputs.iter().enumerate() {
            let last = i + 1 == self.inputs.len();
            let (branch, cont) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            child.render(out, &format!("{rest}{branch}"), &format!("{rest}{cont}"));
        }
    }
}

#[cfg(test)]
mod tests;
