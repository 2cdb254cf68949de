//! The model's answer as the shaping guards see it, and the sanitized answer that leaves.

use std::sync::Arc;

/// One row of the model's raw answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RowPrediction {
    /// A classifier's row: the class probabilities and the winning class.
    Class {
        /// Probabilities, one per class.
        probabilities: Vec<f32>,
        /// Index of the most probable class.
        best: usize,
        /// Its probability.
        confidence: f32,
        /// Set by the confidence gate: the id under which the row waits for human review.
        review_id: Option<String>,
        /// Randomized smoothing in CERTIFY mode: the L2 radius within which the smoothed classifier's answer
        /// is constant (with probability 1 − α). Shown only to callers granted `output:certificate`.
        certified_radius: Option<f64>,
    },
    /// Randomized smoothing abstained: the noisy votes were too close to name a class at level α. An answer,
    /// not a refusal: the caller learns that the model will not commit on this input.
    Abstained {
        /// The smoothed vote fractions (never sent; kept for the audit and the review queue).
        probabilities: Vec<f32>,
    },
    /// A regressor's row.
    Value {
        /// The outputs.
        values: Vec<f32>,
    },
}

/// The model's raw answer for every row of a request. Never rendered as is: [`crate::sanitize`] decides what
/// leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// One entry per input row.
    pub rows: Vec<RowPrediction>,
}

impl Prediction {
    /// Whether the confidence gate sent any row to review.
    pub fn needs_review(&self) -> bool {
        self.rows.iter().any(|r| {
            matches!(
                r,
                RowPrediction::Class {
                    review_id: Some(_),
                    ..
                }
            )
        })
    }
}

/// One row of the sanitized answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RowAnswer {
    /// A label, with its rounded confidence unless the output is label-only, and the runners-up when top-k > 1.
    Label {
        /// The class label.
        label: Arc<str>,
        /// Rounded confidence (absent in label-only mode).
        confidence: Option<f64>,
        /// The k most probable classes with rounded probabilities (k > 1 only).
        top: Vec<(Arc<str>, f64)>,
        /// Every class's rounded probability, in class order — only when k covers every class (a caller
        /// granted `output:full`), so it reveals nothing `top` does not. Empty otherwise. OIP v2 answers carry
        /// it as the `probabilities` output, which is what a Rampart in proxy mode in front of this one reads.
        probabilities: Vec<f64>,
        /// The certified L2 radius (smoothing in CERTIFY mode, callers granted `output:certificate` only).
        certified_radius: Option<f64>,
    },
    /// Randomized smoothing abstained on this row (`{"result": "abstain"}`).
    Abstain,
    /// A regressor's rounded outputs.
    Value(Vec<f64>),
    /// The gate withheld the answer: it waits for review.
    Uncertain {
        /// Where the item waits.
        review_id: String,
    },
}

/// The sanitized answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// One per input row.
    pub rows: Vec<RowAnswer>,
}

impl Answer {
    /// Degrades the answer to labels only (no confidence, no runners-up), as a responder's `label_only`
    /// action asks: what a model-extraction attack learns most from is the probabilities. Regressor values and
    /// withheld rows are left as they are.
    pub fn to_labels_only(&mut self) {
        for row in &mut self.rows {
            if let RowAnswer::Label {
                confidence,
                top,
                probabilities,
                ..
            } = row
            {
                *confidence = None;
                top.clear();
                probabilities.clear();
            }
        }
    }
}
