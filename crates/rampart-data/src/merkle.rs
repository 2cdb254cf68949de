//! A Merkle tree hash over a manifest's sorted entries, as RFC 6962 §2.1 defines it (Certificate
//! Transparency): leaves hash as `SHA-256(0x00 ‖ leaf)`, inner nodes as `SHA-256(0x01 ‖ left ‖ right)`, the
//! split at the largest power of two smaller than the count; the empty tree is `SHA-256("")`. The prefixes
//! keep a leaf from ever passing for an inner node.

use sha2::{Digest, Sha256};

/// The tree hash of `leaves` (already canonical bytes, in order).
pub fn root<L: AsRef<[u8]>>(leaves: &[L]) -> [u8; 32] {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(one.as_ref());
            h.finalize().into()
        }
        _ => {
            let k = split(leaves.len());
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(root(&leaves[..k]));
            h.update(root(&leaves[k..]));
            h.finalize().into()
        }
    }
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

#[cfg(test)]
mod tests;
