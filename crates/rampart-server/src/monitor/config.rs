//! The monitoring sections of the config: `[monitoring]` (gateway-wide) and `monitor = { … }` per model.
//!
//! Why here and not in `config.rs`: the monitor owns its knobs and their validation, so the config file's
//! module only composes them (two fields and one call), and the statistics' parameters stay next to the code
//! that passes them to `rampart-detect`.

use serde::Deserialize;

use crate::config::{ConfigError, RawConfig};

/// `[monitoring]`: what every model's monitors share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Run the monitors at all. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Observations waiting for the monitor before new ones are dropped (and counted in
    /// `rampart_observations_dropped_total`): a request never waits for a monitor. Default 8192.
    #[serde(default = "default_capacity")]
    pub channel_capacity: usize,
    /// Answered request ids remembered for `POST /v1/models/{name}/feedback` (oldest forgotten first).
    /// Default 100 000.
    #[serde(default = "default_remember")]
    pub remember_requests: usize,
    /// Identities PRADA tracks at once per model (least recently seen evicted first). Default 1024.
    #[serde(default = "default_identities")]
    pub max_identities: usize,
}

fn default_true() -> bool {
    true
}
fn default_capacity() -> usize {
    8192
}
fn default_remember() -> usize {
    100_000
}
fn default_identities() -> usize {
    1024
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            channel_capacity: default_capacity(),
            remember_requests: default_remember(),
            max_identities: default_identities(),
        }
    }
}

/// `[[models]] monitor = { … }`: one model's monitors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMonitorConfig {
    /// Monitor this model. Default true (when `[monitoring] enabled`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Rows per tumbling drift window (features and predictions). Default 500.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Family-wise false-alarm rate per drift window, split by Bonferroni over the tests. Default 0.01.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// PSI above which a feature (or the confidence histogram) counts as drifted; 0 reports PSI without
    /// acting on it. Default 0.25. PSI is noisy on small windows and small reference samples.
    #[serde(default = "default_psi")]
    pub psi_threshold: f64,
    /// Permutations of the multivariate MMD test; 0 turns MMD off. Default 200.
    #[serde(default = "default_permutations")]
    pub mmd_permutations: usize,
    /// 0-based indices of categorical features (chi-square instead of KS and PSI). Default none.
    #[serde(default)]
    pub categorical: Vec<usize>,
    /// Rolling accuracy below this (over a full `accuracy_window` of labelled predictions) raises
    /// `accuracy_drop`. Default 0.8.
    #[serde(default = "default_floor")]
    pub accuracy_floor: f64,
    /// Labelled predictions the rolling accuracy covers. Default 200.
    #[serde(default = "default_accuracy_window")]
    pub accuracy_window: usize,
    /// Run PRADA per identity. Default true.
    #[serde(default = "default_true")]
    pub prada: bool,
    /// PRADA alarms when Shapiro–Wilk W of an identity's distances falls below this. Default 0.95 (the
    /// paper's range is 0.9–0.96); calibrate it on benign traffic of the model.
    #[serde(default = "default_prada_delta")]
    pub prada_delta: f64,
    /// Distances an identity must have before PRADA tests it. Default 100.
    #[serde(default = "default_prada_min")]
    pub prada_min_queries: usize,
    /// Test every this many queries of an identity once testing starts. Default 10: the paper tests after
    /// every query, but the Shapiro–Wilk test sorts up to 2000 distances (≈100 µs), which for one busy
    /// identity would cap the monitor near 10 000 queries/s; a flag at most 9 queries later costs nothing
    /// against the hundreds an extraction needs.
    #[serde(default = "default_test_every")]
    pub prada_test_every: u64,
    /// Page–Hinkley on the natural log of request latency: the change tolerated without evidence. Default
    /// 0.1 (about 10 %). On the log because latency's spread grows with its level: in milliseconds, the noise
    /// of a loaded gateway alone would cross any fixed threshold, while a doubling is a shift of 0.69 at any
    /// load.
    #[serde(default = "default_latency_delta")]
    pub latency_delta: f64,
    /// Page–Hinkley alarm threshold on log latency. Default 100: replayed on 190 000 real decision latencies
    /// of the load benchmark, a sustained doubling alarms within ~130 requests, with less than half the
    /// alarms of (0.05, 50) on the benchmark's own load steps and host noise.
    #[serde(default = "default_latency_lambda")]
    pub latency_lambda: f64,
    /// Page–Hinkley on the rejection rate (0/1 per request): the change tolerated. Default 0.005.
    #[serde(default = "default_rejection_delta")]
    pub rejection_delta: f64,
    /// Page–Hinkley alarm threshold on the rejection rate. Default 50.
    #[serde(default = "default_rejection_lambda")]
    pub rejection_lambda: f64,
}

