//! Feature squeezing: Xu, Evans & Qi, "Feature Squeezing: Detecting Adversarial Examples in Deep Neural
//! Networks" (NDSS 2018).
//!
//! A squeezer maps an input to a coarser one (fewer bits per pixel, a median-smoothed image, rounded
//! tabular features). A benign input's prediction barely moves when squeezed; an adversarial one, tuned to
//! the full-precision input, often moves a lot. The score is the largest L1 distance between the model's
//! probabilities on the original and on each squeezed version ([`score`]); an input is flagged when it
//! exceeds a threshold chosen on benign data for a target false-positive rate ([`threshold`]).
//!
//! A detector, not a proof: adaptive attacks that optimize through the squeezers evade it (He et al. 2017,
//! "Adversarial Example Defenses: Ensembles of Weak Defenses are not Strong").

use crate::{Backend, ModelKind, RunError};

/// One way to squeeze an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squeezer {
    /// Reduce inputs in [0, 1] to `bits` bits: round(x·(2^b − 1)) / (2^b − 1). Values outside [0, 1]
    /// are clipped first. `bits` in 1..=16.
    BitDepth {
        /// Bits kept.
        bits: u8,
    },
    /// Median filter over a `size × size` window of an `height × width` image (row-major, one channel),
    /// as `scipy.ndimage.median_filter(x, size)`: the window for an even size reaches one pixel further
    /// back than forward, edges reflect (`d c b a | a b c d`), and an even window takes the upper median.
    /// `size` in 2..=3, as in the paper.
    Median {
        /// Image rows.
        height: usize,
        /// Image columns.
        width: usize,
        /// Window side, 2 or 3.
        size: usize,
    },
    /// Round tabular features to `decimals` decimals (0..=9).
    Round {
        /// Decimals kept.
        decimals: u8,
    },
}

