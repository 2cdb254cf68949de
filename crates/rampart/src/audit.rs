//! `rampart audit`: forensics over a tamper-evident audit log — verify it, query it, replay a recorded input
//! against a model, export a range as a signed incident bundle.
//!
//! Exit codes: 0 success; 1 a finding (the log does not verify, nothing matched a replay); 2 a usage or
//! input error (a missing directory, a bad key file, a malformed time).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rampart_audit::format::{format_time, parse_file_name};
use rampart_audit::{
    log_files, read_log, verify_dir_with, ChainHash, EntryBody, LogEntry, VerifyOptions,
};
use rampart_crypto::container::AeadKey;
use rampart_crypto::pseudonym::PseudonymKey;
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use rampart_model::{Backend, TractModel};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::progress::Bar;

/// Domain of an export manifest's signature.
const EXPORT_DOMAIN: &[u8] = b"rampart audit export v1\n";

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk every segment; name the first line that fails (hash, link, signature, sequence gap, torn tail).
    ///
    /// Example: rampart audit verify rampart-data/audit --public-key rampart-data/audit-signing.key.pub
    Verify {
        /// The audit directory.
        dir: PathBuf,
        /// ed25519 public key: check every checkpoint's signature.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// The directory holds a range (an export), not a whole log: start from its first line.
        #[arg(long)]
        partial: bool,
    },
    /// Print matching records as JSON lines.
    ///
    /// Example: rampart audit query rampart-data/audit --identity alice --since 2026-11-25T00:00:00Z
    Query(QueryArgs),
    /// Re-run a recorded input (stored with `store_input`) against a model and show both outputs.
    ///
    /// Example: rampart audit replay rampart-data/audit --request-id 0193… --model m.onnx --key-file audit.key
    Replay {
        /// The audit directory.
        dir: PathBuf,
        /// The request to replay.
        #[arg(long)]
        request_id: String,
        /// The model file to run it against.
        #[arg(long)]
        model: PathBuf,
        /// The AES-256 key the record was sealed with.
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Write the segments covering a time range, with a signed manifest, as one tar archive.
    ///
    /// Example: rampart audit export rampart-data/audit --since … --until … --out incident.tar --sign-key k
    Export {
        /// The audit directory.
        dir: PathBuf,
        /// Start of the range (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// End of the range (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// The archive to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// ed25519 private key that signs the manifest.
        #[arg(long)]
        sign_key: PathBuf,
    },
}

#[derive(clap::Args)]
pub(crate) struct QueryArgs {
    /// The audit directory.
    dir: PathBuf,
    /// Records of this identity (its pseudonym too, given --pseudonym-key).
    #[arg(long)]
    identity: Option<String>,
    /// The HMAC key the log's pseudonyms were made with.
    #[arg(long)]
    pseudonym_key: Option<PathBuf>,
    /// Records of this model.
    #[arg(long)]
    model: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Records before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Decisions with this reason code (`anomalous_input`, …).
    #[arg(long)]
    reason: Option<String>,
    /// Decisions for this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Lines of this kind only: decision, alert, action, checkpoint, segment. Default: decision, alert, action.
    #[arg(long)]
    kind: Option<String>,
    /// The AES-256 key: add each sealed record's output (and input) as `opened`.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify {
            dir,
            public_key,
            partial,
        } => verify(&dir, public_key.as_deref(), partial),
        AuditCommand::Query(args) => query(&args),
        AuditCommand::Replay {
            dir,
            request_id,
            model,
            key_file,
        } => replay(&dir, &request_id, &model, &key_file),
        AuditCommand::Export {
            dir,
            since,
            until,
            out,
            sign_key,
        } => export(
            &dir,
            parse_bound(since.as_deref())?,
            parse_bound(until.as_deref())?,
            &out,
            &sign_key,
        ),
    }
}

pub(crate) fn parse_bound(s: Option<&str>) -> anyhow::Result<Option<OffsetDateTime>> {
    s.map(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("{s:?} is not an RFC 3339 time (2026-11-25T14:00:00Z)"))
    })
    .transpose()
}

fn require_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

