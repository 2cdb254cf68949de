//! A model's baseline profile: what its training inputs looked like, saved next to the model and loaded by the
//! guards ([`crate::zscore`], [`crate::mahalanobis`]) and the drift monitors.
//!
//! # File format (`format_version: 1`)
//!
//! JSON, every object closed (`deny_unknown_fields`: a misspelt field is an error, not a silently ignored
//! setting):
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "features": [{"name": "age", "count": 5000, "mean": 41.2, "std": 12.9, "min": 18.0, "max": 90.0,
//!                 "quantiles": {"p01": 19.0, "p05": 22.0, "p25": 31.0, "p50": 40.0, "p75": 50.0,
//!                               "p95": 64.0, "p99": 78.0}}],
//!   "covariance": [[166.41]],
//!   "mahalanobis": {"ridge": 1e-6, "p99": 2.6, "p999": 3.3, "max": 3.8},
//!   "reference_sample": [[40.0], [52.0]],
//!   "label_counts": {"0": 4100, "1": 900},
//!   "predictions": {"class_counts": {"0": 4180, "1": 820},
//!                   "confidence_histogram": [0, 0, 0, 0, 0, 210, 340, 600, 1150, 2700]}
//! }
//! ```
//!
//! - `std` and `covariance` are sample statistics (`ddof = 1`); `covariance` has no ridge in it.
//! - Quantiles use linear interpolation between order statistics, numpy's default (`method="linear"`, Hyndman
//!   & Fan 1996 type 7), see [`quantile_sorted`].
//! - `reference_sample` holds at most [`MAX_REFERENCE_ROWS`] training rows, chosen evenly spaced
//!   (row `⌊i·n/k⌋` for `i < k`), so the same data always gives the same file; drift tests (KS, MMD) compare
//!   live windows against it.
//! - `mahalanobis` holds the ridge used and the 99th and 99.9th percentiles and maximum of the training rows'
//!   own Mahalanobis distances: empirical thresholds that do not assume normality.
//! - `label_counts` is present only when labels were given.
//! - `predictions` (optional; files written before it existed still load) is the model's own output on the
//!   profiled rows: predicted-class counts and a histogram of the top confidence over [`CONFIDENCE_BINS`]
//!   equal-width bins of `[0, 1]` (the last bin closed). Prediction-drift monitors compare live windows with
//!   it; without it they fall back to `label_counts`.
//!
//! A loader calls [`Baseline::from_json`] (parse, then [`Baseline::validate`]) and never uses an unchecked file.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::covariance::CoMoments;
use crate::mahalanobis::{Mahalanobis, MahalanobisError};

/// The only `format_version` this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The most training rows kept in [`Baseline::reference_sample`].
pub const MAX_REFERENCE_ROWS: usize = 1000;

/// The ridge [`BaselineBuilder`] uses unless told otherwise.
pub const DEFAULT_RIDGE: f64 = 1e-6;

/// The most distinct labels [`BaselineBuilder::push_label`] accepts: labels are classes, and a regression
/// target pushed by mistake would otherwise grow the file without bound.
pub const MAX_DISTINCT_LABELS: usize = 10_000;

/// Bins of the confidence histogram in [`PredictionProfile`]: ten equal-width bins over `[0, 1]`.
pub const CONFIDENCE_BINS: usize = 10;

/// The [`CONFIDENCE_BINS`] bin of a confidence in `[0, 1]`; 1.0 goes to the last bin.
#[must_use]
pub fn confidence_bin(confidence: f64) -> usize {
    // Truncation is the binning; the min puts 1.0 (and anything above) in the last bin.
    ((confidence * CONFIDENCE_BINS as f64) as usize).min(CONFIDENCE_BINS - 1)
}

/// Errors from building, checking or parsing a baseline.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The builder was given no feature names.
    #[error("a baseline needs at least one feature")]
    NoFeatures,
    /// Two features share a name.
    #[error("duplicate feature name {0:?}")]
    DuplicateFeature(String),
    /// A pushed row has the wrong number of values.
    #[error("row {row}: {got} values, expected {expected}")]
    WidthMismatch {
        /// 0-based index of the row (among rows pushed, counting refused ones).
        row: u64,
        /// Number of features.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
    /// A pushed row holds NaN or an infinity.
    #[error("row {row}, feature {feature}: value is not finite")]
    NonFinite {
        /// 0-based index of the row.
        row: u64,
        /// 0-based index of the feature.
        feature: usize,
    },
    /// Fewer than two rows: no sample variance exists.
    #[error("{rows} rows; a baseline needs at least 2")]
    TooFewRows {
        /// Rows pushed.
        rows: u64,
    },
    /// Labels were given, but not one per row.
    #[error("{labels} labels for {rows} rows")]
    LabelCountMismatch {
        /// Labels pushed.
        labels: u64,
        /// Rows pushed.
        rows: u64,
    },
    /// More than [`MAX_DISTINCT_LABELS`] distinct labels.
    #[error("more than {max} distinct labels")]
    TooManyLabels {
        /// The limit.
        max: usize,
    },
    /// The file's `format_version` is not one this build reads.
    #[error("unsupported baseline format_version {0}; this build reads {FORMAT_VERSION}")]
    UnsupportedVersion(u32),
    /// A field is inconsistent with the rest of the baseline.
    #[error("{field}: {problem}")]
    Invalid {
        /// Path of the field, e.g. `features[2].std`.
        field: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The covariance could not be factored for the Mahalanobis statistics.
    #[error("mahalanobis: {0}")]
    Mahalanobis(#[from] MahalanobisError),
    /// The JSON is malformed, misses a field or has an unknown one.
    #[error("baseline JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn invalid(field: impl Into<String>, problem: &'static str) -> BaselineError {
    BaselineError::Invalid {
        field: field.into(),
        problem,
    }
}

/// A model's baseline profile. See the [module docs](self) for the file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Per-feature statistics, in the model's input order.
    pub features: Vec<FeatureStats>,
    /// Sample covariance (`ddof = 1`), `d × d`, symmetric, without ridge.
    pub covariance: Vec<Vec<f64>>,
    /// The training rows' own Mahalanobis distances.
    pub mahalanobis: MahalanobisStats,
    /// Up to [`MAX_REFERENCE_ROWS`] evenly spaced training rows.
    pub reference_sample: Vec<Vec<f64>>,
    /// Rows per label, when labels were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_counts: Option<BTreeMap<String, u64>>,
    /// The model's predictions on the profiled rows, when they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PredictionProfile>,
}

/// What the model predicted on the profiled rows (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionProfile {
    /// Predictions per class label.
    pub class_counts: BTreeMap<String, u64>,
    /// Predictions per confidence bin ([`confidence_bin`]).
    pub confidence_histogram: [u64; CONFIDENCE_BINS],
}

/// Statistics of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureStats {
    /// The feature's name.
    pub name: String,
    /// Number of training rows.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`ddof = 1`); `0` for a constant feature.
    pub std: f64,
    /// Smallest value seen.
    pub min: f64,
    /// Largest value seen.
    pub max: f64,
    /// Linear-interpolation quantiles.
    pub quantiles: Quantiles,
}

/// Quantiles of one feature (numpy `method="linear"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the field names are the documentation: pNN is the NN-th percentile
pub struct Quantiles {
    pub p01: f64,
    pub p05: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Quantiles {
    /// The probabilities, in field order.
    pub const PROBABILITIES: [f64; 7] = [0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99];

    /// The values, in field order.
    #[must_use]
    pub const fn to_array(&self) -> [f64; 7] {
        [
            self.p01, self.p05, self.p25, self.p50, self.p75, self.p95, self.p99,
        ]
    }

    fn from_sorted(sorted: &[f64]) -> Option<Self> {
        let (min, max) = (*sorted.first()?, *sorted.last()?);
        let mut v = [0.0; 7];
        let mut floor = min;
        for (out, p) in v.iter_mut().zip(Self::PROBABILITIES) {
            // Interpolation can land an ulp outside its bracket; clamp so `validate` holds by construction.
            floor = quantile_sorted(sorted, p)?.clamp(floor, max);
            *out = floor;
        }
        let [p01, p05, p25, p50, p75, p95, p99] = v;
        Some(Self {
            p01,
            p05,
            p25,
            p50,
            p75,
            p95,
            p99,
        })
    }
}

/// Distribution of the training rows' own Mahalanobis distances (not squared).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MahalanobisStats {
    /// The ridge added to the covariance diagonal when these were computed; score requests with the same one.
    pub ridge: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// The `p`-quantile of ascending `sorted` data by linear interpolation, as numpy's default
/// `numpy.quantile(x, p)` (`method="linear"`): index `h = (n - 1)·p`, interpolated between `x[⌊h⌋]` and
/// `x[⌊h⌋ + 1]` with numpy's two-sided lerp, so results agree to the last bit in ordinary cases.
///
/// `None` when `sorted` is empty or `p` is outside `[0, 1]` (or NaN). The data is assumed sorted and finite.
#[must_use]
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    if !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = last as f64 * p;
    let lo = h.floor();
    let gamma = h - lo;
    // `lo` lies in 0..=last because 0 <= h <= last; the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = (lo as usize).min(last);
    let a = sorted[i];
    let b = sorted[(i + 1).min(last)];
    let diff = b - a;
    // numpy's `_lerp`: interpolate from the nearer end, which keeps the result monotone in `p` and exact at
    // the endpoints.
    Some(if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    })
}

