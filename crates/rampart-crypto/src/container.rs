//! The encryption container: AES-256-GCM over a file, in independently authenticated chunks.
//!
//! The construction is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, *Online Authenticated-Encryption and
//! its Nonce-Reuse Misuse-Resistance*, CRYPTO 2015), as used by `age` and Tink: each chunk's nonce holds
//! its index and a final-chunk flag, so the file can be encrypted and decrypted in constant memory while
//! any truncation, reordering, duplication or deletion of chunks fails authentication.
//!
//! # Format, version 1
//!
//! All integers big-endian. A file is a 25-byte header followed by one or more chunks.
//!
//! ```text
//! header  (25 bytes)
//!   0..8    magic        "RAMPENC\0"
//!   8       version      1
//!   9       chunk_log2   plaintext bytes per chunk = 2^chunk_log2; 12..=24 accepted, 16 (64 KiB) written
//!   10..18  key_id       the AES key's id (see `keyfile`): a wrong key is named before any decryption
//!   18..25  nonce_prefix 7 random bytes, fresh per file
//! chunk i (i = 0, 1, …)
//!   ciphertext  exactly 2^chunk_log2 bytes for every chunk but the last; 0..=2^chunk_log2 for the last
//!   tag         16 bytes
//! ```
//!
//! Chunk `i` is sealed with AES-256-GCM under
//!
//! - nonce (12 bytes) = `nonce_prefix (7) ‖ i as u32 (4) ‖ last (1)`, `last` = 1 for the final chunk, else 0;
//! - associated data = the whole 25-byte header, so changing the version, chunk size or key id breaks
//!   every chunk.
//!
//! The final chunk is the one that ends the file; it is empty only when the plaintext is empty (so an empty
//! file is a header and one 16-byte tag). A file holds at most 2^32 chunks (256 TiB at 64 KiB).
//!
//! # Guarantees
//!
//! - Confidentiality and integrity of every byte, under the key.
//! - **Truncation** (at a chunk boundary or not), **deletion**, **duplication** and **reordering** of chunks
//!   fail authentication: a chunk decrypts only at its own index, and only the real last chunk carries the
//!   final flag. Data appended after the final chunk is refused.
//! - Readers never release unauthenticated bytes: [`open`] hands a chunk to its sink only after its tag
//!   verified; callers that write files write to a temporary file and rename it only once [`open`] returned
//!   `Ok` (see the CLI), so no partial plaintext is left behind.
//! - Nonces never repeat within a file; across files they are random (56-bit prefix): rotate the key well
//!   before 2^20 files per key to keep the prefix-collision probability under 2^-17.
//! - Not hidden: the plaintext length (to within a chunk tag per 64 KiB) and the key id.
//!
//! Key rotation is [`reencrypt`]: decrypt under the old key and seal under the new one, chunk by chunk, with
//! no plaintext written anywhere.

use std::io::{Read, Write};
use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::keyfile::{KeyError, KeyFile, KeyId, KeyKind};

/// The first 8 bytes of every container.
pub const MAGIC: [u8; 8] = *b"RAMPENC\0";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// The header's length in bytes.
pub const HEADER_LEN: usize = 25;
/// The tag's length in bytes.
pub const TAG_LEN: usize = 16;
/// `chunk_log2` written: 64 KiB chunks (the tag overhead is 0.02 %).
pub const CHUNK_LOG2: u8 = 16;
/// Accepted `chunk_log2` range: bounded so a hostile header cannot make the reader allocate much.
const CHUNK_LOG2_RANGE: std::ops::RangeInclusive<u8> = 12..=24;
const NONCE_PREFIX_LEN: usize = 7;

/// Why a container cannot be written or opened. Messages never contain plaintext or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// Reading the input or writing the output failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The input does not start with the container magic.
    #[error("not a rampart encrypted file (bad magic)")]
    NotAContainer,
    /// The header names a version this build cannot read.
    #[error("unsupported container version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// The header's chunk size is out of range.
    #[error("corrupted header: chunk size 2^{0} is out of range")]
    BadChunkSize(u8),
    /// The file was encrypted under another key.
    #[error("wrong key: the file was encrypted with key {file}, but key {given} was given")]
    WrongKey {
        /// The key id in the header.
        file: KeyId,
        /// The id of the key given.
        given: KeyId,
    },
    /// A chunk failed authentication.
    #[error(
        "chunk {index} failed authentication: the file is corrupted or truncated, its chunks were reordered, or its \
         header was altered"
    )]
    ChunkAuth {
        /// The chunk's index.
        index: u32,
    },
    /// The file ends before its final chunk.
    #[error("truncated: the file ends after {chunks} chunk(s), before its final chunk")]
    Truncated {
        /// Complete chunks read.
        chunks: u32,
    },
    /// Bytes follow the final chunk.
    #[error("data after the final chunk (chunk {index}): the file was appended to")]
    TrailingData {
        /// The final chunk's index.
        index: u32,
    },
    /// The input has more chunks than the format can number.
    #[error("input too large for one container (more than 2^32 chunks)")]
    TooLarge,
}

