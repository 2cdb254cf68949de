//! `ai.onnx.ml.TreeEnsembleClassifier`, replacing tract's translator.
//!
//! tract 0.23's version builds an `anyhow` error on every leaf visit (a captured backtrace when
//! `RUST_BACKTRACE=1`) and scans leaves linearly: 37–590 µs a row on the reference forests. This one
//! walks the flat [`Ensemble`] and does scoring, `base_values`, the post transform and label lookup
//! in one native kernel.
//!
//! Binary models whose leaves all feed one score column (scikit-learn's gradient boosting) follow
//! onnxruntime: the transformed score `p` is the positive class, probabilities are `[1 - p, p]`.

use super::tree_ensemble::{with_rows, Aggregate, Ensemble};
use crate::ops::attrs;
use std::sync::Arc;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_hir::internal::*;

pub(super) fn register_all_ops(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleClassifier", tree_classifier);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostTransform {
    None,
    Softmax,
    Logistic,
    SoftmaxZero,
}

fn tree_classifier(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    if attrs::strings(node, "classlabels_strings")?.is_some() {
        bail!(
            "attribute 'classlabels_strings': string class labels are not supported (int64 only)"
        );
    }
    let labels = attrs::ints(node, "classlabels_int64s")?
        .ok_or_else(|| attrs::missing("classlabels_int64s"))?
        .to_vec();
    if labels.is_empty() {
        bail!("attribute 'classlabels_int64s' is empty");
    }
    let post = match attrs::string(node, "post_transform")?
        .as_deref()
        .unwrap_or("NONE")
    {
        "NONE" => PostTransform::None,
        "SOFTMAX" => PostTransform::Softmax,
        "LOGISTIC" => PostTransform::Logistic,
        "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
        other => bail!("attribute 'post_transform': '{other}' is not supported"),
    };
    let ensemble = Ensemble::from_node(node, "class", labels.len())?;
    let base_values = attrs::floats(node, "base_values")?.unwrap_or_default();
    // A binary model may carry one score column; onnxruntime accepts one base value for it.
    if !base_values.is_empty() && base_values.len() != labels.len() && base_values.len() != 1 {
        attrs::check_len(
            "base_values",
            base_values.len(),
            labels.len(),
            "classlabels_int64s",
        )?;
    }
    let binary_one_column = labels.len() == 2 && ensemble.leaf_targets().all(|t| t == 0);
    let positive_weights = ensemble.leaf_weights().all(|w| w >= 0.0);
    let op = TreeEnsembleClassifier {
        ensemble: Arc::new(ensemble),
        labels,
        base_values,
        post,
        binary_one_column,
        positive_weights,
    };
    Ok((expand(op), vec![]))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeEnsembleClassifier {
    ensemble: Arc<Ensemble>,
    labels: Vec<i64>,
    base_values: Vec<f32>,
    post: PostTransform,
    binary_one_column: bool,
    positive_weights: bool,
}

impl TreeEnsembleClassifier {
    fn classes(&self) -> usize {
        self.labels.len()
    }

    /// Turns one row's raw scores into probabilities in place and returns the label index.
    fn finish_row(&self, scores: &mut [f32]) -> usize {
        if self.binary_one_column {
            let mut s = scores[0] + self.base_values.first().copied().unwrap_or(0.0);
            let threshold = match self.post {
                PostTransform::Logistic => {
                    s = logistic(s);
                    0.5
                }
                _ if self.positive_weights => 0.5,
                _ => 0.0,
            };
            scores[0] = 1.0 - s;
            scores[1] = s;
            return usize::from(s > threshold);
        }
        if self.base_values.len() == scores.len() {
            scores
                .iter_mut()
                .zip(&self.base_values)
                .for_each(|(s, b)| *s += b);
        }
        // onnxruntime picks the label on the raw scores; every transform here is monotonic, so the
        // argmax is the same, and the first maximum wins a tie.
        let mut best = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[best] {
                best = i;
            }
        }
        match self.post {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            PostTransform::Softmax => softmax(scores, false),
            PostTransform::SoftmaxZero => softmax(scores, true),
        }
        best
    }
}

fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `zero_stays_zero`: SOFTMAX_ZERO leaves exact zeros at zero (onnxruntime's `ComputeSoftmaxZero`).
fn softmax(v: &mut [f32], zero_stays_zero: bool) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = if zero_stays_zero && *x == 0.0 {
            0.0
        } else {
            (*x - max).exp()
        };
        sum += *x;
    }
    if sum > 0.0 {
        v.iter_mut().for_each(|x| *x /= sum);
    }
}

// tract compares ops only to merge identical nodes; a NaN weight merely makes two copies unequal.
impl Eq for TreeEnsembleClassifier {}

impl Expansion for TreeEnsembleClassifier {
    fn name(&self) -> StaticName {
        "TreeEnsembleClassifier".into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(2)
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 2)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].datum_type, DatumType::I64)?;
        s.equals(&outputs[0].rank, 1)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[1].datum_type, DatumType::F32)?;
        s.equals(&outputs[1].rank, 2)?;
        s.equals(&outputs[1].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[1].shape[1], self.classes().to_dim())?;
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

impl Op for TreeEnsembleClassifier {
    fn name(&self) -> StaticName {
        "RampartTreeEnsembleClassifier".into()
    }

    op_as_typed_op!();
}

impl EvalOp for TreeEnsembleClassifier {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let e = &*self.ensemble;
        let k = self.classes();
        let (labels, probs) = with_rows(&input, e.min_width, |data, n, w| {
            let mut probs = vec![0f32; n * k];
            let mut labels = Vec::with_capacity(n);
            let mut touched = vec![false; k];
            for (row, scores) in data.chunks_exact(w.max(1)).zip(probs.chunks_exact_mut(k)) {
                e.score_row(row, Aggregate::Sum, scores, &mut touched);
                labels.push(self.labels[self.finish_row(scores)]);
            }
            Ok((
                Tensor::from_shape(&[n], &labels)?,
                Tensor::from_shape(&[n, k], &probs)?,
            ))
        })?;
        Ok(tvec!(labels.into_tvalue(), probs.into_tvalue()))
    }
}

impl TypedOp for TreeEnsembleClassifier {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() == 2, "expected a rank-2 input");
        let n = inputs[0].shape[0].clone();
        Ok(tvec!(
            i64::fact([n.clone()]),
            f32::fact([n, self.classes().to_dim()])
        ))
    }

    as_op!();
}
