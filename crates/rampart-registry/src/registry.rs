//! The registry root: `<root>/<name>/<version>/` version directories, and per model the active pointer
//! (`active.json`) and the activation history (`history.jsonl`, see [`crate::history`]).
//!
//! # Layout
//!
//! ```text
//! <root>/
//!   fraud/
//!     active.json        {"format":"rampart-model-active/v1","version":"3","since":"2026-11-25T14:00:00Z"}
//!     history.jsonl      one line per activation or rollback
//!     2/  fraud.onnx  fraud.baseline.json  manifest.json  manifest.sig
//!     3/  …
//! ```
//!
//! An activation or rollback appends its history line (fsynced) first, then replaces `active.json` atomically.
//! The history is the record of truth: the version a change starts `from` is the one the history replays to,
//! so a change cut short between the two writes is completed by the next one. Readers that only need the
//! active version (the server, on start and on hot swap) read `active.json`: one small file.
//!
//! Changes to one model are serialized by a lock file, `<root>/<name>/.lock`, created exclusively and removed
//! when the change ends; one left behind by a killed process is named in the error and must be removed by
//! hand.

use std::io::Write;
use std::path::{Path, PathBuf};

use rampart_crypto::sign::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::bounded::{read_text, ReadError};
use crate::history::{self, Action, HistoryEntry, HistoryError, HISTORY_FILE};
use crate::manifest::{
    signature_state, verify_version, SignatureState, VerifiedVersion, VerifyError,
};
use crate::name::{ModelName, Version};

/// The active pointer's file name in a model directory.
pub const ACTIVE_FILE: &str = "active.json";
/// The active pointer's `format`.
pub const ACTIVE_FORMAT: &str = "rampart-model-active/v1";
const LOCK_FILE: &str = ".lock";
const MAX_ACTIVE_BYTES: u64 = 4096;

/// `active.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveFile {
    format: String,
    version: Version,
    #[serde(with = "time::serde::rfc3339")]
    since: time::OffsetDateTime,
}

/// Whether a version must verify before it becomes active.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// It must verify against this key ([`verify_version`]).
    Verify(&'a VerifyingKey),
    /// The operator chose to activate it without checking a signature; the history records that.
    AllowUnsigned,
}

/// Who changes the active version, why, and when: recorded in the history.
#[derive(Debug, Clone)]
pub struct Note {
    /// A user, or a responder's name.
    pub who: String,
    /// Free text; may be empty.
    pub why: String,
    /// When.
    pub at: time::OffsetDateTime,
}

impl Note {
    /// A note stamped with the current time.
    pub fn now(who: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            who: who.into(),
            why: why.into(),
            at: time::OffsetDateTime::now_utc(),
        }
    }
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Reading or writing failed.
    #[error("{path}: {cause}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The root is not a directory.
    #[error("{path}: not a model registry (not a directory)")]
    NotARegistry {
        /// The root given.
        path: PathBuf,
    },
    /// No such model directory.
    #[error("no model {name} in the registry ({path} does not exist)")]
    NoSuchModel {
        /// The model.
        name: ModelName,
        /// Its expected directory.
        path: PathBuf,
    },
    /// No such version directory.
    #[error("no version {version} of model {name} ({path} does not exist)")]
    NoSuchVersion {
        /// The model.
        name: ModelName,
        /// The version.
        version: Version,
        /// Its expected directory.
        path: PathBuf,
    },
    /// The version did not verify, so it was not activated.
    #[error("refused to activate {name} {version}: {cause}")]
    Refused {
        /// The model.
        name: ModelName,
        /// The version.
        version: Version,
        /// Why it did not verify.
        cause: VerifyError,
    },
    /// Nothing to roll back to.
    #[error("{name}: no previous version to roll back to (active: {})", active.as_ref().map_or("none", Version::as_str))]
    NoPrevious {
        /// The model.
        name: ModelName,
        /// The version active now, if any.
        active: Option<Version>,
    },
    /// The version is already the active one: nothing was recorded.
    #[error("{name} {version} is already active")]
    AlreadyActive {
        /// The model.
        name: ModelName,
        /// The version.
        version: Version,
    },
    /// No version of the model is active.
    #[error("{name}: no active version (activate one first)")]
    NotActive {
        /// The model.
        name: ModelName,
    },
    /// `active.json` does not parse.
    #[error("{path}: not a {ACTIVE_FORMAT} pointer: {reason}")]
    ActiveCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The history could not be read, replayed or appended to.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// Another change to this model is in progress (or one was killed and left its lock).
    #[error(
        "{path} exists: another activation or rollback of this model is in progress (if none is, a killed \
         one left it: remove the file)"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

