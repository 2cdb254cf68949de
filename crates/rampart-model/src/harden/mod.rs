//! Model hardening: defenses that wrap a model rather than inspect a request.
//!
//! - [`smoothing`]: randomized smoothing (Cohen, Rosenfeld & Kolter 2019), PREDICT with abstention and
//!   CERTIFY with a certified L2 radius.
//! - [`squeeze`]: feature squeezing (Xu, Evans & Qi 2018), a detector score and its threshold.
//! - [`ensemble`]: combining members' probabilities (`mean`, `vote`) and measuring their disagreement.
//!
//! Everything here takes the model as `&dyn Backend`, so it runs the same against the in-process tract
//! model and a remote one, and does no I/O of its own. Randomness comes from the caller's RNG, so a
//! fixed seed reproduces a result.

pub mod ensemble;
pub mod smoothing;
pub mod squeeze;
mod stats;

pub use stats::{binom_test_half, clopper_pearson_lower, normal_ppf};
