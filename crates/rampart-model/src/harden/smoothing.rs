//! Randomized smoothing: Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized
//! Smoothing" (ICML 2019), algorithms PREDICT and CERTIFY.
//!
//! The smoothed classifier g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I), is estimated by Monte Carlo:
//! n noisy copies of the row are scored through the [`Backend`] in batches of at most
//! [`Config::max_batch`] rows, and each copy votes for the argmax of the base model's probabilities.
//!
//! - **PREDICT** ([`Smoother::predict`]): n samples; the top two counts n_A ≥ n_B; a two-sided binomial
//!   test of n_A out of n_A + n_B against ½; abstain when its p-value exceeds α. Returns the wrong class
//!   with probability at most α (Cohen et al., Theorem 2).
//! - **CERTIFY** ([`Smoother::certify`]): the class is *selected* on n₀ samples and its probability
//!   *estimated* on n fresh ones (reusing samples would bias the bound); p_A is bounded below by the
//!   one-sided (1 − α) Clopper–Pearson bound; abstain when that is below ½, otherwise g is constant
//!   within the L2 radius σ·Φ⁻¹(p_A lower) around x (Theorem 1), with probability at least 1 − α.
//!
//! The statistics alone, from the counts on, are [`predict_from_counts`] and [`certify_from_counts`]:
//! they are what the reference vectors (`tests/vectors/randomized_smoothing.json`) check, since those give
//! counts rather than noise.
//!
//! Noise comes from the caller's RNG, so a fixed seed gives the same answer on every platform: use
//! [`noise_rng`] (ChaCha8, portable and fast) unless you have a reason not to. The base model only sees
//! rows it would see anyway plus Gaussian noise; nothing here clips to the input domain, on purpose,
//! because the certificate is for the unclipped noise distribution.
//!
//! What it does not do: the radius certifies the *smoothed* classifier against L2 perturbations of the
//! input as the model sees it, at confidence 1 − α; it says nothing about the base model, other norms, or
//! perturbations made before feature extraction.

use rand::Rng;
use rand::SeedableRng;
use rand_distr::StandardNormal;
use serde::Deserialize;

use super::stats::{binom_test_half, clopper_pearson_lower, normal_ppf};
use crate::{Backend, ModelKind, RunError};

/// Most samples `n` or `n0` may ask for: far beyond any useful certificate, and it keeps counts and
/// buffer sizes from overflowing.
pub const MAX_SAMPLES: usize = 1_000_000_000;
/// Most rows `max_batch` may send in one backend call: bounds the noise buffer (`max_batch × width`
/// floats) whatever the config says.
pub const MAX_BATCH: usize = 65_536;

/// The noise generator [`noise_rng`] builds: ChaCha with 8 rounds. Its stream for a seed is fixed by the
/// `rand_chacha` crate (unlike `rand::rngs::SmallRng`'s), so results reproduce across machines.
pub type NoiseRng = rand_chacha::ChaCha8Rng;

/// A seeded noise generator; the same `seed` always gives the same noise.
pub fn noise_rng(seed: u64) -> NoiseRng {
    NoiseRng::seed_from_u64(seed)
}

/// Stream `stream` of the generator seeded with `seed`: independent noise per row or per request
/// (ChaCha streams do not overlap), so one row's result does not depend on which rows came before it.
pub fn noise_rng_stream(seed: u64, stream: u64) -> NoiseRng {
    let mut rng = noise_rng(seed);
    rng.set_stream(stream);
    rng
}

/// Which of Cohen et al.'s algorithms answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Answer a class or abstain (binomial test); the cheaper one.
    Predict,
    /// Answer a class with a certified L2 radius, or abstain (Clopper–Pearson bound).
    Certify,
}

