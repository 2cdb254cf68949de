//! Two-sample Kolmogorov–Smirnov test, as `scipy.stats.ks_2samp(a, b)` computes it (two-sided,
//! `method='auto'`).
//!
//! Why: it is the per-feature drift test of [`crate::monitor::DriftMonitor`]: distribution-free, sensitive to
//! any change of shape, and its p-value is exact for the window sizes a monitor uses.
//!
//! - Statistic: `D = max_t |F_a(t) - F_b(t)|` over every pooled value `t`, with right-continuous ECDFs, so ties
//!   are handled by evaluating at each distinct value.
//! - Exact p-value (`max(n, m) <= 10_000`): `P(D_{n,m} >= d)` by lattice-path counting. Equal sizes use the
//!   closed-form alternating sum (Gnedenko–Korolyuk, evaluated Horner-style as SciPy does); unequal sizes use
//!   Hodges' (1958) "inside" recursion in the form of T. Viehmann, "Numerically more stable computation of the
//!   p-values for the two-sample Kolmogorov–Smirnov test", arXiv:2102.08037, which computes `1 - p` directly.
//!   Like SciPy, the exact path treats the data as continuous (no tie correction) and gives up (falls back to
//!   the asymptotic p-value) when rounding pushes the result outside `[0, 1]`.
//! - Asymptotic p-value (the fallback): as SciPy, the exact distribution of the *one-sample* statistic at the
//!   effective size, `kstwo.sf(D, round(nm/(n+m)))` ([`kstwo_sf`]). The limiting Kolmogorov distribution
//!   `Q(z)` at `z = sqrt(nm/(n+m)) · D` is there too ([`kolmogorov_sf`]) for callers that want the textbook
//!   number.

mod kstwo;
#[cfg(test)]
mod tests;

pub use kstwo::{kstwo_sf, MAX_EXACT_KSTWO_N};

use crate::error::{check_finite, check_len, StatError};

/// Above this sample size `method='auto'` stops trying the exact p-value (SciPy's `MAX_AUTO_N`).
pub const MAX_EXACT_N: usize = 10_000;

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsMethod {
    /// Exact lattice-path probability for continuous data.
    Exact,
    /// Fallback when the samples are too large for the exact method or it failed numerically:
    /// [`p_value_asymptotic`].
    Asymptotic,
}

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// `D`, in `[0, 1]`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Which method gave [`Self::p_value`].
    pub method: KsMethod,
}

/// Two-sided two-sample KS test of `a` against `b`.
///
/// # Errors
///
/// [`StatError::TooFew`] for an empty sample, [`StatError::NonFinite`] for NaN or infinities.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Result<KsTest, StatError> {
    check_len("a", a, 1)?;
    check_len("b", b, 1)?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    Ok(ks_2samp_sorted(&a, &b))
}

/// [`ks_2samp`] for samples already sorted ascending, finite and non-empty (a monitor sorts its reference
/// once).
pub(crate) fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> KsTest {
    let d = statistic_sorted(a, b);
    let (n, m) = (a.len(), b.len());
    if n.max(m) <= MAX_EXACT_N {
        if let Some(p) = p_value_exact(n, m, d) {
            return KsTest {
                statistic: d,
                p_value: p,
                method: KsMethod::Exact,
            };
        }
    }
    KsTest {
        statistic: d,
        p_value: p_value_asymptotic(n, m, d),
        method: KsMethod::Asymptotic,
    }
}

