//! `rampart model sign|verify|activate|rollback|list|history`: the signed model registry
//! (`rampart_registry`). Exit codes: 0 success, 1 a finding (a version that does not verify, or that
//! activation refused for it), 2 a usage or input error (a missing directory, a bad key file, nothing to roll
//! back to).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use rampart_registry::manifest::SIGNATURE_FILE;
use rampart_registry::{
    sign_version, verify_version, HistoryEntry, ModelListing, ModelName, Note, Registry,
    RegistryError, SignatureState, Trust, VerifyError, Version,
};
use serde_json::json;

use crate::keys::Format;

#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Sign a version directory `<registry>/<name>/<version>/` with an ed25519 key.
    ///
    /// Every file's SHA-256 goes into manifest.json, signed into manifest.sig. The directory must hold
    /// exactly one `.onnx` file and one file ending in `baseline.json`.
    ///
    /// Example: rampart model sign --key signing.key models/fraud/3
    Sign {
        /// An `ed25519-private` key file (`rampart keygen --kind ed25519`).
        #[arg(long)]
        key: PathBuf,
        /// The version directory.
        dir: PathBuf,
        /// Replace an existing signature (after changing the version's files on purpose).
        #[arg(long)]
        force: bool,
    },
    /// Verify a version directory against its signed manifest and a public key.
    ///
    /// Exit 0 only when the signature verifies against the key and every file matches; otherwise exit 1
    /// naming the missing, extra or changed file, the bad signature, the wrong key or the malformed manifest.
    ///
    /// Example: rampart model verify --public-key signing.key.pub models/fraud/3
    Verify {
        /// An `ed25519-public` key file.
        #[arg(long)]
        public_key: PathBuf,
        /// The version directory.
        dir: PathBuf,
        /// `text` or `json` (on stdout).
        #[arg(long, default_value = "text")]
        format: Format,
    },
    /// Make a version the active one, after verifying it, and record the change in the model's history.
    ///
    /// Example: rampart model activate --registry models fraud 3 --public-key signing.key.pub --why retrained
    Activate {
        /// The registry root (holds `<name>/<version>/`).
        #[arg(long)]
        registry: PathBuf,
        /// The model.
        name: ModelName,
        /// The version to activate.
        #[arg(value_name = "VERSION")]
        model_version: Version,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Return to the version active before the current one, in one step, recorded in the history.
    ///
    /// Repeated rollbacks keep going back; they never return to a version rolled back from.
    ///
    /// Example: rampart model rollback --registry models fraud --public-key signing.key.pub --why "drift alert"
    Rollback {
        /// The registry root.
        #[arg(long)]
        registry: PathBuf,
        /// The model.
        name: ModelName,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// List models and their versions: which is active, and whether each is signed (verified when a public
    /// key is given).
    ///
    /// Example: rampart model list --registry models fraud --public-key signing.key.pub
    List {
        /// The registry root.
        #[arg(long)]
        registry: PathBuf,
        /// One model (default: every model).
        name: Option<ModelName>,
        /// An `ed25519-public` key file: verify every version against it.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// `text` or `json` (on stdout).
        #[arg(long, default_value = "text")]
        format: Format,
    },
    /// Show a model's activation history (time, action, from, to, who, why, verifying key), oldest first.
    ///
    /// Example: rampart model history --registry models fraud --format json
    History {
        /// The registry root.
        #[arg(long)]
        registry: PathBuf,
        /// The model.
        name: ModelName,
        /// `text` or `json` (on stdout).
        #[arg(long, default_value = "text")]
        format: Format,
    },
}

/// What every change of the active version needs: how to trust the version, and the history note.
#[derive(clap::Args)]
pub(crate) struct ChangeArgs {
    /// An `ed25519-public` key file: the version must verify against it (signature and every file).
    #[arg(long, required_unless_present = "allow_unsigned")]
    public_key: Option<PathBuf>,
    /// Activate without checking a signature (recorded as such in the history). Needed when no
    /// --public-key is given, so that skipping verification is always a visible choice.
    #[arg(long, conflicts_with = "public_key")]
    allow_unsigned: bool,
    /// Who makes the change, for the history (default: $USER).
    #[arg(long)]
    who: Option<String>,
    /// Why, for the history.
    #[arg(long, default_value = "")]
    why: String,
}

impl ChangeArgs {
    fn note(&self) -> Note {
        let who = self.who.clone().unwrap_or_else(|| {
            std::env::var("USER")
                .or_else(|_| std::env::var("USERNAME"))
                .unwrap_or_else(|_| "unknown".to_owned())
        });
        Note::now(who, self.why.clone())
    }

    fn key(&self) -> anyhow::Result<Option<VerifyingKey>> {
        Ok(self
            .public_key
            .as_deref()
            .map(VerifyingKey::load)
            .transpose()?)
    }
}

fn trust(key: Option<&VerifyingKey>) -> Trust<'_> {
    key.map_or(Trust::AllowUnsigned, Trust::Verify)
}

