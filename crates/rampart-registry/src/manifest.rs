//! Signed version directories: what `sign_version` writes and `verify_version` checks.
//!
//! # Format, version 1
//!
//! A version directory `<name>/<version>/` holds the model's files and two more, `manifest.json` and
//! `manifest.sig`. `manifest.json` is UTF-8 JSON, at most 1 MiB:
//!
//! ```json
//! {
//!   "format": "rampart-model-manifest/v1",
//!   "name": "fraud",
//!   "version": "3",
//!   "model": "fraud.onnx",
//!   "baseline": "fraud.baseline.json",
//!   "files": [
//!     { "path": "fraud.baseline.json", "size": 10557, "sha256": "<64 lowercase hex digits>" },
//!     { "path": "fraud.onnx", "size": 623, "sha256": "<64 lowercase hex digits>" }
//!   ]
//! }
//! ```
//!
//! - `files` lists every file under the directory except `manifest.json` and `manifest.sig` at its top:
//!   paths relative, `/`-separated, no empty, `.` or `..` component, sorted bytewise, each once; `size` in
//!   bytes; `sha256` of the file's bytes. Unknown fields are refused.
//! - `model` and `baseline` name entries of `files`: the ONNX model (the one file whose name ends in
//!   `.onnx`) and its baseline (the one whose name ends in `baseline.json`, as `rampart profile` writes).
//! - `name` and `version` must equal the names of the directory's parent and of the directory itself: a signed
//!   version copied or moved under another name or version (an old model relabelled as the new one) does not
//!   verify.
//!
//! `manifest.sig` is UTF-8 JSON, at most 4 KiB:
//!
//! ```json
//! { "format": "rampart-model-signature/v1", "key_id": "<16 hex digits>", "sig": "<128 hex digits>" }
//! ```
//!
//! `sig` is an ed25519 signature (RFC 8032, verified strictly: canonical `S`, no small-order key) over the
//! bytes `rampart model manifest v1` `0x00` followed by **the exact bytes of `manifest.json` as stored** — no
//! canonicalization, so any edit to the file, whitespace included, breaks it. `key_id` names the key as
//! `rampart_crypto::keyfile` does (the first 8 bytes of SHA-256 over `rampart key id v1` `0x00` `ed25519`
//! `0x00` and the 32-byte public key); it lets a wrong key be told apart from a bad signature.
//!
//! # Verification, in order
//!
//! 1. `manifest.json` is read and parsed (missing: [`VerifyError::MissingManifest`], not valid:
//!    [`VerifyError::MalformedManifest`]).
//! 2. `manifest.sig` is read and parsed ([`VerifyError::Unsigned`], [`VerifyError::MalformedSignature`]),
//!    its key id compared with the public key's ([`VerifyError::WrongKey`]) and the signature checked
//!    ([`VerifyError::BadSignature`]).
//! 3. `name` / `version` are compared with the directory's ([`VerifyError::Misplaced`]).
//! 4. Every file under the directory is hashed and compared with `files`: each missing, extra and changed
//!    file is named ([`VerifyError::Files`]). Symlinks that leave the directory are refused
//!    (`rampart_data::walk`).
//!
//! Only after all four does the caller get a [`VerifiedVersion`].
//!
//! A worked example, signed in this format and checked by a test, is committed under
//! `crates/rampart-registry/tests/data/golden/` (the version `fraud/1` and its public key).

use std::path::{Path, PathBuf};

use rampart_crypto::keyfile::KeyId;
use rampart_crypto::sign::{SignatureError, SigningKey, VerifyingKey};
use rampart_data::digest::{default_workers, hash_files};
use rampart_data::walk::{walk, WalkError};
use serde::{Deserialize, Serialize};

use crate::bounded::{read_text, ReadError};
use crate::digest::Sha256Digest;
use crate::name::{InvalidName, ModelName, Version};

/// The manifest's file name in a version directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The signature's file name in a version directory.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// The manifest's `format`.
pub const FORMAT: &str = "rampart-model-manifest/v1";
/// The signature file's `format`.
pub const SIGNATURE_FORMAT: &str = "rampart-model-signature/v1";
/// The domain label prefixed to the manifest's bytes before signing.
const SIGNING_DOMAIN: &[u8] = b"rampart model manifest v1\0";
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
const MAX_SIGNATURE_BYTES: u64 = 4096;

