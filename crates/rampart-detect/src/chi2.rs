//! Chi-square test of a 2 × k table of category counts: does the current window's category mix (predicted
//! classes, or a categorical feature's values) differ from the reference's?
//!
//! Definition (matches `chi2_categorical.json`, i.e. `scipy.stats.chi2_contingency`):
//! - Categories with a zero count in both rows are dropped first (their expected count would be 0).
//! - `E_ij = rowsum_i · colsum_j / N`; Pearson's `X² = Σ (O - E)² / E` with `k' - 1` degrees of freedom and
//!   p-value `chi2.sf(X², k' - 1)`.
//! - Yates' continuity correction (SciPy's default, reported separately in [`Chi2Test::yates`]) applies only
//!   at one degree of freedom: each observed count moves towards its expected count by `min(0.5, |E - O|)`.
//!   The monitors use the uncorrected statistic: with window-sized counts the correction only costs power.
//! - One category left (`dof = 0`): `X² = 0`, p = 1 — there is nothing to compare.
//!
//! Counts are `f64` so that weighted counts (frequencies times a total) can be tested too; they must be finite
//! and non-negative.

#[cfg(test)]
mod tests;

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::error::{check_finite, StatError};

/// Result of [`chi2_categorical`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chi2Test {
    /// Pearson's X² (no continuity correction).
    pub statistic: f64,
    /// Degrees of freedom, `k' - 1` for `k'` categories kept.
    pub dof: usize,
    /// `P(χ²_dof >= statistic)`.
    pub p_value: f64,
    /// Yates-corrected statistic and p-value when `dof == 1` (SciPy's default output), else `None`.
    pub yates: Option<(f64, f64)>,
    /// Indices of categories dropped because both counts were 0.
    pub dropped: Vec<usize>,
    /// Expected counts of the kept categories: `[reference row, current row]`.
    pub expected: [Vec<f64>; 2],
}

/// Tests `current` counts against `reference` counts (same categories, same order).
///
/// # Errors
///
/// [`StatError::WidthMismatch`] if the lengths differ, [`StatError::TooFew`] for no categories or no counts in
/// a row, [`StatError::NonFinite`], [`StatError::InvalidParameter`] for a negative count.
pub fn chi2_categorical(reference: &[f64], current: &[f64]) -> Result<Chi2Test, StatError> {
    if reference.len() != current.len() {
        return Err(StatError::WidthMismatch {
            what: "current_counts",
            expected: reference.len(),
            got: current.len(),
        });
    }
    if reference.is_empty() {
        return Err(StatError::TooFew {
            what: "categories",
            needed: 1,
            got: 0,
        });
    }
    check_finite("reference_counts", reference)?;
    check_finite("current_counts", current)?;
    if reference.iter().chain(current).any(|c| *c < 0.0) {
        return Err(StatError::InvalidParameter {
            name: "counts",
            problem: "must be >= 0",
        });
    }
    let mut dropped = Vec::new();
    let mut obs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (j, (&r, &c)) in reference.iter().zip(current).enumerate() {
        if r == 0.0 && c == 0.0 {
            dropped.push(j);
        } else {
            obs[0].push(r);
            obs[1].push(c);
        }
    }
    let rows = [obs[0].iter().sum::<f64>(), obs[1].iter().sum::<f64>()];
    for (what, total) in [("reference_counts", rows[0]), ("current_counts", rows[1])] {
        if total <= 0.0 {
            return Err(StatError::TooFew {
                what,
                needed: 1,
                got: 0,
            });
        }
    }
    let total = rows[0] + rows[1];
    let k = obs[0].len();
    let cols: Vec<f64> = (0..k).map(|j| obs[0][j] + obs[1][j]).collect();
    let expected: [Vec<f64>; 2] =
        [0, 1].map(|i| cols.iter().map(|c| rows[i] * c / total).collect());
    let dof = k.saturating_sub(1);
    if dof == 0 {
        return Ok(Chi2Test {
            statistic: 0.0,
            dof,
            p_value: 1.0,
            yates: None,
            dropped,
            expected,
        });
    }
    let pearson = statistic(&obs, &expected, false);
    let yates = (dof == 1).then(|| {
        let s = statistic(&obs, &expected, true);
        (s, chi2_sf(s, dof))
    });
    Ok(Chi2Test {
        statistic: pearson,
        dof,
        p_value: chi2_sf(pearson, dof),
        yates,
        dropped,
        expected,
    })
}

/// Convenience for integer counts.
///
/// # Errors
///
/// As [`chi2_categorical`].
pub fn chi2_counts(reference: &[u64], current: &[u64]) -> Result<Chi2Test, StatError> {
    let r: Vec<f64> = reference.iter().map(|&c| c as f64).collect();
    let c: Vec<f64> = current.iter().map(|&c| c as f64).collect();
    chi2_categorical(&r, &c)
}

fn statistic(obs: &[Vec<f64>; 2], expected: &[Vec<f64>; 2], yates: bool) -> f64 {
    let mut s = 0.0;
    for (o_row, e_row) in obs.iter().zip(expected) {
        for (&o, &e) in o_row.iter().zip(e_row) {
            let o = if yates {
                let diff = e - o;
                o + diff.signum() * diff.abs().min(0.5)
            } else {
                o
            };
            s += (o - e) * (o - e) / e;
        }
    }
    s
}

/// `P(χ²_dof >= x)`; 1 for `x <= 0`.
pub(crate) fn chi2_sf(x: f64, dof: usize) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    match ChiSquared::new(dof as f64) {
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}