/// An AES-256-GCM key with its id. The cipher state is zeroized on drop.
pub struct AeadKey {
    cipher: Aes256Gcm,
    id: KeyId,
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AeadKey({})", self.id)
    }
}

impl AeadKey {
    /// Loads an `aes256` key file.
    ///
    /// # Errors
    /// See [`KeyFile::load_kind`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Ok(Self::from_key_file(&KeyFile::load_kind(
            path,
            KeyKind::Aes256,
        )?))
    }

    /// The key held by an `aes256` key file (its kind is the caller's to check).
    pub fn from_key_file(file: &KeyFile) -> Self {
        Self {
            cipher: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(
                file.material.expose(),
            )),
            id: file.id,
        }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn cipher(&self) -> &Aes256Gcm {
        &self.cipher
    }
}

fn nonce(
    prefix: &[u8; NONCE_PREFIX_LEN],
    index: u32,
    last: bool,
) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    n[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n.into()
}

/// Encrypts a stream: write plaintext with [`Sealer::push`], then [`Sealer::finish`]. Holds one chunk.
pub struct Sealer<'k, W: Write> {
    key: &'k AeadKey,
    out: W,
    header: [u8; HEADER_LEN],
    prefix: [u8; NONCE_PREFIX_LEN],
    index: u32,
    chunk: usize,
    buf: Zeroizing<Vec<u8>>,
}