impl Baseline {
    /// Parses a baseline file and [validates](Self::validate) it.
    ///
    /// # Errors
    ///
    /// [`BaselineError::Json`] for malformed JSON, a missing field or an unknown one; anything
    /// [`Self::validate`] returns.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BaselineError> {
        let baseline: Self = serde_json::from_slice(bytes)?;
        baseline.validate()?;
        Ok(baseline)
    }

    /// Serialises to pretty-printed JSON. Floats round-trip exactly.
    ///
    /// # Errors
    ///
    /// [`BaselineError::Json`] if a value cannot be represented (a non-finite float: validate first).
    pub fn to_json(&self) -> Result<String, BaselineError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The number of features.
    #[must_use]
    pub fn width(&self) -> usize {
        self.features.len()
    }

    /// The number of training rows.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.features.first().map_or(0, |f| f.count)
    }

    /// Feature names, in input order.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Checks internal consistency; a loader must call this (or use [`Self::from_json`]) before using a file.
    ///
    /// Checks: the format version; at least one feature; unique, non-empty names; every count equal and ≥ 2;
    /// every number finite; `std ≥ 0`; `min ≤ quantiles (ascending) ≤ max`; a `d × d` symmetric covariance
    /// with a non-negative diagonal equal to `std²` up to rounding; reference rows of width `d`, at most
    /// [`MAX_REFERENCE_ROWS`] and at most `count` of them; `0 ≤ p99 ≤ p999 ≤ max` and a non-negative ridge;
    /// label counts positive and summing to `count`. It does not refit anything (that would need the data).
    ///
    /// # Errors
    ///
    /// [`BaselineError::UnsupportedVersion`], [`BaselineError::NoFeatures`],
    /// [`BaselineError::DuplicateFeature`], or [`BaselineError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), BaselineError> {
        if self.format_version != FORMAT_VERSION {
            return Err(BaselineError::UnsupportedVersion(self.format_version));
        }
        check_names(self.features.iter().map(|f| f.name.as_str()))?;
        let d = self.features.len();
        let count = self.count();
        if count < 2 {
            return Err(invalid("features[0].count", "must be at least 2"));
        }
        for (j, f) in self.features.iter().enumerate() {
            let at = |field: &str| format!("features[{j}].{field}");
            if f.count != count {
                return Err(invalid(at("count"), "differs from features[0].count"));
            }
            for (name, v) in [
                ("mean", f.mean),
                ("std", f.std),
                ("min", f.min),
                ("max", f.max),
            ] {
                if !v.is_finite() {
                    return Err(invalid(at(name), "not finite"));
                }
            }
            if f.std < 0.0 {
                return Err(invalid(at("std"), "negative"));
            }
            if f.min > f.max {
                return Err(invalid(at("min"), "greater than max"));
            }
            let q = f.quantiles.to_array();
            if !q.iter().all(|v| v.is_finite()) {
                return Err(invalid(at("quantiles"), "not finite"));
            }
            if q.first().is_some_and(|&lo| lo < f.min) || q.last().is_some_and(|&hi| hi > f.max) {
                return Err(invalid(at("quantiles"), "outside [min, max]"));
            }
            if q.windows(2).any(|w| w[0] > w[1]) {
                return Err(invalid(at("quantiles"), "not ascending"));
            }
        }

        if self.covariance.len() != d {
            return Err(invalid("covariance", "must have one row per feature"));
        }
        for (i, row) in self.covariance.iter().enumerate() {
            if row.len() != d {
                return Err(invalid(
                    format!("covariance[{i}]"),
                    "must have one column per feature",
                ));
            }
            if !row.iter().all(|v| v.is_finite()) {
                return Err(invalid(format!("covariance[{i}]"), "not finite"));
            }
        }
        for i in 0..d {
            let c_ii = self.covariance[i][i];
            if c_ii < 0.0 {
                return Err(invalid(
                    format!("covariance[{i}][{i}]"),
                    "negative variance",
                ));
            }
            let s2 = self.features[i].std * self.features[i].std;
            // std is sqrt(c_ii) rounded; squaring it back is off by a few ulps at most.
            if (c_ii - s2).abs() > 1e-9 * c_ii.max(s2) {
                return Err(invalid(
                    format!("covariance[{i}][{i}]"),
                    "differs from features[i].std squared",
                ));
            }
            for j in 0..i {
                let (a, b) = (self.covariance[i][j], self.covariance[j][i]);
                if a != b && (a - b).abs() > 1e-9 * a.abs().max(b.abs()) {
                    return Err(invalid(format!("covariance[{i}][{j}]"), "not symmetric"));
                }
            }
        }

        let m = &self.mahalanobis;
        if !m.ridge.is_finite() || m.ridge < 0.0 {
            return Err(invalid("mahalanobis.ridge", "must be finite and >= 0"));
        }
        if ![m.p99, m.p999, m.max].iter().all(|v| v.is_finite()) {
            return Err(invalid("mahalanobis", "not finite"));
        }
        if !(0.0 <= m.p99 && m.p99 <= m.p999 && m.p999 <= m.max) {
            return Err(invalid("mahalanobis", "needs 0 <= p99 <= p999 <= max"));
        }

        let refs = self.reference_sample.len();
        if refs == 0 {
            return Err(invalid("reference_sample", "empty"));
        }
        if refs > MAX_REFERENCE_ROWS || refs as u64 > count {
            return Err(invalid(
                "reference_sample",
                "more rows than MAX_REFERENCE_ROWS or count",
            ));
        }
        for (r, row) in self.reference_sample.iter().enumerate() {
            if row.len() != d {
                return Err(invalid(
                    format!("reference_sample[{r}]"),
                    "must have one value per feature",
                ));
            }
            if !row.iter().all(|v| v.is_finite()) {
                return Err(invalid(format!("reference_sample[{r}]"), "not finite"));
            }
        }

        if let Some(labels) = &self.label_counts {
            if labels.is_empty() {
                return Err(invalid("label_counts", "present but empty"));
            }
            if labels.len() > MAX_DISTINCT_LABELS {
                return Err(BaselineError::TooManyLabels {
                    max: MAX_DISTINCT_LABELS,
                });
            }
            if labels.values().any(|&c| c == 0) {
                return Err(invalid("label_counts", "a count is zero"));
            }
            let total = labels
                .values()
                .try_fold(0_u64, |acc, &c| acc.checked_add(c));
            if total != Some(count) {
                return Err(invalid(
                    "label_counts",
                    "counts do not sum to the row count",
                ));
            }
        }

        if let Some(p) = &self.predictions {
            if p.class_counts.is_empty() || p.class_counts.len() > MAX_DISTINCT_LABELS {
                return Err(invalid(
                    "predictions.class_counts",
                    "empty or too many classes",
                ));
            }
            let classes = p
                .class_counts
                .values()
                .try_fold(0_u64, |acc, &c| acc.checked_add(c));
            let bins = p
                .confidence_histogram
                .iter()
                .try_fold(0_u64, |acc, &c| acc.checked_add(c));
            if classes != bins || classes == Some(0) {
                return Err(invalid(
                    "predictions",
                    "class counts and confidence histogram must have the same, non-zero total",
                ));
            }
        }
        Ok(())
    }
}

