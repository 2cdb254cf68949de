//! API-key authentication.
//!
//! A key is `rk_` followed by 64 hex digits (256 random bits). The keys file stores only its SHA-256 with
//! the identity, roles, creation time and optional expiry: a stolen keys file yields no usable key, and with
//! 256-bit random keys a per-key salt adds nothing (there is no dictionary to precompute). Lookup is by the
//! digest in a hash map followed by a constant-time comparison; the map's timing can only reveal digest
//! prefixes, which say nothing about the key (SHA-256 preimage resistance).
//!
//! Every failure — no header, wrong scheme, unknown, revoked or expired key — is the same 401 with the same
//! body, so a client learns nothing about which part was wrong.

use std::collections::HashMap;
use std::path::Path;

use http::HeaderMap;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use rampart_core::Identity;

/// Prefix of every Rampart API key, so a leaked key is recognisable by secret scanners.
pub const KEY_PREFIX: &str = "rk_";

/// One stored key (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    /// The identity the key authenticates.
    pub id: String,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// When it was made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it stops working (RFC 3339), if ever.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
}

/// The keys file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// The keys.
    #[serde(default)]
    pub keys: Vec<StoredKey>,
}

/// Why a keys file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// Unreadable.
    #[error("cannot read keys file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML of the right shape.
    #[error("keys file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Could not be written.
    #[error("cannot write keys file {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An id that is taken or absent.
    #[error("{0}")]
    Id(String),
}

impl KeysFile {
    /// Reads a keys file; a missing file is an empty one (for `key new` on a fresh path).
    ///
    /// # Errors
    /// [`KeysError`] when unreadable or malformed (a bad digest included).
    pub fn load(path: &Path, missing_ok: bool) -> Result<Self, KeysError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default())
            }
            Err(source) => {
                return Err(KeysError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let file: KeysFile = toml::from_str(&text).map_err(|e| KeysError::Parse {
            path: path.display().to_string(),
            message: e.message().to_owned(),
        })?;
        for (i, k) in file.keys.iter().enumerate() {
            if decode_digest(&k.sha256).is_none() {
                return Err(KeysError::Parse {
                    path: path.display().to_string(),
                    message: format!("keys[{i}].sha256 is not 64 hex digits"),
                });
            }
        }
        Ok(file)
    }

    /// Writes the file atomically (temp file, fsync, rename) with mode 0600.
    ///
    /// # Errors
    /// [`KeysError::Write`].
    pub fn save(&self, path: &Path) -> Result<(), KeysError> {
        let werr = |source| KeysError::Write {
            path: path.display().to_string(),
            source,
        };
        let text =
            toml::to_string_pretty(self).map_err(|e| werr(std::io::Error::other(e.to_string())))?;
        let tmp = path.with_extension("tmp");
        write_private(&tmp, text.as_bytes()).map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)
    }

    /// Adds a fresh key for `id` and returns the key itself — the only time it exists outside the client.
    ///
    /// # Errors
    /// [`KeysError::Id`] when the id is empty or already has a key.
    pub fn add(
        &mut self,
        id: &str,
        roles: Vec<String>,
        expires: Option<OffsetDateTime>,
    ) -> Result<String, KeysError> {
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(KeysError::Id(
                "the id must be 1-128 printable characters".into(),
            ));
        }
        if self.keys.iter().any(|k| k.id == id) {
            return Err(KeysError::Id(format!(
                "identity '{id}' already has a key; revoke it first"
            )));
        }
        let key = generate_key();
        self.keys.push(StoredKey {
            id: id.to_owned(),
            roles,
            sha256: hex::encode(Sha256::digest(key.as_bytes())),
            created: OffsetDateTime::now_utc(),
            expires,
        });
        Ok(key)
    }

    /// Removes `id`'s key.
    ///
    /// # Errors
    /// [`KeysError::Id`] when there is none.
    pub fn revoke(&mut self, id: &str) -> Result<(), KeysError> {
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        if self.keys.len() == before {
            return Err(KeysError::Id(format!("no key for identity '{id}'")));
        }
        Ok(())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A fresh random key.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

fn decode_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut out).ok()?;
    Some(out)
}

struct Entry {
    digest: [u8; 32],
    identity: Identity,
    expires: Option<OffsetDateTime>,
}

/// The authenticator built from the config: API keys, or explicitly anonymous.
pub enum Authenticator {
    /// Every caller is `anonymous` (`[auth] anonymous = true`).
    Anonymous,
    /// Bearer API keys.
    Keys(KeyStore),
}

/// Keys by digest.
pub struct KeyStore {
    by_digest: HashMap<[u8; 32], Entry>,
}

impl KeyStore {
    /// Builds the store from a keys file.
    pub fn from_file(file: &KeysFile) -> Self {
        let by_digest = file
            .keys
            .iter()
            .filter_map(|k| {
                let digest = decode_digest(&k.sha256)?;
                Some((
                    digest,
                    Entry {
                        digest,
                        identity: Identity::new(k.id.as_str(), k.roles.clone()),
                        expires: k.expires,
                    },
                ))
            })
            .collect();
        Self { by_digest }
    }

    /// A store holding one key (the demo's one-time key).
    pub fn single(id: &str, key: &str) -> Self {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut by_digest = HashMap::new();
        by_digest.insert(
            digest,
            Entry {
                digest,
                identity: Identity::new(id, vec!["predictor".to_owned()]),
                expires: None,
            },
        );
        Self { by_digest }
    }

    fn check(&self, key: &str, now: OffsetDateTime) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let entry = self.by_digest.get(&digest)?;
        if !bool::from(entry.digest.ct_eq(&digest)) {
            return None;
        }
        if entry.expires.is_some_and(|e| e <= now) {
            return None;
        }
        Some(entry.identity.clone())
    }
}

/// The one failure: whatever was wrong, the caller learns only this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthenticated;

impl Authenticator {
    /// Authenticates a request from its headers.
    ///
    /// # Errors
    /// [`Unauthenticated`] for any missing, malformed, unknown or expired credential.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Unauthenticated> {
        match self {
            Authenticator::Anonymous => Ok(Identity::anonymous()),
            Authenticator::Keys(store) => {
                let value = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(Unauthenticated)?;
                let (scheme, key) = value.split_once(' ').ok_or(Unauthenticated)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(Unauthenticated);
                }
                let key = key.trim();
                if !key.starts_with(KEY_PREFIX) || key.len() > 256 {
                    return Err(Unauthenticated);
                }
                store
                    .check(key, OffsetDateTime::now_utc())
                    .ok_or(Unauthenticated)
            }
        }
    }
}

#[cfg(test)]
mod tests;
