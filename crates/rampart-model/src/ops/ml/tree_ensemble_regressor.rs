//! `ai.onnx.ml.TreeEnsembleRegressor`, which stock tract 0.23 does not implement.
//!
//! scikit-learn's gradient-boosting and random-forest regressors export as this op. Supports every
//! `aggregate_function` (`SUM`, `AVERAGE`, `MIN`, `MAX`), `base_values`, and `post_transform = NONE`,
//! the only transform a regressor export uses.

use super::tree_ensemble::{with_rows, Aggregate, Ensemble};
use crate::ops::attrs;
use std::sync::Arc;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_hir::internal::*;

pub(super) fn register_all_ops(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleRegressor", tree_regressor);
}

fn tree_regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let n_targets = attrs::int(node, "n_targets")?.ok_or_else(|| attrs::missing("n_targets"))?;
    let n_targets = usize::try_from(n_targets)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format_err!("attribute 'n_targets': must be positive, got {n_targets}"))?;
    let aggregate = Aggregate::parse(
        &attrs::string(node, "aggregate_function")?.unwrap_or_else(|| "SUM".into()),
    )?;
    let post = attrs::string(node, "post_transform")?.unwrap_or_else(|| "NONE".into());
    if post != "NONE" {
        bail!("attribute 'post_transform': '{post}' is not supported for regressors (only NONE)");
    }
    let base_values = attrs::floats(node, "base_values")?.unwrap_or_default();
    if !base_values.is_empty() {
        attrs::check_len("base_values", base_values.len(), n_targets, "n_targets")?;
    }
    let ensemble = Ensemble::from_node(node, "target", n_targets)?;
    let op = TreeEnsembleRegressor {
        ensemble: Arc::new(ensemble),
        aggregate,
        base_values,
    };
    Ok((expand(op), vec![]))
}

/// Both the inference-time expansion and the typed op: the computation is one native kernel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeEnsembleRegressor {
    ensemble: Arc<Ensemble>,
    aggregate: Aggregate,
    base_values: Vec<f32>,
}

// tract compares ops only to merge identical nodes; a NaN weight merely makes two copies unequal.
impl Eq for TreeEnsembleRegressor {}

impl Expansion for TreeEnsembleRegressor {
    fn name(&self) -> StaticName {
        "TreeEnsembleRegressor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.ensemble.n_targets.to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?;
        if let Some(w) = fact.shape.get(1).and_then(|d| d.to_usize().ok()) {
            self.ensemble.check_width(w)?;
        }
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for TreeEnsembleRegressor {
    fn name(&self) -> StaticName {
        "RampartTreeEnsembleRegressor".into()
    }

    op_as_typed_op!();
}

impl EvalOp for TreeEnsembleRegressor {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let e = &*self.ensemble;
        let k = e.n_targets;
        let out = with_rows(&input, e.min_width, |data, n, w| {
            let mut out = vec![0f32; n * k];
            let mut touched = vec![false; k];
            for (row, scores) in data.chunks_exact(w.max(1)).zip(out.chunks_exact_mut(k)) {
                e.score_row(row, self.aggregate, scores, &mut touched);
                if !self.base_values.is_empty() {
                    scores
                        .iter_mut()
                        .zip(&self.base_values)
                        .for_each(|(s, b)| *s += b);
                }
            }
            Tensor::from_shape(&[n, k], &out)
        })?;
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for TreeEnsembleRegressor {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() == 2, "expected a rank-2 input");
        let n = inputs[0].shape[0].clone();
        Ok(tvec!(f32::fact([n, self.ensemble.n_targets.to_dim()])))
    }

    as_op!();
}
