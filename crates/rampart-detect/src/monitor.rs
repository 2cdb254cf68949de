//! The windowed aggregates a monitor drives: feature drift ([`DriftMonitor`]), prediction drift
//! ([`PredictionDrift`]) and accuracy ([`RollingAccuracy`]).
//!
//! Why here and not in `rampart-monitor`: they are pure arithmetic over what they are fed, with no clock, no
//! channel and no I/O, so they are tested like the statistics they combine. The monitor crate owns the
//! observation channel, decides when to feed them and turns their reports into alerts.
//!
//! The drift windows are *tumbling*: a report covers exactly `window` observations and the next window starts
//! empty, so no observation is counted in two reports (the tests' p-values assume independent windows) and
//! memory is `O(window × width)`. Accuracy slides instead, because a floor is checked after every outcome.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use crate::baseline::Baseline;
pub use crate::baseline::{confidence_bin, CONFIDENCE_BINS};
use crate::chi2::{chi2_categorical, Chi2Test};
use crate::error::{check_finite, StatError};
use crate::ks::{ks_2samp_sorted, KsTest};
use crate::mmd::{mmd_permutation_test, MmdTest, DEFAULT_PERMUTATIONS};
use crate::psi::{psi_from_counts, PsiReference};

/// Most distinct values a categorical feature may have in the reference; more means it is not categorical.
pub const MAX_CATEGORIES: usize = 1000;

/// [`DriftMonitor`] parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftConfig {
    /// Rows per window (default 1000). Smaller windows alarm sooner but only on larger shifts.
    pub window: usize,
    /// Family-wise false-alarm rate per window (default 0.01), split by Bonferroni over the per-feature tests
    /// and the MMD test: each is run at `alpha / (d + 1)` (`alpha / d` without MMD).
    pub alpha: f64,
    /// A feature whose PSI exceeds this counts as drifted too (default 0.25, the usual "significant shift";
    /// `None` reports PSI without acting on it).
    pub psi_threshold: Option<f64>,
    /// Indices of categorical features: tested with chi-square on their value counts instead of KS and PSI.
    pub categorical: Vec<usize>,
    /// The multivariate MMD test; `None` turns it off.
    pub mmd: Option<MmdConfig>,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            window: 1000,
            alpha: 0.01,
            psi_threshold: Some(0.25),
            categorical: Vec::new(),
            mmd: Some(MmdConfig::default()),
        }
    }
}

/// MMD part of [`DriftConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmdConfig {
    /// Permutations for the p-value (default [`DEFAULT_PERMUTATIONS`]).
    pub permutations: usize,
    /// Seed; window `i` uses `seed + i`, so each window is reproducible and windows are independent.
    pub seed: u64,
    /// Rows of the window and of the reference used (evenly spaced), default 500: the kernel matrix costs
    /// `(n + m)²` memory and time, so this bounds a window's cost whatever the window size.
    pub max_rows: usize,
}

impl Default for MmdConfig {
    fn default() -> Self {
        Self {
            permutations: DEFAULT_PERMUTATIONS,
            seed: 0x5EED,
            max_rows: 500,
        }
    }
}

/// One feature's result in a [`DriftReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDrift {
    /// 0-based feature index.
    pub index: usize,
    /// KS test (continuous features).
    pub ks: Option<KsTest>,
    /// PSI against the reference deciles (continuous features).
    pub psi: Option<f64>,
    /// Chi-square on value counts (categorical features).
    pub chi2: Option<Chi2Test>,
    /// Whether this feature counts as drifted.
    pub drifted: bool,
}

/// What a closed window found.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReport {
    /// 0-based index of the window.
    pub window: u64,
    /// Rows in the window.
    pub rows: usize,
    /// The per-test significance level after Bonferroni.
    pub threshold: f64,
    /// Per-feature results, in feature order.
    pub features: Vec<FeatureDrift>,
    /// The multivariate test, when configured and computable (`None` also when the pooled rows are all
    /// identical, which leaves the bandwidth undefined).
    pub mmd: Option<MmdTest>,
    /// Any feature drifted, or MMD's p-value is below the threshold.
    pub drifted: bool,
}