/// `max_t |F_a(t) - F_b(t)|` by merging the sorted samples; all values equal to `t` are consumed before the
/// ECDFs are compared, which is what makes ties right.
fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < a.len() && j < b.len() {
        let t = if a[i] <= b[j] { a[i] } else { b[j] };
        while i < a.len() && a[i] <= t {
            i += 1;
        }
        while j < b.len() && b[j] <= t {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    // Once one sample is exhausted its ECDF is 1 and the other's only rises towards 1: the gap only shrinks.
    d
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Exact `P(D_{n,m} >= d)` for continuous data (SciPy's `_attempt_exact_2kssamp`, two-sided), or `None` when
/// the computation leaves `[0, 1]` (SciPy then falls back too) or a size exceeds [`MAX_EXACT_N`] (the
/// recursion is `O(n·m)`; SciPy's explicit `method='exact'` would still try).
///
/// `d` is first snapped to the lattice `h / lcm(n, m)`, so a `d` carrying rounding error from the ECDF
/// division counts as the lattice value it stands for.
#[must_use]
pub fn p_value_exact(n: usize, m: usize, d: f64) -> Option<f64> {
    if n == 0 || m == 0 || n.max(m) > MAX_EXACT_N || !d.is_finite() {
        return None;
    }
    let g = gcd(n, m);
    let lcm = (n / g) as f64 * m as f64;
    // Round half to even, like numpy.round.
    let h = (d * lcm).round_ties_even();
    if h <= 0.0 {
        return Some(1.0);
    }
    let h = h as usize;
    let prob = if n == m {
        prob_outside_square(n, h)
    } else {
        prob_outside_band(n, m, g, h)
    };
    (0.0..=1.0).contains(&prob).then_some(prob)
}

/// `P(D_{n,n} >= h/n) = 2 Σ_k (-1)^(k-1) C(2n, n-kh) / C(2n, n)`, as a nested product so there is no
/// subtractive cancellation.
fn prob_outside_square(n: usize, h: usize) -> f64 {
    let mut p = 0.0;
    let (nf, hf) = (n as f64, h as f64);
    for k in (0..=n / h).rev() {
        let kf = k as f64;
        let mut p1 = 1.0;
        for j in 0..h {
            let jf = j as f64;
            p1 = (nf - kf * hf - jf) * p1 / (nf + kf * hf + jf + 1.0);
        }
        p = p1 * (1.0 - p);
    }
    2.0 * p
}

/// `1 - P(|x/m - y/n| < h/lcm)` over monotone lattice paths from (0,0) to (m,n) (Viehmann's recursion for
/// `1 - p` inside Hodges' band), keeping one sliding column.
fn prob_outside_band(n1: usize, n2: usize, g: usize, h: usize) -> f64 {
    let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
    let mg = m / g;
    let ng = n / g;
    let (hf, mgf, ngf) = (h as f64, mg as f64, ng as f64);
    let mut minj = 0_usize;
    let mut maxj = ((hf / mgf).ceil() as usize).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1);
    let mut a = vec![1.0_f64; len_a];
    for v in &mut a[minj..maxj] {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        let fi = i as f64;
        let lo = ((ngf * fi - hf) / mgf).floor() + 1.0;
        minj = if lo > 0.0 { (lo as usize).min(n) } else { 0 };
        maxj = (((ngf * fi + hf) / mgf).ceil() as usize).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            // Out-of-window cells read as the 1.0 carried over below (paths that already left the band).
            let prev = a.get(jj + minj - lastminj).copied().unwrap_or(1.0);
            val = (prev * fi + val * j) / (fi + j);
            a[jj] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let end = (curlen + (lastlen - curlen)).min(a.len());
            for v in &mut a[curlen..end] {
                *v = 1.0;
            }
        }
    }
    a[maxj - minj - 1]
}

/// Asymptotic two-sided p-value: `kstwo.sf(d, round(nm/(n+m)))` (SciPy's `method='asymp'`).
#[must_use]
pub fn p_value_asymptotic(n: usize, m: usize, d: f64) -> f64 {
    let (nf, mf) = (n as f64, m as f64);
    let en = (nf * mf / (nf + mf)).round_ties_even();
    if en < 1.0 {
        return f64::NAN;
    }
    kstwo_sf(en as u64, d)
}

/// The limiting Kolmogorov survival function `Q(z) = 2 Σ_{k>=1} (-1)^(k-1) exp(-2 k² z²)`
/// (`scipy.stats.kstwobign.sf`). For small `z` the series converges slowly, so the equivalent theta form
/// `1 - sqrt(2π)/z Σ exp(-(2k-1)² π² / (8 z²))` is used there.
#[must_use]
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z <= 0.0 {
        return 1.0;
    }
    if z < 1.0 {
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        let mut s = 0.0;
        for k in 1..=20 {
            let o = f64::from(2 * k - 1);
            s += (-(o * o) * pi2 / (8.0 * z * z)).exp();
        }
        let cdf = (2.0 * std::f64::consts::PI).sqrt() / z * s;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * z * z).exp();
        s += if k % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}