impl RegistryError {
    /// Whether this is a finding (a version refused because it did not verify) rather than an input error.
    pub fn is_finding(&self) -> bool {
        matches!(self, Self::Refused { cause, .. } if cause.is_finding())
    }
}

/// One version in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionListing {
    /// The version.
    pub version: Version,
    /// Whether it is the active one.
    pub active: bool,
    /// Its signature: checked when a key was given.
    pub signature: SignatureState,
}

/// One model in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelListing {
    /// The model.
    pub name: ModelName,
    /// The active version, if any.
    pub active: Option<Version>,
    /// Every version, in natural order.
    pub versions: Vec<VersionListing>,
}

/// A model registry on disk (see the module doc for the layout).
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

/// Removes the model's lock file when a change ends, however it ends.
struct ModelLock(PathBuf);

impl Drop for ModelLock {
    fn drop(&mut self) {
        // Nothing useful to do if it fails: the next change names the leftover file.
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Registry {
    /// Opens the registry rooted at `root`, an existing directory.
    ///
    /// # Errors
    /// [`RegistryError::Io`] when `root` cannot be read, [`RegistryError::NotARegistry`] when it is not a
    /// directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let root = root.into();
        let meta = std::fs::metadata(&root).map_err(|cause| RegistryError::Io {
            path: root.clone(),
            cause,
        })?;
        if !meta.is_dir() {
            return Err(RegistryError::NotARegistry { path: root });
        }
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<name>`.
    pub fn model_dir(&self, name: &ModelName) -> PathBuf {
        self.root.join(name)
    }

    /// `<root>/<name>/<version>`.
    pub fn version_dir(&self, name: &ModelName, version: &Version) -> PathBuf {
        self.model_dir(name).join(version)
    }

    /// Every model: the directories under the root with a valid name, sorted.
    ///
    /// # Errors
    /// [`RegistryError::Io`].
    pub fn models(&self) -> Result<Vec<ModelName>, RegistryError> {
        let mut names = subdirs(&self.root, |n| ModelName::new(n).ok())?;
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(names)
    }

    /// A model's versions: the directories under its directory with a valid version name, in natural order
    /// ([`Version::natural_cmp`]).
    ///
    /// # Errors
    /// [`RegistryError::NoSuchModel`], [`RegistryError::Io`].
    pub fn versions(&self, name: &ModelName) -> Result<Vec<Version>, RegistryError> {
        let dir = self.existing_model_dir(name)?;
        let mut versions = subdirs(&dir, |n| Version::new(n).ok())?;
        versions.sort_by(Version::natural_cmp);
        Ok(versions)
    }

    /// The active version, from `active.json`; `None` when no version was ever activated.
    ///
    /// # Errors
    /// [`RegistryError::ActiveCorrupt`], [`RegistryError::Io`].
    pub fn active(&self, name: &ModelName) -> Result<Option<Version>, RegistryError> {
        let path = self.model_dir(name).join(ACTIVE_FILE);
        let text = match read_text(&path, MAX_ACTIVE_BYTES) {
            Ok(t) => t,
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(ReadError::Io(cause)) => return Err(RegistryError::Io { path, cause }),
            Err(e) => {
                return Err(RegistryError::ActiveCorrupt {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        let corrupt = |reason| RegistryError::ActiveCorrupt {
            path: path.clone(),
            reason,
        };
        let active: ActiveFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if active.format != ACTIVE_FORMAT {
            return Err(corrupt(format!("format is {:?}", active.format)));
        }
        Ok(Some(active.version))
    }

    /// Verifies a version of the registry ([`verify_version`]).
    ///
    /// # Errors
    /// [`RegistryError::NoSuchVersion`], [`RegistryError::Refused`] with the [`VerifyError`].
    pub fn verify(
        &self,
        name: &ModelName,
        version: &Version,
        key: &VerifyingKey,
    ) -> Result<VerifiedVersion, RegistryError> {
        let dir = self.existing_version_dir(name, version)?;
        verify_version(&dir, key).map_err(|cause| RegistryError::Refused {
            name: name.clone(),
            version: version.clone(),
            cause,
        })
    }

    /// The active version, verified against `key`: what the server loads on start and on hot swap.
    ///
    /// # Errors
    /// [`RegistryError::NotActive`], [`RegistryError::Refused`], and those of [`Registry::active`].
    pub fn active_verified(
        &self,
        name: &ModelName,
        key: &VerifyingKey,
    ) -> Result<VerifiedVersion, RegistryError> {
        let version = self
            .active(name)?
            .ok_or_else(|| RegistryError::NotActive { name: name.clone() })?;
        self.verify(name, &version, key)
    }

    /// Every entry of a model's history, oldest first.
    ///
    /// # Errors
    /// [`RegistryError::NoSuchModel`], [`RegistryError::History`].
    pub fn history(&self, name: &ModelName) -> Result<Vec<HistoryEntry>, RegistryError> {
        let dir = self.existing_model_dir(name)?;
        Ok(history::read(&dir.join(HISTORY_FILE))?)
    }

    /// The version [`Registry::rollback`] would return to now, if any: the server loads and verifies it before
    /// it asks the registry to roll back, so the old version serves until the new one is ready.
    ///
    /// # Errors
    /// [`RegistryError::NoSuchModel`], [`RegistryError::History`].
    pub fn previous(&self, name: &ModelName) -> Result<Option<Version>, RegistryError> {
        let dir = self.existing_model_dir(name)?;
        let history_path = dir.join(HISTORY_FILE);
        let mut stack = history::stack(&history_path, &history::read(&history_path)?)?;
        stack.pop();
        Ok(stack.pop())
    }

    /// Makes `version` the active version of `name`, after verifying it when `trust` says so, and records the
    /// change in the history.
    ///
    /// # Errors
    /// [`RegistryError::NoSuchVersion`], [`RegistryError::Refused`] (it did not verify: nothing changed),
    /// [`RegistryError::AlreadyActive`] (nothing recorded), [`RegistryError::Locked`],
    /// [`RegistryError::History`], [`RegistryError::Io`].
    pub fn activate(
        &self,
        name: &ModelName,
        version: &Version,
        trust: Trust<'_>,
        note: &Note,
    ) -> Result<HistoryEntry, RegistryError> {
        self.existing_version_dir(name, version)?;
        let _lock = self.lock(name)?;
        let history_path = self.model_dir(name).join(HISTORY_FILE);
        let stack = history::stack(&history_path, &history::read(&history_path)?)?;
        let from = stack.last().cloned();
        if from.as_ref() == Some(version) {
            return Err(RegistryError::AlreadyActive {
                name: name.clone(),
                version: version.clone(),
            });
        }
        self.change(name, Action::Activate, from, version, trust, note)
    }

    /// Returns `name` to the version that was active before the current one (see [`crate::history`] for
    /// what "before" means), verifying it when `trust` says so, and records the change.
    ///
    /// # Errors
    /// [`RegistryError::NoPrevious`], [`RegistryError::NoSuchVersion`] (the previous version's directory was
    /// removed), [`RegistryError::Refused`], [`RegistryError::Locked`], [`RegistryError::History`],
    /// [`RegistryError::Io`].
    pub fn rollback(
        &self,
        name: &ModelName,
        trust: Trust<'_>,
        note: &Note,
    ) -> Result<HistoryEntry, RegistryError> {
        self.existing_model_dir(name)?;
        let _lock = self.lock(name)?;
        let history_path = self.model_dir(name).join(HISTORY_FILE);
        let mut stack = history::stack(&history_path, &history::read(&history_path)?)?;
        let from = stack.pop();
        let Some(to) = stack.pop() else {
            return Err(RegistryError::NoPrevious {
                name: name.clone(),
                active: from,
            });
        };
        self.existing_version_dir(name, &to)?;
        self.change(name, Action::Rollback, from, &to, trust, note)
    }

    /// Verifies `to`, appends the history line, then points `active.json` at `to`. Called under the lock.
    fn change(
        &self,
        name: &ModelName,
        action: Action,
        from: Option<Version>,
        to: &Version,
        trust: Trust<'_>,
        note: &Note,
    ) -> Result<HistoryEntry, RegistryError> {
        let verified = match trust {
            Trust::Verify(key) => Some(self.verify(name, to, key)?),
            Trust::AllowUnsigned => None,
        };
        let entry = HistoryEntry {
            time: note.at,
            action,
            from,
            to: to.clone(),
            who: note.who.clone(),
            why: note.why.clone(),
            key_id: verified.as_ref().map(|v| v.key_id().to_string()),
            model_sha256: verified.as_ref().map(VerifiedVersion::model_sha256),
        };
        let dir = self.model_dir(name);
        history::append(&dir.join(HISTORY_FILE), &entry)?;
        let pointer = ActiveFile {
            format: ACTIVE_FORMAT.to_owned(),
            version: to.clone(),
            since: note.at,
        };
        let path = dir.join(ACTIVE_FILE);
        let io = |cause| RegistryError::Io {
            path: path.clone(),
            cause,
        };
        let mut bytes = serde_json::to_vec(&pointer).map_err(|e| io(e.into()))?;
        bytes.push(b'\n');
        crate::atomic::replace_bytes(&path, &bytes).map_err(io)?;
        Ok(entry)
    }

    /// Lists `name` (or every model) with each version's signature state, checked against `key` when given.
    ///
    /// # Errors
    /// [`RegistryError::NoSuchModel`], [`RegistryError::ActiveCorrupt`], [`RegistryError::Io`].
    pub fn list(
        &self,
        name: Option<&ModelName>,
        key: Option<&VerifyingKey>,
    ) -> Result<Vec<ModelListing>, RegistryError> {
        let names = match name {
            Some(n) => vec![n.clone()],
            None => self.models()?,
        };
        names
            .into_iter()
            .map(|name| {
                let active = self.active(&name)?;
                let versions = self
                    .versions(&name)?
                    .into_iter()
                    .map(|version| VersionListing {
                        signature: signature_state(&self.version_dir(&name, &version), key),
                        active: active.as_ref() == Some(&version),
                        version,
                    })
                    .collect();
                Ok(ModelListing {
                    name,
                    active,
                    versions,
                })
            })
            .collect()
    }

    fn existing_model_dir(&self, name: &ModelName) -> Result<PathBuf, RegistryError> {
        let dir = self.model_dir(name);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(RegistryError::NoSuchModel {
                name: name.clone(),
                path: dir,
            })
        }
    }

    fn existing_version_dir(
        &self,
        name: &ModelName,
        version: &Version,
    ) -> Result<PathBuf, RegistryError> {
        self.existing_model_dir(name)?;
        let dir = self.version_dir(name, version);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(RegistryError::NoSuchVersion {
                name: name.clone(),
                version: version.clone(),
                path: dir,
            })
        }
    }

    fn lock(&self, name: &ModelName) -> Result<ModelLock, RegistryError> {
        let path = self.model_dir(name).join(LOCK_FILE);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                // The holder's pid, for whoever finds a leftover lock; the lock works without it.
                let _ = writeln!(f, "{}", std::process::id());
                Ok(ModelLock(path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RegistryError::Locked { path })
            }
            Err(cause) => Err(RegistryError::Io { path, cause }),
        }
    }
}

/// The subdirectories of `dir` whose names `parse` accepts (everything else — files, hidden and invalid
/// names — is not part of the registry and is skipped).
fn subdirs<T>(dir: &Path, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, RegistryError> {
    let io = |cause| RegistryError::Io {
        path: dir.to_owned(),
        cause,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if !entry.file_type().map_err(io)?.is_dir() {
            continue;
        }
        if let Some(v) = entry.file_name().to_str().and_then(&parse) {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
