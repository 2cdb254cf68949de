//! Key files: one text format for every key Rampart uses.
//!
//! # Format, version 1
//!
//! ```text
//! # rampart key file: keep it private (mode 0600)
//! rampart-key v1
//! kind: aes256
//! id: 3f9a0c51d2e47b86
//! material: <64 hex digits>
//! ```
//!
//! - Lines starting with `#` and blank lines are ignored. The first other line is the version line,
//!   `rampart-key v1`; any other version is refused, so a future format cannot be misread as this one.
//! - `kind` is one of `ed25519-private` (the 32-byte seed), `ed25519-public` (the 32-byte compressed point),
//!   `aes256` (32 bytes), `hmac` (32 bytes).
//! - `id` is 16 hex digits: the first 8 bytes of SHA-256 over a domain label and the *public* part — the
//!   public key for ed25519 (so a private key file and its `.pub` share an id), the key itself for the
//!   symmetric kinds (a commitment to a 256-bit random key, which reveals nothing useful). The id is
//!   recomputed on load and a mismatch is refused: it catches a corrupted or hand-edited file.
//! - Files are created mode 0600 and never overwritten. A file holding a secret (every kind but
//!   `ed25519-public`) that group or others may read is refused on load, as ssh does.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::SecretBytes;

/// The version line every key file starts with.
const VERSION_LINE: &str = "rampart-key v1";
/// Key files are tiny; a larger file is not a key file (and is never read whole).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// An ed25519 signing key (its 32-byte seed).
    Ed25519Private,
    /// An ed25519 verifying key.
    Ed25519Public,
    /// An AES-256 key for the encryption container.
    Aes256,
    /// An HMAC key (keyed pseudonyms).
    Hmac,
}

impl KeyKind {
    /// The name in key files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519Private => "ed25519-private",
            Self::Ed25519Public => "ed25519-public",
            Self::Aes256 => "aes256",
            Self::Hmac => "hmac",
        }
    }

    /// Whether a file of this kind holds a secret (and so must be mode 0600).
    pub const fn is_secret(self) -> bool {
        !matches!(self, Self::Ed25519Public)
    }

    const fn material_len(self) -> usize {
        32
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Ed25519Private,
            Self::Ed25519Public,
            Self::Aes256,
            Self::Hmac,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's id: 8 bytes, shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of a key whose public part is `public` (see the module doc).
    pub fn derive(kind_label: &str, public: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"rampart key id v1\0");
        h.update(kind_label.as_bytes());
        h.update([0]);
        h.update(public);
        let d = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        Self(id)
    }

    /// Parses 16 hex digits.
    ///
    /// # Errors
    /// `None` when `s` is not 16 hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a key file cannot be written or loaded. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `keygen` never overwrites a key.
    #[error("key file {path} already exists: refusing to overwrite a key (move it away first)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file holding a secret is readable by group or others.
    #[error(
        "key file {path} is mode {mode:04o}: a private key must not be readable by group or others \
         (run `chmod 600 {path}`)"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a version-1 key file.
    #[error("key file {path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, without any key material.
        reason: String,
    },
    /// The file holds another kind of key than the command needs.
    #[error("key file {path} holds a {found} key, but a {expected} key is needed")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// The kind needed.
        expected: KeyKind,
        /// The kind found.
        found: KeyKind,
    },
    /// The recorded id does not match the key: the file is corrupted or was edited.
    #[error("key file {path}: its id does not match its key material (corrupted or edited file)")]
    IdMismatch {
        /// The file.
        path: PathBuf,
    },
}

/// A loaded key file.
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// What the key is for.
    pub kind: KeyKind,
    /// Its id.
    pub id: KeyId,
    /// The key material.
    pub material: SecretBytes,
}

impl KeyFile {
    /// A key file for `material`, its id derived from `public` (the public key for ed25519, the material
    /// itself otherwise).
    pub fn new(kind: KeyKind, material: SecretBytes, public: &[u8]) -> Self {
        Self {
            kind,
            id: KeyId::derive(kind_family(kind), public),
            material,
        }
    }

