//! `ai.onnx.ml.Scaler`: `y = (x - offset) * scale`, applied along the last axis.
//!
//! `offset` and `scale` each hold one value per feature, or a single value applied to every feature.
//! scikit-learn's `StandardScaler` exports as this op with `offset = mean` and `scale = 1 / std`.
//! Wired as a plain `Sub` and `Mul` against constants so tract's optimizer can fold them into a
//! following `MatMul`.

use crate::ops::attrs;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

#[cfg(test)]
mod tests;

pub(super) fn register_all_ops(reg: &mut OnnxOpRegister) {
    reg.insert("Scaler", scaler);
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

fn scaler(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(Scaler::from_node(node)?), vec![]))
}

impl Scaler {
    pub(crate) fn from_node(node: &NodeProto) -> TractResult<Scaler> {
        let offset = attrs::floats(node, "offset")?.ok_or_else(|| attrs::missing("offset"))?;
        let scale = attrs::floats(node, "scale")?.ok_or_else(|| attrs::missing("scale"))?;
        Scaler::new(offset, scale)
    }

    pub(crate) fn new(offset: Vec<f32>, scale: Vec<f32>) -> TractResult<Scaler> {
        if offset.is_empty() {
            bail!("attribute 'offset' is empty");
        }
        if scale.is_empty() {
            bail!("attribute 'scale' is empty");
        }
        if offset.len() > 1 && scale.len() > 1 && offset.len() != scale.len() {
            bail!(
                "attribute 'scale' has {} values but 'offset' has {}",
                scale.len(),
                offset.len()
            );
        }
        Ok(Scaler { offset, scale })
    }

    /// Checks a per-feature attribute against the input's feature count, when that is known.
    fn check_width(&self, width: &TDim) -> TractResult<()> {
        if let Ok(w) = width.to_usize() {
            for (name, v) in [("offset", &self.offset), ("scale", &self.scale)] {
                if v.len() > 1 && v.len() != w {
                    bail!(
                        "attribute '{name}' has {} values, input has {w} features",
                        v.len()
                    );
                }
            }
        }
        Ok(())
    }
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?.clone();
        let rank = fact.rank();
        ensure!(
            rank >= 1,
            "Scaler expects an input of rank 1 or more, got a scalar"
        );
        self.check_width(&fact.shape[rank - 1])?;
        let mut x = inputs[0];
        // The op is defined on float, double, int32 and int64 inputs, all producing float.
        if fact.datum_type != f32::datum_type() {
            x = model.wire_node(
                format!("{prefix}.to_f32"),
                tract_onnx::tract_core::ops::cast::cast(f32::datum_type()),
                &[x],
            )?[0];
        }
        let offset = model.add_const(format!("{prefix}.offset"), rctensor1(&self.offset))?;
        let scale = model.add_const(format!("{prefix}.scale"), rctensor1(&self.scale))?;
        let centered = tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast(
            format!("{prefix}.sub"),
            model,
            tract_onnx::tract_core::ops::math::sub(),
            &[x, offset],
        )?;
        tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast(
            format!("{prefix}.mul"),
            model,
            tract_onnx::tract_core::ops::math::mul(),
            &[centered[0], scale],
        )
    }
}
