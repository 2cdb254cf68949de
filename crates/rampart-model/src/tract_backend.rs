//! [`TractModel`]: loading an ONNX export into one optimized tract plan, and running it.

use crate::{Backend, LoadError, ModelInfo, ModelKind, Output, RunError};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

/// The name of the symbolic batch dimension declared to tract.
const BATCH: &str = "N";

/// A model run by tract, pure Rust, in-process.
///
/// The graph is typed and optimized once, at load, against an input of shape `[N, width]` with `N`
/// symbolic, so one plan serves every batch size; a second plan fixed at one row serves single-row
/// calls a little faster. Plans are immutable and shared; each [`Backend::predict`] call runs in its
/// own state, so concurrent calls need no lock.
#[derive(Debug, Clone)]
pub struct TractModel {
    info: ModelInfo,
    input_type: DatumType,
    values_ix: usize,
    labels_ix: Option<usize>,
    /// Any batch size: `[N, width]`, `N` symbolic.
    plan: Arc<TypedRunnableModel>,
    /// One row, the common case for a gateway: with every shape concrete tract picks tighter
    /// kernels and skips resolving `N` at run time.
    single: Arc<TypedRunnableModel>,
}

impl TractModel {
    /// Loads the ONNX model at `path`.
    ///
    /// # Errors
    /// [`LoadError`] when the file cannot be read, is not ONNX, uses an op Rampart cannot run, has a
    /// node whose attributes are wrong, or whose input or outputs are not a batch of float rows in and
    /// probabilities or values out. The message names the file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            file: file.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
        Self::build(&file, name, &bytes)
    }

    /// Loads a model from bytes, e.g. one embedded with `include_bytes!`; `name` stands in for the
    /// file name in [`ModelInfo::name`] and in errors.
    ///
    /// # Errors
    /// As [`TractModel::load`], less the I/O.
    pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        Self::build(name, name.to_string(), bytes)
    }

    fn build(file: &str, name: String, bytes: &[u8]) -> Result<Self, LoadError> {
        let plan_err = |stage: &'static str| {
            move |e: TractError| LoadError::Plan {
                file: file.to_string(),
                stage,
                reason: format!("{e:#}"),
            }
        };
        let mut onnx = tract_onnx::onnx();
        crate::ops::ml::register_all_ops(&mut onnx.op_register);

        let proto = onnx
            .proto_model_for_read(&mut &*bytes)
            .map_err(|e| LoadError::Decode {
                file: file.to_string(),
                reason: format!("{e:#}"),
            })?;
        let graph = proto
            .graph
            .as_ref()
            .filter(|g| !g.node.is_empty())
            .ok_or_else(|| LoadError::Decode {
                file: file.to_string(),
                reason: "no graph, or an empty one".into(),
            })?;
        let opset = proto
            .opset_import
            .iter()
            .find(|i| i.domain.is_empty() || i.domain == "ai.onnx")
            .map_or(0, |i| i.version);

        let ops = check_nodes(file, &onnx, &proto, graph, opset)?;
        let (input_name, input_type, width) = input_decl(file, graph)?;

        let model = onnx
            .model_for_proto_model(&proto)
            .map_err(plan_err("translation"))?;
        let batch = model.sym(BATCH);
        let optimize = |model: InferenceModel, n: TDim| {
            let fact = input_type.fact([n, width.to_dim()]);
            let model = model
                .with_input_fact(0, fact.into())
                .map_err(plan_err("input"))?;
            let typed = model.into_typed().map_err(plan_err("typing"))?;
            typed.into_optimized().map_err(plan_err("optimization"))
        };
        let single = optimize(model.clone(), 1.to_dim())?
            .into_runnable()
            .map_err(plan_err("planning"))?;
        let optimized = optimize(model, batch.to_dim())?;

        let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let facts = (0..optimized.outputs.len())
            .map(|i| optimized.output_fact(i).cloned())
            .collect::<TractResult<Vec<_>>>()
            .map_err(plan_err("typing"))?;
        let (kind, values_ix, labels_ix) = classify_outputs(file, &outputs, &facts)?;
        let plan = optimized.into_runnable().map_err(plan_err("planning"))?;

        let info = ModelInfo {
            name,
            input_name,
            width,
            kind,
            values_output: outputs.get(values_ix).cloned().unwrap_or_default(),
            labels_output: labels_ix.and_then(|i| outputs.get(i).cloned()),
            outputs,
            opset,
            ops,
        };
        let model = TractModel {
            info,
            input_type,
            values_ix,
            labels_ix,
            plan,
            single,
        };
        // A graph can type and still fail when run (an index out of range in a gather, say): run
        // both plans now so that surfaces at load, not on the first request.
        for n in [1, 2] {
            model
                .predict(&vec![0.0; n * width], n)
                .map_err(|e| LoadError::Plan {
                    file: file.to_string(),
                    stage: "trial run",
                    reason: e.to_string(),
                })?;
        }
        Ok(model)
    }
}

