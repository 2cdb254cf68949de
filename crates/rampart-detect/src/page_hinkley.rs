//! Page–Hinkley change detector, streaming and O(1) per observation.
//!
//! Why: a monitor watching one number per request (latency, confidence, error rate) needs to notice a
//! sustained shift of its mean without storing the stream. Page–Hinkley accumulates deviations from the
//! running mean and alarms when the accumulated sum moves more than `lambda` away from its extreme.
//!
//! This is exactly `river.drift.PageHinkley` (river 0.26), the reference of `page_hinkley.json`, including its
//! forgetting factor `alpha` and the `min_instances` warm-up. For each `x`: `n += 1`,
//! `mean += (x - mean)/n`, `dev = x - mean`, `U = alpha U + dev - delta`, `L = alpha L + dev + delta`,
//! `minU = min(minU, U)`, `maxL = max(maxL, L)`; after warm-up `PH_up = U - minU`, `PH_down = maxL - L`.
//! With `alpha = 1` this is the textbook test (E. S. Page, "Continuous inspection schemes", Biometrika 1954;
//! D. V. Hinkley 1971). The detector resets itself after an alarm, as river does, so the next alarm is about
//! the next change.

#[cfg(test)]
mod tests;

use crate::error::StatError;

/// Which direction of change raises an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An increase of the mean.
    Up,
    /// A decrease of the mean.
    Down,
    /// Either.
    Both,
}

/// Parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Magnitude of change tolerated without accumulating evidence (river's `delta`, default 0.005).
    pub delta: f64,
    /// Alarm threshold (river's `threshold`, default 50).
    pub lambda: f64,
    /// Forgetting factor in `(0, 1]` applied to the sums (default 0.9999); 1 is the textbook test.
    pub alpha: f64,
    /// Observations before any alarm (default 30), so the running mean has settled.
    pub min_instances: u64,
    /// Direction watched (default both).
    pub mode: Mode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            delta: 0.005,
            lambda: 50.0,
            alpha: 0.9999,
            min_instances: 30,
            mode: Mode::Both,
        }
    }
}

/// What one observation did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// `U - minU` (0 during warm-up).
    pub ph_up: f64,
    /// `maxL - L` (0 during warm-up).
    pub ph_down: f64,
    /// Whether this observation raised an alarm (the detector has then reset itself).
    pub alarm: bool,
}

/// The detector.
#[derive(Debug, Clone, PartialEq)]
pub struct PageHinkley {
    config: Config,
    n: u64,
    mean: f64,
    u: f64,
    l: f64,
    min_u: f64,
    max_l: f64,
}

impl PageHinkley {
    /// A fresh detector.
    ///
    /// # Errors
    ///
    /// [`StatError::InvalidParameter`] for a non-finite or negative `delta` or `lambda`, or `alpha` outside
    /// `(0, 1]`.
    pub fn new(config: Config) -> Result<Self, StatError> {
        if !(config.delta.is_finite() && config.delta >= 0.0) {
            return Err(StatError::InvalidParameter {
                name: "delta",
                problem: "must be finite and >= 0",
            });
        }
        if !(config.lambda.is_finite() && config.lambda >= 0.0) {
            return Err(StatError::InvalidParameter {
                name: "lambda",
                problem: "must be finite and >= 0",
            });
        }
        if !(config.alpha > 0.0 && config.alpha <= 1.0) {
            return Err(StatError::InvalidParameter {
                name: "alpha",
                problem: "must be in (0, 1]",
            });
        }
        let mut this = Self {
            config,
            n: 0,
            mean: 0.0,
            u: 0.0,
            l: 0.0,
            min_u: f64::INFINITY,
            max_l: -1.0,
        };
        this.reset();
        Ok(this)
    }

    /// Forgets everything seen (river's initial state, `maxL = -1` included).
    pub fn reset(&mut self) {
        self.n = 0;
        self.mean = 0.0;
        self.u = 0.0;
        self.l = 0.0;
        self.min_u = f64::INFINITY;
        self.max_l = -1.0;
    }

    /// Observations since the last reset.
    #[must_use]
    pub const fn count(&self) -> u64 {
        self.n
    }

    /// Feeds one observation. On an alarm the detector resets before returning.
    ///
    /// # Errors
    ///
    /// [`StatError::NonFinite`] for NaN or an infinity; the state is unchanged.
    pub fn update(&mut self, x: f64) -> Result<Step, StatError> {
        let step = self.observe(x)?;
        if step.alarm {
            self.reset();
        }
        Ok(step)
    }

    /// As [`Self::update`] but without the reset after an alarm, for callers that want the statistics to keep
    /// running (the first alarm of a stream, for instance).
    ///
    /// # Errors
    ///
    /// As [`Self::update`].
    pub fn observe(&mut self, x: f64) -> Result<Step, StatError> {
        if !x.is_finite() {
            return Err(StatError::NonFinite {
                what: "observation",
                index: 0,
            });
        }
        let c = &self.config;
        self.n += 1;
        self.mean += (1.0 / self.n as f64) * (x - self.mean);
        let dev = x - self.mean;
        self.u = (c.alpha * self.u + dev) - c.delta;
        self.l = (c.alpha * self.l + dev) + c.delta;
        self.min_u = self.min_u.min(self.u);
        self.max_l = self.max_l.max(self.l);
        if self.n < c.min_instances {
            return Ok(Step {
                ph_up: 0.0,
                ph_down: 0.0,
                alarm: false,
            });
        }
        let ph_up = self.u - self.min_u;
        let ph_down = self.max_l - self.l;
        let alarm = match c.mode {
            Mode::Up => ph_up > c.lambda,
            Mode::Down => ph_down > c.lambda,
            Mode::Both => ph_up > c.lambda || ph_down > c.lambda,
        };
        Ok(Step {
            ph_up,
            ph_down,
            alarm,
        })
    }
}
