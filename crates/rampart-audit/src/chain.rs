//! The hash chain: what a record's `prev` field is computed from.
//!
//! A link is SHA-256 (FIPS 180-4) over the exact bytes of the previous line as stored, without its trailing
//! `\n`. Hashing stored bytes rather than a re-serialization means a verifier needs no canonical JSON: whatever
//! bytes the writer put on disk are the bytes that are covered. The first record of a log links to
//! [`ChainHash::GENESIS`], 32 zero bytes.

use std::fmt;

use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// A SHA-256 digest that links one record to the next; shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The `prev` of the first record of a log: 32 zero bytes (64 `0` hex digits).
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The link to a stored line: SHA-256 of its bytes, which must not include the trailing `\n`.
    pub fn of_line(line: &[u8]) -> ChainHash {
        ChainHash(Sha256::digest(line).into())
    }

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> ChainHash {
        ChainHash(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lowercase hex digits. Upper case is refused so that a hash has exactly one spelling on disk.
    ///
    /// # Errors
    /// [`BadHash`] if `s` is not exactly 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<ChainHash, BadHash> {
        let digits = s.as_bytes();
        if digits.len() != 64 {
            return Err(BadHash);
        }
        // One table lookup per digit: the verifier decodes a `prev` per line, and a general-purpose hex
        // decoder was a seventh of its time.
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (
                LOWER_HEX[usize::from(pair[0])],
                LOWER_HEX[usize::from(pair[1])],
            );
            if hi == INVALID || lo == INVALID {
                return Err(BadHash);
            }
            *byte = (hi << 4) | lo;
        }
        Ok(ChainHash(out))
    }

    /// The 64 lowercase hex digits written in `prev`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Appends the 64 lowercase hex digits to `out`, without an intermediate `String` (the writer's hot path).
    pub fn write_hex(&self, out: &mut Vec<u8>) {
        let mut digits = [0u8; 64];
        // 32 bytes always fit 64 digits; the error arm cannot happen and writes nothing rather than panic.
        if hex::encode_to_slice(self.0, &mut digits).is_ok() {
            out.extend_from_slice(&digits);
        }
    }
}

/// The default is [`ChainHash::GENESIS`]: what an empty log links to.
impl Default for ChainHash {
    fn default() -> ChainHash {
        ChainHash::GENESIS
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

const INVALID: u8 = 0xff;

/// The value of each lowercase hex digit; [`INVALID`] for every other byte (upper case included, so a hash has
/// exactly one spelling).
const LOWER_HEX: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// A string that should have been a SHA-256 hex digest was not 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 digest (64 lowercase hex digits)")]
pub struct BadHash;

/// Whether `s` is spelled the way this format writes every SHA-256 digest: 64 lowercase hex digits.
pub fn is_lower_hex_256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
