//! ed25519 signatures (RFC 8032) over domain-separated messages.
//!
//! Every signed thing in Rampart names its domain (`"rampart manifest v1"`, …) in the message, so a
//! signature made for one purpose can never be replayed as another. Verification is `verify_strict`
//! (no small-order keys, canonical `S`): malleable signatures are refused.

use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
use zeroize::Zeroizing;

use crate::keyfile::{KeyError, KeyFile, KeyId, KeyKind};
use crate::SecretBytes;

/// A signature does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature is not 64 bytes of hex.
    #[error("malformed signature (expected 128 hex digits)")]
    Malformed,
    /// The signature was made by another key than the one given.
    #[error("signed by key {found}, but the public key given is {expected}")]
    UnknownKey {
        /// The verifying key's id.
        expected: KeyId,
        /// The id recorded beside the signature.
        found: KeyId,
    },
    /// The signature does not match the message: the content was changed after signing, or forged.
    #[error("bad signature: the signed content was modified or the signature forged")]
    Invalid,
}

/// An ed25519 signing key (zeroized on drop by `ed25519-dalek`).
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    id: KeyId,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

impl SigningKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Self {
        Self::from_key(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn from_key(key: ed25519_dalek::SigningKey) -> Self {
        let id = KeyId::derive("ed25519", key.verifying_key().as_bytes());
        Self { key, id }
    }

    /// Loads an `ed25519-private` key file.
    ///
    /// # Errors
    /// See [`KeyFile::load_kind`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let file = KeyFile::load_kind(path, KeyKind::Ed25519Private)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(file.material.expose());
        Ok(Self::from_key(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// This key's id (shared with its public key).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// Signs `message`; 64 bytes.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The private key file.
    pub fn into_key_file(self) -> KeyFile {
        KeyFile {
            kind: KeyKind::Ed25519Private,
            id: self.id,
            material: SecretBytes::new(self.key.to_bytes().to_vec()),
        }
    }

    /// The public key file (`FILE.pub`).
    pub fn public_file(&self) -> KeyFile {
        self.verifying_key().into_key_file()
    }
}

/// An ed25519 public key.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    key: ed25519_dalek::VerifyingKey,
    id: KeyId,
}

impl VerifyingKey {
    /// Loads an `ed25519-public` key file.
    ///
    /// # Errors
    /// See [`KeyFile::load_kind`]; [`KeyError::Format`] for bytes that are not a curve point.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let file = KeyFile::load_kind(path, KeyKind::Ed25519Public)?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(file.material.expose());
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Format {
                path: PathBuf::from(path),
                reason: "`material` is not an ed25519 public key".to_owned(),
            })?;
        Ok(Self { key, id: file.id })
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The public key file.
    pub fn into_key_file(self) -> KeyFile {
        KeyFile {
            kind: KeyKind::Ed25519Public,
            id: self.id,
            material: SecretBytes::new(self.key.to_bytes().to_vec()),
        }
    }

    /// Verifies a signature, given as hex, that `signer` recorded beside it.
    ///
    /// # Errors
    /// [`SignatureError::UnknownKey`] when `signer` is not this key, [`SignatureError::Malformed`],
    /// [`SignatureError::Invalid`].
    pub fn verify_hex(
        &self,
        message: &[u8],
        signer: KeyId,
        signature_hex: &str,
    ) -> Result<(), SignatureError> {
        if signer != self.id {
            return Err(SignatureError::UnknownKey {
                expected: self.id,
                found: signer,
            });
        }
        let mut sig = [0u8; 64];
        hex::decode_to_slice(signature_hex, &mut sig).map_err(|_| SignatureError::Malformed)?;
        self.verify(message, &sig)
    }

    /// Verifies a 64-byte signature strictly.
    ///
    /// # Errors
    /// [`SignatureError::Invalid`].
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.key
            .verify_strict(message, &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests;