/// One file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Sha256Digest,
}

/// A version's manifest (see the module doc for the format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The model.
    pub name: ModelName,
    /// The version.
    pub version: Version,
    /// The ONNX file's path, an entry of `files`.
    pub model: String,
    /// The baseline's path, an entry of `files`.
    pub baseline: String,
    /// Every file, sorted by path.
    pub files: Vec<FileEntry>,
}

/// `manifest.sig`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    format: String,
    key_id: String,
    sig: String,
}

/// Why a version could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The directory is not `<name>/<version>` with valid names.
    #[error("{dir}: a version directory must be <model name>/<version>: {cause}")]
    Location {
        /// The directory.
        dir: PathBuf,
        /// The refused name.
        cause: InvalidName,
    },
    /// Walking the directory was refused (a symlink leaving it, a device…).
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// No file, or more than one, ends in `.onnx` (or `baseline.json`).
    #[error("{dir}: {problem}")]
    Contents {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

/// A file that does not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileProblem {
    /// Listed in the manifest, not in the directory.
    Missing {
        /// Its path.
        path: String,
    },
    /// In the directory, not in the manifest.
    Extra {
        /// Its path.
        path: String,
    },
    /// In both, with other content.
    Changed {
        /// Its path.
        path: String,
        /// The signed digest.
        expected: Sha256Digest,
        /// The digest on disk.
        actual: Sha256Digest,
        /// The signed size.
        expected_size: u64,
        /// The size on disk.
        actual_size: u64,
    },
}

impl FileProblem {
    /// The file's path, relative to the version directory.
    pub fn path(&self) -> &str {
        match self {
            Self::Missing { path } | Self::Extra { path } | Self::Changed { path, .. } => path,
        }
    }
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { path } => {
                write!(f, "missing file {path}: signed, but not in the directory")
            }
            Self::Extra { path } => write!(f, "extra file {path}: in the directory, not signed"),
            Self::Changed {
                path,
                expected,
                actual,
                expected_size,
                actual_size,
            } => write!(
                f,
                "changed file {path}: SHA-256 {actual} ({actual_size} bytes), signed {expected} \
                 ({expected_size} bytes)"
            ),
        }
    }
}

/// Why a version does not verify. Every variant names the file, the key or the signature that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The directory could not be read (it does not exist, permissions…). Not a finding: an input error.
    #[error("{path}: {cause}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// No `manifest.json`: the version was never signed.
    #[error("missing manifest: {path} does not exist (the version was never signed)")]
    MissingManifest {
        /// The expected manifest.
        path: PathBuf,
    },
    /// `manifest.json` is not a version-1 manifest.
    #[error("malformed manifest {path}: {reason}")]
    MalformedManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `manifest.json` but no `manifest.sig`.
    #[error("unsigned: {path} does not exist")]
    Unsigned {
        /// The expected signature file.
        path: PathBuf,
    },
    /// `manifest.sig` is not a version-1 signature file.
    #[error("malformed signature file {path}: {reason}")]
    MalformedSignature {
        /// The signature file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Signed by another key than the one given.
    #[error("wrong key: {path} was signed by key {found}, but the public key given is {expected}")]
    WrongKey {
        /// The signature file.
        path: PathBuf,
        /// The given key's id.
        expected: KeyId,
        /// The signer's id.
        found: KeyId,
    },
    /// The signature does not verify: `manifest.json` was edited after signing, or the signature forged.
    #[error(
        "bad signature: {path} does not verify over {manifest} (the manifest was modified after signing, \
         or the signature forged)"
    )]
    BadSignature {
        /// The signature file.
        path: PathBuf,
        /// The manifest it covers.
        manifest: PathBuf,
    },
    /// The manifest was signed for another model or version than the directory it is in.
    #[error(
        "misplaced version: {dir} holds a manifest signed for {signed_for}, not {found_at} \
         (a signed version copied or moved under another name)"
    )]
    Misplaced {
        /// The directory.
        dir: PathBuf,
        /// `name/version` in the manifest.
        signed_for: String,
        /// `name/version` of the directory.
        found_at: String,
    },
    /// Files differ from the manifest: every one is listed.
    #[error("{dir}: {} file(s) do not match the signed manifest: {}", problems.len(), join(problems))]
    Files {
        /// The directory.
        dir: PathBuf,
        /// Each missing, extra and changed file.
        problems: Vec<FileProblem>,
    },
    /// Walking the directory was refused (a symlink leaving it, a device, a name that is not UTF-8).
    #[error(transparent)]
    Walk(WalkError),
}

