//! A SHA-256 digest: 32 bytes, written as 64 lowercase hex digits in manifests, history and listings.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest(pub [u8; 32]);

/// Not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 digest (expected 64 hex digits)")]
pub struct MalformedDigest;

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(bytes).into())
    }
}

impl FromStr for Sha256Digest {
    type Err = MalformedDigest;
    fn from_str(s: &str) -> Result<Self, MalformedDigest> {
        // Lowercase only, so that one digest has one spelling (manifests compare as text, too).
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(MalformedDigest);
        }
        let mut d = [0u8; 32];
        hex::decode_to_slice(s, &mut d).map_err(|_| MalformedDigest)?;
        Ok(Self(d))
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = MalformedDigest;
    fn try_from(s: String) -> Result<Self, MalformedDigest> {
        s.parse()
    }
}

impl From<Sha256Digest> for String {
    fn from(d: Sha256Digest) -> String {
        d.to_string()
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}
