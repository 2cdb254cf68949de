//! Dataset manifests: every file's path, size, SHA-256 and BLAKE3, a Merkle root over them, and an
//! optional ed25519 signature of the root.
//!
//! # Format (`rampart-manifest/v1`, JSON)
//!
//! ```json
//! { "format": "rampart-manifest/v1", "created": "2026-11-25T12:00:00Z",
//!   "file_count": 2, "total_bytes": 11, "merkle_root": "<hex>",
//!   "files": [ { "path": "a/b.csv", "size": 5, "sha256": "<hex>", "blake3": "<hex>" }, … ],
//!   "signature": { "key_id": "<16 hex>", "sig": "<128 hex>" } }
//! ```
//!
//! `files` is sorted by path (bytewise, `/`-separated, relative). The Merkle root is the RFC 6962 tree hash
//! ([`crate::merkle`]) whose leaves are `path 0x00 size 0x00 sha256 0x00 blake3` (size in decimal, digests
//! in lowercase hex). The signature is ed25519 over `"rampart manifest v1" 0x00 ‖ root (32 bytes)`: the
//! root commits to every entry, so signing it signs the dataset. `created` is informational, not signed.

use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_crypto::keyfile::KeyId;
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::digest::{default_workers, hash_files, FileDigest};
use crate::walk::{walk, WalkError};

/// The `format` value this build writes and reads.
pub const FORMAT: &str = "rampart-manifest/v1";
/// The signature's domain label.
const SIGNING_DOMAIN: &[u8] = b"rampart manifest v1\0";
/// A manifest is metadata: one much larger than this is not one (and is never read whole).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// Why a manifest cannot be built, read or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Walking the directory was refused.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The manifest file is not a version-1 manifest.
    #[error("{path}: not a {FORMAT} manifest: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// BLAKE3, hex.
    pub blake3: String,
}

impl Entry {
    fn new(path: String, d: &FileDigest) -> Self {
        Self {
            path,
            size: d.size,
            sha256: hex::encode(d.sha256),
            blake3: hex::encode(d.blake3),
        }
    }

    /// The Merkle leaf (see the module doc).
    fn leaf(&self) -> Vec<u8> {
        format!(
            "{}\0{}\0{}\0{}",
            self.path, self.size, self.sha256, self.blake3
        )
        .into_bytes()
    }
}

/// A signature beside the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signing key's id.
    pub key_id: String,
    /// ed25519, hex.
    pub sig: String,
}

/// A dataset manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// RFC 3339, when it was made.
    pub created: String,
    /// `files.len()`.
    pub file_count: u64,
    /// The sum of the sizes.
    pub total_bytes: u64,
    /// Merkle root, hex.
    pub merkle_root: String,
    /// Sorted by path.
    pub files: Vec<Entry>,
    /// ed25519 over the root, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// Progress while hashing: the total first, then bytes as they are read (from several threads).
pub trait Progress: Sync {
    /// The bytes about to be hashed.
    fn total(&self, _bytes: u64) {}
    /// Bytes just hashed.
    fn advance(&self, _bytes: u64) {}
}

impl Progress for () {}

/// Walks and hashes `dir`, leaving out the relative path `skip` (the manifest itself, when it is kept in
/// the directory it describes).
fn scan(
    dir: &Path,
    skip: Option<&str>,
    progress: &dyn Progress,
) -> Result<Vec<Entry>, ManifestError> {
    let mut found = walk(dir)?;
    found.retain(|f| Some(f.rel.as_str()) != skip);
    let total = found
        .iter()
        .filter_map(|f| std::fs::metadata(&f.abs).ok())
        .map(|m| m.len())
        .sum();
    progress.total(total);
    let paths: Vec<&Path> = found.iter().map(|f| f.abs.as_path()).collect();
    let digests = hash_files(&paths, default_workers(), &|n| progress.advance(n)).map_err(
        |(i, source)| ManifestError::Io {
            path: found
                .get(i)
                .map_or_else(|| dir.to_owned(), |f| f.abs.clone()),
            source,
        },
    )?;
    Ok(found
        .into_iter()
        .zip(&digests)
        .map(|(f, d)| Entry::new(f.rel, d))
        .collect())
}

fn root_of(files: &[Entry]) -> [u8; 32] {
    let leaves: Vec<Vec<u8>> = files.iter().map(Entry::leaf).collect();
    crate::merkle::root(&leaves)
}

