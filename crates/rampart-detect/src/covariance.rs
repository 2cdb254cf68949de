//! Streaming mean vector and covariance matrix.
//!
//! Algorithm: Welford's update (Technometrics 4(3), 1962) generalised to co-moments, as in Chan, Golub &
//! LeVeque (1979): with `d = x - mean_old`, `mean += d / n` and `C[i][j] += d[i] · (x[j] - mean_new[j])`.
//! `C / (n - 1)` is the sample covariance (numpy `cov(ddof=1)`). Only the lower triangle is stored and the
//! upper one mirrors it, so the matrix handed out is symmetric bit for bit, which a Cholesky factorisation
//! and [`crate::baseline::Baseline::validate`] both rely on. Its diagonal is exactly the `M2` that
//! [`crate::welford::Welford`] computes for the same column.
//!
//! Two summaries merge with Chan et al.'s pairwise formula
//! `C = C_a + C_b + δ δᵀ · n_a n_b / n`, `δ = mean_b - mean_a`.

#[cfg(test)]
mod tests;

use thiserror::Error;

/// Errors from [`CoMoments`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CoMomentsError {
    /// A row (or the summary being merged) does not have the summary's width.
    #[error("row has {got} values, expected {expected}")]
    WidthMismatch {
        /// The summary's width.
        expected: usize,
        /// The width given.
        got: usize,
    },
}

/// Running count, mean vector and co-moment matrix of a stream of rows of fixed width `d`.
#[derive(Debug, Clone, PartialEq)]
pub struct CoMoments {
    n: u64,
    mean: Vec<f64>,
    /// Lower triangle, row-major: `C[i][j]` (j ≤ i) at `i(i+1)/2 + j`.
    c: Vec<f64>,
    /// Deviations from the old mean, kept between pushes so that `push` does not allocate.
    scratch: Vec<f64>,
}

const fn tri(i: usize, j: usize) -> usize {
    i * (i + 1) / 2 + j
}

impl CoMoments {
    /// The empty summary for rows of width `d`.
    #[must_use]
    pub fn new(d: usize) -> Self {
        Self {
            n: 0,
            mean: vec![0.0; d],
            c: vec![0.0; d * (d + 1) / 2],
            scratch: vec![0.0; d],
        }
    }

    /// The row width.
    #[must_use]
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Number of rows pushed (or merged).
    #[must_use]
    pub const fn count(&self) -> u64 {
        self.n
    }

    /// Adds one row. Non-finite values poison the summary; check them first when the data is untrusted.
    ///
    /// # Errors
    ///
    /// [`CoMomentsError::WidthMismatch`] when `x.len()` is not [`Self::width`]; the summary is unchanged.
    pub fn push(&mut self, x: &[f64]) -> Result<(), CoMomentsError> {
        if x.len() != self.mean.len() {
            return Err(CoMomentsError::WidthMismatch {
                expected: self.mean.len(),
                got: x.len(),
            });
        }
        self.n += 1;
        let n = self.n as f64;
        for ((m, d), &xi) in self.mean.iter_mut().zip(self.scratch.iter_mut()).zip(x) {
            *d = xi - *m;
            *m += *d / n;
        }
        for (i, &di) in self.scratch.iter().enumerate() {
            let row = &mut self.c[tri(i, 0)..=tri(i, i)];
            for ((cij, &xj), &mj) in row.iter_mut().zip(x).zip(&self.mean) {
                *cij += di * (xj - mj);
            }
        }
        Ok(())
    }

    /// Folds `other` into `self` (Chan et al. 1979), as if its rows had been pushed here, up to rounding.
    ///
    /// # Errors
    ///
    /// [`CoMomentsError::WidthMismatch`] when the widths differ; `self` is unchanged.
    pub fn merge(&mut self, other: &Self) -> Result<(), CoMomentsError> {
        if other.width() != self.width() {
            return Err(CoMomentsError::WidthMismatch {
                expected: self.width(),
                got: other.width(),
            });
        }
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            self.clone_from(other);
            return Ok(());
        }
        let n = self.n + other.n;
        let (na, nb, nf) = (self.n as f64, other.n as f64, n as f64);
        let w = na * nb / nf;
        for ((d, &ma), &mb) in self.scratch.iter_mut().zip(&self.mean).zip(&other.mean) {
            *d = mb - ma;
        }
        for (i, &di) in self.scratch.iter().enumerate() {
            for (j, &dj) in self.scratch[..=i].iter().enumerate() {
                self.c[tri(i, j)] += other.c[tri(i, j)] + di * dj * w;
            }
        }
        for (m, &d) in self.mean.iter_mut().zip(&self.scratch) {
            *m += d * (nb / nf);
        }
        self.n = n;
        Ok(())
    }

    /// The mean vector, or `None` before the first row.
    #[must_use]
    pub fn mean(&self) -> Option<&[f64]> {
        (self.n > 0).then_some(self.mean.as_slice())
    }

    /// Co-moment `C[i][j] = Σ (x_i - mean_i)(x_j - mean_j)`; `None` when out of range.
    #[must_use]
    pub fn co_moment(&self, i: usize, j: usize) -> Option<f64> {
        let (i, j) = if j > i { (j, i) } else { (i, j) };
        (i < self.width()).then(|| self.c[tri(i, j)])
    }

    /// Sample covariance matrix (`C / (n - 1)`, numpy `cov(rowvar=False, ddof=1)`), exactly symmetric;
    /// `None` for fewer than two rows.
    #[must_use]
    pub fn covariance(&self) -> Option<Vec<Vec<f64>>> {
        (self.n > 1).then(|| self.divided((self.n - 1) as f64))
    }

    /// Population covariance matrix (`C / n`, `ddof=0`); `None` when empty.
    #[must_use]
    pub fn covariance_population(&self) -> Option<Vec<Vec<f64>>> {
        (self.n > 0).then(|| self.divided(self.n as f64))
    }

    // Divides rather than multiplying by a reciprocal so the diagonal matches `Welford::variance_*` exactly.
    fn divided(&self, k: f64) -> Vec<Vec<f64>> {
        let d = self.width();
        (0..d)
            .map(|i| {
                (0..d)
                    .map(|j| {
                        let (a, b) = if j > i { (j, i) } else { (i, j) };
                        self.c[tri(a, b)] / k
                    })
                    .collect()
            })
            .collect()
    }
}