/// `smoothing = { sigma = 0.25, n0 = 100, n = 1000, alpha = 0.001, mode = "predict" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Standard deviation σ of the Gaussian noise, in the units of the model's input. Required: it is
    /// the robustness/accuracy trade-off and has no neutral default (Cohen et al. use 0.12–1.0 for
    /// pixels in [0, 1]). Must be finite and > 0.
    pub sigma: f64,
    /// Samples that pick the class in CERTIFY mode. Default 100 (Cohen et al.). Unused by PREDICT.
    #[serde(default = "default_n0")]
    pub n0: usize,
    /// Samples that test (PREDICT) or estimate (CERTIFY) the class. Default 1000: each sample is one
    /// model row, so this is the per-request cost multiplier; larger n certifies larger radii.
    #[serde(default = "default_n")]
    pub n: usize,
    /// Allowed probability of a wrong answer (PREDICT) or of a wrong certificate (CERTIFY). Default
    /// 0.001 (Cohen et al.). Must be in (0, 1).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// `"predict"` or `"certify"`. Default `"predict"`.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Most noisy rows sent to the backend in one call. Default 1000: few calls, bounded memory
    /// (`max_batch × width` floats).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// A fixed noise seed, for the caller to seed the generator it passes in (this crate draws no randomness
    /// of its own): every request then draws the same noise, so answers reproduce. For tests and experiments
    /// only — an attacker who knows the noise can optimize against it. Default: none, fresh noise.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_n0() -> usize {
    100
}
fn default_n() -> usize {
    1000
}
fn default_alpha() -> f64 {
    0.001
}
fn default_mode() -> Mode {
    Mode::Predict
}
fn default_max_batch() -> usize {
    1000
}

impl Config {
    /// A config with the given σ and every other field at its default.
    pub fn with_sigma(sigma: f64) -> Self {
        Self {
            sigma,
            n0: default_n0(),
            n: default_n(),
            alpha: default_alpha(),
            mode: default_mode(),
            max_batch: default_max_batch(),
            seed: None,
        }
    }
}

/// Why smoothing could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmoothingError {
    /// A parameter is out of its range; `field` names it as in the config.
    #[error("smoothing.{field}: {reason}")]
    InvalidParam {
        /// `sigma`, `n`, `n0`, `alpha` or `max_batch`.
        field: &'static str,
        /// What the value must be.
        reason: &'static str,
    },
    /// Smoothing votes over classes; a regressor has none.
    #[error("smoothing needs a classifier, the model is a regressor")]
    NotAClassifier,
    /// The row does not have the model's width.
    #[error("expected {expected} features, got {got}")]
    WrongWidth {
        /// The model's input width.
        expected: usize,
        /// Values passed.
        got: usize,
    },
    /// A feature is NaN or infinite; noise cannot make it meaningful.
    #[error("feature {index} is not finite")]
    NonFinite {
        /// Its position in the row.
        index: usize,
    },
    /// The model returned a row whose probabilities are all NaN, so it cast no vote.
    #[error("the model returned no finite probability for a noisy sample")]
    NoVote,
    /// The backend failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A class or an abstention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The smoothed classifier's answer (an index into the model's classes).
    Class(usize),
    /// Not enough evidence at level α: the caller must not report a class.
    Abstain,
}

impl Decision {
    /// The class, or `None` on abstention.
    pub fn class(self) -> Option<usize> {
        match self {
            Decision::Class(c) => Some(c),
            Decision::Abstain => None,
        }
    }
}

/// PREDICT's answer with the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothedPrediction {
    /// The class, or abstain when `pvalue > alpha`.
    pub decision: Decision,
    /// The most voted class (reported even on abstention, for the audit).
    pub top: usize,
    /// Votes for the top class.
    pub n_a: u64,
    /// Votes for the runner-up.
    pub n_b: u64,
    /// Two-sided binomial p-value of `n_a` out of `n_a + n_b` against ½.
    pub pvalue: f64,
    /// Votes per class over the n samples.
    pub counts: Vec<u64>,
}

