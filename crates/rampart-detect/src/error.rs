//! The one error type of the two-sample tests and detectors ([`crate::ks`], [`mod@crate::psi`], [`crate::chi2`],
//! [`crate::mmd`], [`crate::shapiro`], [`crate::prada`], [`crate::monitor`]).
//!
//! They share it because their failures are the same few shapes (too little data, a value that is not a
//! number, rows of the wrong width) and a monitor that runs several of them wants one type to report. Nothing
//! here panics on input: a caller gets one of these instead, and a monitor turns it into "no verdict" rather
//! than "no drift".

use thiserror::Error;

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StatError {
    /// A sample has fewer values than the statistic needs.
    #[error("{what}: {got} values, at least {needed} needed")]
    TooFew {
        /// Which input (`"reference"`, `"current"`, `"sample"` …).
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// What was given.
        got: usize,
    },
    /// An input holds NaN or an infinity.
    #[error("{what}: value {index} is not finite")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// 0-based index of the value (row-major for matrices).
        index: usize,
    },
    /// A row or a count vector has the wrong length.
    #[error("{what}: length {got}, expected {expected}")]
    WidthMismatch {
        /// Which input.
        what: &'static str,
        /// The length the other inputs imply.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// Every value is the same, so the statistic is undefined (Shapiro–Wilk's W, the MMD bandwidth).
    #[error("{what}: all values are equal; the statistic is undefined")]
    Degenerate {
        /// Which input.
        what: &'static str,
    },
    /// A parameter is out of its domain.
    #[error("parameter {name}: {problem}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Fails on the first non-finite value of `xs`.
pub(crate) fn check_finite(what: &'static str, xs: &[f64]) -> Result<(), StatError> {
    match xs.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Fails when `xs` has fewer than `needed` values.
pub(crate) fn check_len(what: &'static str, xs: &[f64], needed: usize) -> Result<(), StatError> {
    if xs.len() < needed {
        return Err(StatError::TooFew {
            what,
            needed,
            got: xs.len(),
        });
    }
    Ok(())
}