fn check_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), BaselineError> {
    let mut seen = HashSet::new();
    for (j, name) in names.enumerate() {
        if name.is_empty() {
            return Err(invalid(format!("features[{j}].name"), "empty"));
        }
        if !seen.insert(name) {
            return Err(BaselineError::DuplicateFeature(name.to_owned()));
        }
    }
    if seen.is_empty() {
        return Err(BaselineError::NoFeatures);
    }
    Ok(())
}

/// Accumulates training rows and computes a [`Baseline`].
///
/// It keeps every row in memory (8 bytes per value) because exact quantiles and the rows' own Mahalanobis
/// distances need them: a training CSV of a few hundred MB fits comfortably; for much larger data, sample it
/// first. Means and covariance are computed in a streaming, numerically stable way ([`CoMoments`]).
#[derive(Debug, Clone)]
pub struct BaselineBuilder {
    names: Vec<String>,
    rows: Vec<f64>,
    /// Rows offered, including refused ones, so errors name the row of the caller's input.
    offered: u64,
    moments: CoMoments,
    labels: BTreeMap<String, u64>,
    labels_pushed: u64,
    predictions: Option<PredictionProfile>,
    ridge: f64,
}

impl BaselineBuilder {
    /// Starts a baseline for features with these names, in the model's input order. Names are checked by
    /// [`Self::finish`].
    #[must_use]
    pub fn new<I, S>(feature_names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = feature_names.into_iter().map(Into::into).collect();
        let d = names.len();
        Self {
            names,
            rows: Vec::new(),
            offered: 0,
            moments: CoMoments::new(d),
            labels: BTreeMap::new(),
            labels_pushed: 0,
            predictions: None,
            ridge: DEFAULT_RIDGE,
        }
    }

