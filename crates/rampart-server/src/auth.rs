//! API-key authentication.
//!
//! A key is `rk_` followed by 64 hex digits (256 random bits). The keys file stores only its SHA-256 with
//! the identity, roles, creation time and optional expiry: a stolen keys file yields no usable key, and with
//! 256-bit random keys a per-key salt adds nothing (there is no dictionary to precompute). Lookup is by the
//! digest in a hash map followed by a constant-time comparison; the map's timing can only reveal digest
//! prefixes, which say nothing about the key (SHA-256 preimage resistance).
//!
//! Every failure — no header, wrong scheme, unknown, revoked or expired key, any JWT failure — is the same
//! 401 with the same body, so a client learns nothing about which part was wrong.
//!
//! The keys file is re-read when it changes (polled) or on SIGHUP, and swapped in whole ([`ArcSwap`]): a
//! request sees either the old set or the new one, never a half-read file; a file that fails to parse leaves
//! the old set in place (logged, without its content).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use http::HeaderMap;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use rampart_core::Identity;

use crate::jwt::JwtVerifier;

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

/// The identity a TLS client certificate proved (its first SAN URI, else its CN), attached by the listener to
/// every request of the connection; empty on plain connections and TLS without client certificates.
#[derive(Debug, Clone, Default)]
pub struct Peer(pub Option<Arc<str>>);

/// The authenticator built from the config: API keys (reloadable), JWTs, client certificates, or explicitly
/// anonymous.
pub struct Authenticator {
    anonymous: bool,
    keys: Option<Arc<ArcSwap<KeyStore>>>,
    jwt: Option<JwtVerifier>,
    client_cert_roles: Vec<String>,
}

impl Authenticator {
    /// Every caller is `anonymous` with role `anonymous` (`[auth] anonymous = true`).
    pub fn anonymous() -> Self {
        Self {
            anonymous: true,
            keys: None,
            jwt: None,
            client_cert_roles: Vec::new(),
        }
    }

    /// API keys only.
    pub fn keys(store: KeyStore) -> Self {
        Self::new(
            Some(Arc::new(ArcSwap::from_pointee(store))),
            None,
            Vec::new(),
        )
    }

    /// Any combination of sources: `keys` (swapped in place when the file changes), `jwt`, and the roles of
    /// identities proved by a client certificate alone.
    pub fn new(
        keys: Option<Arc<ArcSwap<KeyStore>>>,
        jwt: Option<JwtVerifier>,
        client_cert_roles: Vec<String>,
    ) -> Self {
        Self {
            anonymous: false,
            keys,
            jwt,
            client_cert_roles,
        }
    }
}

/// Keys by digest./// Keys by digest.
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
    /// Authenticates a request: by its bearer credential when it has one (an API key when it starts with
    /// `rk_`, else a JWT), otherwise by the connection's client certificate, otherwise as `anonymous` when
    /// the config allows it.
    ///
    /// # Errors
    /// [`Unauthenticated`] for any missing, malformed, unknown or expired credential.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Identity, Unauthenticated> {
        if self.anonymous {
            return Ok(Identity::new("anonymous", vec!["anonymous".to_owned()]));
        }
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return match &peer.0 {
                Some(name) => Ok(Identity::new(name.clone(), self.client_cert_roles.clone())),
                None => Err(Unauthenticated),
            };
        };
        let value = value.to_str().map_err(|_| Unauthenticated)?;
        let (scheme, credential) = value.split_once(' ').ok_or(Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Unauthenticated);
        }
        let credential = credential.trim();
        if credential.starts_with(KEY_PREFIX) {
            if credential.len() > 256 {
                return Err(Unauthenticated);
            }
            let store = self.keys.as_ref().ok_or(Unauthenticated)?.load();
            return store
                .check(credential, OffsetDateTime::now_utc())
                .ok_or(Unauthenticated);
        }
        self.jwt
            .as_ref()
            .and_then(|j| j.verify(credential))
            .ok_or(Unauthenticated)
    }
}

#[cfg(test)]
mod tests;
