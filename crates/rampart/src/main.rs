//! `rampart`: the command line. Arguments parse in two stages (ripgrep's low → high): clap reads and checks
//! the flags, then each command turns them into ready objects. Exit codes: 0 success, 1 a finding (an invalid
//! config), 2 a usage or input error. Messages go to stderr, machine output to stdout.
#![forbid(unsafe_code)]

mod atomic;
mod audit;
mod certify;
mod crypt;
mod data;
mod demo;
mod health;
mod incident;
mod keygen;
mod keys;
mod lifecycle;
mod lineage;
mod model;
mod monitor;
mod profile;
mod progress;
mod sandbox;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the C library's allocator: under load every request allocates and frees on two runtime
/// workers and the audit thread, and glibc's arenas spent ~9 % of the gateway's CPU in `malloc`/`free` and
/// their consolidation (perf, bench/full-defense.toml at concurrency 64); musl's allocator, in the static
/// image, is slower still. Built with `no_thp`: on a kernel whose transparent huge pages are `madvise`-only,
/// mimalloc would ask for them on its arena and the heap would grow in 2 MiB pages — 44 MB of anonymous memory
/// under the same load against 27 MB without, for 2–3 % of throughput.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rampart: a defense-in-depth gateway for ML inference.
#[derive(Parser)]
#[command(name = "rampart", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve models behind the full pipeline. With no --config: the embedded demo model.
    ///
    /// Example: rampart serve --config /etc/rampart/rampart.toml
    Serve(serve::Args),
    /// Probe a Rampart listener over plain HTTP: exit 0 when it answers 2xx, 1 otherwise (the container's
    /// health check; the image has no shell or curl).
    ///
    /// Example: rampart health --url http://127.0.0.1:8080/v2/health/ready
    Health(health::Args),
    /// Check a config file: parse, validate (every error, with its path), build (models and baselines load).
    ///
    /// Example: rampart check-config rampart.toml
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Compute a model's baseline profile from its training data (CSV with a header).
    ///
    /// Example: rampart profile --data train.csv --label-column label --model m.onnx --out m.baseline.json
    Profile(profile::Args),
    /// Manage API keys (only their SHA-256 is stored).
    ///
    /// Example: rampart key new --id alice --role predictor --keys-file keys.toml
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Create a key file (mode 0600): ed25519 (also writes FILE.pub), aes256, hmac.
    ///
    /// Example: rampart keygen --kind aes256 --out model.key
    Keygen(keygen::Args),
    /// Dataset integrity manifests.
    ///
    /// Example: rampart data manifest data/train --out train.manifest.json --sign-key signing.key
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Signed lineage: where every dataset and model came from.
    ///
    /// Example: rampart lineage show model.onnx
    #[command(subcommand)]
    Lineage(lineage::LineageCommand),
    /// Forensics over the audit log: verify, query, replay, export.
    ///
    /// Example: rampart audit verify rampart-data/audit --public-key rampart-data/audit-signing.key.pub
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The signed model registry: sign and verify versions, activate, roll back, list.
    ///
    /// Example: rampart model activate --registry models fraud 3 --public-key signing.key.pub
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Incident response: bundle a time window's evidence into one signed archive.
    ///
    /// Example: rampart incident export --since T --until T --audit DIR --out incident.tar --sign-key K
    #[command(subcommand)]
    Incident(incident::IncidentCommand),
    /// Monitoring reports from the audit log.
    ///
    /// Example: rampart monitor report --audit rampart-data/audit --baseline m.baseline.json --out report.html
    #[command(subcommand)]
    Monitor(monitor::MonitorCommand),
    /// Encrypt a file at rest (AES-256-GCM, chunked and authenticated).
    ///
    /// Example: rampart encrypt --key-file model.key model.onnx model.onnx.enc
    Encrypt(crypt::Args),
    /// Decrypt a file; the output appears only once every chunk authenticated.
    ///
    /// Example: rampart decrypt --key-file model.key model.onnx.enc model.onnx
    Decrypt(crypt::Args),
    /// Re-encrypt a file under a new key (key rotation), without writing plaintext.
    ///
    /// Example: rampart reencrypt --old-key old.key --new-key new.key m.onnx.enc m.onnx.enc.new
    Reencrypt(crypt::RotateArgs),
    /// Randomized-smoothing certification over a labelled dataset (Cohen et al. 2019): per-row radius
    /// CSV, certified accuracy at radii 0, 0.25, 0.5, … on stdout, optionally an SVG curve.
    ///
    /// Example: rampart certify --model m.onnx --data test.csv --sigma 0.25 --n 100000 --out cert.csv --plot cert.svg
    Certify(certify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Health(args) => health::run(&args),
        Command::CheckConfig { file } => serve::check_config(&file),
        Command::Profile(args) => profile::run(&args),
        Command::Key(cmd) => keys::run(cmd),
        Command::Keygen(args) => keygen::run(&args),
        Command::Data(cmd) => data::run(cmd),
        Command::Lineage(cmd) => lineage::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Model(cmd) => model::run(cmd),
        Command::Incident(cmd) => incident::run(cmd),
        Command::Monitor(cmd) => monitor::run(cmd),
        Command::Encrypt(args) => crypt::encrypt(&args),
        Command::Decrypt(args) => crypt::decrypt(&args),
        Command::Reencrypt(args) => crypt::reencrypt(&args),
        Command::Certify(args) => certify::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, as `{:#}` prints them, less the causes a message already ends
/// with: many library errors say their cause in their own text (so a log line that shows only the error
/// still names it) and also expose it as their source, which `{:#}` would print twice.
pub(crate) fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render_error;

    #[test]
    fn a_cause_the_message_already_ends_with_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(rampart_server::config::LoadError::Read {
            path: "x.toml".into(),
            source: io,
        })
        .context("loading the config");
        assert_eq!(
            render_error(&e),
            "loading the config: cannot read x.toml: no such file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&plain), "outer: inner");
    }
}