    /// Sets the ridge for the Mahalanobis statistics (default [`DEFAULT_RIDGE`]); it is recorded in the
    /// baseline. Validity is checked by [`Self::finish`].
    #[must_use]
    pub const fn with_ridge(mut self, ridge: f64) -> Self {
        self.ridge = ridge;
        self
    }

    /// Rows accepted so far.
    #[must_use]
    pub const fn rows(&self) -> u64 {
        self.moments.count()
    }

    /// Adds one training row. A refused row leaves the builder unchanged.
    ///
    /// # Errors
    ///
    /// [`BaselineError::WidthMismatch`] or [`BaselineError::NonFinite`].
    pub fn push(&mut self, row: &[f64]) -> Result<(), BaselineError> {
        let index = self.offered;
        self.offered += 1;
        if row.len() != self.names.len() {
            return Err(BaselineError::WidthMismatch {
                row: index,
                expected: self.names.len(),
                got: row.len(),
            });
        }
        if let Some(feature) = row.iter().position(|v| !v.is_finite()) {
            return Err(BaselineError::NonFinite {
                row: index,
                feature,
            });
        }
        self.moments
            .push(row)
            .map_err(|_| BaselineError::WidthMismatch {
                row: index,
                expected: self.names.len(),
                got: row.len(),
            })?;
        self.rows.extend_from_slice(row);
        Ok(())
    }

