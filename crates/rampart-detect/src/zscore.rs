//! Per-feature z-scores against a baseline: `z_j = (x_j - mean_j) / std_j`, and the largest `|z_j|` of a row.
//!
//! This is the cheapest anomaly score there is (one subtract and one multiply per feature) and it names the
//! feature that tripped it, which makes its findings explainable. It misses anything that is only unusual in
//! combination; that is [`crate::mahalanobis`]'s job.
//!
//! # Constant features
//!
//! A feature whose baseline standard deviation is exactly `0` (it never varied in training) has no scale, so
//! its z-score is defined explicitly rather than left to `0/0`:
//!
//! - a value **equal** to the constant scores `0`;
//! - **any other** value scores `f64::INFINITY`: something the model has never seen vary has changed.
//!
//! "Equal" is judged at the input's precision: an `f32` request matches when it equals the constant rounded
//! to `f32`, because the constant was learned from `f64` training data and `0.1_f32 as f64 != 0.1_f64`.
//!
//! # Failing closed
//!
//! A NaN value scores `f64::INFINITY` at its feature (a NaN compares false with every threshold, so passing
//! it through as NaN would wave it past the guard). A row of the wrong width scores `f64::INFINITY` at index
//! `min(row width, baseline width)`, the first feature that does not line up.

#[cfg(test)]
mod tests;

use thiserror::Error;

use crate::baseline::Baseline;

/// Errors from [`ZScore::from_mean_std`].
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ZScoreError {
    /// There are no features.
    #[error("no features")]
    Empty,
    /// `mean` and `std` have different lengths.
    #[error("{means} means but {stds} standard deviations")]
    LengthMismatch {
        /// Number of means.
        means: usize,
        /// Number of standard deviations.
        stds: usize,
    },
    /// A mean or standard deviation is not finite, or a standard deviation is negative.
    #[error("feature {feature}: mean and std must be finite and std >= 0")]
    InvalidFeature {
        /// The offending feature index.
        feature: usize,
    },
}

/// Precomputed per-feature means and reciprocal standard deviations.
#[derive(Debug, Clone, PartialEq)]
pub struct ZScore {
    mean: Vec<f64>,
    /// `1 / std`, or `0` for a constant feature (which [`Self::max_abs_z`] treats separately).
    inv_std: Vec<f64>,
    /// The constant of a std-0 feature rounded to `f32`, for comparisons at request precision.
    mean_f32: Vec<f32>,
}

/// An input element: its exact `f64` value, and whether it equals a constant at its own precision.
trait Element: Copy {
    fn widen(self) -> f64;
    fn equals_constant(self, mean: f64, mean_f32: f32) -> bool;
}

impl Element for f32 {
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn equals_constant(self, _mean: f64, mean_f32: f32) -> bool {
        self == mean_f32
    }
}

impl Element for f64 {
    fn widen(self) -> f64 {
        self
    }
    fn equals_constant(self, mean: f64, _mean_f32: f32) -> bool {
        self == mean
    }
}

impl ZScore {
    /// Uses the baseline's means and sample standard deviations (`ddof = 1`).
    ///
    /// Call [`Baseline::validate`] first: an unchecked baseline (a negative or NaN std) gives meaningless
    /// scores rather than an error here.
    #[must_use]
    pub fn new(baseline: &Baseline) -> Self {
        let mean: Vec<f64> = baseline.features.iter().map(|f| f.mean).collect();
        let std: Vec<f64> = baseline.features.iter().map(|f| f.std).collect();
        Self::build(mean, &std)
    }

    /// From explicit means and standard deviations (for example population ones, `ddof = 0`).
    ///
    /// # Errors
    ///
    /// [`ZScoreError::Empty`], [`ZScoreError::LengthMismatch`], or [`ZScoreError::InvalidFeature`] for a
    /// non-finite value or a negative standard deviation.
    pub fn from_mean_std(mean: Vec<f64>, std: &[f64]) -> Result<Self, ZScoreError> {
        if mean.is_empty() {
            return Err(ZScoreError::Empty);
        }
        if mean.len() != std.len() {
            return Err(ZScoreError::LengthMismatch {
                means: mean.len(),
                stds: std.len(),
            });
        }
        for (feature, (m, s)) in mean.iter().zip(std).enumerate() {
            if !m.is_finite() || !s.is_finite() || *s < 0.0 {
                return Err(ZScoreError::InvalidFeature { feature });
            }
        }
        Ok(Self::build(mean, std))
    }

    fn build(mean: Vec<f64>, std: &[f64]) -> Self {
        // A subnormal std has no finite reciprocal; it is as good as constant.
        let inv_std = std
            .iter()
            .map(|&s| {
                let inv = 1.0 / s;
                if s > 0.0 && inv.is_finite() {
                    inv
                } else {
                    0.0
                }
            })
            .collect();
        // Rounding to f32 is the point here: it is the precision requests arrive in.
        let mean_f32 = mean.iter().map(|&m| m as f32).collect();
        Self {
            mean,
            inv_std,
            mean_f32,
        }
    }

    /// The number of features.
    #[must_use]
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Whether feature `j` was constant in the baseline (std 0). `false` when out of range.
    #[must_use]
    pub fn is_constant(&self, j: usize) -> bool {
        self.inv_std.get(j).is_some_and(|&s| s == 0.0)
    }

    /// The signed z-score of value `x` for feature `j`, `None` when `j` is out of range. Constant features and
    /// NaN follow the module rules (`0` or `f64::INFINITY`).
    #[must_use]
    pub fn z(&self, j: usize, x: f64) -> Option<f64> {
        (j < self.width()).then(|| self.z_at(j, x))
    }

    fn z_at<T: Element>(&self, j: usize, x: T) -> f64 {
        let inv = self.inv_std[j];
        if inv == 0.0 {
            if x.equals_constant(self.mean[j], self.mean_f32[j]) {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            let z = (x.widen() - self.mean[j]) * inv;
            if z.is_nan() {
                f64::INFINITY
            } else {
                z
            }
        }
    }

    /// The feature with the largest `|z|` in a request row, and that `|z|` (the first such feature on ties).
    ///
    /// Allocation-free. See the module docs for constant features, NaN and width mismatches, which all fail
    /// closed with `f64::INFINITY`.
    #[must_use]
    pub fn max_abs_z(&self, x: &[f32]) -> (usize, f64) {
        self.max_abs(x)
    }

    /// [`Self::max_abs_z`] for an `f64` row.
    #[must_use]
    pub fn max_abs_z_f64(&self, x: &[f64]) -> (usize, f64) {
        self.max_abs(x)
    }

    fn max_abs<T: Element>(&self, x: &[T]) -> (usize, f64) {
        if x.len() != self.width() {
            return (x.len().min(self.width()), f64::INFINITY);
        }
        let mut best = (0, 0.0_f64);
        for (j, &v) in x.iter().enumerate() {
            let a = self.z_at(j, v).abs();
            if a > best.1 {
                best = (j, a);
            }
        }
        best
    }
}