/// CERTIFY's answer with the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// The class, or abstain when `pa_lower < 0.5`.
    pub decision: Decision,
    /// The class selected on the n₀ samples.
    pub top: usize,
    /// Votes for `top` among the n estimation samples.
    pub n_a: u64,
    /// Estimation samples.
    pub n: u64,
    /// One-sided (1 − α) Clopper–Pearson lower bound on P(f(x + ε) = top).
    pub pa_lower: f64,
    /// Certified L2 radius σ·Φ⁻¹(`pa_lower`); `None` on abstention.
    pub radius: Option<f64>,
    /// Votes per class over the n estimation samples (`counts[top] == n_a`), for callers that report the
    /// smoothed class probabilities beside the certificate.
    pub counts: Vec<u64>,
}

/// PREDICT's decision from its counts (the two largest class counts `n_a ≥ n_b`): the p-value and
/// whether to abstain (`pvalue > alpha`). The class itself is the caller's.
pub fn predict_from_counts(n_a: u64, n_b: u64, alpha: f64) -> (f64, bool) {
    let pvalue = binom_test_half(n_a, n_b);
    // Only a p-value known to be within alpha answers: a NaN (impossible, but cheap to rule out)
    // abstains.
    let answer = pvalue <= alpha;
    (pvalue, !answer)
}

/// CERTIFY's bound from its counts: `n_a` votes for the selected class among `n` samples. Returns
/// `(pa_lower, radius)`, `radius` `None` when `pa_lower < 0.5` (abstain) or the inputs are out of range
/// (`n_a > n`, `alpha` outside (0, 1), `sigma` not finite and positive).
pub fn certify_from_counts(n_a: u64, n: u64, alpha: f64, sigma: f64) -> (f64, Option<f64>) {
    let pa_lower = clopper_pearson_lower(n_a, n, alpha);
    // Written so that a NaN bound or sigma abstains too.
    let certifies = pa_lower >= 0.5 && sigma.is_finite() && sigma > 0.0;
    if certifies {
        (pa_lower, Some(sigma * normal_ppf(pa_lower)))
    } else {
        (pa_lower, None)
    }
}

/// Randomized smoothing for one model: validated parameters, ready to answer.
#[derive(Debug, Clone)]
pub struct Smoother {
    config: Config,
    sigma: f32,
}

impl Smoother {
    /// Validates `config`.
    ///
    /// # Errors
    /// [`SmoothingError::InvalidParam`] naming the first bad field: `sigma` not finite and > 0 (or too
    /// large for `f32`), `n` or `n0` zero or above [`MAX_SAMPLES`], `alpha` outside (0, 1), `max_batch`
    /// zero or above [`MAX_BATCH`].
    pub fn new(config: Config) -> Result<Self, SmoothingError> {
        let bad = |field, reason| Err(SmoothingError::InvalidParam { field, reason });
        if !(config.sigma.is_finite() && config.sigma > 0.0 && config.sigma <= f64::from(f32::MAX))
        {
            return bad("sigma", "must be finite and > 0");
        }
        if !(1..=MAX_SAMPLES).contains(&config.n) {
            return bad("n", "must be in 1..=1e9");
        }
        if !(1..=MAX_SAMPLES).contains(&config.n0) {
            return bad("n0", "must be in 1..=1e9");
        }
        if !(config.alpha > 0.0 && config.alpha < 1.0) {
            return bad("alpha", "must be in (0, 1)");
        }
        if !(1..=MAX_BATCH).contains(&config.max_batch) {
            return bad("max_batch", "must be in 1..=65536");
        }
        let sigma = config.sigma as f32;
        Ok(Self { config, sigma })
    }

