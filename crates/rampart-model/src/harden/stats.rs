//! The three statistics randomized smoothing needs, written to match SciPy to ~1e-12 where the
//! reference vectors check them:
//!
//! - [`binom_test_half`]: the two-sided exact binomial test against p = ½ (`scipy.stats.binomtest`);
//! - [`clopper_pearson_lower`]: the one-sided Clopper–Pearson lower bound
//!   (`scipy.stats.beta.ppf(alpha, k, n - k + 1)`);
//! - [`normal_ppf`]: Φ⁻¹ (`statrs`' `Normal::inverse_cdf`).
//!
//! Why not `statrs`' beta functions directly: `statrs::function::beta::beta_reg` stops its continued
//! fraction after 140 terms, and the fraction needs on the order of √(a + b) terms near the mean, so at
//! the sample sizes certification uses (n = 10⁵) it returns an unconverged value; `inv_beta_reg`
//! inherits that and `Beta::inverse_cdf` panics outside [0, 1]. The regularized incomplete beta below
//! is the same Lentz continued fraction (Numerical Recipes §6.4) with a bound that grows with √(a + b),
//! its prefactor taken from `statrs`' `ln_gamma`, and the quantile is found by bisection, which cannot
//! fail to converge.

use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::gamma::ln_gamma;

/// Regularized incomplete beta I_x(a, b) for a, b > 0 and x in [0, 1]; NaN for anything else.
pub(crate) fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if !(a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if x == 0.0 {
        return 0.0;
    }
    if x == 1.0 {
        return 1.0;
    }
    // x^a (1-x)^b / (a B(a, b)) in logs: the terms are each ~1e6 at a = 1e5 and their difference is
    // what matters; ln_1p keeps (1 - x) exact for small x.
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    // The fraction converges fast for x below the mean, so evaluate there and reflect otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The continued fraction for I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    // Terms needed grow like √(max(a, b)); the bound is generous so it is never what stops the loop.
    let max_iter = 200 + (20.0 * (a + b).sqrt()) as usize;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=max_iter {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() <= f64::EPSILON {
            break;
        }
    }
    h
}

/// P(X ≤ k) for X ~ Binomial(n, ½).
fn binom_cdf_half(k: u64, n: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    // P(X ≤ k) = I_{1-p}(n - k, k + 1).
    inc_beta((n - k) as f64, k as f64 + 1.0, 0.5)
}

/// Two-sided exact binomial test of `n_a` successes in `n_a + n_b` trials against p = ½: the p-value
/// `scipy.stats.binomtest(n_a, n_a + n_b, 0.5).pvalue`. For p = ½ the distribution is symmetric, so
/// this is min(1, 2·P(X ≤ min(n_a, n_b))), and exactly 1 on a tie. 1 when there are no trials (no
/// evidence either way).
pub fn binom_test_half(n_a: u64, n_b: u64) -> f64 {
    let n = n_a.saturating_add(n_b);
    if n == 0 || n_a == n_b {
        return 1.0;
    }
    (2.0 * binom_cdf_half(n_a.min(n_b), n)).min(1.0)
}

/// One-sided (1 − `alpha`) Clopper–Pearson lower confidence bound on a binomial proportion after
/// `k` successes in `n` trials: the `alpha` quantile of Beta(k, n − k + 1), and 0 when `k = 0`.
/// NaN unless `0 < alpha < 1` and `k ≤ n`.
pub fn clopper_pearson_lower(k: u64, n: u64, alpha: f64) -> f64 {
    if !(alpha > 0.0 && alpha < 1.0) || k > n {
        return f64::NAN;
    }
    if k == 0 {
        return 0.0;
    }
    let (a, b) = (k as f64, (n - k) as f64 + 1.0);
    if k == n {
        // Beta(n, 1) has CDF pⁿ: the closed form is exact where bisection would only be close.
        return alpha.powf(1.0 / a);
    }
    // I_p(a, b) increases in p; bisect until the bracket cannot shrink in f64.
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if inc_beta(a, b, mid) < alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Φ⁻¹(p), the standard normal quantile; NaN outside [0, 1] (where `statrs` would panic).
pub fn normal_ppf(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    match Normal::new(0.0, 1.0) {
        Ok(n) => n.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}
