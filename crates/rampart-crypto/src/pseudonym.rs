//! Keyed pseudonyms: a stable stand-in for a name (an identity) that reveals nothing without the key.
//!
//! `pseudonym(name) = "ps_" ‖ hex(HMAC-SHA-256(key, "rampart pseudonym v1\0" ‖ name)[..16])`. The same name
//! always maps to the same pseudonym under one key, so logs can still be grouped and searched per identity
//! (given the key, a searcher computes the pseudonym of the name it looks for); without the key a pseudonym
//! cannot be reversed or confirmed by guessing names, which a plain hash would allow. 128 bits keep
//! collisions out of reach for any number of identities a gateway sees.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

use crate::keyfile::{KeyError, KeyFile, KeyId, KeyKind};

/// Domain separation: a pseudonym can never equal an HMAC this key computes for another purpose.
const DOMAIN: &[u8] = b"rampart pseudonym v1\0";
/// Prefix of every pseudonym, so a reader can tell one from a name.
pub const PREFIX: &str = "ps_";

/// An HMAC key that turns names into pseudonyms.
#[derive(Clone)]
pub struct PseudonymKey {
    mac: Hmac<Sha256>,
    id: KeyId,
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PseudonymKey({})", self.id)
    }
}

impl PseudonymKey {
    /// Loads an `hmac` key file.
    ///
    /// # Errors
    /// See [`KeyFile::load_kind`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Ok(Self::from_key_file(&KeyFile::load_kind(
            path,
            KeyKind::Hmac,
        )?))
    }

    /// The key held by an `hmac` key file (its kind is the caller's to check).
    pub fn from_key_file(file: &KeyFile) -> Self {
        // HMAC takes keys of any length, so this cannot fail; the fallback keeps the type total.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(file.material.expose())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        Self { mac, id: file.id }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The pseudonym of `name`.
    pub fn pseudonym(&self, name: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(name.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PREFIX.len() + 32);
        out.push_str(PREFIX);
        out.push_str(&hex::encode(&digest[..16]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyfile::generate;

    #[test]
    fn stable_per_key_distinct_across_keys() -> Result<(), String> {
        let a = PseudonymKey::from_key_file(&generate(KeyKind::Hmac).ok_or("no key")?);
        let b = PseudonymKey::from_key_file(&generate(KeyKind::Hmac).ok_or("no key")?);
        let p = a.pseudonym("alice");
        assert_eq!(p, a.pseudonym("alice"));
        assert_ne!(p, a.pseudonym("bob"));
        assert_ne!(p, b.pseudonym("alice"));
        assert!(p.starts_with(PREFIX));
        assert_eq!(p.len(), PREFIX.len() + 32);
        assert!(!p.contains("alice"));
        Ok(())
    }

    #[test]
    fn matches_the_documented_construction() -> Result<(), String> {
        let file = KeyFile::new(
            KeyKind::Hmac,
            crate::SecretBytes::new(vec![7u8; 32]),
            &[7u8; 32],
        );
        let key = PseudonymKey::from_key_file(&file);
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).map_err(|e| e.to_string())?;
        mac.update(b"rampart pseudonym v1\0alice");
        let full = mac.finalize().into_bytes();
        assert_eq!(
            key.pseudonym("alice"),
            format!("ps_{}", hex::encode(&full[..16]))
        );
        Ok(())
    }
}
