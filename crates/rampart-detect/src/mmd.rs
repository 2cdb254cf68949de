//! Maximum Mean Discrepancy between two multivariate samples, RBF kernel, median-heuristic bandwidth, with a
//! permutation test.
//!
//! Why: per-feature tests ([`crate::ks`], [`mod@crate::psi`]) miss a change in how features move *together* (a
//! rotated cloud has the same marginals). MMD compares whole distributions through a kernel: it is zero only
//! when they are equal (the RBF kernel is characteristic).
//!
//! Definition (A. Gretton, K. Borgwardt, M. Rasch, B. Schölkopf, A. Smola, "A kernel two-sample test", JMLR
//! 13, 2012), as `mmd.json`:
//! - Bandwidth σ = median of the Euclidean distances of all pairs of the pooled sample (the mean of the two
//!   middle values for an even count).
//! - `k(a, b) = exp(-‖a - b‖² / (2σ²))`, `‖a - b‖²` summed directly (not as `|a|² + |b|² - 2ab`, which
//!   cancels).
//! - Biased (V) estimate: the three kernel block means with diagonals. Unbiased (U, eq. 3): diagonals dropped
//!   from the within-sample blocks; it can be negative.
//! - p-value ([`mmd_permutation_test`]): the unbiased statistic recomputed on `permutations` random relabelings
//!   of the pooled sample (σ kept fixed, as in the test's null), `p = (1 + #{T_π >= T}) / (1 + permutations)`,
//!   which is a valid p-value for any number of permutations. The shuffles come from a seeded SplitMix64
//!   generator, so the same inputs and seed give the same p-value on every platform.
//!
//! Cost: the pooled kernel matrix is computed once (`N²/2` kernel evaluations of width `d`, `N²` doubles of
//! memory for `N = n + m`); each permutation is then `(n² + m²)/2` additions, the cross term following from
//! the fixed total.

#[cfg(test)]
mod tests;

use crate::error::StatError;

/// Default number of permutations for the p-value: resolution 1/201, enough to decide at α = 0.01.
pub const DEFAULT_PERMUTATIONS: usize = 200;

/// Most pooled rows (`n + m`) accepted: the kernel matrix is `N²` doubles (200 MB at this bound), so larger
/// inputs are refused rather than allowed to exhaust memory. Subsample first (as
/// [`crate::monitor::DriftMonitor`] does).
pub const MAX_POOLED_ROWS: usize = 5000;

/// The statistic and the pieces it is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mmd {
    /// Median-heuristic bandwidth.
    pub sigma: f64,
    /// Biased (V-statistic) MMD².
    pub mmd2_biased: f64,
    /// Unbiased (U-statistic) MMD²; may be negative.
    pub mmd2_unbiased: f64,
    /// Mean of `k(x_i, x_j)` over `i != j`.
    pub kxx_offdiag_mean: f64,
    /// Mean of `k(y_i, y_j)` over `i != j`.
    pub kyy_offdiag_mean: f64,
    /// Mean of `k(x_i, y_j)` over all pairs.
    pub kxy_mean: f64,
}

/// [`Mmd`] with its permutation p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmdTest {
    /// The statistic on the observed split.
    pub mmd: Mmd,
    /// Permutation p-value of [`Mmd::mmd2_unbiased`].
    pub p_value: f64,
    /// Permutations drawn.
    pub permutations: usize,
}

/// The pooled sample's kernel matrix.
struct Kernel {
    n: usize,
    m: usize,
    k: Vec<f64>,
    sigma: f64,
}

fn pool<R: AsRef<[f64]>>(x: &[R], y: &[R]) -> Result<(Vec<f64>, usize), StatError> {
    for (what, s) in [("x", x.len()), ("y", y.len())] {
        if s < 2 {
            return Err(StatError::TooFew {
                what,
                needed: 2,
                got: s,
            });
        }
    }
    if x.len() + y.len() > MAX_POOLED_ROWS {
        return Err(StatError::InvalidParameter {
            name: "x/y",
            problem: "more pooled rows than MAX_POOLED_ROWS",
        });
    }
    let d = x[0].as_ref().len();
    if d == 0 {
        return Err(StatError::TooFew {
            what: "features",
            needed: 1,
            got: 0,
        });
    }
    let mut z = Vec::with_capacity((x.len() + y.len()) * d);
    for (what, rows) in [("x", x), ("y", y)] {
        for row in rows {
            let row = row.as_ref();
            if row.len() != d {
                return Err(StatError::WidthMismatch {
                    what,
                    expected: d,
                    got: row.len(),
                });
            }
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(StatError::NonFinite {
                    what,
                    index: z.len() + j,
                });
            }
            z.extend_from_slice(row);
        }
    }
    Ok((z, d))
}

impl Kernel {
    fn new<R: AsRef<[f64]>>(x: &[R], y: &[R]) -> Result<Self, StatError> {
        let (z, d) = pool(x, y)?;
        let (n, m) = (x.len(), y.len());
        let total = n + m;
        let mut sq = vec![0.0; total * total];
        let mut dist = Vec::with_capacity(total * (total - 1) / 2);
        for i in 0..total {
            let zi = &z[i * d..(i + 1) * d];
            for j in (i + 1)..total {
                let zj = &z[j * d..(j + 1) * d];
                let s: f64 = zi.iter().zip(zj).map(|(a, b)| (a - b) * (a - b)).sum();
                sq[i * total + j] = s;
                dist.push(s.sqrt());
            }
        }
        let sigma = median(&mut dist);
        if sigma.is_nan() || sigma <= 0.0 {
            return Err(StatError::Degenerate {
                what: "pooled sample",
            });
        }
        let scale = 2.0 * sigma * sigma;
        let mut k = sq;
        for i in 0..total {
            k[i * total + i] = 1.0;
            for j in (i + 1)..total {
                let v = (-k[i * total + j] / scale).exp();
                k[i * total + j] = v;
                k[j * total + i] = v;
            }
        }
        Ok(Self { n, m, k, sigma })
    }

