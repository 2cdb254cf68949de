//! Tabular two-sided CUSUM, streaming and O(1) per observation.
//!
//! Why: when the in-control mean and spread of a monitored number are known (from the baseline, or a warm-up
//! period), CUSUM is the fastest detector of a persistent shift of a given size (it is optimal in Lorden's
//! sense). Page–Hinkley ([`crate::page_hinkley`]) is the choice when the mean must be learnt on the fly.
//!
//! Definition (E. S. Page, "Continuous inspection schemes", Biometrika 1954; D. C. Montgomery, *Introduction
//! to Statistical Quality Control*, §9.1), as `cusum.json`: `S+ = max(0, S+ + (x - mu0) - k)`,
//! `S- = max(0, S- + (mu0 - x) - k)`; an alarm when the watched sum exceeds `h`. `k` (slack, typically half
//! the shift to detect) and `h` (decision interval, typically 4–5 σ) are in the data's unit.

#[cfg(test)]
mod tests;

use crate::error::StatError;
pub use crate::page_hinkley::Mode;

/// Parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// In-control (target) mean.
    pub mu0: f64,
    /// Slack: deviations smaller than this do not accumulate.
    pub k: f64,
    /// Decision interval: alarm when a sum exceeds it.
    pub h: f64,
    /// Direction watched.
    pub mode: Mode,
}

/// Which sums exceeded `h` at an alarm (both are reported, whichever the mode watches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `S+` only.
    Up,
    /// `S-` only.
    Down,
    /// Both.
    Both,
}

/// What one observation did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// `S+` after the observation.
    pub s_plus: f64,
    /// `S-` after the observation.
    pub s_minus: f64,
    /// The alarm, if the watched sums exceeded `h`.
    pub alarm: Option<Side>,
}

/// The detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Cusum {
    config: Config,
    s_plus: f64,
    s_minus: f64,
}

impl Cusum {
    /// A detector with both sums at 0.
    ///
    /// # Errors
    ///
    /// [`StatError::InvalidParameter`] for a non-finite `mu0`, or `k` or `h` not finite and `>= 0`.
    pub fn new(config: Config) -> Result<Self, StatError> {
        if !config.mu0.is_finite() {
            return Err(StatError::InvalidParameter {
                name: "mu0",
                problem: "must be finite",
            });
        }
        for (name, v) in [("k", config.k), ("h", config.h)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(StatError::InvalidParameter {
                    name,
                    problem: "must be finite and >= 0",
                });
            }
        }
        Ok(Self {
            config,
            s_plus: 0.0,
            s_minus: 0.0,
        })
    }

    /// Sets both sums back to 0.
    pub fn reset(&mut self) {
        self.s_plus = 0.0;
        self.s_minus = 0.0;
    }

    /// Feeds one observation; the sums keep running after an alarm (call [`Self::reset`] to restart, or use
    /// [`Self::update_and_reset`]).
    ///
    /// # Errors
    ///
    /// [`StatError::NonFinite`] for NaN or an infinity; the state is unchanged.
    pub fn update(&mut self, x: f64) -> Result<Step, StatError> {
        if !x.is_finite() {
            return Err(StatError::NonFinite {
                what: "observation",
                index: 0,
            });
        }
        let c = &self.config;
        self.s_plus = (self.s_plus + ((x - c.mu0) - c.k)).max(0.0);
        self.s_minus = (self.s_minus + ((c.mu0 - x) - c.k)).max(0.0);
        let (up, down) = (self.s_plus > c.h, self.s_minus > c.h);
        let watched = match c.mode {
            Mode::Up => up,
            Mode::Down => down,
            Mode::Both => up || down,
        };
        // The side names every sum past h, watched or not: a one-sided chart still reports that the other sum
        // is out too.
        let alarm = match (watched, up, down) {
            (false, _, _) | (true, false, false) => None,
            (true, true, true) => Some(Side::Both),
            (true, true, false) => Some(Side::Up),
            (true, false, true) => Some(Side::Down),
        };
        Ok(Step {
            s_plus: self.s_plus,
            s_minus: self.s_minus,
            alarm,
        })
    }

    /// [`Self::update`], then a reset if it alarmed.
    ///
    /// # Errors
    ///
    /// As [`Self::update`].
    pub fn update_and_reset(&mut self, x: f64) -> Result<Step, StatError> {
        let step = self.update(x)?;
        if step.alarm.is_some() {
            self.reset();
        }
        Ok(step)
    }
}