    /// The validated parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Cohen et al.'s PREDICT on one row `x`.
    ///
    /// # Errors
    /// [`SmoothingError`] when the model is a regressor, `x` has the wrong width or a non-finite
    /// value, or the backend fails.
    pub fn predict<R: Rng + ?Sized>(
        &self,
        backend: &dyn Backend,
        x: &[f32],
        rng: &mut R,
    ) -> Result<SmoothedPrediction, SmoothingError> {
        let counts = self.sample_counts(backend, x, self.config.n, rng)?;
        let (top, n_a, n_b) = top_two(&counts);
        let (pvalue, abstain) = predict_from_counts(n_a, n_b, self.config.alpha);
        Ok(SmoothedPrediction {
            decision: if abstain {
                Decision::Abstain
            } else {
                Decision::Class(top)
            },
            top,
            n_a,
            n_b,
            pvalue,
            counts,
        })
    }

    /// Cohen et al.'s CERTIFY on one row `x`: select on n₀ samples, estimate on n fresh ones.
    ///
    /// # Errors
    /// As [`Smoother::predict`].
    pub fn certify<R: Rng + ?Sized>(
        &self,
        backend: &dyn Backend,
        x: &[f32],
        rng: &mut R,
    ) -> Result<Certificate, SmoothingError> {
        let selection = self.sample_counts(backend, x, self.config.n0, rng)?;
        let (top, _, _) = top_two(&selection);
        let estimation = self.sample_counts(backend, x, self.config.n, rng)?;
        let n_a = estimation.get(top).copied().unwrap_or(0);
        let n = self.config.n as u64;
        let (pa_lower, radius) = certify_from_counts(n_a, n, self.config.alpha, self.config.sigma);
        Ok(Certificate {
            decision: match radius {
                Some(_) => Decision::Class(top),
                None => Decision::Abstain,
            },
            top,
            n_a,
            n,
            pa_lower,
            radius,
            counts: estimation,
        })
    }

    /// Votes per class of the base model over `num` noisy copies of `x` (the `SAMPLE UNDER NOISE`
    /// step), scored in batches of at most `max_batch` rows.
    ///
    /// # Errors
    /// As [`Smoother::predict`].
    pub fn sample_counts<R: Rng + ?Sized>(
        &self,
        backend: &dyn Backend,
        x: &[f32],
        num: usize,
        rng: &mut R,
    ) -> Result<Vec<u64>, SmoothingError> {
        let info = backend.info();
        let classes = match info.kind {
            ModelKind::Classifier { classes } => classes,
            ModelKind::Regressor { .. } => return Err(SmoothingError::NotAClassifier),
        };
        let width = info.width;
        if x.len() != width {
            return Err(SmoothingError::WrongWidth {
                expected: width,
                got: x.len(),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(SmoothingError::NonFinite { index });
        }
        let mut counts = vec![0u64; classes];
        let mut buf = Vec::with_capacity(self.config.max_batch.min(num).saturating_mul(width));
        let mut left = num;
        while left > 0 {
            let rows = left.min(self.config.max_batch);
            buf.clear();
            for _ in 0..rows {
                buf.extend(
                    x.iter()
                        .map(|&v| v + self.sigma * rng.sample::<f32, _>(StandardNormal)),
                );
            }
            let out = backend.predict(&buf, rows)?;
            for r in 0..rows {
                let probs = out.row(r).ok_or(SmoothingError::NoVote)?;
                let class = argmax(probs).ok_or(SmoothingError::NoVote)?;
                if let Some(c) = counts.get_mut(class) {
                    *c += 1;
                }
            }
            left -= rows;
        }
        Ok(counts)
    }
}

/// Index of the largest non-NaN value, the first one on ties; `None` when every value is NaN.
fn argmax(values: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// The most voted class (lowest index on ties), its count, and the runner-up's count.
fn top_two(counts: &[u64]) -> (usize, u64, u64) {
    let mut top = 0;
    for (i, &c) in counts.iter().enumerate() {
        if c > counts[top] {
            top = i;
        }
    }
    let n_a = counts.get(top).copied().unwrap_or(0);
    let n_b = counts
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != top)
        .map(|(_, &c)| c)
        .max()
        .unwrap_or(0);
    (top, n_a, n_b)
}

#[cfg(test)]
mod tests;
