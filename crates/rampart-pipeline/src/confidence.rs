//! The confidence gate: a classifier answer below the configured confidence is withheld and queued for human
//! review (the seed's "uncertain predictions go to a person"), because a low-confidence answer is where both
//! honest errors and adversarial inputs concentrate.

use serde::Deserialize;

use rampart_core::{GuardId, Verdict};

use crate::phase::Shape;
use crate::prediction::{Prediction, RowPrediction};
use crate::RequestCx;

/// `[models.confidence]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Minimum probability of the predicted class, in [0, 1]. Default 0.5; 0 turns the gate off.
    #[serde(default = "default_min")]
    pub min: f64,
}

fn default_min() -> f64 {
    0.5
}

impl Default for Config {
    fn default() -> Self {
        Self { min: default_min() }
    }
}

/// The gate for one model.
#[derive(Debug)]
pub struct ConfidenceGate {
    min: f32,
}

impl ConfidenceGate {
    /// Builds the gate.
    pub fn new(config: &Config) -> Self {
        Self {
            min: config.min as f32,
        }
    }
}

impl Shape for ConfidenceGate {
    fn id(&self) -> GuardId {
        GuardId::CONFIDENCE
    }

    fn shape(&self, _cx: &RequestCx<'_>, p: &mut Prediction) -> Verdict {
        for row in &mut p.rows {
            if let RowPrediction::Class {
                confidence,
                review_id,
                ..
            } = row
            {
                if *confidence < self.min {
                    *review_id = Some(uuid::Uuid::new_v4().to_string());
                }
            }
        }
        Verdict::Pass
    }
}