#[derive(Debug, Clone)]
enum FeatureRef {
    Continuous {
        sorted: Vec<f64>,
        psi: PsiReference,
    },
    /// Value (as bits of the value with -0.0 folded into 0.0) → reference count.
    Categorical {
        counts: BTreeMap<u64, u64>,
    },
}

fn category_key(v: f64) -> u64 {
    if v == 0.0 {
        0.0_f64.to_bits()
    } else {
        v.to_bits()
    }
}

/// Feature drift of one model: tumbling windows of rows compared with the baseline's reference sample.
#[derive(Debug, Clone)]
pub struct DriftMonitor {
    config: DriftConfig,
    features: Vec<FeatureRef>,
    /// Standardised reference rows for MMD (evenly spaced, at most `max_rows`).
    mmd_reference: Vec<Vec<f64>>,
    scale: Vec<(f64, f64)>,
    rows: Vec<Vec<f64>>,
    windows: u64,
}

impl DriftMonitor {
    /// A monitor against `baseline.reference_sample`.
    ///
    /// # Errors
    ///
    /// As [`Self::from_reference`].
    pub fn new(baseline: &Baseline, config: DriftConfig) -> Result<Self, StatError> {
        Self::from_reference(&baseline.reference_sample, config)
    }

    /// A monitor against explicit reference rows.
    ///
    /// # Errors
    ///
    /// [`StatError::TooFew`] below 2 rows or zero width, [`StatError::WidthMismatch`],
    /// [`StatError::NonFinite`], [`StatError::InvalidParameter`] for a window below 2, `alpha` outside
    /// `(0, 1)`, a categorical index out of range or a categorical feature with more than
    /// [`MAX_CATEGORIES`] values.
    pub fn from_reference(reference: &[Vec<f64>], config: DriftConfig) -> Result<Self, StatError> {
        if config.window < 2 {
            return Err(StatError::InvalidParameter {
                name: "window",
                problem: "must be >= 2",
            });
        }
        if !(config.alpha > 0.0 && config.alpha < 1.0) {
            return Err(StatError::InvalidParameter {
                name: "alpha",
                problem: "must be in (0, 1)",
            });
        }
        if reference.len() < 2 {
            return Err(StatError::TooFew {
                what: "reference rows",
                needed: 2,
                got: reference.len(),
            });
        }
        let d = reference[0].len();
        if d == 0 {
            return Err(StatError::TooFew {
                what: "features",
                needed: 1,
                got: 0,
            });
        }
        for row in reference {
            if row.len() != d {
                return Err(StatError::WidthMismatch {
                    what: "reference row",
                    expected: d,
                    got: row.len(),
                });
            }
            check_finite("reference row", row)?;
        }
        if config.categorical.iter().any(|&j| j >= d) {
            return Err(StatError::InvalidParameter {
                name: "categorical",
                problem: "feature index out of range",
            });
        }
        let mut features = Vec::with_capacity(d);
        let mut scale = Vec::with_capacity(d);
        for j in 0..d {
            let mut column: Vec<f64> = reference.iter().map(|r| r[j]).collect();
            let n = column.len() as f64;
            let mean = column.iter().sum::<f64>() / n;
            let std = (column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            // A constant column is left unscaled: it adds nothing to distances either way.
            scale.push((mean, if std > 0.0 { std } else { 1.0 }));
            if config.categorical.contains(&j) {
                let mut counts = BTreeMap::new();
                for v in &column {
                    *counts.entry(category_key(*v)).or_insert(0) += 1;
                }
                if counts.len() > MAX_CATEGORIES {
                    return Err(StatError::InvalidParameter {
                        name: "categorical",
                        problem: "more distinct values than MAX_CATEGORIES",
                    });
                }
                features.push(FeatureRef::Categorical { counts });
            } else {
                let psi = PsiReference::new(&column)?;
                column.sort_unstable_by(f64::total_cmp);
                features.push(FeatureRef::Continuous {
                    sorted: column,
                    psi,
                });
            }
        }
        let mmd_reference = match &config.mmd {
            Some(m) => evenly_spaced(reference, m.max_rows)
                .map(|r| standardise(r, &scale))
                .collect(),
            None => Vec::new(),
        };
        Ok(Self {
            rows: Vec::with_capacity(config.window),
            config,
            features,
            mmd_reference,
            scale,
            windows: 0,
        })
    }

    /// Rows in the current, unfinished window.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.rows.len()
    }

