//! Mahalanobis distance from a baseline: how far a request lies from the training data, in units that account
//! for each feature's spread and for correlation between features.
//!
//! `D²(x) = (x - μ)ᵀ S⁻¹ (x - μ)` with `S = Σ + ridge · I`. `S` is factored once, at build time, by Cholesky
//! decomposition (`S = L Lᵀ`, the Cholesky–Banachiewicz row order; see Golub & Van Loan, *Matrix
//! Computations*, §4.2). Then `D² = ‖y‖²` where `L y = x - μ`, so a request costs one forward substitution:
//! `d(d+1)/2` multiply-adds, no inverse ever formed (an explicit inverse loses accuracy for no speed gain).
//!
//! The ridge keeps the factorisation defined when the covariance is singular: a constant feature (variance 0)
//! or exactly collinear features. It is absolute, so choose it below the smallest variance you care about;
//! the reference vectors use `1e-6`.
//!
//! [`chi2_threshold`] gives a cut-off from the χ² distribution (`D²` of a d-variate normal is χ²(d)). Real
//! features are rarely normal, so [`crate::baseline::MahalanobisStats`] also keeps the empirical quantiles of
//! the training rows' own distances; prefer those.

#[cfg(test)]
mod tests;

use statrs::distribution::{ChiSquared, ContinuousCDF};
use thiserror::Error;

use crate::baseline::Baseline;

/// Widths up to this are scored with a stack buffer; wider ones allocate one `Vec<f64>` per call.
pub const STACK_WIDTH: usize = 64;

/// Errors from building a [`Mahalanobis`] scorer or a threshold.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MahalanobisError {
    /// The mean vector is empty.
    #[error("no features")]
    Empty,
    /// The covariance matrix is not `d × d` for a mean of length `d`.
    #[error("covariance {what} has length {got}, expected {expected}")]
    DimensionMismatch {
        /// Which part is the wrong size ("rows" or "row N").
        what: String,
        /// The expected length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A mean or covariance entry is NaN or infinite.
    #[error("mean or covariance holds a non-finite value")]
    NonFinite,
    /// The ridge is negative or not finite.
    #[error("ridge must be finite and >= 0, got {0}")]
    InvalidRidge(f64),
    /// `cov[row][col]` and `cov[col][row]` differ by more than rounding.
    #[error("covariance is not symmetric at ({row}, {col})")]
    NotSymmetric {
        /// Row index.
        row: usize,
        /// Column index.
        col: usize,
    },
    /// `cov + ridge · I` is not (numerically) positive definite: the Cholesky pivot at `pivot` was not
    /// clearly positive. Collinear or constant features need a larger ridge.
    #[error("covariance + ridge is not positive definite (pivot {pivot}); raise the ridge")]
    NotPositiveDefinite {
        /// The feature index where the factorisation broke down.
        pivot: usize,
    },
    /// Degrees of freedom must be at least 1.
    #[error("degrees of freedom must be >= 1")]
    InvalidDegreesOfFreedom,
    /// A probability must lie strictly between 0 and 1.
    #[error("probability must be in (0, 1), got {0}")]
    InvalidProbability(f64),
}

/// A precomputed Mahalanobis scorer: the mean and the Cholesky factor of `cov + ridge · I`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mahalanobis {
    mean: Vec<f64>,
    /// Strictly-lower part of `L`, packed by rows: row `i` holds `L[i][0..i]` at `i(i-1)/2`.
    lower: Vec<f64>,
    /// `1 / L[i][i]`, so the hot loop multiplies instead of dividing.
    inv_diag: Vec<f64>,
    ridge: f64,
}

