//! Streaming mean and variance.
//!
//! Algorithm: B. P. Welford, "Note on a method for calculating corrected sums of squares and products",
//! Technometrics 4(3), 1962. Each update is `n += 1; d = x - mean; mean += d / n; M2 += d * (x - mean)`.
//!
//! The textbook one-pass formula `Σx²/n - mean²` is not used anywhere in this crate: with an offset of 1e9 and
//! a spread of 1 it cancels every significant digit (it can even go negative). Welford's update only ever
//! subtracts numbers of the same magnitude as the data from each other, so its error stays near
//! `ulp(max |x|) · std`.
//!
//! Merging two summaries uses the pairwise formula of T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating
//! formulae and a pairwise algorithm for computing sample variances", Stanford CS report STAN-CS-79-773, 1979,
//! so pieces computed in parallel (per shard, per file chunk) combine without revisiting the data.

#[cfg(test)]
mod tests;

/// Running count, mean and sum of squared deviations (`M2`) of a stream of `f64`.
///
/// `Default` is the empty summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// The empty summary.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// Adds one observation.
    ///
    /// A non-finite `x` poisons the summary (mean and variance become NaN or infinite); callers that take
    /// untrusted data check finiteness first, as [`crate::baseline::BaselineBuilder::push`] does.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        // Exact for n < 2^53, which no stream here reaches.
        let n = self.n as f64;
        self.mean += d / n;
        self.m2 += d * (x - self.mean);
    }

    /// Folds `other` into `self`, as if every observation of `other` had been pushed here (Chan et al. 1979).
    ///
    /// The result equals the sequential one up to rounding, not bit for bit.
    pub fn merge(&mut self, other: &Self) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let (na, nb, nf) = (self.n as f64, other.n as f64, n as f64);
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / nf);
        self.m2 += other.m2 + delta * delta * (na * nb / nf);
        self.n = n;
    }

    /// Number of observations pushed (or merged) so far.
    #[must_use]
    pub const fn count(&self) -> u64 {
        self.n
    }

    /// The mean, or `None` before the first observation.
    #[must_use]
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Sum of squared deviations from the mean (`M2`), `0` when empty.
    #[must_use]
    pub const fn sum_sq_dev(&self) -> f64 {
        self.m2
    }

    /// Population variance (`M2 / n`, numpy `ddof=0`), or `None` when empty. One observation gives `0`.
    #[must_use]
    pub fn variance_population(&self) -> Option<f64> {
        (self.n > 0).then(|| self.m2 / self.n as f64)
    }

    /// Sample variance (`M2 / (n - 1)`, numpy `ddof=1`), or `None` for fewer than two observations, where it is
    /// undefined.
    #[must_use]
    pub fn variance_sample(&self) -> Option<f64> {
        (self.n > 1).then(|| self.m2 / (self.n - 1) as f64)
    }

    /// Square root of [`Self::variance_population`].
    #[must_use]
    pub fn std_population(&self) -> Option<f64> {
        self.variance_population().map(f64::sqrt)
    }

    /// Square root of [`Self::variance_sample`].
    #[must_use]
    pub fn std_sample(&self) -> Option<f64> {
        self.variance_sample().map(f64::sqrt)
    }
}

impl Extend<f64> for Welford {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

impl FromIterator<f64> for Welford {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut w = Self::new();
        w.extend(iter);
        w
    }
}