    /// Adds a row; when it completes a window, returns that window's report and starts the next.
    ///
    /// # Errors
    ///
    /// [`StatError::WidthMismatch`] or [`StatError::NonFinite`]: the row is not added.
    pub fn push(&mut self, row: &[f64]) -> Result<Option<DriftReport>, StatError> {
        if row.len() != self.features.len() {
            return Err(StatError::WidthMismatch {
                what: "row",
                expected: self.features.len(),
                got: row.len(),
            });
        }
        check_finite("row", row)?;
        self.rows.push(row.to_vec());
        if self.rows.len() < self.config.window {
            return Ok(None);
        }
        Ok(Some(self.close_window()))
    }

    /// Closes the current window now (at shutdown, or on a timer for a quiet model) and reports on it;
    /// `None` for fewer than 2 rows, which no test can use.
    pub fn flush(&mut self) -> Option<DriftReport> {
        (self.rows.len() >= 2).then(|| self.close_window())
    }

    fn close_window(&mut self) -> DriftReport {
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(self.config.window));
        let index = self.windows;
        self.windows += 1;
        let d = self.features.len();
        let tests = d + usize::from(self.config.mmd.is_some());
        let threshold = self.config.alpha / tests as f64;
        let mut features = Vec::with_capacity(d);
        let mut column = Vec::with_capacity(rows.len());
        for (j, reference) in self.features.iter().enumerate() {
            column.clear();
            column.extend(rows.iter().map(|r| r[j]));
            let mut f = FeatureDrift {
                index: j,
                ks: None,
                psi: None,
                chi2: None,
                drifted: false,
            };
            match reference {
                FeatureRef::Continuous { sorted, psi } => {
                    column.sort_unstable_by(f64::total_cmp);
                    let ks = ks_2samp_sorted(sorted, &column);
                    let p = psi.compare(&column).ok().map(|p| p.value);
                    f.drifted = ks.p_value < threshold
                        || matches!((p, self.config.psi_threshold), (Some(p), Some(t)) if p > t);
                    f.ks = Some(ks);
                    f.psi = p;
                }
                FeatureRef::Categorical { counts } => {
                    let (r, c) = category_table(counts, &column);
                    if let Ok(t) = chi2_categorical(&r, &c) {
                        f.drifted = t.p_value < threshold;
                        f.chi2 = Some(t);
                    }
                }
            }
            features.push(f);
        }
        let mmd = self.config.mmd.and_then(|m| {
            let window: Vec<Vec<f64>> = evenly_spaced(&rows, m.max_rows)
                .map(|r| standardise(r, &self.scale))
                .collect();
            mmd_permutation_test(
                &self.mmd_reference,
                &window,
                m.permutations,
                m.seed.wrapping_add(index),
            )
            .ok()
        });
        let drifted =
            features.iter().any(|f| f.drifted) || mmd.is_some_and(|m| m.p_value < threshold);
        DriftReport {
            window: index,
            rows: rows.len(),
            threshold,
            features,
            mmd,
            drifted,
        }
    }
}

/// Reference and window counts over the reference's categories plus one "unseen value" column last.
fn category_table(reference: &BTreeMap<u64, u64>, column: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut current: BTreeMap<u64, u64> = reference.keys().map(|k| (*k, 0)).collect();
    let mut unseen = 0_u64;
    for v in column {
        match current.get_mut(&category_key(*v)) {
            Some(c) => *c += 1,
            None => unseen += 1,
        }
    }
    let mut r: Vec<f64> = reference.values().map(|&c| c as f64).collect();
    let mut c: Vec<f64> = current.values().map(|&c| c as f64).collect();
    r.push(0.0);
    c.push(unseen as f64);
    (r, c)
}

fn evenly_spaced<T>(rows: &[T], max: usize) -> impl Iterator<Item = &T> {
    let n = rows.len();
    let k = n.min(max.max(2));
    (0..k).filter_map(move |i| rows.get(i * n / k.max(1)))
}

