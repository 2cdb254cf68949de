//! Population Stability Index over 10 reference-quantile bins.
//!
//! Why: PSI is the drift number model-risk teams already read (rule of thumb: below 0.1 stable, 0.1–0.25
//! moderate, above 0.25 significant). Unlike a p-value it does not shrink to zero as windows grow, so it says how *much* a
//! feature moved, next to KS saying *whether* it moved.
//!
//! Definition (matches the reference vectors `psi.json`):
//! - Inner edges `e_1..e_9` are the reference's deciles, `numpy.quantile(r, i/10, method='linear')`
//!   (Hyndman–Fan type 7), with the index arithmetic done in integers so that no edge depends on how `i/10` is
//!   rounded.
//! - A value `x` falls in bin `#{i : e_i <= x}` (`searchsorted(..., side='right')`): the outer bins are
//!   unbounded, a value equal to an edge goes up, and tied edges leave empty bins.
//! - Proportions are floored at [`EPSILON`] (not renormalised) so an empty bin gives a large but finite term,
//!   then `PSI = Σ (q_b - p_b) ln(q_b / p_b)`.

#[cfg(test)]
mod tests;

use crate::error::{check_finite, check_len, StatError};

/// Number of bins.
pub const BINS: usize = 10;

/// Floor of each bin's proportion, so an empty bin contributes a bounded term instead of infinity.
pub const EPSILON: f64 = 1e-4;

/// The reference's bin edges, computed once and reused for every window.
#[derive(Debug, Clone, PartialEq)]
pub struct PsiReference {
    edges: [f64; BINS - 1],
    counts: [u64; BINS],
    n: usize,
}

/// One PSI comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Psi {
    /// The index, `>= 0`.
    pub value: f64,
    /// The 9 inner edges from the reference.
    pub inner_edges: [f64; BINS - 1],
    /// Reference values per bin.
    pub ref_counts: [u64; BINS],
    /// Current values per bin.
    pub cur_counts: [u64; BINS],
}

impl PsiReference {
    /// Bins `reference` (any order).
    ///
    /// # Errors
    ///
    /// [`StatError::TooFew`] below 2 values, [`StatError::NonFinite`].
    pub fn new(reference: &[f64]) -> Result<Self, StatError> {
        check_len("reference", reference, 2)?;
        check_finite("reference", reference)?;
        let mut r = reference.to_vec();
        r.sort_unstable_by(f64::total_cmp);
        let n = r.len();
        let mut edges = [0.0; BINS - 1];
        for (k, e) in edges.iter_mut().enumerate() {
            let pos = (k + 1) * (n - 1);
            let (j, rem) = (pos / BINS, pos % BINS);
            *e = if rem == 0 {
                r[j]
            } else {
                // Exactly numpy's type-7 interpolation: rem/10 rounded once, then difference, product, sum.
                r[j] + (rem as f64 / 10.0) * (r[j + 1] - r[j])
            };
        }
        let mut this = Self {
            edges,
            counts: [0; BINS],
            n,
        };
        this.counts = this.count(&r);
        Ok(this)
    }

    /// The 9 inner edges.
    #[must_use]
    pub const fn inner_edges(&self) -> &[f64; BINS - 1] {
        &self.edges
    }

    /// The bin of `x`: the number of inner edges `<= x`.
    #[must_use]
    pub fn bin(&self, x: f64) -> usize {
        self.edges.partition_point(|e| *e <= x)
    }

    fn count(&self, xs: &[f64]) -> [u64; BINS] {
        let mut c = [0_u64; BINS];
        for &x in xs {
            c[self.bin(x)] += 1;
        }
        c
    }

    /// PSI of `current` against this reference.
    ///
    /// # Errors
    ///
    /// [`StatError::TooFew`] for an empty sample, [`StatError::NonFinite`].
    pub fn compare(&self, current: &[f64]) -> Result<Psi, StatError> {
        check_len("current", current, 1)?;
        check_finite("current", current)?;
        let cur = self.count(current);
        Ok(Psi {
            value: psi_from_counts(&self.counts, self.n, &cur, current.len()),
            inner_edges: self.edges,
            ref_counts: self.counts,
            cur_counts: cur,
        })
    }
}

/// PSI of two histograms over the same bins (any number of bins), with the [`EPSILON`] floor. Totals are
/// passed in so a caller with counts already in hand does not re-sum them; a zero total gives floored zeros.
#[must_use]
pub fn psi_from_counts(reference: &[u64], n: usize, current: &[u64], m: usize) -> f64 {
    let (nf, mf) = (n.max(1) as f64, m.max(1) as f64);
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let p = (r as f64 / nf).max(EPSILON);
            let q = (c as f64 / mf).max(EPSILON);
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// PSI of `current` against `reference` (both any order). For repeated comparisons against one reference,
/// build a [`PsiReference`] once.
///
/// # Errors
///
/// See [`PsiReference::new`] and [`PsiReference::compare`].
pub fn psi(reference: &[f64], current: &[f64]) -> Result<Psi, StatError> {
    PsiReference::new(reference)?.compare(current)
}
