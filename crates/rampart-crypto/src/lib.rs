//! # rampart-crypto
//!
//! The cryptography every other Rampart crate uses, in one place so that there is one way to do each thing:
//!
//! - **Key files** ([`keyfile`]): one versioned text format, with a key id, for every key Rampart uses —
//!   ed25519 private and public keys, AES-256 keys, HMAC keys. Written mode 0600; a private key file that
//!   group or others can read is refused when loaded.
//! - **Secrets** ([`SecretBytes`]): key material is zeroized on drop and never printed by `Debug`.
//! - **Signatures** ([`sign`]): ed25519 sign / strict verify over domain-separated messages.
//! - **Encryption at rest** ([`container`]): AES-256-GCM in a chunked, versioned container (the STREAM
//!   construction) that detects truncation, reordering and deletion of chunks, in constant memory.
//! - **Sealed values** ([`seal`]): AES-256-GCM for small values such as an audit record's output, one random
//!   nonce each, bound to where they belong by associated data.
//! - **Keyed pseudonyms** ([`pseudonym`]): HMAC-SHA-256 stand-ins for identities in logs.
//!
//! What it must not do: any I/O beyond the key files and the streams it is handed, any logging of key
//! material, any `unsafe`.
//!
//! Main types: [`keyfile::KeyFile`], [`keyfile::KeyKind`], [`keyfile::KeyId`], [`sign::SigningKey`],
//! [`sign::VerifyingKey`], [`container::AeadKey`], [`container::Sealer`], [`seal::SealedValue`],
//! [`pseudonym::PseudonymKey`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod container;
pub mod keyfile;
pub mod pseudonym;
pub mod seal;
mod secret;
pub mod sign;

pub use secret::SecretBytes;
