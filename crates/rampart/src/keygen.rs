//! `rampart keygen`: new key files (mode 0600, never overwriting).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rampart_crypto::keyfile::{generate, KeyKind};
use rampart_crypto::sign::SigningKey;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// What the key is for.
    #[arg(long)]
    kind: Kind,
    /// The key file to create (ed25519 also writes FILE.pub). Existing files are never overwritten.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// Signing (manifests, lineage, audit checkpoints): writes FILE and FILE.pub.
    Ed25519,
    /// Encryption at rest (`rampart encrypt`, encrypted models).
    Aes256,
    /// Keyed pseudonyms.
    Hmac,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let id = match args.kind {
        Kind::Ed25519 => {
            let id = write_ed25519_pair(&args.out)?;
            let public = public_path(&args.out);
            eprintln!(
                "wrote {} (private) and {} (public)",
                args.out.display(),
                public.display()
            );
            id
        }
        Kind::Aes256 | Kind::Hmac => {
            let kind = if matches!(args.kind, Kind::Aes256) {
                KeyKind::Aes256
            } else {
                KeyKind::Hmac
            };
            let key = generate(kind).context("this kind cannot be generated")?;
            key.save(&args.out)?;
            eprintln!("wrote {} ({kind} key)", args.out.display());
            key.id
        }
    };
    // The key id alone on stdout, for scripts.
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// Writes a new ed25519 key to `private` and its public key to `private.pub`; returns the key id.
pub(crate) fn write_ed25519_pair(
    private: &std::path::Path,
) -> anyhow::Result<rampart_crypto::keyfile::KeyId> {
    let key = SigningKey::generate();
    let public = public_path(private);
    // Checked first so that a half-written pair (a private key without its .pub) never happens.
    if public.exists() {
        anyhow::bail!(
            "{} already exists: refusing to overwrite a key (move it away first)",
            public.display()
        );
    }
    let id = key.id();
    let public_file = key.public_file();
    // The private key first: if it cannot be written, no orphan public key is left behind.
    key.into_key_file().save(private)?;
    public_file.save(&public)?;
    Ok(id)
}

/// `FILE.pub` beside `FILE`.
pub(crate) fn public_path(private: &std::path::Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}