impl Manifest {
    /// Builds the manifest of `dir`, leaving out the relative path `skip` (see [`relative_inside`]).
    ///
    /// # Errors
    /// [`ManifestError::Walk`] for a refused symlink or file type, [`ManifestError::Io`].
    pub fn build(
        dir: &Path,
        skip: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<Self, ManifestError> {
        let files = scan(dir, skip, progress)?;
        let created = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Ok(Self {
            format: FORMAT.to_owned(),
            created,
            file_count: files.len() as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
            merkle_root: hex::encode(root_of(&files)),
            files,
            signature: None,
        })
    }

    /// Signs the Merkle root.
    pub fn sign(&mut self, key: &SigningKey) {
        let sig = key.sign(&signed_message(&root_of(&self.files)));
        self.signature = Some(Signature {
            key_id: key.id().to_string(),
            sig: hex::encode(sig),
        });
    }

    /// Reads a manifest file.
    ///
    /// # Errors
    /// [`ManifestError::Io`], [`ManifestError::Format`].
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let file = std::fs::File::open(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let format = |reason: String| ManifestError::Format {
            path: path.to_owned(),
            reason,
        };
        let m: Self =
            serde_json::from_reader(std::io::BufReader::new(file.take(MAX_MANIFEST_BYTES)))
                .map_err(|e| format(e.to_string()))?;
        if m.format != FORMAT {
            return Err(format(format!("format is {:?}", m.format)));
        }
        Ok(m)
    }

    /// Checks the manifest against itself (root, counts), its signature against `key`, and `dir` against
    /// the manifest (every added, removed and modified file).
    ///
    /// # Errors
    /// Walking or reading `dir` failed; findings are in the [`Verification`], not errors.
    pub fn verify(
        &self,
        dir: &Path,
        skip: Option<&str>,
        key: Option<&VerifyingKey>,
        progress: &dyn Progress,
    ) -> Result<Verification, ManifestError> {
        let root = root_of(&self.files);
        let root_matches = hex::encode(root) == self.merkle_root
            && self.file_count == self.files.len() as u64
            && self.total_bytes == self.files.iter().map(|f| f.size).sum::<u64>();
        let signature = match (key, &self.signature) {
            (None, _) => SignatureStatus::NotChecked,
            (Some(_), None) => SignatureStatus::Missing,
            (Some(k), Some(s)) => match KeyId::parse(&s.key_id) {
                None => SignatureStatus::Invalid("malformed key id".to_owned()),
                Some(id) => match k.verify_hex(&signed_message(&root), id, &s.sig) {
                    Ok(()) => SignatureStatus::Valid(id.to_string()),
                    Err(e) => SignatureStatus::Invalid(e.to_string()),
                },
            },
        };
        let actual = scan(dir, skip, progress)?;
        let mut v = Verification {
            root_matches,
            signature,
            added: Vec::new(),
            removed: Vec::new(),
            modified: Vec::new(),
        };
        diff(&self.files, &actual, &mut v);
        Ok(v)
    }
}

/// `file`'s path relative to `dir` when it lies inside it (it need not exist yet; its directory must).
pub fn relative_inside(dir: &Path, file: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?.canonicalize().ok()?,
    };
    let rel = parent.strip_prefix(&dir).ok()?.join(file.file_name()?);
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

fn signed_message(root: &[u8; 32]) -> Vec<u8> {
    [SIGNING_DOMAIN, root.as_slice()].concat()
}

/// Merges two sorted entry lists.
fn diff(expected: &[Entry], actual: &[Entry], v: &mut Verification) {
    let (mut i, mut j) = (0, 0);
    while i < expected.len() || j < actual.len() {
        match (expected.get(i), actual.get(j)) {
            (Some(e), Some(a)) if e.path == a.path => {
                if e != a {
                    v.modified.push(Modified {
                        path: e.path.clone(),
                        expected_size: e.size,
                        actual_size: a.size,
                    });
                }
                i += 1;
                j += 1;
            }
            (Some(e), Some(a)) if e.path < a.path => {
                v.removed.push(e.path.clone());
                i += 1;
            }
            (Some(e), None) => {
                v.removed.push(e.path.clone());
                i += 1;
            }
            (_, Some(a)) => {
                v.added.push(a.path.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The recorded root, count and total match the entries (false: the manifest was edited).
    pub root_matches: bool,
    /// The signature's state.
    pub signature: SignatureStatus,
    /// On disk, not in the manifest.
    pub added: Vec<String>,
    /// In the manifest, not on disk.
    pub removed: Vec<String>,
    /// In both, with another size or digest.
    pub modified: Vec<Modified>,
}

impl Verification {
    /// No finding at all.
    pub fn is_clean(&self) -> bool {
        self.root_matches
            && matches!(
                self.signature,
                SignatureStatus::NotChecked | SignatureStatus::Valid(_)
            )
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.modified.is_empty()
    }
}

/// A file whose content changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modified {
    /// Its path.
    pub path: String,
    /// Size in the manifest.
    pub expected_size: u64,
    /// Size on disk.
    pub actual_size: u64,
}

/// The signature's state after verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// No public key was given.
    NotChecked,
    /// Valid, by this key id.
    Valid(String),
    /// A key was given but the manifest is unsigned.
    Missing,
    /// Bad: why.
    Invalid(String),
}

#[cfg(test)]
mod tests;
