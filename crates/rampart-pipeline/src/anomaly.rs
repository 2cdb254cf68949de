//! Input anomaly detection against the model's baseline profile: per-feature z-score and Mahalanobis distance.
//! Both catch inputs the model was never trained to answer (out-of-distribution probing, feature-space attacks
//! that push one feature far out, or many features a little in correlated-breaking directions — only
//! Mahalanobis sees the latter).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use rampart_core::{Features, GuardId, Reason, Rejection, Severity, Verdict};
use rampart_detect::{Mahalanobis, ZScore};

use crate::phase::Inspect;
use crate::{Mode, RequestCx};

/// `[models.anomaly]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `enforce` (422 `anomalous_input`), `observe` (audit flag only) or `off`. Default `enforce`.
    #[serde(default)]
    pub mode: Mode,
    /// Largest |z| any feature may have, or `"off"`. Default 3.0.
    #[serde(default = "default_zscore")]
    pub zscore: Threshold,
    /// Largest Mahalanobis distance, or where it comes from: a number, `"chi2:P"` (the square root of the
    /// chi-square quantile with one degree of freedom per feature, at probability P — right for roughly
    /// Gaussian features), `"baseline:p99"`, `"baseline:p999"` or `"baseline:max"` (the distances of the
    /// training rows themselves — right for the skewed, correlated features of most real data), or `"off"`.
    /// Default `"baseline:p999"`.
    #[serde(default = "default_mahalanobis")]
    pub mahalanobis: Threshold,
}

fn default_zscore() -> Threshold {
    Threshold::Value(3.0)
}

fn default_mahalanobis() -> Threshold {
    Threshold::Baseline(BaselinePoint::P999)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            zscore: default_zscore(),
            mahalanobis: default_mahalanobis(),
        }
    }
}

/// A detector threshold as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "RawThreshold")]
pub enum Threshold {
    /// The detector is off.
    Off,
    /// A fixed value.
    Value(f64),
    /// A chi-square quantile at this probability.
    Chi2(f64),
    /// A percentile of the training rows' own scores.
    Baseline(BaselinePoint),
}

/// Which of the baseline's own distance statistics to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselinePoint {
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Maximum.
    Max,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawThreshold {
    Number(f64),
    Text(String),
}

/// A threshold string that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct BadThreshold(String);

impl fmt::Display for BadThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<RawThreshold> for Threshold {
    type Error = BadThreshold;
    fn try_from(raw: RawThreshold) -> Result<Self, BadThreshold> {
        match raw {
            RawThreshold::Number(v) if v.is_finite() && v > 0.0 => Ok(Threshold::Value(v)),
            RawThreshold::Number(v) => Err(BadThreshold(format!(
                "threshold {v} must be a positive number"
            ))),
            RawThreshold::Text(s) => s.parse(),
        }
    }
}

impl FromStr for Threshold {
    type Err = BadThreshold;
    fn from_str(s: &str) -> Result<Self, BadThreshold> {
        match s {
            "off" => Ok(Threshold::Off),
            "baseline:p99" => Ok(Threshold::Baseline(BaselinePoint::P99)),
            "baseline:p999" => Ok(Threshold::Baseline(BaselinePoint::P999)),
            "baseline:max" => Ok(Threshold::Baseline(BaselinePoint::Max)),
            _ => match s.strip_prefix("chi2:").map(str::parse::<f64>) {
                Some(Ok(p)) if p > 0.0 && p < 1.0 => Ok(Threshold::Chi2(p)),
                _ => Err(BadThreshold(format!(
                    "`{s}` is not a threshold: use a positive number, \"off\", \"chi2:P\" with 0 < P < 1, \
                     \"baseline:p99\", \"baseline:p999\" or \"baseline:max\""
                ))),
            },
        }
    }
}

/// Per-feature z-score guard.
#[derive(Debug)]
pub struct ZScoreGuard {
    detector: ZScore,
    threshold: f64,
}

impl ZScoreGuard {
    /// Builds the guard.
    pub fn new(detector: ZScore, threshold: f64) -> Self {
        Self {
            detector,
            threshold,
        }
    }
}

fn anomalous(guard: GuardId, rows: usize, row: usize, what: &str) -> Verdict {
    let detail = if rows == 1 {
        format!("the input is anomalous ({what})")
    } else {
        format!("row {row} is anomalous ({what})")
    };
    Verdict::Reject(
        Rejection::new(Reason::AnomalousInput, guard)
            .with_detail(detail)
            .with_severity(Severity::Medium),
    )
}

impl Inspect for ZScoreGuard {
    fn id(&self) -> GuardId {
        GuardId::ZSCORE
    }

    fn inspect(&self, _cx: &RequestCx<'_>, x: &Features) -> Verdict {
        for (i, row) in x.iter_rows().enumerate() {
            let (_feature, z) = self.detector.max_abs_z(row);
            if z > self.threshold {
                return anomalous(
                    GuardId::ZSCORE,
                    x.rows(),
                    i,
                    "a feature is far from its training mean",
                );
            }
        }
        Verdict::Pass
    }
}

/// Mahalanobis-distance guard.
#[derive(Debug)]
pub struct MahalanobisGuard {
    detector: Mahalanobis,
    threshold_sq: f64,
}

impl MahalanobisGuard {
    /// Builds the guard; `threshold` is a distance (not squared).
    pub fn new(detector: Mahalanobis, threshold: f64) -> Self {
        Self {
            detector,
            threshold_sq: threshold * threshold,
        }
    }
}

impl Inspect for MahalanobisGuard {
    fn id(&self) -> GuardId {
        GuardId::MAHALANOBIS
    }

    fn inspect(&self, _cx: &RequestCx<'_>, x: &Features) -> Verdict {
        for (i, row) in x.iter_rows().enumerate() {
            if self.detector.distance_sq(row) > self.threshold_sq {
                return anomalous(
                    GuardId::MAHALANOBIS,
                    x.rows(),
                    i,
                    "the combination of features is far from the training data",
                );
            }
        }
        Verdict::Pass
    }
}