fn standardise(row: &[f64], scale: &[(f64, f64)]) -> Vec<f64> {
    row.iter()
        .zip(scale)
        .map(|(v, (m, s))| (v - m) / s)
        .collect()
}

/// [`PredictionDrift`] parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictionDriftConfig {
    /// Predictions per window (default 1000).
    pub window: usize,
    /// Level of the class-frequency chi-square test (default 0.01).
    pub alpha: f64,
    /// Confidence-histogram PSI above which the window counts as drifted (default 0.25).
    pub psi_threshold: f64,
}

impl Default for PredictionDriftConfig {
    fn default() -> Self {
        Self {
            window: 1000,
            alpha: 0.01,
            psi_threshold: 0.25,
        }
    }
}

/// What a closed prediction window found.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionDriftReport {
    /// 0-based index of the window.
    pub window: u64,
    /// Predictions in the window.
    pub predictions: usize,
    /// Chi-square of the window's class counts (plus one column for class indices beyond the expected ones)
    /// against the expected counts. `None` only if the test cannot be computed, which the constructor's checks
    /// rule out for a non-empty window.
    pub classes: Option<Chi2Test>,
    /// PSI of the window's confidence histogram against the reference one, when a reference was given.
    pub confidence_psi: Option<f64>,
    /// Chi-square p below `alpha`, or PSI above its threshold.
    pub drifted: bool,
}

/// Prediction drift: the mix of predicted classes and the shape of the confidence distribution, per window.
#[derive(Debug, Clone)]
pub struct PredictionDrift {
    config: PredictionDriftConfig,
    expected: Vec<f64>,
    reference_confidence: Option<[u64; CONFIDENCE_BINS]>,
    counts: Vec<u64>,
    confidence: [u64; CONFIDENCE_BINS],
    n: usize,
    windows: u64,
}

impl PredictionDrift {
    /// A monitor with expected counts (or frequencies) per class index, and optionally a reference
    /// confidence histogram ([`CONFIDENCE_BINS`] bins).
    ///
    /// # Errors
    ///
    /// [`StatError::TooFew`] for no class, [`StatError::NonFinite`], [`StatError::InvalidParameter`] for a
    /// negative or all-zero expectation, a window below 1 or `alpha` outside `(0, 1)`.
    pub fn new(
        expected: Vec<f64>,
        reference_confidence: Option<[u64; CONFIDENCE_BINS]>,
        config: PredictionDriftConfig,
    ) -> Result<Self, StatError> {
        if expected.is_empty() {
            return Err(StatError::TooFew {
                what: "classes",
                needed: 1,
                got: 0,
            });
        }
        check_finite("expected", &expected)?;
        if expected.iter().any(|e| *e < 0.0) || expected.iter().all(|e| *e == 0.0) {
            return Err(StatError::InvalidParameter {
                name: "expected",
                problem: "must be >= 0 and not all 0",
            });
        }
        if config.window == 0 || !(config.alpha > 0.0 && config.alpha < 1.0) {
            return Err(StatError::InvalidParameter {
                name: "window/alpha",
                problem: "window must be >= 1 and alpha in (0, 1)",
            });
        }
        Ok(Self {
            counts: vec![0; expected.len() + 1],
            config,
            expected,
            reference_confidence,
            confidence: [0; CONFIDENCE_BINS],
            n: 0,
            windows: 0,
        })
    }

    /// A monitor for a model whose outputs are `labels` (class index `i` is `labels[i]`), expecting the
    /// baseline's predicted-class distribution and confidence histogram when it has them, else its training
    /// label distribution.
    ///
    /// # Errors
    ///
    /// [`StatError::InvalidParameter`] when the baseline has neither, or none of `labels` occurs in it; as
    /// [`Self::new`].
    pub fn from_baseline(
        baseline: &Baseline,
        labels: &[String],
        config: PredictionDriftConfig,
    ) -> Result<Self, StatError> {
        let (counts, histogram) = match &baseline.predictions {
            Some(p) => (&p.class_counts, Some(p.confidence_histogram)),
            None => match &baseline.label_counts {
                Some(c) => (c, None),
                None => {
                    return Err(StatError::InvalidParameter {
                        name: "baseline",
                        problem: "has neither predictions nor label_counts",
                    })
                }
            },
        };
        let expected: Vec<f64> = labels
            .iter()
            .map(|l| counts.get(l).copied().unwrap_or(0) as f64)
            .collect();
        Self::new(expected, histogram, config)
    }