fn join(problems: &[FileProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl VerifyError {
    /// Whether this is a finding (the version is unsigned, tampered with or signed by someone else) rather
    /// than an input error (the directory could not be read). The CLI exits 1 on a finding, 2 otherwise.
    pub fn is_finding(&self) -> bool {
        !matches!(self, Self::Io { .. } | Self::Walk(WalkError::Io { .. }))
    }
}

/// A version whose every file matched its manifest and whose signature verified. Only
/// [`verify_version`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedVersion {
    name: ModelName,
    version: Version,
    dir: PathBuf,
    model: FileEntry,
    baseline: FileEntry,
    manifest_sha256: Sha256Digest,
    key_id: KeyId,
    files: usize,
}

impl VerifiedVersion {
    /// The model's name.
    pub fn name(&self) -> &ModelName {
        &self.name
    }
    /// The version.
    pub fn version(&self) -> &Version {
        &self.version
    }
    /// The version directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The ONNX file.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.model.path)
    }
    /// The baseline.
    pub fn baseline_path(&self) -> PathBuf {
        self.dir.join(&self.baseline.path)
    }
    /// The ONNX file's SHA-256 (for the audit record).
    pub fn model_sha256(&self) -> Sha256Digest {
        self.model.sha256
    }
    /// The baseline's SHA-256.
    pub fn baseline_sha256(&self) -> Sha256Digest {
        self.baseline.sha256
    }
    /// The SHA-256 of `manifest.json`: one digest that commits to every file of the version.
    pub fn manifest_sha256(&self) -> Sha256Digest {
        self.manifest_sha256
    }
    /// The key that signed it.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// How many files the manifest covers.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// Reads the ONNX file and checks it is still the verified content. Load the model from these bytes
    /// rather than from [`VerifiedVersion::model_path`], so that a file swapped after verification is never
    /// loaded.
    ///
    /// # Errors
    /// [`VerifyError::Files`] naming the file when it changed since verification; [`VerifyError::Io`].
    pub fn read_model(&self) -> Result<Vec<u8>, VerifyError> {
        self.read_verified(&self.model)
    }

    /// Reads the baseline and checks it is still the verified content (see [`VerifiedVersion::read_model`]).
    ///
    /// # Errors
    /// As [`VerifiedVersion::read_model`].
    pub fn read_baseline(&self) -> Result<Vec<u8>, VerifyError> {
        self.read_verified(&self.baseline)
    }

    fn read_verified(&self, entry: &FileEntry) -> Result<Vec<u8>, VerifyError> {
        use std::io::Read;
        let path = self.dir.join(&entry.path);
        let io = |cause| VerifyError::Io {
            path: path.clone(),
            cause,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        // The signed size bounds the read; one byte more tells a file that grew.
        let mut bytes = Vec::new();
        std::io::copy(&mut file.take(entry.size.saturating_add(1)), &mut bytes).map_err(io)?;
        let actual = Sha256Digest::of(&bytes);
        if bytes.len() as u64 != entry.size || actual != entry.sha256 {
            return Err(VerifyError::Files {
                dir: self.dir.clone(),
                problems: vec![FileProblem::Changed {
                    path: entry.path.clone(),
                    expected: entry.sha256,
                    actual,
                    expected_size: entry.size,
                    actual_size: bytes.len() as u64,
                }],
            });
        }
        Ok(bytes)
    }
}

/// The canonical directory and the `(name, version)` its last two components spell.
fn location(dir: &Path) -> Result<(PathBuf, ModelName, Version), LocationError> {
    let canonical = dir.canonicalize().map_err(LocationError::Io)?;
    let component = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned()
    };
    let version = component(Some(&canonical));
    let name = component(canonical.parent());
    let version = Version::new(version).map_err(LocationError::Name)?;
    let name = ModelName::new(name).map_err(LocationError::Name)?;
    Ok((canonical, name, version))
}

enum LocationError {
    Io(std::io::Error),
    Name(InvalidName),
}

