//! # rampart-model
//!
//! Model execution for Rampart: the [`Backend`] trait the request path calls, and
//! [`TractModel`], a pure-Rust backend that runs scikit-learn ONNX exports on tract.
//!
//! ## What this crate owns
//! - Loading an ONNX file (or bytes embedded in a binary), declaring its input shape to tract with a
//!   symbolic batch dimension, and building one optimized plan that serves every batch size.
//! - The ONNX-ML translators stock tract 0.23 lacks (`Scaler`, `ZipMap`, `TreeEnsembleRegressor`) and a
//!   faster `TreeEnsembleClassifier`, all registered in one place: [`ops::ml::register_all_ops`].
//! - Telling classifiers from regressors ([`ModelKind`]) and handing back plain row-major `f32` buffers
//!   ([`Output`]).
//! - Hardening that wraps any [`Backend`] ([`harden`]): randomized smoothing with certified radii.
//!
//! ## What it must not do
//! - No I/O beyond reading the model file it is asked to load; no clock, no threads, no async runtime;
//!   no hidden randomness (smoothing draws from an RNG the caller passes in).
//! - Never panic on caller-controlled input: a model file or a batch of rows that is wrong is a
//!   [`LoadError`] or a [`RunError`].
//! - No policy: deciding whether a request may be served belongs to `rampart-pipeline`.
//!
//! ## Main types
//! - [`Backend`]: `info()` and `predict(rows, n_rows)`; `Send + Sync`, shared across requests.
//! - [`TractModel`]: the tract backend; [`TractModel::load`], [`TractModel::load_bytes`].
//! - [`ModelInfo`], [`ModelKind`], [`Output`]: what a model takes and what it gives back.
//! - [`LoadError`], [`RunError`]: every failure, naming the file, node, op and reason where known.
//! - [`harden::smoothing::Smoother`]: `Smoother::new(config)?.predict(&backend, &row, &mut rng)`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod harden;
pub mod ops;
mod tract_backend;

use serde::Serialize;

pub use error::{LoadError, RunError};
pub use tract_backend::TractModel;

/// A loaded model that can score batches of rows.
///
/// Implementations are shared between request handlers, hence `Send + Sync`, and must be cheap to call
/// concurrently: all per-call state lives on the stack of [`Backend::predict`].
pub trait Backend: Send + Sync {
    /// What the model takes and returns.
    fn info(&self) -> &ModelInfo;

    /// Scores `n_rows` rows laid out row-major in `rows` (`n_rows × info().width` values).
    ///
    /// # Errors
    /// [`RunError`] when `rows` does not hold exactly `n_rows × width` values, when `n_rows` is zero,
    /// or when the model itself fails at run time.
    fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError>;
}

/// What a model takes and returns, read from its ONNX declaration once at load time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The model's name: the file name, or the name given to [`TractModel::load_bytes`].
    pub name: String,
    /// The name of the single graph input.
    pub input_name: String,
    /// Features per row.
    pub width: usize,
    /// Classifier or regressor, and how many columns [`Output::values`] has per row.
    pub kind: ModelKind,
    /// Every graph output name, in declaration order.
    pub outputs: Vec<String>,
    /// The output [`Output::values`] is read from.
    pub values_output: String,
    /// The output [`Output::labels`] is read from, when the model declares one.
    pub labels_output: Option<String>,
    /// The default-domain (`ai.onnx`) opset the model was exported with, 0 when absent.
    pub opset: i64,
    /// Every op the graph uses, as `domain:op_type`, sorted and deduplicated.
    pub ops: Vec<String>,
}

impl ModelInfo {
    /// Checks that `rows` holds exactly `n_rows` rows of this model's width: what every [`Backend::predict`]
    /// must refuse before it runs anything.
    ///
    /// # Errors
    /// [`RunError::EmptyBatch`], [`RunError::TooLarge`] or [`RunError::WrongLength`].
    pub fn check_rows(&self, rows: &[f32], n_rows: usize) -> Result<(), RunError> {
        if n_rows == 0 {
            return Err(RunError::EmptyBatch);
        }
        let expected = n_rows
            .checked_mul(self.width)
            .ok_or(RunError::TooLarge { n_rows })?;
        if rows.len() != expected {
            return Err(RunError::WrongLength {
                n_rows,
                width: self.width,
                expected,
                got: rows.len(),
            });
        }
        Ok(())
    }
}

/// Whether a model classifies or regresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Produces one probability per class per row.
    Classifier {
        /// Number of classes (columns of the probability tensor).
        classes: usize,
    },
    /// Produces one or more real values per row.
    Regressor {
        /// Number of values per row.
        outputs: usize,
    },
}

impl ModelKind {
    /// Columns per row in [`Output::values`].
    pub fn columns(&self) -> usize {
        match *self {
            ModelKind::Classifier { classes } => classes,
            ModelKind::Regressor { outputs } => outputs,
        }
    }
}

/// The result of one [`Backend::predict`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Rows scored.
    pub n_rows: usize,
    /// The model's kind; `kind.columns()` values per row.
    pub kind: ModelKind,
    /// Classifier: probabilities, `n_rows × classes`, row-major. Regressor: `n_rows × outputs`.
    pub values: Vec<f32>,
    /// The model's own label output (one per row) when it has one.
    pub labels: Option<Vec<i64>>,
}

impl Output {
    /// The values of row `i`, or `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let c = self.kind.columns();
        self.values.get(i * c..(i + 1) * c)
    }
}
