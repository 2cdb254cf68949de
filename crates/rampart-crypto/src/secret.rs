//! Secret bytes: zeroized on drop, redacted in `Debug`.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Key material. Its memory is overwritten with zeros when dropped, and `Debug` prints only its length,
/// so a stray `{:?}` in a log line cannot leak a key.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (moved, not copied, so no stray copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> Self {
        use rand::RngCore;
        let mut bytes = vec![0u8; len];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret itself: keep the borrow short.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests;