/// Every file of the version (sorted, relative), the manifest and signature left out.
fn scan(dir: &Path) -> Result<Vec<rampart_data::walk::Found>, WalkError> {
    let mut found = walk(dir)?;
    found.retain(|f| f.rel != MANIFEST_FILE && f.rel != SIGNATURE_FILE);
    Ok(found)
}

/// Hashes `found` (in parallel across files), in order.
fn hash(
    found: &[rampart_data::walk::Found],
    dir: &Path,
) -> Result<Vec<FileEntry>, (PathBuf, std::io::Error)> {
    let paths: Vec<&Path> = found.iter().map(|f| f.abs.as_path()).collect();
    let digests = hash_files(&paths, default_workers(), &|_| {}).map_err(|(i, e)| {
        let path = found
            .get(i)
            .map_or_else(|| dir.to_owned(), |f| f.abs.clone());
        (path, e)
    })?;
    Ok(found
        .iter()
        .zip(digests)
        .map(|(f, d)| FileEntry {
            path: f.rel.clone(),
            size: d.size,
            sha256: Sha256Digest(d.sha256),
        })
        .collect())
}

/// The one entry whose path ends in `suffix`.
fn the_one(files: &[FileEntry], suffix: &str, what: &str) -> Result<String, String> {
    let mut matching = files.iter().filter(|f| f.path.ends_with(suffix));
    match (matching.next(), matching.next()) {
        (Some(f), None) => Ok(f.path.clone()),
        (None, _) => Err(format!("no {what} (a file whose name ends in `{suffix}`)")),
        (Some(a), Some(b)) => Err(format!(
            "more than one {what} ({} and {}): a version holds exactly one",
            a.path, b.path
        )),
    }
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, manifest].concat()
}

/// Hashes every file of the version directory `dir` (`…/<name>/<version>/`), writes `manifest.json` and
/// its signature `manifest.sig` (each atomically, replacing earlier ones), and returns the manifest.
///
/// # Errors
/// [`SignError::Location`] when `dir` is not `<name>/<version>` with valid names, [`SignError::Contents`]
/// when it does not hold exactly one `.onnx` file and one `baseline.json`, [`SignError::Walk`],
/// [`SignError::Io`].
pub fn sign_version(dir: &Path, key: &SigningKey) -> Result<Manifest, SignError> {
    let (_, name, version) = location(dir).map_err(|e| match e {
        LocationError::Io(cause) => SignError::Io {
            path: dir.to_owned(),
            cause,
        },
        LocationError::Name(cause) => SignError::Location {
            dir: dir.to_owned(),
            cause,
        },
    })?;
    let found = scan(dir)?;
    let files = hash(&found, dir).map_err(|(path, cause)| SignError::Io { path, cause })?;
    let contents = |problem| SignError::Contents {
        dir: dir.to_owned(),
        problem,
    };
    let model = the_one(&files, ".onnx", "ONNX model").map_err(contents)?;
    let baseline = the_one(&files, "baseline.json", "baseline").map_err(contents)?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        name,
        version,
        model,
        baseline,
        files,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| SignError::Io {
        path: dir.join(MANIFEST_FILE),
        cause: e.into(),
    })?;
    bytes.push(b'\n');
    let signature = SignatureFile {
        format: SIGNATURE_FORMAT.to_owned(),
        key_id: key.id().to_string(),
        sig: hex::encode(key.sign(&signed_message(&bytes))),
    };
    let mut sig_bytes = serde_json::to_vec_pretty(&signature).map_err(|e| SignError::Io {
        path: dir.join(SIGNATURE_FILE),
        cause: e.into(),
    })?;
    sig_bytes.push(b'\n');
    for (file, content) in [(MANIFEST_FILE, &bytes), (SIGNATURE_FILE, &sig_bytes)] {
        let path = dir.join(file);
        crate::atomic::replace_bytes(&path, content)
            .map_err(|cause| SignError::Io { path, cause })?;
    }
    Ok(manifest)
}

