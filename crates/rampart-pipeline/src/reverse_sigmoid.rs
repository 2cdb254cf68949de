//! Reverse-sigmoid output perturbation: Lee, Edraki & Qi, "Defending Against NN Model Stealing Attacks
//! Using Deceptive Perturbations" (IEEE S&P Workshops 2019).
//!
//! Each probability y is moved by β·(s(γ·s⁻¹(y)) − ½), s the logistic sigmoid, and the vector is
//! renormalized: y' = normalize(y − β(s(γ·s⁻¹(y)) − ½)). The perturbation is small near y = ½ and near 0
//! and 1 bends the scores so that a model trained on them (distillation, extraction) learns the wrong
//! logits, and finite-difference gradient estimates on them point the wrong way; the top-1 label is
//! usually kept for small β.
//!
//! **What it is not.** It raises the cost of gradient estimation and model extraction from returned
//! scores; it certifies nothing, and an attacker who only needs labels is not slowed at all (use the
//! sanitizer's `label_only` for that). Rounding, top-k and label-only live in [`crate::sanitize`]; this
//! module only adds the perturbation, to be applied before that rounding.
//!
//! Numerics follow IBM ART's `ReverseSigmoid` post-processor: y is clipped to [1e-7, 1 − 1e-7] before
//! s⁻¹, the perturbed values to [0, 1] before normalizing.

/// Keeps s⁻¹(y) finite at y = 0 and 1.
const CLIP: f64 = 1e-7;

/// Why the perturbation could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReverseSigmoidError {
    /// `beta` must be finite and ≥ 0.
    #[error("reverse_sigmoid.beta must be finite and >= 0")]
    Beta,
    /// `gamma` must be finite and > 0.
    #[error("reverse_sigmoid.gamma must be finite and > 0")]
    Gamma,
    /// No probabilities, or one that is not finite.
    #[error("probabilities must be non-empty and finite")]
    Probabilities,
}

/// Validated reverse-sigmoid parameters (`beta` the strength, `gamma` the sigmoid's slope).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseSigmoid {
    /// Perturbation strength β ≥ 0 (0 leaves the scores unchanged). The paper uses values up to ~1.
    pub beta: f64,
    /// Slope γ > 0 of the inner sigmoid.
    pub gamma: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl ReverseSigmoid {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`ReverseSigmoidError::Beta`] or [`ReverseSigmoidError::Gamma`].
    pub fn new(beta: f64, gamma: f64) -> Result<Self, ReverseSigmoidError> {
        let p = Self { beta, gamma };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), ReverseSigmoidError> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(ReverseSigmoidError::Beta);
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(ReverseSigmoidError::Gamma);
        }
        Ok(())
    }

    /// Perturbs one row of class probabilities in place. When every perturbed value clips to 0 (only
    /// possible for a large β), the row becomes one-hot on its original top class: the label-only
    /// answer, never a division by zero.
    ///
    /// # Errors
    /// [`ReverseSigmoidError`] for bad parameters (when built without [`ReverseSigmoid::new`]) or an
    /// empty or non-finite row; the row is left unchanged.
    pub fn apply(&self, probs: &mut [f32]) -> Result<(), ReverseSigmoidError> {
        self.validate()?;
        if probs.is_empty() || probs.iter().any(|p| !p.is_finite()) {
            return Err(ReverseSigmoidError::Probabilities);
        }
        let perturbed: Vec<f64> = probs
            .iter()
            .map(|&y| {
                let y = f64::from(y);
                let c = y.clamp(CLIP, 1.0 - CLIP);
                let r = self.beta * (sigmoid(self.gamma * (c / (1.0 - c)).ln()) - 0.5);
                (y - r).clamp(0.0, 1.0)
            })
            .collect();
        let sum: f64 = perturbed.iter().sum();
        if sum > 0.0 {
            for (p, q) in probs.iter_mut().zip(&perturbed) {
                *p = (q / sum) as f32;
            }
        } else {
            let top = (0..probs.len())
                .max_by(|&a, &b| probs[a].total_cmp(&probs[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            for (i, p) in probs.iter_mut().enumerate() {
                *p = if i == top { 1.0 } else { 0.0 };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
