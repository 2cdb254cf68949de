//! `rampart`: the command line. Arguments parse in two stages (ripgrep's low → high): clap reads and checks
//! the flags, then each command turns them into ready objects. Exit codes: 0 success, 1 a finding (an invalid
//! config), 2 a usage or input error. Messages go to stderr, machine output to stdout.
#![forbid(unsafe_code)]

mod demo;
mod keys;
mod profile;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::CheckConfig { file } => serve::check_config(&file),
        Command::Profile(args) => profile::run(&args),
        Command::Key(cmd) => keys::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