    /// Adds one prediction (class index, confidence in `[0, 1]`); returns the report when it completes a
    /// window. A class index beyond the expected ones is counted as "unseen", which is itself drift.
    ///
    /// # Errors
    ///
    /// [`StatError::NonFinite`] or [`StatError::InvalidParameter`] for a confidence outside `[0, 1]`.
    pub fn push(
        &mut self,
        class: usize,
        confidence: f64,
    ) -> Result<Option<PredictionDriftReport>, StatError> {
        check_finite("confidence", &[confidence])?;
        if !(0.0..=1.0).contains(&confidence) {
            return Err(StatError::InvalidParameter {
                name: "confidence",
                problem: "must be in [0, 1]",
            });
        }
        let slot = class.min(self.expected.len());
        self.counts[slot] += 1;
        self.confidence[confidence_bin(confidence)] += 1;
        self.n += 1;
        if self.n < self.config.window {
            return Ok(None);
        }
        Ok(Some(self.close_window()))
    }

    fn close_window(&mut self) -> PredictionDriftReport {
        let mut reference = self.expected.clone();
        reference.push(0.0);
        let current: Vec<f64> = self.counts.iter().map(|&c| c as f64).collect();
        let classes = chi2_categorical(&reference, &current).ok();
        let confidence_psi = self.reference_confidence.map(|r| {
            let total: u64 = r.iter().sum();
            psi_from_counts(&r, total as usize, &self.confidence, self.n)
        });
        let drifted = classes
            .as_ref()
            .is_some_and(|t| t.p_value < self.config.alpha)
            || confidence_psi.is_some_and(|p| p > self.config.psi_threshold);
        let report = PredictionDriftReport {
            window: self.windows,
            predictions: self.n,
            classes,
            confidence_psi,
            drifted,
        };
        self.windows += 1;
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.confidence = [0; CONFIDENCE_BINS];
        self.n = 0;
        report
    }
}

/// Accuracy over the last `window` labelled predictions (a sliding window, O(1) per update), with a floor.
#[derive(Debug, Clone)]
pub struct RollingAccuracy {
    window: usize,
    floor: f64,
    recent: VecDeque<bool>,
    correct: usize,
}

/// State after an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyState {
    /// Accuracy over the window so far.
    pub accuracy: f64,
    /// Outcomes in the window (up to its size).
    pub samples: usize,
    /// The window is full and accuracy is below the floor. Not raised on a partly filled window, where a
    /// couple of early misses would otherwise alarm.
    pub below_floor: bool,
}

impl RollingAccuracy {
    /// A window of `window` outcomes and an alarm floor in `[0, 1]`.
    ///
    /// # Errors
    ///
    /// [`StatError::InvalidParameter`] for a zero window or a floor outside `[0, 1]`.
    pub fn new(window: usize, floor: f64) -> Result<Self, StatError> {
        if window == 0 || !(0.0..=1.0).contains(&floor) {
            return Err(StatError::InvalidParameter {
                name: "window/floor",
                problem: "window must be >= 1 and floor in [0, 1]",
            });
        }
        Ok(Self {
            window,
            floor,
            recent: VecDeque::with_capacity(window),
            correct: 0,
        })
    }

    /// Records whether one prediction was correct.
    pub fn push(&mut self, correct: bool) -> AccuracyState {
        if self.recent.len() == self.window {
            if let Some(true) = self.recent.pop_front() {
                self.correct -= 1;
            }
        }
        self.recent.push_back(correct);
        self.correct += usize::from(correct);
        let samples = self.recent.len();
        let accuracy = self.correct as f64 / samples as f64;
        AccuracyState {
            accuracy,
            samples,
            below_floor: samples == self.window && accuracy < self.floor,
        }
    }
}