    /// Counts one label. Labels are optional; when given, there must be one per accepted row by
    /// [`Self::finish`].
    ///
    /// # Errors
    ///
    /// [`BaselineError::TooManyLabels`] when this would be label number [`MAX_DISTINCT_LABELS`] + 1.
    pub fn push_label(&mut self, label: &str) -> Result<(), BaselineError> {
        if let Some(c) = self.labels.get_mut(label) {
            *c += 1;
        } else {
            if self.labels.len() >= MAX_DISTINCT_LABELS {
                return Err(BaselineError::TooManyLabels {
                    max: MAX_DISTINCT_LABELS,
                });
            }
            self.labels.insert(label.to_owned(), 1);
        }
        self.labels_pushed += 1;
        Ok(())
    }

    /// Records one prediction of the model on a profiled row (its label and top confidence). Optional; when
    /// used, the baseline carries [`Baseline::predictions`].
    ///
    /// # Errors
    ///
    /// [`BaselineError::Invalid`] for a confidence outside `[0, 1]` (NaN included),
    /// [`BaselineError::TooManyLabels`] past [`MAX_DISTINCT_LABELS`] classes.
    pub fn push_prediction(&mut self, label: &str, confidence: f64) -> Result<(), BaselineError> {
        if !(0.0..=1.0).contains(&confidence) {
            return Err(invalid("prediction confidence", "must be in [0, 1]"));
        }
        let p = self.predictions.get_or_insert_with(|| PredictionProfile {
            class_counts: BTreeMap::new(),
            confidence_histogram: [0; CONFIDENCE_BINS],
        });
        if let Some(c) = p.class_counts.get_mut(label) {
            *c += 1;
        } else {
            if p.class_counts.len() >= MAX_DISTINCT_LABELS {
                return Err(BaselineError::TooManyLabels {
                    max: MAX_DISTINCT_LABELS,
                });
            }
            p.class_counts.insert(label.to_owned(), 1);
        }
        p.confidence_histogram[confidence_bin(confidence)] += 1;
        Ok(())
    }