/// Why squeezing could not score an input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqueezeError {
    /// A squeezer's parameter is out of range.
    #[error("squeezer {squeezer}: {reason}")]
    InvalidSqueezer {
        /// `bit_depth`, `median` or `round`.
        squeezer: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The input's length does not fit the squeezer or the model.
    #[error("expected {expected} features, got {got}")]
    WrongWidth {
        /// Features expected.
        expected: usize,
        /// Features passed.
        got: usize,
    },
    /// A feature is NaN or infinite.
    #[error("feature {index} is not finite")]
    NonFinite {
        /// Its position.
        index: usize,
    },
    /// No squeezers were given.
    #[error("no squeezers")]
    NoSqueezers,
    /// Scores compare probabilities; a regressor has none.
    #[error("feature squeezing needs a classifier, the model is a regressor")]
    NotAClassifier,
    /// `fpr` must be in [0, 1] and there must be at least one finite benign score.
    #[error("threshold: {0}")]
    Threshold(&'static str),
    /// The backend failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl Squeezer {
    /// Parses the config and command-line form of a squeezer for a model taking `width` features:
    /// `bit_depth:B`, `round:D`, `median:S` (a square image of `width` pixels) or `median:S:HxW`.
    ///
    /// # Errors
    /// [`SqueezeError::InvalidSqueezer`] naming the squeezer and what is wrong: an unknown name, a
    /// parameter that is not a number or is out of range, or a median whose image does not have `width`
    /// pixels.
    pub fn parse(spec: &str, width: usize) -> Result<Self, SqueezeError> {
        let bad = |squeezer, reason| Err(SqueezeError::InvalidSqueezer { squeezer, reason });
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or("");
        let param = parts.next();
        let shape = parts.next();
        if parts.next().is_some() {
            return bad("spec", "too many ':' parts");
        }
        let squeezer = match (name, param, shape) {
            ("bit_depth", Some(b), None) => match b.parse::<u8>() {
                Ok(bits) => Squeezer::BitDepth { bits },
                Err(_) => return bad("bit_depth", "write bit_depth:B with B in 1..=16"),
            },
            ("round", Some(d), None) => match d.parse::<u8>() {
                Ok(decimals) => Squeezer::Round { decimals },
                Err(_) => return bad("round", "write round:D with D in 0..=9"),
            },
            ("median", Some(s), shape) => {
                let Ok(size) = s.parse::<usize>() else {
                    return bad("median", "write median:S or median:S:HxW with S 2 or 3");
                };
                let (height, w) = match shape {
                    Some(hw) => {
                        let dims = hw
                            .split_once('x')
                            .and_then(|(h, w)| Some((h.parse().ok()?, w.parse().ok()?)));
                        match dims {
                            Some(d) => d,
                            None => return bad("median", "the image shape must read HxW"),
                        }
                    }
                    None => {
                        // A square image: the side is the exact integer square root of the width.
                        let side = (width as f64).sqrt().round() as usize;
                        if side * side != width {
                            return bad(
                                "median",
                                "the model's width is not a square: give the image shape, median:S:HxW",
                            );
                        }
                        (side, side)
                    }
                };
                if height.saturating_mul(w) != width {
                    return bad("median", "the image shape does not have the model's width");
                }
                Squeezer::Median {
                    height,
                    width: w,
                    size,
                }
            }
            _ => {
                return bad(
                    "spec",
                    "unknown squeezer: use bit_depth:B, round:D, median:S or median:S:HxW",
                )
            }
        };
        // Range checks are `apply`'s: run it once on a zero row so a bad parameter fails here, at start-up.
        let mut out = Vec::new();
        squeezer.apply(&vec![0.0; width], &mut out)?;
        Ok(squeezer)
    }

    /// Squeezes `x` into `out` (cleared first).
    ///
    /// # Errors
    /// [`SqueezeError::InvalidSqueezer`] for out-of-range parameters, [`SqueezeError::WrongWidth`]
    /// when a median filter's `height × width` is not `x.len()`, [`SqueezeError::NonFinite`] for a NaN
    /// or infinite value.
    pub fn apply(&self, x: &[f32], out: &mut Vec<f32>) -> Result<(), SqueezeError> {
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(SqueezeError::NonFinite { index });
        }
        out.clear();
        match *self {
            Squeezer::BitDepth { bits } => {
                if !(1..=16).contains(&bits) {
                    return Err(SqueezeError::InvalidSqueezer {
                        squeezer: "bit_depth",
                        reason: "bits must be in 1..=16",
                    });
                }
                let levels = ((1u32 << bits) - 1) as f32;
                out.extend(
                    x.iter()
                        .map(|&v| (v.clamp(0.0, 1.0) * levels).round() / levels),
                );
            }
            Squeezer::Round { decimals } => {
                if decimals > 9 {
                    return Err(SqueezeError::InvalidSqueezer {
                        squeezer: "round",
                        reason: "decimals must be in 0..=9",
                    });
                }
                // In f64 so that 0.125 rounds the way it reads, not the way its f32 neighbour does.
                let scale = 10f64.powi(i32::from(decimals));
                out.extend(
                    x.iter()
                        .map(|&v| ((f64::from(v) * scale).round() / scale) as f32),
                );
            }
            Squeezer::Median {
                height,
                width,
                size,
            } => {
                if !(2..=3).contains(&size) {
                    return Err(SqueezeError::InvalidSqueezer {
                        squeezer: "median",
                        reason: "size must be 2 or 3",
                    });
                }
                let expected = height.saturating_mul(width);
                if expected != x.len() || expected == 0 {
                    return Err(SqueezeError::WrongWidth {
                        expected,
                        got: x.len(),
                    });
                }
                median_filter(x, height, width, size, out);
            }
        }
        Ok(())
    }
}

/// scipy's reflect mode: −1 → 0, n → n − 1 (the edge sample repeats).
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    // A window of at most 3 reaches at most one past an edge; the loop covers tiny images too.
    loop {
        if i < 0 {
            i = -i - 1;
        } else if i >= n {
            i = 2 * n - i - 1;
        } else {
            return i as usize;
        }
    }
}

