//! `rampart key new|revoke|list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use rampart_server::auth::KeysFile;

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key; prints the key alone on stdout's first line (the only time it is shown).
    ///
    /// Example: KEY=$(rampart key new --id alice --role predictor --keys-file keys.toml | head -1)
    New {
        /// The identity the key authenticates.
        #[arg(long)]
        id: String,
        /// A role (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The keys file (created if missing, mode 0600).
        #[arg(long)]
        keys_file: PathBuf,
        /// Days until the key expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Remove an identity's key.
    ///
    /// Example: rampart key revoke --id alice --keys-file keys.toml
    Revoke {
        /// The identity.
        #[arg(long)]
        id: String,
        /// The keys file.
        #[arg(long)]
        keys_file: PathBuf,
    },
    /// List identities, roles, creation and expiry (never keys).
    ///
    /// Example: rampart key list --keys-file keys.toml --format json
    List {
        /// The keys file.
        #[arg(long)]
        keys_file: PathBuf,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        format: Format,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

pub(crate) fn run(cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCommand::New {
            id,
            roles,
            keys_file,
            expires_in_days,
        } => {
            let mut file = KeysFile::load(&keys_file, true)?;
            let expires = expires_in_days
                .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)));
            let key = file.add(&id, roles, expires)?;
            file.save(&keys_file)?;
            println!("{key}");
            eprintln!(
                "created a key for '{id}' in {} (only its SHA-256 is stored: keep the key now)",
                keys_file.display()
            );
        }
        KeyCommand::Revoke { id, keys_file } => {
            let mut file = KeysFile::load(&keys_file, false)?;
            file.revoke(&id)?;
            file.save(&keys_file)?;
            eprintln!("revoked the key of '{id}'");
        }
        KeyCommand::List { keys_file, format } => {
            let file = KeysFile::load(&keys_file, false)?;
            match format {
                Format::Json => {
                    let rows: Vec<_> = file
                        .keys
                        .iter()
                        .map(|k| {
                            serde_json::json!({
                                "id": k.id,
                                "roles": k.roles,
                                "created": k.created.unix_timestamp(),
                                "expires": k.expires.map(|e| e.unix_timestamp()),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                Format::Text => {
                    for k in &file.keys {
                        let expires = k
                            .expires
                            .map_or_else(|| "never".to_owned(), |e| e.date().to_string());
                        println!(
                            "{}\troles={}\tcreated={}\texpires={expires}",
                            k.id,
                            k.roles.join(","),
                            k.created.date()
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