/// Checks a manifest's own consistency (see the module doc): its format, sorted unique safe paths, and
/// `model` / `baseline` among them.
fn check_manifest(m: &Manifest) -> Result<(), String> {
    if m.format != FORMAT {
        return Err(format!(
            "format is {:?}, this build reads {FORMAT:?}",
            m.format
        ));
    }
    for f in &m.files {
        let safe = !f.path.is_empty()
            && !f.path.contains(['\\', '\0'])
            && f.path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !safe {
            return Err(format!(
                "file path {:?} is not a safe relative path",
                f.path
            ));
        }
    }
    if let Some(w) = m.files.windows(2).find(|w| w[0].path >= w[1].path) {
        return Err(format!(
            "`files` is not sorted by path with each path once (at {:?})",
            w[1].path
        ));
    }
    for (field, path) in [("model", &m.model), ("baseline", &m.baseline)] {
        if !m.files.iter().any(|f| &f.path == path) {
            return Err(format!("`{field}` {path:?} is not one of `files`"));
        }
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<(Manifest, String), VerifyError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match read_text(&path, MAX_MANIFEST_BYTES) {
        Ok(t) => t,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::MissingManifest { path })
        }
        Err(ReadError::Io(cause)) => return Err(VerifyError::Io { path, cause }),
        Err(e) => {
            return Err(VerifyError::MalformedManifest {
                path,
                reason: e.to_string(),
            })
        }
    };
    let malformed = |reason| VerifyError::MalformedManifest {
        path: path.clone(),
        reason,
    };
    let m: Manifest = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    check_manifest(&m).map_err(malformed)?;
    Ok((m, text))
}

fn check_signature(dir: &Path, manifest: &str, key: &VerifyingKey) -> Result<KeyId, VerifyError> {
    let path = dir.join(SIGNATURE_FILE);
    let malformed = |path: &Path, reason: String| VerifyError::MalformedSignature {
        path: path.to_owned(),
        reason,
    };
    let text = match read_text(&path, MAX_SIGNATURE_BYTES) {
        Ok(t) => t,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::Unsigned { path })
        }
        Err(ReadError::Io(cause)) => return Err(VerifyError::Io { path, cause }),
        Err(e) => return Err(malformed(&path, e.to_string())),
    };
    let sig: SignatureFile =
        serde_json::from_str(&text).map_err(|e| malformed(&path, e.to_string()))?;
    if sig.format != SIGNATURE_FORMAT {
        return Err(malformed(
            &path,
            format!(
                "format is {:?}, this build reads {SIGNATURE_FORMAT:?}",
                sig.format
            ),
        ));
    }
    let signer = KeyId::parse(&sig.key_id)
        .ok_or_else(|| malformed(&path, "`key_id` is not 16 hex digits".to_owned()))?;
    match key.verify_hex(&signed_message(manifest.as_bytes()), signer, &sig.sig) {
        Ok(()) => Ok(signer),
        Err(SignatureError::UnknownKey { expected, found }) => Err(VerifyError::WrongKey {
            path,
            expected,
            found,
        }),
        Err(SignatureError::Malformed) => {
            Err(malformed(&path, "`sig` is not 128 hex digits".to_owned()))
        }
        Err(_) => Err(VerifyError::BadSignature {
            manifest: dir.join(MANIFEST_FILE),
            path,
        }),
    }
}

/// Compares the directory's files with the manifest's (both sorted by path).
fn compare(expected: &[FileEntry], actual: &[FileEntry]) -> Vec<FileProblem> {
    let mut problems = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        match (expected.get(i), actual.get(j)) {
            (Some(e), Some(a)) if e.path == a.path => {
                if e.sha256 != a.sha256 || e.size != a.size {
                    problems.push(FileProblem::Changed {
                        path: e.path.clone(),
                        expected: e.sha256,
                        actual: a.sha256,
                        expected_size: e.size,
                        actual_size: a.size,
                    });
                }
                i += 1;
                j += 1;
            }
            (Some(e), Some(a)) if e.path < a.path => {
                problems.push(FileProblem::Missing {
                    path: e.path.clone(),
                });
                i += 1;
            }
            (Some(e), None) => {
                problems.push(FileProblem::Missing {
                    path: e.path.clone(),
                });
                i += 1;
            }
            (_, Some(a)) => {
                problems.push(FileProblem::Extra {
                    path: a.path.clone(),
                });
                j += 1;
            }
            (None, None) => return problems,
        }
    }
}