    /// The file's text.
    fn render(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# rampart key file: keep it private (mode 0600)\n{VERSION_LINE}\nkind: {}\nid: {}\nmaterial: {}\n",
            self.kind,
            self.id,
            hex::encode(self.material.expose())
        ))
    }

    /// Writes the file, mode 0600, refusing to overwrite an existing file.
    ///
    /// # Errors
    /// [`KeyError::Exists`] when `path` exists; [`KeyError::Io`] otherwise.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io(e)
            }
        })?;
        file.write_all(self.render().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Loads a key file of any kind, checking its permissions, its format and its id.
    ///
    /// # Errors
    /// [`KeyError::TooOpen`] for a secret readable by group or others, [`KeyError::Format`] for a file that
    /// is not a version-1 key file, [`KeyError::IdMismatch`], [`KeyError::Io`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = read_bounded(path)?;
        let key = parse(path, &text)?;
        if key.kind.is_secret() {
            check_private_mode(path)?;
        }
        Ok(key)
    }

    /// Loads a key file that must be of `kind`.
    ///
    /// # Errors
    /// As [`KeyFile::load`], and [`KeyError::WrongKind`].
    pub fn load_kind(path: &Path, kind: KeyKind) -> Result<Self, KeyError> {
        let key = Self::load(path)?;
        if key.kind != kind {
            return Err(KeyError::WrongKind {
                path: path.to_owned(),
                expected: kind,
                found: key.kind,
            });
        }
        Ok(key)
    }
}

/// Private and public ed25519 files share an id, so they hash under one label.
fn kind_family(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ed25519Private | KeyKind::Ed25519Public => "ed25519",
        other => other.as_str(),
    }
}

fn read_bounded(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    use std::io::Read;
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(format_err(path, "larger than any key file: not a key file"));
    }
    std::io::read_to_string(file.take(MAX_KEY_FILE_BYTES))
        .map(Zeroizing::new)
        .map_err(|_| format_err(path, "not UTF-8 text: not a key file"))
}

fn format_err(path: &Path, reason: &str) -> KeyError {
    KeyError::Format {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse(path: &Path, text: &str) -> Result<KeyFile, KeyError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some(VERSION_LINE) => {}
        Some(l) if l.starts_with("rampart-key ") => {
            return Err(format_err(
                path,
                "unsupported key file version (this build reads v1)",
            ))
        }
        _ => {
            return Err(format_err(
                path,
                "not a rampart key file (no `rampart-key v1` line)",
            ))
        }
    }
    let (mut kind, mut id, mut material) = (None, None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format_err(path, "a line is not `name: value`"));
        };
        let value = value.trim();
        let slot = match name.trim() {
            "kind" => &mut kind,
            "id" => &mut id,
            "material" => &mut material,
            _ => {
                return Err(format_err(
                    path,
                    "unknown field (expected kind, id, material)",
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(format_err(path, "a field appears twice"));
        }
    }
    let kind = kind.ok_or_else(|| format_err(path, "missing `kind`"))?;
    let kind = KeyKind::parse(kind).ok_or_else(|| {
        format_err(
            path,
            "unknown kind (expected ed25519-private, ed25519-public, aes256, hmac)",
        )
    })?;
    let id = id
        .and_then(KeyId::parse)
        .ok_or_else(|| format_err(path, "missing or malformed `id` (16 hex digits)"))?;
    let material = material.ok_or_else(|| format_err(path, "missing `material`"))?;
    let mut bytes = Zeroizing::new(vec![0u8; kind.material_len()]);
    hex::decode_to_slice(material, &mut bytes).map_err(|_| {
        format_err(
            path,
            &format!("`material` must be {} hex digits", 2 * kind.material_len()),
        )
    })?;
    let material = SecretBytes::new(std::mem::take(&mut *bytes));
    let public = public_part(kind, &material);
    let expected = KeyId::derive(kind_family(kind), &public);
    if expected != id {
        return Err(KeyError::IdMismatch {
            path: path.to_owned(),
        });
    }
    Ok(KeyFile { kind, id, material })
}

/// The bytes a key's id is derived from.
fn public_part(kind: KeyKind, material: &SecretBytes) -> Zeroizing<Vec<u8>> {
    match kind {
        KeyKind::Ed25519Private => {
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(material.expose());
            let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
            Zeroizing::new(sk.verifying_key().to_bytes().to_vec())
        }
        _ => Zeroizing::new(material.expose().to_vec()),
    }
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path) -> Result<(), KeyError> {
    // Windows ACLs are not mode bits; the operator's ACLs govern there.
    Ok(())
}

/// Generates a new key of `kind` (ed25519: the private key; see [`crate::sign::SigningKey::public_file`]).
///
/// # Errors
/// `None` for [`KeyKind::Ed25519Public`], which is derived, not generated.
pub fn generate(kind: KeyKind) -> Option<KeyFile> {
    match kind {
        KeyKind::Ed25519Public => None,
        KeyKind::Ed25519Private => Some(crate::sign::SigningKey::generate().into_key_file()),
        KeyKind::Aes256 | KeyKind::Hmac => {
            let material = SecretBytes::random(32);
            let id = KeyId::derive(kind_family(kind), material.expose());
            Some(KeyFile { kind, id, material })
        }
    }
}

#[cfg(test)]
mod tests;
