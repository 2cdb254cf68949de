//! # rampart-core
//!
//! The vocabulary every other Rampart crate speaks: who is asking ([`Identity`]), what they sent once it is
//! validated ([`Features`]), what a guard decided ([`Verdict`], [`Rejection`], [`Finding`]) and the one stable
//! list of refusal codes on the wire ([`Reason`]).
//!
//! This crate owns no I/O, no async runtime and no clock reads: it is types and the invariants they carry, so
//! that a guard, the audit log and the HTTP edge all agree on what a decision is. A [`Features`] value can only
//! be built through its checked constructor, so nothing downstream of validation ever sees a row of the wrong
//! width or a non-finite number.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod features;
mod identity;
mod reason;
mod verdict;

pub use features::{Features, FeaturesError};
pub use identity::Identity;
pub use reason::Reason;
pub use verdict::{Finding, GuardId, Rejection, Severity, Verdict};

#[cfg(test)]
mod tests;