/// Checks every node has a translator and that it accepts the node's attributes, so errors name the
/// node, its op and the reason instead of surfacing later, context-free, from type inference.
/// Returns the sorted op list for [`ModelInfo::ops`].
fn check_nodes(
    file: &str,
    onnx: &tract_onnx::Onnx,
    proto: &pb::ModelProto,
    graph: &pb::GraphProto,
    opset: i64,
) -> Result<Vec<String>, LoadError> {
    let ctx = ParsingContext {
        onnx_operator_set_version: opset,
        framework: onnx,
        model: proto,
        parent_graphs: vec![],
        model_dir: None,
        template: InferenceModel::default(),
    };
    let mut ops = BTreeSet::new();
    for node in &graph.node {
        let domain = if node.domain.is_empty() {
            "ai.onnx"
        } else {
            node.domain.as_str()
        };
        let op = format!("{domain}:{}", node.op_type);
        let node_name = if !node.name.is_empty() {
            node.name.clone()
        } else {
            node.output.first().cloned().unwrap_or_default()
        };
        let Some(builder) = onnx.op_register.0.get(&node.op_type) else {
            return Err(LoadError::UnsupportedOp {
                file: file.to_string(),
                node: node_name,
                op,
            });
        };
        if let Err(e) = builder(&ctx, node) {
            return Err(LoadError::Node {
                file: file.to_string(),
                node: node_name,
                op,
                reason: format!("{e:#}"),
            });
        }
        ops.insert(op);
    }
    Ok(ops.into_iter().collect())
}

/// The single non-initializer graph input: its name, element type and features per row.
fn input_decl(file: &str, graph: &pb::GraphProto) -> Result<(String, DatumType, usize), LoadError> {
    let err = |reason: String| LoadError::Input {
        file: file.to_string(),
        reason,
    };
    let inits: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(err(format!(
            "expected exactly one input, found {}",
            inputs.len()
        )));
    };
    let Some(pb::type_proto::Value::TensorType(tensor)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(err(format!("'{}' is not declared as a tensor", input.name)));
    };
    let dt = match pb::tensor_proto::DataType::try_from(tensor.elem_type) {
        Ok(pb::tensor_proto::DataType::Float) => f32::datum_type(),
        Ok(pb::tensor_proto::DataType::Double) => f64::datum_type(),
        Ok(other) => {
            return Err(err(format!(
                "'{}' has element type {}; only float and double are supported",
                input.name,
                other.as_str_name().to_ascii_lowercase()
            )))
        }
        Err(_) => {
            return Err(err(format!(
                "'{}' has an unknown element type {}",
                input.name, tensor.elem_type
            )))
        }
    };
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| s.dim.as_slice())
        .unwrap_or_default();
    if dims.len() != 2 {
        return Err(err(format!(
            "'{}' has rank {}; Rampart feeds [batch, features] (rank 2)",
            input.name,
            dims.len()
        )));
    }
    let width = match dims[1].value {
        Some(pb::tensor_shape_proto::dimension::Value::DimValue(w)) if w > 0 => w as usize,
        _ => {
            return Err(err(format!(
                "'{}' does not declare a fixed feature count",
                input.name
            )))
        }
    };
    Ok((input.name.clone(), dt, width))
}