/// Tolerance for symmetry: entries may differ in the last few bits (a matrix written by another tool), not more.
fn nearly_equal(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl Mahalanobis {
    /// Factors `cov + ridge · I` for the given mean.
    ///
    /// `cov` is the `d × d` covariance (for example [`crate::covariance::CoMoments::covariance`]); the ridge is
    /// added here, not expected in `cov`.
    ///
    /// # Errors
    ///
    /// [`MahalanobisError::Empty`], [`MahalanobisError::DimensionMismatch`], [`MahalanobisError::NonFinite`],
    /// [`MahalanobisError::InvalidRidge`], [`MahalanobisError::NotSymmetric`], or
    /// [`MahalanobisError::NotPositiveDefinite`] when a pivot is not above `d · ε · S[i][i]` (at that size the
    /// factor, and every distance, would be rounding noise).
    pub fn new(mean: &[f64], cov: &[Vec<f64>], ridge: f64) -> Result<Self, MahalanobisError> {
        let d = mean.len();
        if d == 0 {
            return Err(MahalanobisError::Empty);
        }
        if !ridge.is_finite() || ridge < 0.0 {
            return Err(MahalanobisError::InvalidRidge(ridge));
        }
        if cov.len() != d {
            return Err(MahalanobisError::DimensionMismatch {
                what: "rows".to_owned(),
                expected: d,
                got: cov.len(),
            });
        }
        for (i, row) in cov.iter().enumerate() {
            if row.len() != d {
                return Err(MahalanobisError::DimensionMismatch {
                    what: format!("row {i}"),
                    expected: d,
                    got: row.len(),
                });
            }
        }
        if !mean
            .iter()
            .chain(cov.iter().flatten())
            .all(|v| v.is_finite())
        {
            return Err(MahalanobisError::NonFinite);
        }
        for (i, row) in cov.iter().enumerate() {
            for (j, &a) in row[..i].iter().enumerate() {
                if !nearly_equal(a, cov[j][i]) {
                    return Err(MahalanobisError::NotSymmetric { row: i, col: j });
                }
            }
        }

        let mut lower = vec![0.0; d * d.saturating_sub(1) / 2];
        let mut diag = vec![0.0; d];
        for i in 0..d {
            let row_i = i * i.saturating_sub(1) / 2;
            for j in 0..=i {
                let row_j = j * j.saturating_sub(1) / 2;
                // Σ_{k<j} L[i][k] L[j][k], with both rows read from the packed store.
                let dot: f64 = (0..j).map(|k| lower[row_i + k] * lower[row_j + k]).sum();
                if i == j {
                    let s_ii = cov[i][i] + ridge;
                    let pivot = s_ii - dot;
                    let floor = s_ii * d as f64 * f64::EPSILON;
                    if pivot.is_nan() || pivot <= floor {
                        return Err(MahalanobisError::NotPositiveDefinite { pivot: i });
                    }
                    diag[i] = pivot.sqrt();
                } else {
                    lower[row_i + j] = (cov[i][j] - dot) / diag[j];
                }
            }
        }
        let inv_diag: Vec<f64> = diag.iter().map(|l| 1.0 / l).collect();
        if !lower.iter().chain(&inv_diag).all(|v| v.is_finite()) {
            return Err(MahalanobisError::NotPositiveDefinite { pivot: 0 });
        }
        Ok(Self {
            mean: mean.to_vec(),
            lower,
            inv_diag,
            ridge,
        })
    }

    /// Builds the scorer from a baseline's means and covariance. Pass `baseline.mahalanobis.ridge` to score
    /// on the same scale as the baseline's recorded distance quantiles.
    ///
    /// # Errors
    ///
    /// As [`Self::new`].
    pub fn from_baseline(baseline: &Baseline, ridge: f64) -> Result<Self, MahalanobisError> {
        let mean: Vec<f64> = baseline.features.iter().map(|f| f.mean).collect();
        Self::new(&mean, &baseline.covariance, ridge)
    }

    /// The number of features.
    #[must_use]
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// The mean the distances are measured from.
    #[must_use]
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The ridge added to the covariance diagonal.
    #[must_use]
    pub const fn ridge(&self) -> f64 {
        self.ridge
    }

    /// Squared Mahalanobis distance of a request row.
    ///
    /// Allocation-free for widths up to [`STACK_WIDTH`]. Fails closed: a row of the wrong width, or one holding
    /// NaN, scores `f64::INFINITY` rather than something a threshold comparison could let through.
    #[must_use]
    pub fn distance_sq(&self, x: &[f32]) -> f64 {
        self.score(x)
    }

    /// [`Self::distance_sq`] for `f64` input (training rows, reference data). Same guarantees.
    #[must_use]
    pub fn distance_sq_f64(&self, x: &[f64]) -> f64 {
        self.score(x)
    }

    /// Mahalanobis distance (square root of [`Self::distance_sq`]).
    #[must_use]
    pub fn distance(&self, x: &[f32]) -> f64 {
        self.score(x).sqrt()
    }

    /// Mahalanobis distance of an `f64` row.
    #[must_use]
    pub fn distance_f64(&self, x: &[f64]) -> f64 {
        self.score(x).sqrt()
    }

    fn score<T: Copy + Into<f64>>(&self, x: &[T]) -> f64 {
        let d = self.mean.len();
        if x.len() != d {
            return f64::INFINITY;
        }
        let acc = if d <= STACK_WIDTH {
            let mut buf = [0.0_f64; STACK_WIDTH];
            self.forward_substitute(x, &mut buf[..d])
        } else {
            let mut buf = vec![0.0_f64; d];
            self.forward_substitute(x, &mut buf)
        };
        if acc.is_nan() {
            f64::INFINITY
        } else {
            acc
        }
    }

    /// Solves `L y = x - μ` into `y` and returns `‖y‖²`.
    fn forward_substitute<T: Copy + Into<f64>>(&self, x: &[T], y: &mut [f64]) -> f64 {
        let mut acc = 0.0;
        let mut start = 0;
        let terms = x.iter().zip(&self.mean).zip(&self.inv_diag);
        for (i, ((&xi, &mi), &inv)) in terms.enumerate() {
            let row = &self.lower[start..start + i];
            start += i;
            let (solved, rest) = y.split_at_mut(i);
            let yi = (xi.into() - mi - dot(row, solved)) * inv;
            if let Some(slot) = rest.first_mut() {
                *slot = yi;
            }
            acc += yi * yi;
        }
        acc
    }
}

/// Dot product with four independent partial sums: breaks the add-latency chain so the loop pipelines (and
/// vectorises) without needing the compiler to reassociate floating point.
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = [0.0_f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(p, q)| p * q)
        .sum();
    for (p, q) in ca.zip(cb) {
        s[0] += p[0] * q[0];
        s[1] += p[1] * q[1];
        s[2] += p[2] * q[2];
        s[3] += p[3] * q[3];
    }
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// A distance cut-off from the χ² distribution: `sqrt(F⁻¹(p))` for χ² with `d` degrees of freedom, i.e. the
/// Mahalanobis distance that a fraction `p` of d-variate normal data stays below.
///
/// # Errors
///
/// [`MahalanobisError::InvalidDegreesOfFreedom`] for `d == 0`; [`MahalanobisError::InvalidProbability`]
/// unless `0 < p < 1`.
pub fn chi2_threshold(d: usize, p: f64) -> Result<f64, MahalanobisError> {
    if d == 0 {
        return Err(MahalanobisError::InvalidDegreesOfFreedom);
    }
    if !(p > 0.0 && p < 1.0) {
        return Err(MahalanobisError::InvalidProbability(p));
    }
    let chi2 = ChiSquared::new(d as f64).map_err(|_| MahalanobisError::InvalidDegreesOfFreedom)?;
    Ok(chi2.inverse_cdf(p).sqrt())
}
