//! `rampart data manifest|verify`: dataset integrity manifests (`rampart_data::manifest`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use rampart_data::manifest::ManifestError;
use rampart_data::manifest::{relative_inside, Manifest, SignatureStatus, Verification};
use rampart_data::walk::WalkError;

use crate::atomic;
use crate::keys::Format;
use crate::progress::Bar;

#[derive(Subcommand)]
pub(crate) enum DataCommand {
    /// Hash every file of a dataset directory (SHA-256 + BLAKE3, in parallel) into a manifest with a
    /// Merkle root; sign it with an ed25519 key when given. Symlinks leaving the directory are refused.
    ///
    /// Example: rampart data manifest data/train --out data/train.manifest.json --sign-key signing.key
    Manifest {
        /// The dataset directory.
        dir: PathBuf,
        /// The manifest to write (must not exist; left out of the hashing if inside DIR).
        #[arg(long)]
        out: PathBuf,
        /// An `ed25519-private` key file to sign the Merkle root with.
        #[arg(long)]
        sign_key: Option<PathBuf>,
    },
    /// Check a dataset against its manifest: lists every added, removed and modified file and a bad or
    /// missing signature; exit 1 on any finding.
    ///
    /// Example: rampart data verify data/train.manifest.json --dir data/train --public-key signing.key.pub
    Verify {
        /// The manifest.
        manifest: PathBuf,
        /// The dataset directory (default: the manifest's directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// An `ed25519-public` key file: the manifest must carry its valid signature.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// `text` or `json` (on stdout).
        #[arg(long, default_value = "text")]
        format: Format,
    },
}

pub(crate) fn run(cmd: DataCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DataCommand::Manifest { dir, out, sign_key } => manifest(&dir, &out, sign_key.as_deref()),
        DataCommand::Verify {
            manifest,
            dir,
            public_key,
            format,
        } => verify(&manifest, dir, public_key.as_deref(), format),
    }
}

fn manifest(dir: &Path, out: &Path, sign_key: Option<&Path>) -> anyhow::Result<ExitCode> {
    // Load the key before hashing gigabytes, so a bad key fails fast.
    let key = sign_key.map(SigningKey::load).transpose()?;
    let skip = relative_inside(dir, out);
    let mut m = Manifest::build(dir, skip.as_deref(), &Bar::new())?;
    if let Some(k) = &key {
        m.sign(k);
    }
    let json = serde_json::to_vec_pretty(&m)?;
    atomic::write_file(out, |w| w.write_all(&json))?
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "{} files, {} bytes, merkle root {}{}",
        m.file_count,
        m.total_bytes,
        m.merkle_root,
        if key.is_some() { ", signed" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(
    manifest: &Path,
    dir: Option<PathBuf>,
    public_key: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let m = Manifest::load(manifest)?;
    let key = public_key.map(VerifyingKey::load).transpose()?;
    let dir = dir.unwrap_or_else(|| match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    });
    let skip = relative_inside(&dir, manifest);
    let v = match m.verify(&dir, skip.as_deref(), key.as_ref(), &Bar::new()) {
        Ok(v) => v,
        // A symlink that now leads out of the dataset is tampering, not a usage error.
        Err(ManifestError::Walk(e @ WalkError::SymlinkLeaves { .. })) => {
            eprintln!("FAIL {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Text => print_text(&v),
    }
    if v.is_clean() {
        eprintln!("ok: {} files match {}", m.file_count, manifest.display());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("FAIL: {} does not match its manifest", dir.display());
        Ok(ExitCode::from(1))
    }
}

fn print_text(v: &Verification) {
    if !v.root_matches {
        println!("manifest edited: its Merkle root does not match its entries");
    }
    match &v.signature {
        SignatureStatus::NotChecked => {}
        SignatureStatus::Valid(id) => println!("signature ok (key {id})"),
        SignatureStatus::Missing => println!("signature missing: the manifest is unsigned"),
        SignatureStatus::Invalid(why) => println!("signature bad: {why}"),
    }
    for p in &v.added {
        println!("added     {p}");
    }
    for p in &v.removed {
        println!("removed   {p}");
    }
    for m in &v.modified {
        println!(
            "modified  {} ({} → {} bytes)",
            m.path, m.expected_size, m.actual_size
        );
    }
}
