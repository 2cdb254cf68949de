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
//! Two-sample tests, for drift monitors (each matches a SciPy/river reference; the vectors in
//! `tests/vectors/` pin them):
//!
//! - [`ks::ks_2samp`]: two-sample Kolmogorov–Smirnov, exact p-value for continuous data, SciPy's fallback.
//! - [`psi::PsiReference`]: Population Stability Index over 10 reference-decile bins.
//! - [`chi2::chi2_categorical`]: chi-square on a 2 × k table of category counts.
//! - [`mmd::mmd_permutation_test`]: multivariate MMD² (RBF kernel, median-heuristic bandwidth) with a seeded
//!   permutation p-value.
//!
//! Streaming change detectors, O(1) per observation: [`page_hinkley::PageHinkley`], [`cusum::Cusum`].
//!
//! Model-extraction detection: [`shapiro::shapiro_wilk`] (Royston's AS R94) and [`prada::Prada`] per client,
//! with [`prada::PradaTracker`] bounding memory over many clients.
//!
//! Windowed aggregates the monitor crate drives (no clock, no I/O): [`monitor::DriftMonitor`] (per-feature
//! KS/PSI or chi-square with Bonferroni, plus MMD, against the baseline's reference sample),
//! [`monitor::PredictionDrift`] (class mix and confidence histogram) and [`monitor::RollingAccuracy`].
//!
//! Errors of all of the above are one [`StatError`]: too few values, a non-finite value, a wrong width, a
//! degenerate sample. None of them panics on input.
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
pub mod chi2;
pub mod covariance;
pub mod cusum;
pub mod error;
pub mod ks;
pub mod mahalanobis;
pub mod mmd;
pub mod monitor;
pub mod page_hinkley;
pub mod prada;
pub mod psi;
pub mod shapiro;
pub mod welford;
pub mod zscore;

pub use baseline::{Baseline, BaselineBuilder, BaselineError};
pub use chi2::{chi2_categorical, chi2_counts, Chi2Test};
pub use covariance::CoMoments;
pub use cusum::Cusum;
pub use error::StatError;
pub use ks::{ks_2samp, KsMethod, KsTest};
pub use mahalanobis::{chi2_threshold, Mahalanobis, MahalanobisError};
pub use mmd::{mmd2, mmd_permutation_test, Mmd, MmdTest};
pub use monitor::{DriftMonitor, DriftReport, PredictionDrift, RollingAccuracy};
pub use page_hinkley::PageHinkley;
pub use prada::{Prada, PradaTracker};
pub use psi::{psi, Psi, PsiReference};
pub use shapiro::{shapiro_wilk, ShapiroWilk};
pub use welford::Welford;
pub use zscore::{ZScore, ZScoreError};