pub(crate) fn run(cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Sign { key, dir, force } => sign(&key, &dir, force),
        ModelCommand::Verify {
            public_key,
            dir,
            format,
        } => verify(&public_key, &dir, format),
        ModelCommand::Activate {
            registry,
            name,
            model_version,
            change,
        } => {
            let reg = Registry::open(registry)?;
            let key = change.key()?;
            let result = reg.activate(&name, &model_version, trust(key.as_ref()), &change.note());
            report_change(result)
        }
        ModelCommand::Rollback {
            registry,
            name,
            change,
        } => {
            let reg = Registry::open(registry)?;
            let key = change.key()?;
            report_change(reg.rollback(&name, trust(key.as_ref()), &change.note()))
        }
        ModelCommand::List {
            registry,
            name,
            public_key,
            format,
        } => {
            let reg = Registry::open(registry)?;
            let key = public_key.as_deref().map(VerifyingKey::load).transpose()?;
            let listing = reg.list(name.as_ref(), key.as_ref())?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
                Format::Text => print_listing(&listing),
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::History {
            registry,
            name,
            format,
        } => {
            let history = Registry::open(registry)?.history(&name)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&history)?),
                Format::Text => history.iter().for_each(|e| println!("{}", history_line(e))),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn sign(key: &Path, dir: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let key = SigningKey::load(key)?;
    let existing = dir.join(SIGNATURE_FILE);
    if existing.exists() && !force {
        anyhow::bail!(
            "{} already exists: {} is signed (pass --force to sign it again)",
            existing.display(),
            dir.display()
        );
    }
    let m = sign_version(dir, &key)?;
    let model_sha256 = m
        .files
        .iter()
        .find(|f| f.path == m.model)
        .map(|f| f.sha256.to_string())
        .unwrap_or_default();
    eprintln!(
        "signed {}/{}: {} files, model {} (SHA-256 {model_sha256}), key {}",
        m.name,
        m.version,
        m.files.len(),
        m.model,
        key.id()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(public_key: &Path, dir: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let key = VerifyingKey::load(public_key)?;
    match verify_version(dir, &key) {
        Ok(v) => {
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "ok": true,
                        "name": v.name(),
                        "version": v.version(),
                        "model": v.model_path(),
                        "baseline": v.baseline_path(),
                        "model_sha256": v.model_sha256(),
                        "baseline_sha256": v.baseline_sha256(),
                        "manifest_sha256": v.manifest_sha256(),
                        "key_id": v.key_id().to_string(),
                        "files": v.file_count(),
                    }))?
                ),
                Format::Text => println!(
                    "ok {}/{} model_sha256 {} key {}",
                    v.name(),
                    v.version(),
                    v.model_sha256(),
                    v.key_id()
                ),
            }
            eprintln!(
                "ok: {} verifies ({} files signed by key {})",
                dir.display(),
                v.file_count(),
                v.key_id()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_finding() => {
            let problems: Vec<String> = match &e {
                VerifyError::Files { problems, .. } => {
                    problems.iter().map(ToString::to_string).collect()
                }
                other => vec![other.to_string()],
            };
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "ok": false, "problems": problems }))?
                ),
                Format::Text => problems.iter().for_each(|p| println!("{p}")),
            }
            eprintln!("FAIL: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn report_change(result: Result<HistoryEntry, RegistryError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(e) => {
            println!("{}", history_line(&e));
            Ok(ExitCode::SUCCESS)
        }
        // Idempotent for scripts and responders: the wanted state holds already.
        Err(e @ RegistryError::AlreadyActive { .. }) => {
            eprintln!("{e}: nothing recorded");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_finding() => {
            eprintln!("FAIL: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn history_line(e: &HistoryEntry) -> String {
    let time = e
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let action = match e.action {
        rampart_registry::Action::Activate => "activate",
        rampart_registry::Action::Rollback => "rollback",
    };
    let from = e.from.as_ref().map_or("none", Version::as_str);
    let trust = e.key_id.as_deref().map_or_else(
        || "UNSIGNED (not verified)".to_owned(),
        |k| format!("verified by key {k}"),
    );
    let why = if e.why.is_empty() {
        String::new()
    } else {
        format!(": {}", e.why)
    };
    format!(
        "{time} {action} {from} -> {} by {}, {trust}{why}",
        e.to, e.who
    )
}

fn print_listing(listing: &[ModelListing]) {
    for m in listing {
        let active = m.active.as_ref().map_or("none", Version::as_str);
        println!("{} (active: {active})", m.name);
        for v in &m.versions {
            let state = match &v.signature {
                SignatureState::Unsigned => "unsigned".to_owned(),
                SignatureState::Signed { key_id } => {
                    format!("signed by key {key_id} (not checked)")
                }
                SignatureState::Verified { key_id, .. } => format!("verified (key {key_id})"),
                SignatureState::Failed { reason } => format!("FAILED: {reason}"),
                _ => "unknown".to_owned(),
            };
            let mark = if v.active { '*' } else { ' ' };
            println!("{mark} {:<12} {state}", v.version.as_str());
        }
    }
}
