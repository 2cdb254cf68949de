//! `rampart incident export`: one signed archive holding what an investigation of a time window needs — the
//! audit segments covering it (chain intact, as `rampart audit export` writes them), the alerts raised in it,
//! the incident actions taken in it (extracted from the audit), and each registry model's activation history,
//! active pointer and signed version manifests (which version was serving, who changed it and why).
//!
//! The archive's layout and manifest are those of `rampart audit export`, with the extra files listed under
//! `other_files`; the signature's domain is `rampart incident export v1\n`, so an audit export cannot be
//! passed off as an incident bundle or the reverse.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rampart_audit::{read_log, EntryBody};
use rampart_crypto::sign::SigningKey;
use time::OffsetDateTime;

use crate::audit::{parse_bound, select_segments, write_bundle};

/// Domain of an incident bundle's signature.
const INCIDENT_DOMAIN: &[u8] = b"rampart incident export v1\n";

/// Largest alerts file, registry history or manifest read into a bundle.
const MAX_FILE_BYTES: u64 = 256 << 20;

#[derive(Subcommand)]
pub(crate) enum IncidentCommand {
    /// Bundle a time window's audit range, alerts, actions and model versions into one signed archive.
    ///
    /// Example: rampart incident export --since 2026-11-25T14:00:00Z --until 2026-11-25T15:00:00Z
    /// --audit rampart-data/audit --alerts rampart-data/alerts/alerts.jsonl --registry models
    /// --out incident.tar --sign-key incident.key
    Export {
        /// Start of the window (RFC 3339).
        #[arg(long)]
        since: String,
        /// End of the window (RFC 3339), exclusive.
        #[arg(long)]
        until: String,
        /// The audit directory.
        #[arg(long)]
        audit: PathBuf,
        /// The alerts file (JSON lines); the alerts raised in the window are included.
        #[arg(long)]
        alerts: Option<PathBuf>,
        /// A model registry root (repeatable): each model's history, active pointer and version manifests.
        #[arg(long)]
        registry: Vec<PathBuf>,
        /// The archive to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// ed25519 private key that signs the manifest.
        #[arg(long)]
        sign_key: PathBuf,
    },
}

pub(crate) fn run(cmd: IncidentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IncidentCommand::Export {
            since,
            until,
            audit,
            alerts,
            registry,
            out,
            sign_key,
        } => {
            let since = parse_bound(Some(&since))?.context("--since is required")?;
            let until = parse_bound(Some(&until))?.context("--until is required")?;
            if until <= since {
                anyhow::bail!("--until must be after --since");
            }
            export(
                &audit,
                since,
                until,
                alerts.as_deref(),
                &registry,
                &out,
                &sign_key,
            )
        }
    }
}

fn export(
    audit: &Path,
    since: OffsetDateTime,
    until: OffsetDateTime,
    alerts: Option<&Path>,
    registries: &[PathBuf],
    out: &Path,
    sign_key: &Path,
) -> anyhow::Result<ExitCode> {
    let key = SigningKey::load(sign_key)?;
    let Some(bundle) = select_segments(
        audit,
        Some(since),
        Some(until),
        "rampart incident export v1",
        &key,
    )?
    else {
        eprintln!("no audit record in the window: nothing exported");
        return Ok(ExitCode::from(1));
    };
    let in_window = |t: OffsetDateTime| t >= since && t < until;
    let mut others: Vec<(String, Vec<u8>)> = Vec::new();

    // The actions taken in the window, one JSON line each, as the audit holds them.
    let mut actions = Vec::new();
    read_log(audit, None, |entry, line| {
        if matches!(entry.body, EntryBody::Action(_)) && in_window(entry.time) {
            actions.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                actions.push(b'\n');
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    others.push(("actions.jsonl".to_owned(), actions));

    if let Some(path) = alerts {
        others.push(("alerts.jsonl".to_owned(), alerts_in(path, &in_window)?));
    }
    for (i, root) in registries.iter().enumerate() {
        registry_files(root, &format!("registry/{i}"), &mut others)?;
    }
    let manifest = write_bundle(bundle, &others, INCIDENT_DOMAIN, &key, out)?;
    println!(
        "wrote {}: {} segment(s), {} record(s) in the window, {} other file(s), manifest signed by {}",
        out.display(),
        manifest.files.len(),
        manifest.records_in_range,
        others.len(),
        key.id()
    );
    Ok(ExitCode::SUCCESS)
}

/// The alerts file's lines whose `time` falls in the window (a line that does not parse is kept out and
/// counted on stderr).
fn alerts_in(path: &Path, in_window: &dyn Fn(OffsetDateTime) -> bool) -> anyhow::Result<Vec<u8>> {
    let text = read_capped(path)?;
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let time = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["time"].as_str().map(str::to_owned))
            .and_then(|t| {
                OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
            });
        match time {
            Some(t) if in_window(t) => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            Some(_) => {}
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        eprintln!(
            "{}: {skipped} line(s) without a readable time left out",
            path.display()
        );
    }
    Ok(out)
}

/// Each model's `history.jsonl` and `active.json`, and each version's `manifest.json` and `manifest.sig`,
/// under `prefix/<model>/…`. Model files themselves are not copied: the signed manifests name them by digest.
fn registry_files(
    root: &Path,
    prefix: &str,
    others: &mut Vec<(String, Vec<u8>)>,
) -> anyhow::Result<()> {
    let registry = rampart_registry::Registry::open(root)?;
    for name in registry.models()? {
        let dir = registry.model_dir(&name);
        for file in ["history.jsonl", "active.json"] {
            let path = dir.join(file);
            if path.is_file() {
                others.push((
                    format!("{prefix}/{name}/{file}"),
                    read_capped(&path)?.into_bytes(),
                ));
            }
        }
        for version in registry.versions(&name)? {
            let vdir = registry.version_dir(&name, &version);
            for file in ["manifest.json", "manifest.sig"] {
                let path = vdir.join(file);
                if path.is_file() {
                    others.push((
                        format!("{prefix}/{name}/{version}/{file}"),
                        read_capped(&path)?.into_bytes(),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn read_capped(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    std::io::copy(&mut file.take(MAX_FILE_BYTES + 1), &mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        anyhow::bail!("{} is larger than {MAX_FILE_BYTES} bytes", path.display());
    }
    Ok(text)
}
