//! `ai.onnx.ml.ZipMap`: turns a `[N, C]` probability tensor into a list of `{class: p}` maps.
//!
//! Rampart returns probabilities as tensors, so the translator hands the wrapped tensor through
//! unchanged; the class labels stay checked against its width so a mismatched export still fails
//! at load.

use crate::ops::attrs;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

pub(super) fn register_all_ops(reg: &mut OnnxOpRegister) {
    reg.insert("ZipMap", zip_map);
}

#[derive(Debug, Clone, PartialEq)]
struct ZipMap {
    classes: usize,
}

fn zip_map(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let ints = attrs::ints(node, "classlabels_int64s")?.map(<[i64]>::len);
    let strings = attrs::strings(node, "classlabels_strings")?.map(|s| s.len());
    let classes = match (ints, strings) {
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => bail!("attribute 'classlabels_int64s' or 'classlabels_strings' missing"),
        (Some(_), Some(_)) => {
            bail!("attributes 'classlabels_int64s' and 'classlabels_strings' are both set")
        }
    };
    if classes == 0 {
        bail!("attribute 'classlabels_int64s': no classes");
    }
    Ok((expand(ZipMap { classes }), vec![]))
}

impl Expansion for ZipMap {
    fn name(&self) -> StaticName {
        "ZipMap".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&inputs[0].shape[1], self.classes.to_dim())?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        _prefix: &str,
        _model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        Ok(inputs.into())
    }
}
