//! Shapiro–Wilk normality test: the W statistic and its p-value.
//!
//! Algorithm: P. Royston, "Remark AS R94: A remark on Algorithm AS 181: The W-test for normality", Applied
//! Statistics 44(4), 1995 (the W approximation of Royston 1992), in the form `scipy.stats.shapiro` uses
//! (SciPy's Cython translation `swilk`, uncensored case). The coefficients come from AS R94's own 7-digit
//! normal quantile (AS 241 `PPND7`) and its p-value from `ALNORM` (AS 66), not from exact functions: the
//! approximation was fitted with those, and using them is what makes W agree with SciPy to ~1e-12 rather than
//! ~1e-7.
//!
//! Why it is here: PRADA ([`crate::prada`]) flags model extraction when the distances between a client's
//! successive queries stop looking normally distributed, and W is that test.
//!
//! Like SciPy, the data are sorted and shifted by one of their middle values before W is computed (W is
//! shift-invariant; the shift keeps large offsets from eating digits), `n > 5000` is accepted with a p-value
//! that is only approximate, and `n = 3` uses the exact distribution of W.

#[cfg(test)]
mod tests;

use crate::error::{check_finite, check_len, StatError};

/// W and its p-value (small W, small p: evidence against normality).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapiroWilk {
    /// The W statistic, in `(0, 1]`.
    pub w: f64,
    /// The p-value of W under normality (Royston's approximation; exact for n = 3).
    pub p_value: f64,
}

/// Below this range the data are treated as constant, as AS R94 does.
const SMALL: f64 = 1e-19;

/// Shapiro–Wilk test of `x` (any order; it is copied and sorted).
///
/// # Errors
///
/// [`StatError::TooFew`] below 3 values, [`StatError::NonFinite`] for NaN or infinities,
/// [`StatError::Degenerate`] when all values are equal (SciPy returns W = 1, p = 1 with a warning there; a
/// detector must not read that as "perfectly normal").
pub fn shapiro_wilk(x: &[f64]) -> Result<ShapiroWilk, StatError> {
    check_len("sample", x, 3)?;
    check_finite("sample", x)?;
    let mut y = x.to_vec();
    y.sort_unstable_by(f64::total_cmp);
    // SciPy subtracts x[n/2] of the unsorted input (gh-15777); any middle-ish value does, this mirrors it.
    sorted_minus(y, x[x.len() / 2])
}

/// W of sorted `y` after subtracting `shift` from each value.
fn sorted_minus(mut y: Vec<f64>, shift: f64) -> Result<ShapiroWilk, StatError> {
    for v in &mut y {
        *v -= shift;
    }
    with_coefficients(y.len(), |a| swilk(&y, a))
}

/// Shapiro–Wilk test of `x` already in ascending order: [`shapiro_wilk`] without the copy and the sort, for a
/// caller that keeps its data sorted (PRADA tests the same growing list after every few queries). Shifted by
/// its middle value, so W can differ from [`shapiro_wilk`]'s in the last digits.
///
/// # Errors
///
/// As [`shapiro_wilk`]; also [`StatError::InvalidParameter`] when `y` is not in ascending order.
pub fn shapiro_wilk_sorted(y: &[f64]) -> Result<ShapiroWilk, StatError> {
    check_len("sample", y, 3)?;
    check_finite("sample", y)?;
    if y.windows(2).any(|w| w[1] < w[0]) {
        return Err(StatError::InvalidParameter {
            name: "sample",
            problem: "must be sorted in ascending order",
        });
    }
    sorted_minus(y.to_vec(), y[y.len() / 2])
}

/// How many sample sizes' weights a thread keeps. PRADA tests the same identity's distance list again and
/// again, whose length moves little once it is full; the weights cost a normal quantile each (half the test).
const CACHED_SIZES: usize = 8;