/// Total bytes of the log's segments, for the progress bar.
fn log_bytes(dir: &Path) -> u64 {
    log_files(dir)
        .map(|files| {
            files
                .iter()
                .filter_map(|(_, p)| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn verify(dir: &Path, public_key: Option<&Path>, partial: bool) -> anyhow::Result<ExitCode> {
    require_dir(dir)?;
    let key = public_key.map(VerifyingKey::load).transpose()?;
    let bar = Bar::new();
    bar.set_total(log_bytes(dir));
    let progress = |bytes: u64| bar.advance(bytes);
    let result = verify_dir_with(
        dir,
        VerifyOptions {
            public_key: key.as_ref(),
            progress: Some(&progress),
            partial,
        },
    );
    drop(bar);
    match result {
        Ok(report) => {
            println!(
                "ok: {} lines (seq {}..{}) in {} segment(s): {} decisions, {} events, {} checkpoints",
                report.records,
                report.first_seq,
                report.first_seq + report.records,
                report.files,
                report.decisions,
                report.events,
                report.checkpoints
            );
            println!("head: {}", report.head_hash);
            match &key {
                Some(k) => println!("signatures: every checkpoint verified with key {}", k.id()),
                None => {
                    println!("signatures: NOT checked (give --public-key to check the checkpoints)")
                }
            }
            if report.unsigned_tail > 0 {
                println!(
                    "unsigned tail: {} line(s) after the last checkpoint are covered by the chain only",
                    report.unsigned_tail
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

struct Filter {
    identities: Vec<String>,
    model: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    reason: Option<String>,
    request_id: Option<String>,
    kinds: Vec<String>,
}

impl Filter {
    fn matches(&self, entry: &LogEntry) -> bool {
        if !self.kinds.iter().any(|k| k == entry.kind().as_str()) {
            return false;
        }
        if self.since.is_some_and(|t| entry.time < t) || self.until.is_some_and(|t| entry.time >= t)
        {
            return false;
        }
        let (identity, model) = match &entry.body {
            EntryBody::Decision(d) => (Some(d.identity.as_str()), Some(d.model.as_str())),
            EntryBody::Alert(m) | EntryBody::Action(m) => (
                m.get("identity").and_then(|v| v.as_str()),
                m.get("model").and_then(|v| v.as_str()),
            ),
            _ => (None, None),
        };
        if !self.identities.is_empty()
            && !identity.is_some_and(|i| self.identities.iter().any(|w| w == i))
        {
            return false;
        }
        if self.model.as_deref().is_some_and(|m| model != Some(m)) {
            return false;
        }
        let decision = entry.decision();
        if let Some(reason) = &self.reason {
            if decision.and_then(|d| d.decision.reason.as_deref()) != Some(reason.as_str()) {
                return false;
            }
        }
        if let Some(id) = &self.request_id {
            if decision.map(|d| d.request_id.as_str()) != Some(id.as_str()) {
                return false;
            }
        }
        true
    }
}

fn query(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    require_dir(&args.dir)?;
    let pseudonyms = args
        .pseudonym_key
        .as_deref()
        .map(PseudonymKey::load)
        .transpose()?;
    let seal = args.key_file.as_deref().map(AeadKey::load).transpose()?;
    let mut identities = Vec::new();
    if let Some(id) = &args.identity {
        identities.push(id.clone());
        if let Some(k) = &pseudonyms {
            identities.push(k.pseudonym(id));
        }
    }
    let kinds = match &args.kind {
        Some(k) => {
            let known = ["decision", "alert", "action", "checkpoint", "segment"];
            if !known.contains(&k.as_str()) {
                anyhow::bail!("--kind {k:?}: expected one of {}", known.join(", "));
            }
            vec![k.clone()]
        }
        None => vec!["decision".into(), "alert".into(), "action".into()],
    };
    let filter = Filter {
        identities,
        model: args.model.clone(),
        since: parse_bound(args.since.as_deref())?,
        until: parse_bound(args.until.as_deref())?,
        reason: args.reason.clone(),
        request_id: args.request_id.clone(),
        kinds,
    };
    let bar = Bar::new();
    bar.set_total(log_bytes(&args.dir));
    let progress = |bytes: u64| bar.advance(bytes);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    let mut matched = 0u64;
    read_log(&args.dir, Some(&progress), |entry, line| {
        if write_error.is_some() || !filter.matches(entry) {
            return;
        }
        matched += 1;
        let result = match (&seal, entry.decision()) {
            (Some(key), Some(d)) if d.sealed.is_some() => {
                let mut value: serde_json::Value =
                    serde_json::from_slice(line).unwrap_or(serde_json::Value::Null);
                value["opened"] = match d.open(key) {
                    Ok(opened) => serde_json::to_value(opened).unwrap_or_default(),
                    Err(e) => serde_json::json!({"error": e.to_string()}),
                };
                writeln!(out, "{value}")
            }
            _ => out.write_all(line).and_then(|()| out.write_all(b"\n")),
        };
        if let Err(e) = result {
            write_error = Some(e);
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(bar);
    if let Some(e) = write_error {
        // A closed pipe (`| head`) is not an error worth a message.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing the results");
        }
    }
    out.flush().ok();
    eprintln!("{matched} record(s) matched");
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Replayed {
    request_id: String,
    recorded: serde_json::Value,
    replayed: serde_json::Value,
}

fn replay(dir: &Path, request_id: &str, model: &Path, key_file: &Path) -> anyhow::Result<ExitCode> {
    require_dir(dir)?;
    let key = AeadKey::load(key_file)?;
    let backend = TractModel::load(model).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut found = None;
    read_log(dir, None, |entry, _| {
        if let Some(d) = entry.decision() {
            if d.request_id == request_id {
                found = Some(d.clone());
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(decision) = found else {
        eprintln!(
            "no decision with request id {request_id:?} in {}",
            dir.display()
        );
        return Ok(ExitCode::from(1));
    };
    let opened = decision.open(&key).map_err(|e| {
        anyhow::anyhow!("the record of {request_id:?} cannot be opened with this key: {e}")
    })?;
    let Some(input) = opened.input else {
        eprintln!(
            "the record of {request_id:?} holds no input (the gateway ran without [audit] store_input, or the request was refused before its input was decoded)"
        );
        return Ok(ExitCode::from(1));
    };
    let rows: Vec<Vec<f32>> =
        serde_json::from_value(input).context("the stored input is not rows of numbers")?;
    let width = backend.info().width;
    if rows.iter().any(|r| r.len() != width) {
        anyhow::bail!(
            "the stored input's rows do not have the {width} features {} takes",
            model.display()
        );
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let output = backend
        .predict(&flat, rows.len())
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let result = Replayed {
        request_id: request_id.to_owned(),
        recorded: serde_json::json!({
            "model": decision.model,
            "model_version": decision.model_version,
            "decision": decision.decision,
            "output": opened.output,
        }),
        replayed: serde_json::json!({
            "model_file": model.display().to_string(),
            "values": output.values,
            "labels": output.labels,
        }),
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
pub(crate) struct ExportManifest {
    format: &'static str,
    created: String,
    since: Option<String>,
    until: Option<String>,
    /// `seq` and `prev` of the first exported line: where `rampart audit verify --partial` starts.
    first_seq: u64,
    first_prev: String,
    head: String,
    pub(crate) records_in_range: u64,
    /// The audit segments, archived under `audit/`.
    pub(crate) files: Vec<ExportFile>,
    /// Other files of an incident bundle, by their path in the archive (absent from an audit export).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    other_files: Vec<ExportFile>,
    key: String,
}

#[derive(Serialize)]
pub(crate) struct ExportFile {
    name: String,
    bytes: u64,
    sha256: String,
}

/// What one segment holds: its time span and how many records fall in the range.
struct Span {
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
    in_range: u64,
    first_prev: ChainHash,
    last_hash: ChainHash,
}

/// What goes into a signed bundle: the audit segments covering a range, and their manifest.
pub(crate) struct Bundle {
    pub(crate) manifest: ExportManifest,
    segments: Vec<PathBuf>,
}

/// The whole segments covering `[since, until)` (contiguous, so the chain inside the bundle verifies), with
/// a manifest of their digests; `None` when no record falls in the range.
///
/// # Errors
/// When the log cannot be read.
pub(crate) fn select_segments(
    dir: &Path,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    format: &'static str,
    key: &SigningKey,
) -> anyhow::Result<Option<Bundle>> {
    require_dir(dir)?;
    let in_range = |t: OffsetDateTime| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u);
    let files = log_files(dir).with_context(|| format!("listing {}", dir.display()))?;
    let bar = Bar::new();
    bar.set_total(log_bytes(dir));
    let progress = |bytes: u64| bar.advance(bytes);
    let mut spans: Vec<(u64, PathBuf, Span)> = Vec::new();
    read_log(dir, Some(&progress), |entry, line| {
        let file_seq = files
            .iter()
            .rev()
            .find(|(first, _)| *first <= entry.seq)
            .map_or(0, |(first, _)| *first);
        if spans.last().is_none_or(|(s, _, _)| *s != file_seq) {
            let path = files
                .iter()
                .find(|(first, _)| *first == file_seq)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            spans.push((
                file_seq,
                path,
                Span {
                    first: None,
                    last: None,
                    in_range: 0,
                    first_prev: entry.prev,
                    last_hash: entry.prev,
                },
            ));
        }
        if let Some((_, _, span)) = spans.last_mut() {
            span.first = Some(span.first.map_or(entry.time, |t| t.min(entry.time)));
            span.last = Some(span.last.map_or(entry.time, |t| t.max(entry.time)));
            if in_range(entry.time) && !matches!(entry.body, EntryBody::Segment(_)) {
                span.in_range += 1;
            }
            span.last_hash = ChainHash::of_line(line);
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(bar);
    let first = spans.iter().position(|(_, _, s)| s.in_range > 0);
    let last = spans.iter().rposition(|(_, _, s)| s.in_range > 0);
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    let chosen = &spans[first..=last];
    let mut manifest = ExportManifest {
        format,
        created: format_time(OffsetDateTime::now_utc())?,
        since: since.map(format_time).transpose()?,
        until: until.map(format_time).transpose()?,
        first_seq: chosen[0].0,
        first_prev: chosen[0].2.first_prev.to_hex(),
        head: chosen[chosen.len() - 1].2.last_hash.to_hex(),
        records_in_range: chosen.iter().map(|(_, _, s)| s.in_range).sum(),
        files: Vec::new(),
        other_files: Vec::new(),
        key: key.id().to_string(),
    };
    let mut segments = Vec::new();
    for (_, path, _) in chosen {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| parse_file_name(n).is_some())
            .context("a segment has an unexpected name")?
            .to_owned();
        manifest.files.push(ExportFile {
            name,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
        segments.push(path.clone());
    }
    Ok(Some(Bundle { manifest, segments }))
}

/// Writes the bundle as one tar archive (never overwriting `out`): the manifest, its signature (ed25519 over
/// `domain` followed by the manifest's bytes), the segments under `audit/`, then `others` at their paths
/// (listed in the manifest's `other_files`).
///
/// # Errors
/// When a file cannot be read, changed since it was selected, or the archive cannot be written.
pub(crate) fn write_bundle(
    mut bundle: Bundle,
    others: &[(String, Vec<u8>)],
    domain: &[u8],
    key: &SigningKey,
    out: &Path,
) -> anyhow::Result<ExportManifest> {
    for (name, bytes) in others {
        bundle.manifest.other_files.push(ExportFile {
            name: name.clone(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        });
    }
    let manifest_bytes = serde_json::to_vec_pretty(&bundle.manifest)?;
    let mut message = domain.to_vec();
    message.extend_from_slice(&manifest_bytes);
    let signature = format!("{} {}\n", key.id(), hex::encode(key.sign(&message)));
    crate::atomic::write_file(out, |w| -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(w);
        append(&mut tar, "manifest.json", &manifest_bytes)?;
        append(&mut tar, "manifest.json.sig", signature.as_bytes())?;
        for (path, file) in bundle.segments.iter().zip(&bundle.manifest.files) {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            if hex::encode(Sha256::digest(&bytes)) != file.sha256 {
                anyhow::bail!("{} changed while it was exported", path.display());
            }
            append(&mut tar, &format!("audit/{}", file.name), &bytes)?;
        }
        for (name, bytes) in others {
            append(&mut tar, name, bytes)?;
        }
        tar.finish().context("finishing the archive")?;
        Ok(())
    })??;
    Ok(bundle.manifest)
}

fn export(
    dir: &Path,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    out: &Path,
    sign_key: &Path,
) -> anyhow::Result<ExitCode> {
    require_dir(dir)?;
    let key = SigningKey::load(sign_key)?;
    let Some(bundle) = select_segments(dir, since, until, "rampart audit export v1", &key)? else {
        eprintln!("no record in the range: nothing exported");
        return Ok(ExitCode::from(1));
    };
    let manifest = write_bundle(bundle, &[], EXPORT_DOMAIN, &key, out)?;
    println!(
        "wrote {}: {} segment(s), {} record(s) in range, manifest signed by {}",
        out.display(),
        manifest.files.len(),
        manifest.records_in_range,
        key.id()
    );
    Ok(ExitCode::SUCCESS)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0));
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
        .with_context(|| format!("adding {name} to the archive"))
}