fn median_filter(x: &[f32], height: usize, width: usize, size: usize, out: &mut Vec<f32>) {
    // scipy centres a window of `size` at size / 2: offsets −1..=0 for 2, −1..=1 for 3.
    let lo = -((size / 2) as isize);
    let hi = lo + size as isize - 1;
    let mut window = Vec::with_capacity(size * size);
    for r in 0..height {
        for c in 0..width {
            window.clear();
            for dr in lo..=hi {
                for dc in lo..=hi {
                    let rr = reflect(r as isize + dr, height);
                    let cc = reflect(c as isize + dc, width);
                    window.push(x[rr * width + cc]);
                }
            }
            window.sort_by(f32::total_cmp);
            // scipy's median_filter is a rank filter at rank size²/2: the upper median for 2×2.
            out.push(window[window.len() / 2]);
        }
    }
}

/// L1 distance between two probability vectors.
fn l1(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| (f64::from(p) - f64::from(q)).abs())
        .sum()
}

/// Xu et al.'s detection score for one row `x`: the largest L1 distance between the model's
/// probabilities on `x` and on each squeezed `x`. The original and every squeezed copy are scored in one
/// backend call.
///
/// # Errors
/// [`SqueezeError`] when no squeezer is given, one is invalid or does not fit `x`, `x` is not the model's
/// width or not finite, the model is a regressor, or the backend fails.
pub fn score(
    backend: &dyn Backend,
    x: &[f32],
    squeezers: &[Squeezer],
) -> Result<f64, SqueezeError> {
    if squeezers.is_empty() {
        return Err(SqueezeError::NoSqueezers);
    }
    let info = backend.info();
    if !matches!(info.kind, ModelKind::Classifier { .. }) {
        return Err(SqueezeError::NotAClassifier);
    }
    if x.len() != info.width {
        return Err(SqueezeError::WrongWidth {
            expected: info.width,
            got: x.len(),
        });
    }
    let mut batch = Vec::with_capacity(x.len() * (squeezers.len() + 1));
    batch.extend_from_slice(x);
    let mut squeezed = Vec::with_capacity(x.len());
    for s in squeezers {
        s.apply(x, &mut squeezed)?;
        batch.extend_from_slice(&squeezed);
    }
    let out = backend.predict(&batch, squeezers.len() + 1)?;
    let original = out.row(0).unwrap_or(&[]);
    let mut best = 0.0_f64;
    for i in 1..=squeezers.len() {
        let d = l1(original, out.row(i).unwrap_or(&[]));
        // A NaN distance (the model returned NaN) is as suspicious as it gets: keep it visible.
        if d.is_nan() {
            return Ok(f64::INFINITY);
        }
        best = best.max(d);
    }
    Ok(best)
}

/// The detection threshold for a target false-positive rate: the (1 − `fpr`) quantile of scores of
/// benign inputs (linear interpolation between order statistics, NumPy's default), so that about `fpr`
/// of benign inputs score above it. NaN scores are ignored.
///
/// # Errors
/// [`SqueezeError::Threshold`] when `fpr` is not in [0, 1] or there is no finite score.
pub fn threshold(benign_scores: &[f64], fpr: f64) -> Result<f64, SqueezeError> {
    if !(0.0..=1.0).contains(&fpr) {
        return Err(SqueezeError::Threshold("fpr must be in [0, 1]"));
    }
    let mut s: Vec<f64> = benign_scores
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    if s.is_empty() {
        return Err(SqueezeError::Threshold("no benign scores"));
    }
    s.sort_by(f64::total_cmp);
    let pos = (1.0 - fpr) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (s[lo.min(s.len() - 1)], s[hi.min(s.len() - 1)]);
    if a == b {
        // Also keeps ∞ (a NaN model output's score) from becoming ∞ − ∞.
        return Ok(a);
    }
    Ok(a + (b - a) * (pos - lo as f64))
}

#[cfg(test)]
mod tests;