thread_local! {
    static COEFFICIENTS: std::cell::RefCell<Vec<(usize, std::rc::Rc<[f64]>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with the weights for `n`, computed once per thread for the last [`CACHED_SIZES`] sizes.
fn with_coefficients<T>(n: usize, f: impl FnOnce(&[f64]) -> T) -> T {
    let a = COEFFICIENTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(i) = cache.iter().position(|(m, _)| *m == n) {
            let hit = cache.remove(i);
            let a = std::rc::Rc::clone(&hit.1);
            cache.push(hit);
            return a;
        }
        let a: std::rc::Rc<[f64]> = coefficients(n).into();
        if cache.len() >= CACHED_SIZES {
            cache.remove(0);
        }
        cache.push((n, std::rc::Rc::clone(&a)));
        a
    });
    f(&a)
}

/// Evaluates `c[0] + c[1] x + … ` with AS R94's coefficient order, as its `POLY` does.
fn poly(c: &[f64], x: f64) -> f64 {
    let nord = c.len();
    let mut res = c[0];
    if nord == 1 {
        return res;
    }
    let mut p = x * c[nord - 1];
    if nord == 2 {
        return res + p;
    }
    for ind in (1..=nord - 2).rev() {
        p = (p + c[ind]) * x;
    }
    res += p;
    res
}

const C1: [f64; 6] = [0.0, 0.221157, -0.147981, -2.071190, 4.434685, -2.706056];
const C2: [f64; 6] = [0.0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633];
const C3: [f64; 4] = [0.5440, -0.39978, 0.025054, -6.714e-4];
const C4: [f64; 4] = [1.3822, -0.77857, 0.062767, -0.0020322];
const C5: [f64; 4] = [-1.5861, -0.31082, -0.083751, 0.0038915];
const C6: [f64; 3] = [-0.4803, -0.082676, 0.0030302];
const G: [f64; 2] = [-2.273, 0.459];

/// The `n / 2` antisymmetric weights `a` of AS R94 (first half; the rest are their negatives).
fn coefficients(n: usize) -> Vec<f64> {
    let nn2 = n / 2;
    let mut a = vec![0.0; nn2];
    if n == 3 {
        a[0] = std::f64::consts::FRAC_1_SQRT_2;
        return a;
    }
    let an = n as f64;
    let an25 = an + 0.25;
    let mut summ2 = 0.0;
    for (i, ai) in a.iter_mut().enumerate() {
        let m = ppnd7((i as f64 + 1.0 - 0.375) / an25);
        *ai = m;
        summ2 += m * m;
    }
    summ2 *= 2.0;
    let ssumm2 = summ2.sqrt();
    let rsn = 1.0 / an.sqrt();
    let a1 = poly(&C1, rsn) - a[0] / ssumm2;
    let (i1, fac) = if n > 5 {
        let a2 = -a[1] / ssumm2 + poly(&C2, rsn);
        let fac = ((summ2 - 2.0 * a[0] * a[0] - 2.0 * a[1] * a[1])
            / (1.0 - 2.0 * a1 * a1 - 2.0 * a2 * a2))
            .sqrt();
        a[1] = a2;
        (2, fac)
    } else {
        (
            1,
            ((summ2 - 2.0 * a[0] * a[0]) / (1.0 - 2.0 * a1 * a1)).sqrt(),
        )
    };
    a[0] = a1;
    for ai in &mut a[i1..] {
        *ai *= -1.0 / fac;
    }
    a
}