    /// Computes the baseline and [validates](Baseline::validate) it.
    ///
    /// # Errors
    ///
    /// [`BaselineError::NoFeatures`], [`BaselineError::DuplicateFeature`] or [`BaselineError::Invalid`] for
    /// the names; [`BaselineError::TooFewRows`] below 2 rows; [`BaselineError::LabelCountMismatch`];
    /// [`BaselineError::Mahalanobis`] when `covariance + ridge` cannot be factored (raise the ridge).
    pub fn finish(self) -> Result<Baseline, BaselineError> {
        check_names(self.names.iter().map(String::as_str))?;
        let n = self.moments.count();
        if n < 2 {
            return Err(BaselineError::TooFewRows { rows: n });
        }
        if self.labels_pushed != 0 && self.labels_pushed != n {
            return Err(BaselineError::LabelCountMismatch {
                labels: self.labels_pushed,
                rows: n,
            });
        }
        let d = self.names.len();
        let too_few = || BaselineError::TooFewRows { rows: n };
        let mean = self.moments.mean().ok_or_else(too_few)?.to_vec();
        let covariance = self.moments.covariance().ok_or_else(too_few)?;
        let rows = n as usize;

        let mut column = Vec::with_capacity(rows);
        let mut features = Vec::with_capacity(d);
        for (j, name) in self.names.iter().enumerate() {
            column.clear();
            column.extend(self.rows.iter().skip(j).step_by(d));
            column.sort_unstable_by(f64::total_cmp);
            let quantiles = Quantiles::from_sorted(&column).ok_or_else(too_few)?;
            features.push(FeatureStats {
                name: name.clone(),
                count: n,
                mean: mean[j],
                std: covariance[j][j].sqrt(),
                min: column[0],
                max: column[rows - 1],
                quantiles,
            });
        }

        let scorer = Mahalanobis::new(&mean, &covariance, self.ridge)?;
        let mut distances: Vec<f64> = self
            .rows
            .chunks_exact(d)
            .map(|row| scorer.distance_f64(row))
            .collect();
        distances.sort_unstable_by(f64::total_cmp);
        let max = distances[rows - 1];
        // Clamped for the same reason as feature quantiles: an ulp of interpolation must not fail `validate`.
        let p99 = quantile_sorted(&distances, 0.99)
            .ok_or_else(too_few)?
            .clamp(0.0, max);
        let p999 = quantile_sorted(&distances, 0.999)
            .ok_or_else(too_few)?
            .clamp(p99, max);
        let mahalanobis = MahalanobisStats {
            ridge: self.ridge,
            p99,
            p999,
            max,
        };

        let k = rows.min(MAX_REFERENCE_ROWS);
        let reference_sample = (0..k)
            .map(|i| {
                // i·n/k < n, and i·n fits: n ≤ usize::MAX / 1000 for any data that fits in memory.
                let r = i * rows / k;
                self.rows[r * d..(r + 1) * d].to_vec()
            })
            .collect();

        let baseline = Baseline {
            format_version: FORMAT_VERSION,
            features,
            covariance,
            mahalanobis,
            reference_sample,
            label_counts: (self.labels_pushed > 0).then_some(self.labels),
            predictions: self.predictions,
        };
        baseline.validate()?;
        Ok(baseline)
    }
}
