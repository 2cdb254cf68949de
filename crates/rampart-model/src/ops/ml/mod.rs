//! ONNX-ML (`ai.onnx.ml`) translators stock tract 0.23 lacks or runs slowly, one file per op.
//!
//! Registered in one place, [`register_all_ops`], so what Rampart adds to tract is visible at a
//! glance (tract does the same in its `onnx/src/ops/ml/mod.rs`).

mod scaler;
mod tree_ensemble;
mod tree_ensemble_classifier;
mod tree_ensemble_regressor;
mod zip_map;

use tract_onnx::model::OnnxOpRegister;

/// Adds Rampart's translators to `reg`, replacing tract's where both exist.
///
/// - `Scaler`: `y = (x - offset) * scale`, per feature or one value for all.
/// - `ZipMap`: serves the probability tensor it wraps, as Rampart returns tensors, not maps.
/// - `TreeEnsembleRegressor`: missing from tract.
/// - `TreeEnsembleClassifier`: replaces tract's, which builds an error value per leaf visit and scans
///   leaves linearly.
pub fn register_all_ops(reg: &mut OnnxOpRegister) {
    scaler::register_all_ops(reg);
    zip_map::register_all_ops(reg);
    tree_ensemble_regressor::register_all_ops(reg);
    tree_ensemble_classifier::register_all_ops(reg);
}
