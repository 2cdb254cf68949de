//! Sealing small values (an audit record's output and input) with AES-256-GCM, one random nonce per value.
//!
//! The container ([`crate::container`]) is for files; a record is a few hundred bytes that must be sealed on
//! the request path without a stream, so each value gets its own 96-bit nonce from the OS CSPRNG and its own
//! tag. The associated data binds the sealed bytes to the place they belong (an audit record's request id):
//! moved to another record, they no longer open.
//!
//! Limits, stated so that rotation is planned rather than discovered: random 96-bit nonces stay safe for
//! 2^32 values under one key (NIST SP 800-38D §8.3). Rotate the key well before that — at 10,000 sealed
//! values a second, that is about five days; rotating daily keeps the collision probability under 2^-40.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use rand::RngCore;

use crate::container::AeadKey;
use crate::keyfile::KeyId;

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 12;

/// A value sealed under one key: what is stored beside (instead of) the plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// The key that sealed it, so a reader holding several keys (after a rotation) picks the right one.
    pub key: KeyId,
    /// The value's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SealedValue(key {}, {} bytes)",
            self.key,
            self.data.len()
        )
    }
}

/// A sealed value does not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// It was sealed under another key than the one given.
    #[error("sealed under key {found}, but the key given is {expected}")]
    WrongKey {
        /// The key given.
        expected: KeyId,
        /// The key named beside the value.
        found: KeyId,
    },
    /// Authentication failed: the value, its nonce or its associated data was changed.
    #[error("sealed value does not authenticate: modified, or moved from another record")]
    Invalid,
}

impl AeadKey {
    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> SealedValue {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption under AES-GCM fails only for plaintexts over 64 GiB, which no caller hands over; the
        // empty result then fails to open, loudly, rather than passing silently.
        let data = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        SealedValue {
            key: self.id(),
            nonce,
            data,
        }
    }

    /// Opens a value sealed by [`AeadKey::seal`] with the same `aad`.
    ///
    /// # Errors
    /// [`SealError::WrongKey`] when another key sealed it, [`SealError::Invalid`] when it does not
    /// authenticate.
    pub fn open_sealed(&self, aad: &[u8], sealed: &SealedValue) -> Result<Vec<u8>, SealError> {
        if sealed.key != self.id() {
            return Err(SealError::WrongKey {
                expected: self.id(),
                found: sealed.key,
            });
        }
        self.cipher()
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.data,
                    aad,
                },
            )
            .map_err(|_| SealError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyfile::{generate, KeyKind};

    fn key() -> Result<AeadKey, String> {
        let file = generate(KeyKind::Aes256).ok_or("no aes key")?;
        Ok(AeadKey::from_key_file(&file))
    }

    #[test]
    fn round_trip_and_binding() -> Result<(), String> {
        let key = key()?;
        let sealed = key.seal(b"req-1", b"{\"label\":\"setosa\"}");
        assert_eq!(sealed.data.len(), 18 + 16);
        let opened = key
            .open_sealed(b"req-1", &sealed)
            .map_err(|e| e.to_string())?;
        assert_eq!(opened, b"{\"label\":\"setosa\"}");
        assert!(matches!(
            key.open_sealed(b"req-2", &sealed),
            Err(SealError::Invalid)
        ));
        let mut flipped = sealed.clone();
        flipped.data[0] ^= 1;
        assert!(matches!(
            key.open_sealed(b"req-1", &flipped),
            Err(SealError::Invalid)
        ));
        Ok(())
    }

    #[test]
    fn nonces_differ_and_wrong_key_is_named() -> Result<(), String> {
        let (a, b) = (key()?, key()?);
        let s1 = a.seal(b"", b"x");
        let s2 = a.seal(b"", b"x");
        assert_ne!(s1.nonce, s2.nonce);
        assert!(matches!(
            b.open_sealed(b"", &s1),
            Err(SealError::WrongKey { .. })
        ));
        Ok(())
    }
}
