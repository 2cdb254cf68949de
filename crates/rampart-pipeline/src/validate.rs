//! Input validation: the [`Schema`] guard. Decoding, shape, dtype and finiteness come from [`crate::decode`];
//! this guard adds the per-feature ranges learnt from the baseline.

use serde::Deserialize;

use rampart_core::{Features, GuardId, Reason, Rejection, Verdict};

use crate::decode::{self, Limits};
use crate::phase::{Parsed, Schema};
use crate::{Mode, Protocol, RequestCx};

/// `[models.validate]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Mode of the range check (shape, dtype and finiteness are always enforced: nothing else can run without
    /// them). Default `enforce`.
    #[serde(default)]
    pub mode: Mode,
    /// Where ranges come from: `"baseline"` (the training min/max, default) or `"none"`.
    #[serde(default)]
    pub ranges: RangeSource,
    /// How far past the training range a value may go, as a fraction of the range's width. Default 0.1: real
    /// traffic drifts a little past the extremes of a finite training set.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Most rows in one request. Default 64.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

fn default_margin() -> f64 {
    0.1
}

fn default_max_rows() -> usize {
    64
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            ranges: RangeSource::Baseline,
            margin: default_margin(),
            max_rows: default_max_rows(),
        }
    }
}

/// Where the accepted range of each feature comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeSource {
    /// The baseline profile's min and max, widened by `margin`.
    #[default]
    Baseline,
    /// No range check.
    None,
}

/// The validation guard for one model.
#[derive(Debug)]
pub struct Validator {
    limits: Limits,
    input_name: String,
    /// `(low, high)` per feature, inclusive; empty when the range check is off.
    ranges: Vec<(f32, f32)>,
    range_mode: Mode,
}

impl Validator {
    /// Builds the guard. `bounds` are the training `(min, max)` per feature (empty for no range check).
    pub fn new(config: &Config, width: usize, input_name: &str, bounds: &[(f64, f64)]) -> Self {
        let ranges = if config.ranges == RangeSource::None || !config.mode.is_on() {
            Vec::new()
        } else {
            bounds
                .iter()
                .map(|&(lo, hi)| {
                    let pad = (hi - lo).abs() * config.margin;
                    ((lo - pad) as f32, (hi + pad) as f32)
                })
                .collect()
        };
        Self {
            limits: Limits {
                width,
                max_rows: config.max_rows.max(1),
            },
            input_name: input_name.to_owned(),
            ranges,
            range_mode: config.mode,
        }
    }

    /// Model input width.
    pub fn width(&self) -> usize {
        self.limits.width
    }

    fn check_ranges(&self, x: &Features) -> Verdict {
        if self.ranges.is_empty() {
            return Verdict::Pass;
        }
        for (r, row) in x.iter_rows().enumerate() {
            for (j, (&v, &(lo, hi))) in row.iter().zip(&self.ranges).enumerate() {
                // Finiteness was checked by the decoder; `!(lo..=hi).contains` would also catch a NaN.
                if !(lo..=hi).contains(&v) {
                    let detail = if x.rows() == 1 {
                        format!("feature {j} is outside the model's accepted range")
                    } else {
                        format!("row {r}: feature {j} is outside the model's accepted range")
                    };
                    return Verdict::Reject(
                        Rejection::new(Reason::OutOfRange, GuardId::VALIDATE).with_detail(detail),
                    );
                }
            }
        }
        Verdict::Pass
    }
}

impl Schema for Validator {
    fn parse(&self, cx: &RequestCx<'_>, body: &[u8]) -> Result<Parsed, Rejection> {
        let decoded = match cx.protocol {
            Protocol::V1 => decode::decode_v1(body, self.limits)?,
            Protocol::V2 => decode::decode_v2(body, self.limits, &self.input_name)?,
        };
        let features =
            Features::new(decoded.data, decoded.rows, self.limits.width).map_err(|e| {
                // The decoder guarantees both invariants; this maps a broken guarantee to a safe refusal.
                let reason = match e {
                    rampart_core::FeaturesError::NonFinite { .. } => Reason::NonFinite,
                    _ => Reason::ShapeMismatch,
                };
                Rejection::new(reason, GuardId::VALIDATE)
            })?;
        let mut flags = Vec::new();
        match self.range_mode.apply(self.check_ranges(&features)) {
            Verdict::Pass => {}
            Verdict::Flag(f) => flags.push(f),
            Verdict::Reject(r) => return Err(r),
        }
        Ok(Parsed {
            features,
            flags,
            echo_id: decoded.echo_id,
        })
    }
}