/// Tells a classifier from a regressor by its outputs: scikit-learn classifiers export an integer
/// (tract may type an `ArgMax`-then-`Cast` label as `TDim`, a symbolic integer)
/// `label` `[N]` beside a float probability tensor `[N, C]`; regressors a single float `[N, K]` (or
/// `[N]`). A lone float `[N, C]` output whose name says "prob" is taken for a classifier without labels.
fn classify_outputs(
    file: &str,
    names: &[String],
    facts: &[TypedFact],
) -> Result<(ModelKind, usize, Option<usize>), LoadError> {
    let describe = || {
        names
            .iter()
            .zip(facts)
            .map(|(n, f)| format!("{n}: {f:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let err = |why: &str| LoadError::Outputs {
        file: file.to_string(),
        reason: format!("{why} ({})", describe()),
    };
    if names.len() != facts.len() {
        return Err(err("output count differs between the graph and the plan"));
    }
    let labels = facts.iter().position(|f| {
        f.rank() == 1
            && matches!(
                f.datum_type,
                DatumType::I64 | DatumType::I32 | DatumType::TDim
            )
    });
    let columns = |f: &TypedFact| -> Option<usize> {
        if f.datum_type != f32::datum_type() {
            return None;
        }
        match f.rank() {
            1 => Some(1),
            2 => f.shape[1].to_usize().ok(),
            _ => None,
        }
    };
    let floats: Vec<(usize, usize)> = facts
        .iter()
        .enumerate()
        .filter_map(|(i, f)| columns(f).map(|c| (i, c)))
        .collect();
    let says_prob = |i: usize| names[i].to_ascii_lowercase().contains("prob");
    let pick = floats
        .iter()
        .find(|&&(i, _)| says_prob(i))
        .or(floats.first())
        .copied();
    match (pick, labels) {
        (None, _) => Err(err("no float output of shape [N] or [N, C] with C fixed")),
        (Some((i, classes)), Some(l)) => Ok((ModelKind::Classifier { classes }, i, Some(l))),
        (Some((i, classes)), None) if says_prob(i) => {
            Ok((ModelKind::Classifier { classes }, i, None))
        }
        (Some((i, outputs)), None) => Ok((ModelKind::Regressor { outputs }, i, None)),
    }
}

impl Backend for TractModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
        self.info.check_rows(rows, n_rows)?;
        let width = self.info.width;
        let model_err = |reason: String| RunError::Model {
            model: self.info.name.clone(),
            reason,
        };
        let input = if self.input_type == f64::datum_type() {
            let wide: Vec<f64> = rows.iter().map(|&x| f64::from(x)).collect();
            Tensor::from_shape(&[n_rows, width], &wide)
        } else {
            Tensor::from_shape(&[n_rows, width], rows)
        }
        .map_err(|e| model_err(format!("{e:#}")))?;

        let plan = if n_rows == 1 {
            &self.single
        } else {
            &self.plan
        };
        let outputs = plan
            .run(tvec!(input.into()))
            .map_err(|e| model_err(format!("{e:#}")))?;

        let columns = self.info.kind.columns();
        let values = outputs
            .get(self.values_ix)
            .ok_or_else(|| model_err("values output missing".into()))
            .and_then(|t| to_vec::<f32>(t).map_err(|e| model_err(format!("{e:#}"))))?;
        if values.len() != n_rows * columns {
            return Err(model_err(format!(
                "output '{}' has {} values, expected {n_rows} × {columns}",
                self.info.values_output,
                values.len()
            )));
        }
        let labels = match self.labels_ix {
            None => None,
            Some(ix) => {
                let labels = outputs
                    .get(ix)
                    .ok_or_else(|| model_err("labels output missing".into()))
                    .and_then(|t| to_vec::<i64>(t).map_err(|e| model_err(format!("{e:#}"))))?;
                if labels.len() != n_rows {
                    return Err(model_err(format!(
                        "{} labels for {n_rows} rows",
                        labels.len()
                    )));
                }
                Some(labels)
            }
        };
        Ok(Output {
            n_rows,
            kind: self.info.kind,
            values,
            labels,
        })
    }
}

fn to_vec<T: Datum + Copy>(t: &TValue) -> TractResult<Vec<T>> {
    let t = t.cast_to::<T>()?;
    let plain = t.try_as_plain_ram()?;
    Ok(plain.as_slice::<T>()?.to_vec())
}