/// Verifies the version directory `dir` against its signed manifest and `key` (see the module doc for the
/// steps). Cheap and synchronous: two small reads, one signature check, one hashing pass over the files.
///
/// # Errors
/// [`VerifyError`] naming the file, key or signature that failed; [`VerifyError::is_finding`] tells
/// tampering from an unreadable directory.
pub fn verify_version(dir: &Path, key: &VerifyingKey) -> Result<VerifiedVersion, VerifyError> {
    let io = |cause| VerifyError::Io {
        path: dir.to_owned(),
        cause,
    };
    let meta = std::fs::metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(io(std::io::Error::other("not a directory")));
    }
    let (manifest, text) = read_manifest(dir)?;
    let key_id = check_signature(dir, &text, key)?;
    let signed_for = format!("{}/{}", manifest.name, manifest.version);
    let canonical = match location(dir) {
        Ok((canonical, name, version)) if name == manifest.name && version == manifest.version => {
            canonical
        }
        Ok((_, name, version)) => {
            return Err(VerifyError::Misplaced {
                dir: dir.to_owned(),
                signed_for,
                found_at: format!("{name}/{version}"),
            })
        }
        Err(LocationError::Io(cause)) => return Err(io(cause)),
        Err(LocationError::Name(e)) => {
            return Err(VerifyError::Misplaced {
                dir: dir.to_owned(),
                signed_for,
                found_at: format!("a directory that is not <name>/<version> ({e})"),
            })
        }
    };
    let found = scan(dir).map_err(VerifyError::Walk)?;
    let actual = hash(&found, dir).map_err(|(path, cause)| VerifyError::Io { path, cause })?;
    let problems = compare(&manifest.files, &actual);
    if !problems.is_empty() {
        return Err(VerifyError::Files {
            dir: dir.to_owned(),
            problems,
        });
    }
    let entry = |path: &str| manifest.files.iter().find(|f| f.path == path).cloned();
    // `check_manifest` proved both are in `files`; a mismatch here would be a bug, reported, not a panic.
    let (Some(model), Some(baseline)) = (entry(&manifest.model), entry(&manifest.baseline)) else {
        return Err(VerifyError::MalformedManifest {
            path: dir.join(MANIFEST_FILE),
            reason: "`model` or `baseline` is not one of `files`".to_owned(),
        });
    };
    Ok(VerifiedVersion {
        name: manifest.name,
        version: manifest.version,
        dir: canonical,
        model,
        baseline,
        manifest_sha256: Sha256Digest::of(text.as_bytes()),
        key_id,
        files: manifest.files.len(),
    })
}

/// What a version's signature looks like without a key to check it: for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignatureState {
    /// No `manifest.json` or no `manifest.sig`.
    Unsigned,
    /// A signature by this key id is present; not checked (no public key given).
    Signed {
        /// The signer's key id, as recorded.
        key_id: String,
    },
    /// Verified against the given public key.
    Verified {
        /// The signer's key id.
        key_id: String,
        /// The ONNX file's SHA-256.
        model_sha256: Sha256Digest,
    },
    /// A public key was given and verification failed.
    Failed {
        /// Why (the [`VerifyError`]'s message).
        reason: String,
    },
}

/// The signature state of `dir`: verified when `key` is given, otherwise only whether a signature is there.
pub fn signature_state(dir: &Path, key: Option<&VerifyingKey>) -> SignatureState {
    if let Some(key) = key {
        return match verify_version(dir, key) {
            Ok(v) => SignatureState::Verified {
                key_id: v.key_id().to_string(),
                model_sha256: v.model_sha256(),
            },
            Err(VerifyError::MissingManifest { .. } | VerifyError::Unsigned { .. }) => {
                SignatureState::Unsigned
            }
            Err(e) => SignatureState::Failed {
                reason: e.to_string(),
            },
        };
    }
    if !dir.join(MANIFEST_FILE).is_file() {
        return SignatureState::Unsigned;
    }
    match read_text(&dir.join(SIGNATURE_FILE), MAX_SIGNATURE_BYTES) {
        Ok(text) => match serde_json::from_str::<SignatureFile>(&text) {
            Ok(sig) => SignatureState::Signed { key_id: sig.key_id },
            Err(e) => SignatureState::Failed {
                reason: format!("malformed signature file: {e}"),
            },
        },
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            SignatureState::Unsigned
        }
        Err(e) => SignatureState::Failed {
            reason: format!("signature file unreadable: {e}"),
        },
    }
}

#[cfg(test)]
mod tests;