impl<'k, W: Write> Sealer<'k, W> {
    /// Writes the header to `out`.
    ///
    /// # Errors
    /// [`ContainerError::Io`].
    pub fn new(key: &'k AeadKey, mut out: W) -> Result<Self, ContainerError> {
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8] = VERSION;
        header[9] = CHUNK_LOG2;
        header[10..18].copy_from_slice(&key.id.0);
        header[18..].copy_from_slice(&prefix);
        out.write_all(&header)?;
        let chunk = 1usize << CHUNK_LOG2;
        Ok(Self {
            key,
            out,
            header,
            prefix,
            index: 0,
            chunk,
            buf: Zeroizing::new(Vec::with_capacity(chunk)),
        })
    }

    /// Adds plaintext. A full chunk is sealed only once more data arrives, so that the last chunk is known
    /// when [`Sealer::finish`] is called.
    ///
    /// # Errors
    /// [`ContainerError::Io`], [`ContainerError::TooLarge`].
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), ContainerError> {
        while !data.is_empty() {
            if self.buf.len() == self.chunk {
                self.seal(false)?;
            }
            let take = (self.chunk - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the final chunk and returns the output.
    ///
    /// # Errors
    /// [`ContainerError::Io`].
    pub fn finish(mut self) -> Result<W, ContainerError> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn seal(&mut self, last: bool) -> Result<(), ContainerError> {
        let n = nonce(&self.prefix, self.index, last);
        let tag = self
            .key
            .cipher
            .encrypt_in_place_detached(&n, &self.header, &mut self.buf)
            .map_err(|_| ContainerError::TooLarge)?;
        self.out.write_all(&self.buf)?;
        self.out.write_all(&tag)?;
        self.buf.clear();
        if !last {
            self.index = self.index.checked_add(1).ok_or(ContainerError::TooLarge)?;
        }
        Ok(())
    }
}

/// Encrypts all of `input` to `output`; returns the plaintext length.
///
/// # Errors
/// [`ContainerError::Io`], [`ContainerError::TooLarge`].
pub fn encrypt(
    key: &AeadKey,
    mut input: impl Read,
    output: impl Write,
) -> Result<u64, ContainerError> {
    let mut sealer = Sealer::new(key, output)?;
    let mut buf = Zeroizing::new(vec![0u8; 1 << CHUNK_LOG2]);
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        sealer.push(&buf[..n])?;
        total += n as u64;
    }
    sealer.finish()?;
    Ok(total)
}

/// Decrypts `input`, handing each chunk's plaintext to `sink` only after it authenticated; returns the
/// plaintext length. When this returns an error, the chunks already handed over must be discarded.
///
/// # Errors
/// Every [`ContainerError`] but [`ContainerError::TooLarge`]; an error from `sink` is passed through.
pub fn open(
    key: &AeadKey,
    mut input: impl Read,
    mut sink: impl FnMut(&[u8]) -> Result<(), ContainerError>,
) -> Result<u64, ContainerError> {
    let mut header = [0u8; HEADER_LEN];
    let got = fill(&mut input, &mut header)?;
    if got < MAGIC.len() || header[..8] != MAGIC {
        return Err(ContainerError::NotAContainer);
    }
    if got < HEADER_LEN {
        return Err(ContainerError::Truncated { chunks: 0 });
    }
    if header[8] != VERSION {
        return Err(ContainerError::UnsupportedVersion(header[8]));
    }
    if !CHUNK_LOG2_RANGE.contains(&header[9]) {
        return Err(ContainerError::BadChunkSize(header[9]));
    }
    let mut file_id = [0u8; 8];
    file_id.copy_from_slice(&header[10..18]);
    if file_id != key.id.0 {
        return Err(ContainerError::WrongKey {
            file: KeyId(file_id),
            given: key.id,
        });
    }
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    prefix.copy_from_slice(&header[18..]);
    let sealed = (1usize << header[9]) + TAG_LEN;
    // One extra byte: peeking past a full chunk is how the reader learns whether it is the last one.
    let mut buf = Zeroizing::new(vec![0u8; sealed + 1]);
    let mut carried = 0;
    let mut total = 0u64;
    for index in 0..=u32::MAX {
        let n = carried + fill(&mut input, &mut buf[carried..sealed])?;
        let last = n < sealed || fill(&mut input, &mut buf[sealed..])? == 0;
        if n < TAG_LEN {
            return Err(ContainerError::Truncated { chunks: index });
        }
        let (body, rest) = buf[..n].split_at_mut(n - TAG_LEN);
        let tag = *Tag::from_slice(rest);
        let cipher = &key.cipher;
        if cipher
            .decrypt_in_place_detached(&nonce(&prefix, index, last), &header, body, &tag)
            .is_err()
        {
            return Err(diagnose(cipher, &header, &prefix, index, last, body, &tag));
        }
        sink(body)?;
        total += body.len() as u64;
        if last {
            return Ok(total);
        }
        buf[0] = buf[sealed];
        carried = 1;
    }
    Err(ContainerError::TooLarge)
}

/// Names why chunk `index` failed: had it carried the other final flag, the file was cut at a chunk
/// boundary (it was not the last) or appended to (it was). This relies on a failed decryption leaving the
/// ciphertext untouched, which aes-gcm guarantees from 0.10.3 on (GHSA-423w-p2w9-r7vq; pinned in
/// Cargo.toml).
fn diagnose(
    cipher: &Aes256Gcm,
    header: &[u8],
    prefix: &[u8; NONCE_PREFIX_LEN],
    index: u32,
    last: bool,
    body: &mut [u8],
    tag: &Tag,
) -> ContainerError {
    let other = cipher.decrypt_in_place_detached(&nonce(prefix, index, !last), header, body, tag);
    // The file is refused either way: its plaintext must not stay in the buffer.
    body.fill(0);
    match (other, last) {
        (Ok(()), true) => ContainerError::Truncated { chunks: index + 1 },
        (Ok(()), false) => ContainerError::TrailingData { index },
        (Err(_), _) => ContainerError::ChunkAuth { index },
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decrypts `input` into memory, for callers that must never write the plaintext to disk (encrypted
/// models). `capacity` should be the input's length (an upper bound on the plaintext's): the buffer is
/// allocated once, because growing a `Vec` would leave copies of the plaintext in freed memory; should
/// it need to grow anyway, the old buffer is zeroized. The result is zeroized when dropped.
///
/// # Errors
/// As [`open`].
pub fn decrypt_to_vec(
    key: &AeadKey,
    input: impl Read,
    capacity: usize,
) -> Result<Zeroizing<Vec<u8>>, ContainerError> {
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    open(key, input, |chunk| {
        if out.len() + chunk.len() > out.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(2 * (out.len() + chunk.len())));
            bigger.extend_from_slice(&out);
            out = bigger;
        }
        out.extend_from_slice(chunk);
        Ok(())
    })?;
    Ok(out)
}

/// Re-encrypts a container under a new key (key rotation), chunk by chunk: no plaintext is written.
/// The output is complete only when this returns `Ok`.
///
/// # Errors
/// As [`open`] for the input; [`ContainerError::Io`] for the output.
pub fn reencrypt(
    old: &AeadKey,
    new: &AeadKey,
    input: impl Read,
    output: impl Write,
) -> Result<u64, ContainerError> {
    let mut sealer = Sealer::new(new, output)?;
    let n = open(old, input, |chunk| sealer.push(chunk))?;
    sealer.finish()?;
    Ok(n)
}

#[cfg(test)]
mod tests;
