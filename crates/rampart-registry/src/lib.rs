//! # rampart-registry
//!
//! The on-disk model registry: which model versions exist, whether each is exactly what its publisher
//! signed, which one is active, and every change of the active version.
//!
//! - **Signed versions** ([`manifest`]): a version directory `<root>/<name>/<version>/` holds the ONNX model,
//!   its baseline, `manifest.json` (every file's size and SHA-256, the model's name and version) and
//!   `manifest.sig` (ed25519 over the manifest's exact bytes). [`sign_version`] writes both;
//!   [`verify_version`] checks the signature and every file and names each missing, extra or changed file,
//!   a bad signature, a wrong key, a malformed manifest. The format is specified in [`manifest`], precisely
//!   enough for an outside tool to verify a version.
//! - **Activation and rollback** ([`registry`], [`history`]): `<root>/<name>/active.json` names the active
//!   version; `<root>/<name>/history.jsonl` records every activation and rollback (time, from, to, who, why,
//!   the verifying key and the model's digest), append-only. [`Registry::activate`] refuses a version that
//!   does not verify; [`Registry::rollback`] returns to the previous version in one step.
//! - **Names** ([`name`]): [`ModelName`] and [`Version`] are validated path components, so no name can
//!   leave the registry root.
//!
//! What it must not do: load or run a model (it hands back paths and digests; `rampart-model` loads), hold a
//! private key longer than a signing call, follow a symlink out of a version directory, read a metadata file
//! without a size cap, or leave a half-written file under a registry name (writes go through [`atomic`]).
//! Everything is synchronous and cheap enough to call from a reload task: verification is two small reads,
//! one signature check and one hashing pass. Keys come from `rampart-crypto` (`rampart keygen --kind
//! ed25519`); directory walking and hashing from `rampart-data`.
//!
//! How the server uses it (on start, and on hot swap or rollback): verify fully before the old version stops
//! serving, and load from the verified bytes, so that a file swapped after verification is never loaded.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rampart_crypto::sign::VerifyingKey;
//! use rampart_registry::{ModelName, Registry};
//!
//! let key = VerifyingKey::load("signing.key.pub".as_ref())?;
//! let registry = Registry::open("/var/lib/rampart/models")?;
//! let active = registry.active_verified(&ModelName::new("fraud")?, &key)?;
//! let onnx: Vec<u8> = active.read_model()?; // checked against the signed SHA-256 again
//! let audit_digest = active.model_sha256(); // for the audit record
//! # let _ = (onnx, audit_digest, active.baseline_path());
//! # Ok(())
//! # }
//! ```
//!
//! Main types: [`Registry`], [`VerifiedVersion`], [`VerifyError`], [`Manifest`], [`HistoryEntry`],
//! [`ModelName`], [`Version`], [`Trust`], [`Note`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod atomic;
mod bounded;
pub mod digest;
pub mod history;
pub mod manifest;
pub mod name;
pub mod registry;

pub use digest::Sha256Digest;
pub use history::{Action, HistoryEntry, HistoryError};
pub use manifest::{
    sign_version, signature_state, verify_version, FileProblem, Manifest, SignError,
    SignatureState, VerifiedVersion, VerifyError,
};
pub use name::{InvalidName, ModelName, Version};
pub use registry::{ModelListing, Note, Registry, RegistryError, Trust, VersionListing};
