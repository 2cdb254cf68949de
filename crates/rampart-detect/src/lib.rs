//! # rampart-detect
//!
//! Pure statistics for Rampart's detectors: the numbers a guard or a monitor compares a request against.
//!
//! ## What this crate owns
//!
//! - [`welford::Welford`]: streaming mean and variance (Welford 1962), mergeable across pieces
//!   (Chan, Golub & LeVeque 1979).
//! - [`covariance::CoMoments`]: the same idea for a vector, giving the mean vector and the sample covariance.
//! - [`baseline::Baseline`]: a model's training-data profile (per-feature moments and quantiles, covariance,
//!   a reference sample for drift tests, label counts, the training rows' own Mahalanobis distances), stored as
//!   versioned JSON and built by [`baseline::BaselineBuilder`]. [`baseline::Baseline::validate`] is what a
//!   loader calls before trusting a file.
//! - [`zscore::ZScore`]: the largest per-feature |z| of a request, for the anomaly guard.
//! - [`mahalanobis::Mahalanobis`]: the Mahalanobis distance of a request from the baseline, through a Cholesky
//!   factor computed once, and [`mahalanobis::chi2_threshold`] for a distribution-based cut-off.
//!
//! ## What it must not do
//!
//! No I/O, no clock, no async runtime, no global state, no `unsafe`. Callers read files and pass bytes or values
//! in; callers own time. Everything here is deterministic: the same input gives the same output, bit for bit.
//! The request-path functions ([`zscore::ZScore::max_abs_z`], [`mahalanobis::Mahalanobis::distance_sq`]) do not
//! allocate for widths up to [`mahalanobis::STACK_WIDTH`] and never panic; on malformed input they fail closed
//! (an infinite score), because a detector that waves through what it cannot read is a bypass.
//!
//! ## Precision
//!
//! All accumulation is in `f64`. Requests arrive as `f32` (the model's dtype) and are widened exactly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod baseline;
pub mod covariance;
pub mod mahalanobis;
pub mod welford;
pub mod zscore;

pub use baseline::{Baseline, BaselineBuilder, BaselineError};
pub use covariance::CoMoments;
pub use mahalanobis::{chi2_threshold, Mahalanobis, MahalanobisError};
pub use welford::Welford;
pub use zscore::{ZScore, ZScoreError};
