//! # rampart-data
//!
//! Integrity and provenance for the data a model is trained on.
//!
//! - **Manifests** ([`manifest`]): walk a dataset directory, hash every file (SHA-256 and BLAKE3, streaming,
//!   in parallel across files), record sizes and a Merkle root over the sorted entries ([`merkle`]), and
//!   optionally sign the root with ed25519. Verification lists every added, removed and modified file and
//!   a bad signature. Symlinks that leave the directory are refused, never followed ([`walk`]).
//! - **Lineage** ([`lineage`]): signed provenance statements in the spirit of in-toto — subjects and
//!   materials by digest, the step, its parameters, the time and who ran it — kept in an append-only,
//!   hash-chained store; the chain from an artifact back to its datasets; verification of every digest,
//!   link and signature.
//!
//! What it must not do: follow a path out of the directory it was given, read a file whole into memory,
//! or touch the network. Keys and signatures come from `rampart-crypto`.
//!
//! Main types: [`manifest::Manifest`], [`manifest::Verification`], [`lineage::Store`],
//! [`lineage::Statement`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod lineage;
pub mod manifest;
pub mod merkle;
pub mod walk;