    /// Twice the sum over `i < j` of `k(z_i, z_j)` for the rows `ids`.
    fn block(&self, ids: &[usize]) -> f64 {
        let total = self.n + self.m;
        let mut s = 0.0;
        for (a, &i) in ids.iter().enumerate() {
            let row = &self.k[i * total..(i + 1) * total];
            for &j in &ids[a + 1..] {
                s += row[j];
            }
        }
        2.0 * s
    }

    /// Off-diagonal within-block sums and the cross sum for the split where `idx[..n]` is x.
    fn sums(&self, idx: &[usize]) -> (f64, f64, f64) {
        let total = self.n + self.m;
        let (xs, ys) = idx.split_at(self.n);
        let mut sxy = 0.0;
        for &i in xs {
            let row = &self.k[i * total..(i + 1) * total];
            for &j in ys {
                sxy += row[j];
            }
        }
        (self.block(xs), self.block(ys), sxy)
    }

    /// The unbiased statistic for a relabelling, from the two within-block sums and the fixed off-diagonal
    /// total (the cross sum is what is left): a third less work per permutation than [`Self::sums`].
    fn unbiased_from_blocks(&self, idx: &[usize], offdiag_total: f64) -> f64 {
        let (xs, ys) = idx.split_at(self.n);
        let (sxx, syy) = (self.block(xs), self.block(ys));
        let sxy = (offdiag_total - sxx - syy) / 2.0;
        let (n, m) = (self.n as f64, self.m as f64);
        sxx / (n * (n - 1.0)) + syy / (m * (m - 1.0)) - 2.0 * sxy / (n * m)
    }

    fn statistic(&self, idx: &[usize]) -> Mmd {
        let (sxx, syy, sxy) = self.sums(idx);
        let (n, m) = (self.n as f64, self.m as f64);
        let kxx = sxx / (n * (n - 1.0));
        let kyy = syy / (m * (m - 1.0));
        let kxy = sxy / (n * m);
        Mmd {
            sigma: self.sigma,
            // The diagonal terms k(a, a) = 1 each: n of them in the x block, m in the y block.
            mmd2_biased: (sxx + n) / (n * n) + (syy + m) / (m * m) - 2.0 * kxy,
            mmd2_unbiased: kxx + kyy - 2.0 * kxy,
            kxx_offdiag_mean: kxx,
            kyy_offdiag_mean: kyy,
            kxy_mean: kxy,
        }
    }
}

/// numpy.median of `v` (reorders it): the mean of the two middle values for an even length.
fn median(v: &mut [f64]) -> f64 {
    let len = v.len();
    if len == 0 {
        return f64::NAN;
    }
    let mid = len / 2;
    let (lower, upper, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = *upper;
    if len % 2 == 1 {
        return hi;
    }
    let lo = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // numpy's mean of the two middle values, summed then halved.
    (lo + hi) / 2.0
}

/// MMD² of samples `x` (n × d) and `y` (m × d), rows as slices.
///
/// # Errors
///
/// [`StatError::TooFew`] for fewer than 2 rows in a sample or zero width, [`StatError::WidthMismatch`] for a
/// row of another width than `x[0]`, [`StatError::NonFinite`], [`StatError::Degenerate`] when σ = 0 (more than
/// half of the pooled pairs are identical points), [`StatError::InvalidParameter`] above
/// [`MAX_POOLED_ROWS`].
pub fn mmd2<R: AsRef<[f64]>>(x: &[R], y: &[R]) -> Result<Mmd, StatError> {
    let kernel = Kernel::new(x, y)?;
    let idx: Vec<usize> = (0..kernel.n + kernel.m).collect();
    Ok(kernel.statistic(&idx))
}

/// [`mmd2`] and its permutation p-value with `permutations` shuffles drawn from `seed`.
///
/// # Errors
///
/// As [`mmd2`].
pub fn mmd_permutation_test<R: AsRef<[f64]>>(
    x: &[R],
    y: &[R],
    permutations: usize,
    seed: u64,
) -> Result<MmdTest, StatError> {
    let kernel = Kernel::new(x, y)?;
    let mut idx: Vec<usize> = (0..kernel.n + kernel.m).collect();
    let observed = kernel.statistic(&idx);
    let offdiag_total = kernel.block(&idx);
    // Compared in the same arithmetic as the permutations, so the identity relabelling ties exactly.
    let threshold = kernel.unbiased_from_blocks(&idx, offdiag_total);
    let mut rng = SplitMix64(seed);
    let mut at_least = 0_usize;
    for _ in 0..permutations {
        rng.shuffle(&mut idx);
        // Which rows form each block is all that matters; ascending order makes the kernel rows read
        // forwards (cache-friendly), and Fisher–Yates stays uniform whatever order it starts from.
        let (xs, ys) = idx.split_at_mut(kernel.n);
        xs.sort_unstable();
        ys.sort_unstable();
        if kernel.unbiased_from_blocks(&idx, offdiag_total) >= threshold {
            at_least += 1;
        }
    }
    Ok(MmdTest {
        mmd: observed,
        p_value: (1 + at_least) as f64 / (1 + permutations) as f64,
        permutations,
    })
}

/// SplitMix64 (G. Steele, D. Lea, C. Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
/// tiny, seedable, and fixed forever, so a p-value is reproducible across builds without a dependency whose
/// stream could change with its version.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` by the multiply-shift map (bias below 2^-40 for the sizes used here).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// Fisher–Yates.
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
