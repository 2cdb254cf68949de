//! Output sanitization: what of the model's answer may leave. Probabilities are rounded (full-precision scores
//! make model extraction and membership inference cheaper), only the top k classes are named, and label-only
//! mode drops scores altogether. Perturbing the scores themselves (reverse sigmoid,
//! [`crate::reverse_sigmoid`]) is `reverse_sigmoid = { beta, gamma }` here, applied before the rounding.
//!
//! None of this certifies anything: it raises the cost of model extraction and of gradient estimation from
//! returned scores. Randomized smoothing (CERTIFY mode) is what gives a guarantee.

use std::sync::Arc;

use serde::Deserialize;

use crate::prediction::{Answer, Prediction, RowAnswer, RowPrediction};
use crate::reverse_sigmoid::ReverseSigmoid;

/// `[models.output]`, and each entry of `[models.output_by_role]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Decimals kept in confidences and regression outputs. Default 2.
    #[serde(default = "default_decimals")]
    pub decimals: u8,
    /// How many classes to name (1 = only the prediction). Default 1.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Send the label only, no confidence. Default false.
    #[serde(default)]
    pub label_only: bool,
    /// `reverse_sigmoid = { beta = 0.5, gamma = 1.0 }`: perturb the probabilities (Lee et al. 2019) before
    /// they are rounded, so that scores harvested for extraction or finite-difference gradients mislead.
    /// Default: off.
    #[serde(default)]
    pub reverse_sigmoid: Option<ReverseSigmoid>,
}

fn default_decimals() -> u8 {
    2
}

fn default_top_k() -> usize {
    1
}

impl Default for Config {
    fn default() -> Self {
        Self {
            decimals: default_decimals(),
            top_k: default_top_k(),
            label_only: false,
            reverse_sigmoid: None,
        }
    }
}

/// The sanitizer for one model.
#[derive(Debug)]
pub struct Sanitizer {
    scale: f64,
    top_k: usize,
    label_only: bool,
    reverse_sigmoid: Option<ReverseSigmoid>,
    labels: Vec<Arc<str>>,
}

impl Sanitizer {
    /// Builds the sanitizer; `labels` name the classes in model order (empty for a regressor).
    pub fn new(config: &Config, labels: Vec<Arc<str>>) -> Self {
        Self {
            scale: 10f64.powi(i32::from(config.decimals.min(9))),
            top_k: config.top_k.max(1),
            label_only: config.label_only,
            reverse_sigmoid: config.reverse_sigmoid,
            labels,
        }
    }

    fn round(&self, v: f32) -> f64 {
        (f64::from(v) * self.scale).round() / self.scale
    }

    fn label(&self, i: usize) -> Arc<str> {
        match self.labels.get(i) {
            Some(l) => l.clone(),
            None => Arc::from(i.to_string()),
        }
    }

    /// Renders the answer that may leave; certified radii only when `certificate` (the caller holds
    /// `output:certificate`).
    pub fn sanitize(&self, p: &Prediction, certificate: bool) -> Answer {
        let rows = p
            .rows
            .iter()
            .map(|row| match row {
                RowPrediction::Class {
                    review_id: Some(id),
                    ..
                } => RowAnswer::Uncertain {
                    review_id: id.clone(),
                },
                RowPrediction::Abstained { .. } => RowAnswer::Abstain,
                RowPrediction::Class {
                    probabilities,
                    best,
                    confidence,
                    review_id: None,
                    certified_radius,
                } => {
                    let certified_radius = certified_radius.filter(|_| certificate);
                    let label_only = RowAnswer::Label {
                        label: self.label(*best),
                        confidence: None,
                        top: Vec::new(),
                        probabilities: Vec::new(),
                        certified_radius,
                    };
                    if self.label_only {
                        return label_only;
                    }
                    let perturbed;
                    let (probabilities, confidence) = match &self.reverse_sigmoid {
                        Some(rs) => {
                            let mut p = probabilities.clone();
                            // A row the perturbation cannot take (non-finite) leaves as a label: its
                            // unperturbed scores must not.
                            if rs.apply(&mut p).is_err() {
                                return label_only;
                            }
                            let c = p.get(*best).copied().unwrap_or(*confidence);
                            perturbed = p;
                            (&perturbed, c)
                        }
                        None => (probabilities, *confidence),
                    };
                    let top = if self.top_k > 1 {
                        let mut idx: Vec<usize> = (0..probabilities.len()).collect();
                        idx.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
                        idx.truncate(self.top_k);
                        idx.into_iter()
                            .map(|i| (self.label(i), self.round(probabilities[i])))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let all = if self.top_k >= probabilities.len() {
                        probabilities.iter().map(|&p| self.round(p)).collect()
                    } else {
                        Vec::new()
                    };
                    RowAnswer::Label {
                        label: self.label(*best),
                        confidence: Some(self.round(confidence)),
                        top,
                        probabilities: all,
                        certified_radius,
                    }
                }
                RowPrediction::Value { values } => {
                    RowAnswer::Value(values.iter().map(|&v| self.round(v)).collect())
                }
            })
            .collect();
        Answer { rows }
    }
}

#[cfg(test)]
mod tests;
