//! `rampart lineage record|show|verify`: signed provenance statements (`rampart_data::lineage`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use rampart_data::lineage::{LineageError, Step, Store};

use crate::keys::Format;

#[derive(Subcommand)]
pub(crate) enum LineageCommand {
    /// Append a signed statement: OUTPUT was made from INPUTS by STEP with PARAMS.
    ///
    /// Example: rampart lineage record --inputs train.manifest.json --output model.onnx --step train
    ///          --params epochs=10 lr=0.01 --sign-key signing.key
    Record {
        /// The lineage store (JSON lines, append-only).
        #[arg(long, default_value = "lineage.jsonl")]
        store: PathBuf,
        /// Input files, comma-separated (a dataset is recorded by its manifest).
        #[arg(long, value_delimiter = ',')]
        inputs: Vec<PathBuf>,
        /// Output file (repeat for several).
        #[arg(long = "output", required = true)]
        outputs: Vec<PathBuf>,
        /// What was done (`ingest`, `train`, `register`, …).
        #[arg(long)]
        step: String,
        /// Parameters, `k=v`.
        #[arg(long, num_args = 1.., value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Who ran it (default: $USER).
        #[arg(long)]
        who: Option<String>,
        /// The `ed25519-private` key file that signs the statement.
        #[arg(long)]
        sign_key: PathBuf,
    },
    /// Print the chain from an artifact back to its datasets; exit 1 when it has no lineage.
    ///
    /// Example: rampart lineage show model.onnx --format json
    Show {
        /// The artifact.
        artifact: PathBuf,
        /// The lineage store.
        #[arg(long, default_value = "lineage.jsonl")]
        store: PathBuf,
        /// `text` (a tree) or `json`.
        #[arg(long, default_value = "text")]
        format: Format,
    },
    /// Check every statement's signature and link, and every recorded file's digest; exit 1 on a finding.
    ///
    /// Example: rampart lineage verify --public-key signing.key.pub
    Verify {
        /// The lineage store.
        #[arg(long, default_value = "lineage.jsonl")]
        store: PathBuf,
        /// Trusted `ed25519-public` key files (repeat for several).
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// Where recorded relative paths are resolved (where `record` ran).
        #[arg(long, default_value = ".")]
        base: PathBuf,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        format: Format,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not k=v")),
    }
}

pub(crate) fn run(cmd: LineageCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LineageCommand::Record {
            store,
            inputs,
            outputs,
            step,
            params,
            who,
            sign_key,
        } => {
            let key = SigningKey::load(&sign_key)?;
            let mut s = Store::open(&store)?;
            let who = who
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".to_owned());
            let line = s.record(
                &Step {
                    step,
                    inputs,
                    outputs,
                    params,
                    who,
                },
                &key,
            )?;
            eprintln!(
                "recorded line {line} in {} (key {})",
                store.display(),
                key.id()
            );
            Ok(ExitCode::SUCCESS)
        }
        LineageCommand::Show {
            artifact,
            store,
            format,
        } => match Store::open(&store)?.chain(&artifact) {
            Ok(chain) => {
                match format {
                    Format::Text => print!("{}", chain.render_tree()),
                    Format::Json => println!("{}", serde_json::to_string_pretty(&chain)?),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e @ LineageError::NoLineage { .. }) => {
                eprintln!("FAIL {e}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        },
        LineageCommand::Verify {
            store,
            public_keys,
            base,
            format,
        } => {
            let keys = public_keys
                .iter()
                .map(|p| VerifyingKey::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let s = Store::open(&store).with_context(|| "reading the lineage store".to_owned())?;
            let report = s.verify(&keys, &base);
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Format::Text => {
                    for f in &report.findings {
                        println!("line {}: {}", f.line, f.message);
                    }
                    for a in &report.files_absent {
                        println!("not here (not checked): {a}");
                    }
                }
            }
            if report.findings.is_empty() {
                eprintln!(
                    "ok: {} statements, {} files verified",
                    report.statements, report.files_checked
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("FAIL: {} finding(s)", report.findings.len());
                Ok(ExitCode::from(1))
            }
        }
    }
}