/// `swilk` for sorted, uncensored `x` with weights `a` from [`coefficients`].
fn swilk(x: &[f64], a: &[f64]) -> Result<ShapiroWilk, StatError> {
    let n = x.len();
    let an = n as f64;
    let range = x[n - 1] - x[0];
    if range < SMALL {
        return Err(StatError::Degenerate { what: "sample" });
    }
    // The full weight vector is antisymmetric: weight(i) = -a[i] for i < n-1-i, +a[n-1-i] above the middle,
    // 0 at the middle of an odd n. AS R94 walks the two halves with a pair of indices; this is the same value.
    let weight = |i: usize| -> f64 {
        let mirror = n - 1 - i;
        match i.cmp(&mirror) {
            std::cmp::Ordering::Less => -a[i],
            std::cmp::Ordering::Greater => a[mirror],
            std::cmp::Ordering::Equal => 0.0,
        }
    };
    let mut sa = 0.0;
    let mut sx = 0.0;
    for (i, xi) in x.iter().enumerate() {
        sa += weight(i);
        sx += xi / range;
    }
    sa /= an;
    sx /= an;
    let (mut ssa, mut ssx, mut sax) = (0.0, 0.0, 0.0);
    for (i, xi) in x.iter().enumerate() {
        let asa = weight(i) - sa;
        let xsx = xi / range - sx;
        ssa += asa * asa;
        ssx += xsx * xsx;
        sax += asa * xsx;
    }
    let ssassx = (ssa * ssx).sqrt();
    // 1 - W written as a product so that W close to 1 keeps its digits.
    let w1 = (ssassx - sax) * (ssassx + sax) / (ssa * ssx);
    let w = 1.0 - w1;

    if n == 3 {
        // Exact for n = 3; W >= 3/4 in theory, clamped as SciPy does (gh-18322) against rounding below it.
        if w < 0.75 {
            return Ok(ShapiroWilk {
                w: 0.75,
                p_value: 0.0,
            });
        }
        let p = 1.0 - 6.0 / std::f64::consts::PI * w.sqrt().acos();
        return Ok(ShapiroWilk { w, p_value: p });
    }

    let mut y = w1.ln();
    let xx = an.ln();
    let (m, s) = if n <= 11 {
        let gamma = poly(&G, an);
        if y >= gamma {
            return Ok(ShapiroWilk { w, p_value: SMALL });
        }
        y = -(gamma - y).ln();
        (poly(&C3, an), poly(&C4, an).exp())
    } else {
        (poly(&C5, xx), poly(&C6, xx).exp())
    };
    Ok(ShapiroWilk {
        w,
        p_value: alnorm((y - m) / s, true),
    })
}

/// Normal tail area (AS 66, Hill 1973, with the 2001 `UTZERO = 38`), as AS R94 uses it.
fn alnorm(x: f64, upper: bool) -> f64 {
    const LTONE: f64 = 7.0;
    const UTZERO: f64 = 38.0;
    const CON: f64 = 1.28;
    let mut upper = upper;
    let mut z = x;
    // Written so that NaN takes this branch too, as in AS 66.
    if z.is_nan() || z <= 0.0 {
        upper = false;
        z = -z;
    }
    if !(z <= LTONE || (upper && z <= UTZERO)) {
        return if upper { 0.0 } else { 1.0 };
    }
    let y = 0.5 * z * z;
    let temp = if z <= CON {
        0.5 - z
            * (0.398942280444
                - 0.399903438504 * y
                    / (y + 5.75885480458
                        - 29.8213557808
                            / (y + 2.62433121679 + 48.6959930692 / (y + 5.92885724438))))
    } else {
        0.398942280385 * (-y).exp()
            / (z - 3.8052e-8
                + 1.00000615302
                    / (z + 3.98064794e-4
                        + 1.98615381364
                            / (z - 0.151679116635
                                + 5.29330324926
                                    / (z + 4.8385912808
                                        - 15.1508972451
                                            / (z + 0.742380924027
                                                + 30.789933034 / (z + 3.99019417011))))))
    };
    if upper {
        temp
    } else {
        1.0 - temp
    }
}

/// Normal quantile to about 7 digits (AS 241 `PPND7`, Wichura 1988), as AS R94 uses it.
fn ppnd7(p: f64) -> f64 {
    const SPLIT: f64 = 0.42;
    let q = p - 0.5;
    if q.abs() <= SPLIT {
        let r = q * q;
        let num =
            q * (((-25.44106049637 * r + 41.39119773534) * r - 18.61500062529) * r + 2.50662823884);
        let den = (((3.13082909833 * r - 21.06224101826) * r + 23.08336743743) * r - 8.47351093090)
            * r
            + 1.0;
        return num / den;
    }
    let mut r = if q > 0.0 { 1.0 - p } else { p };
    if r > 0.0 {
        r = (-r.ln()).sqrt();
    } else {
        return 0.0;
    }
    let num = ((2.32121276858 * r + 4.85014127135) * r - 2.29796479134) * r - 2.78718931138;
    let den = (1.63706781897 * r + 3.54388924762) * r + 1.0;
    if q < 0.0 {
        -num / den
    } else {
        num / den
    }
}