fn default_window() -> usize {
    500
}
fn default_alpha() -> f64 {
    0.01
}
fn default_psi() -> f64 {
    0.25
}
fn default_permutations() -> usize {
    200
}
fn default_floor() -> f64 {
    0.8
}
fn default_accuracy_window() -> usize {
    200
}
fn default_prada_delta() -> f64 {
    0.95
}
fn default_prada_min() -> usize {
    100
}
fn default_test_every() -> u64 {
    10
}
fn default_latency_delta() -> f64 {
    0.1
}
fn default_latency_lambda() -> f64 {
    100.0
}
fn default_rejection_delta() -> f64 {
    0.005
}
fn default_rejection_lambda() -> f64 {
    50.0
}

impl Default for ModelMonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: default_window(),
            alpha: default_alpha(),
            psi_threshold: default_psi(),
            mmd_permutations: default_permutations(),
            categorical: Vec::new(),
            accuracy_floor: default_floor(),
            accuracy_window: default_accuracy_window(),
            prada: true,
            prada_delta: default_prada_delta(),
            prada_min_queries: default_prada_min(),
            prada_test_every: default_test_every(),
            latency_delta: default_latency_delta(),
            latency_lambda: default_latency_lambda(),
            rejection_delta: default_rejection_delta(),
            rejection_lambda: default_rejection_lambda(),
        }
    }
}

/// Largest drift window: a window's rows are held in memory until it closes.
pub const MAX_WINDOW: usize = 1_000_000;

/// Every problem of the monitoring sections, with its path.
pub(crate) fn validate(cfg: &RawConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: &str| {
        errors.push(ConfigError {
            path,
            message: message.to_owned(),
        });
    };
    let g = &cfg.monitoring;
    if g.channel_capacity == 0 || g.channel_capacity > 10_000_000 {
        err(
            "monitoring.channel_capacity".into(),
            "must be between 1 and 10000000",
        );
    }
    if g.remember_requests > 10_000_000 {
        err(
            "monitoring.remember_requests".into(),
            "must be at most 10000000",
        );
    }
    if g.max_identities == 0 {
        err("monitoring.max_identities".into(), "must be > 0");
    }
    for (i, m) in cfg.models.iter().enumerate() {
        let at = |field: &str| format!("models[{i}].monitor.{field}");
        let c = &m.monitor;
        if c.window < 2 || c.window > MAX_WINDOW {
            err(at("window"), "must be between 2 and 1000000");
        }
        if !(c.alpha > 0.0 && c.alpha < 1.0) {
            err(at("alpha"), "must be in (0, 1)");
        }
        if !(c.psi_threshold.is_finite() && c.psi_threshold >= 0.0) {
            err(at("psi_threshold"), "must be >= 0 (0 turns it off)");
        }
        if c.mmd_permutations > 100_000 {
            err(at("mmd_permutations"), "must be at most 100000");
        }
        let mut seen = std::collections::HashSet::new();
        if !c.categorical.iter().all(|j| seen.insert(*j)) {
            err(at("categorical"), "duplicate feature index");
        }
        if !(0.0..=1.0).contains(&c.accuracy_floor) {
            err(at("accuracy_floor"), "must be between 0 and 1");
        }
        if c.accuracy_window == 0 || c.accuracy_window > MAX_WINDOW {
            err(at("accuracy_window"), "must be between 1 and 1000000");
        }
        if !(c.prada_delta > 0.0 && c.prada_delta <= 1.0) {
            err(at("prada_delta"), "must be in (0, 1]");
        }
        if c.prada_min_queries < 3 {
            err(at("prada_min_queries"), "must be at least 3");
        }
        if c.prada_test_every == 0 {
            err(at("prada_test_every"), "must be > 0");
        }
        for (name, v) in [
            ("latency_delta", c.latency_delta),
            ("rejection_delta", c.rejection_delta),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                err(at(name), "must be >= 0");
            }
        }
        for (name, v) in [
            ("latency_lambda", c.latency_lambda),
            ("rejection_lambda", c.rejection_lambda),
        ] {
            if !(v.is_finite() && v > 0.0) {
                err(at(name), "must be > 0");
            }
        }
    }
    errors
}
