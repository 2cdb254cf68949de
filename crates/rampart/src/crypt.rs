//! `rampart encrypt|decrypt|reencrypt`: files at rest in the AES-256-GCM container
//! (`rampart_crypto::container`). Exit 1 when the input fails authentication (tampered, truncated,
//! reordered), 2 for anything else (wrong key, not a container, I/O).

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use rampart_crypto::container::{self, AeadKey, ContainerError};

use crate::atomic;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The `aes256` key file (`rampart keygen --kind aes256`).
    #[arg(long)]
    key_file: PathBuf,
    /// The input file.
    input: PathBuf,
    /// The output file (must not exist; written only when complete).
    output: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct RotateArgs {
    /// The key the input is encrypted with.
    #[arg(long)]
    old_key: PathBuf,
    /// The key to encrypt the output with.
    #[arg(long)]
    new_key: PathBuf,
    /// The encrypted input.
    input: PathBuf,
    /// The re-encrypted output (must not exist).
    output: PathBuf,
}

fn open_input(path: &Path) -> anyhow::Result<BufReader<File>> {
    Ok(BufReader::new(
        File::open(path).with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// Exit 1 for a file that failed authentication, 2 otherwise.
fn refused(input: &Path, e: &ContainerError) -> ExitCode {
    eprintln!("error: {}: {e}; no output written", input.display());
    match e {
        ContainerError::ChunkAuth { .. }
        | ContainerError::Truncated { .. }
        | ContainerError::TrailingData { .. } => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

fn finish(input: &Path, result: Result<u64, ContainerError>, verb: &str, out: &Path) -> ExitCode {
    match result {
        Ok(n) => {
            eprintln!("{verb} {n} bytes to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => refused(input, &e),
    }
}

pub(crate) fn encrypt(args: &Args) -> anyhow::Result<ExitCode> {
    let key = AeadKey::load(&args.key_file)?;
    let input = open_input(&args.input)?;
    let result = atomic::write_file(&args.output, |w| container::encrypt(&key, input, w))?;
    Ok(finish(&args.input, result, "encrypted", &args.output))
}

pub(crate) fn decrypt(args: &Args) -> anyhow::Result<ExitCode> {
    let key = AeadKey::load(&args.key_file)?;
    let input = open_input(&args.input)?;
    let result = atomic::write_file(&args.output, |w| {
        container::open(&key, input, |chunk| Ok(w.write_all(chunk)?))
    })?;
    Ok(finish(&args.input, result, "decrypted", &args.output))
}

pub(crate) fn reencrypt(args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let old = AeadKey::load(&args.old_key)?;
    let new = AeadKey::load(&args.new_key)?;
    let input = open_input(&args.input)?;
    let result = atomic::write_file(&args.output, |w| container::reencrypt(&old, &new, input, w))?;
    Ok(finish(
        &args.input,
        result,
        &format!("re-encrypted (key {} → {})", old.id(), new.id()),
        &args.output,
    ))
}
