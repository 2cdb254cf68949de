//! The Open Inference Protocol v2 (KServe's "V2 inference protocol", which Triton, MLServer and Rampart
//! speak), client side, JSON tensors only: the binary-tensor extension is not used — Rampart's rows are a few
//! dozen floats, where JSON costs microseconds and keeps every answer inspectable.
//!
//! Everything here is pure: bytes in, typed values or a refusal out. What an upstream sends is treated as
//! untrusted input — parsed into Rampart's own types, its size and shape checked, and never echoed.

use std::fmt::Write as _;

use serde::Deserialize;

use rampart_model::{ModelKind, Output};

use super::config::UpstreamKind;

/// The element type the upstream's input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    Fp32,
    Fp64,
}

impl Dtype {
    fn as_str(self) -> &'static str {
        match self {
            Dtype::Fp32 => "FP32",
            Dtype::Fp64 => "FP64",
        }
    }
}

/// What the metadata says, as Rampart needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    /// The input tensor's name.
    pub(crate) input: String,
    pub(crate) dtype: Dtype,
    /// Features per row.
    pub(crate) width: usize,
    pub(crate) kind: ModelKind,
    /// Class labels, when the upstream publishes them (`parameters.labels`, as Rampart does for callers
    /// granted `output:full`).
    pub(crate) labels: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    inputs: Vec<TensorMeta>,
    #[serde(default)]
    outputs: Vec<TensorMeta>,
    #[serde(default)]
    parameters: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TensorMeta {
    name: String,
    datatype: String,
    shape: Vec<i64>,
}

/// Reads `GET /v2/models/{name}[/versions/{v}]`'s answer.
///
/// `labels` are the entry's configured labels: they give the class count when the upstream's output shape
/// leaves it open (`[-1, -1]`).
///
/// # Errors
/// A start-up message saying what the metadata lacks.
pub(crate) fn parse_metadata(
    body: &[u8],
    output: &str,
    kind: UpstreamKind,
    labels: &[String],
) -> Result<Spec, String> {
    let meta: Metadata = serde_json::from_slice(body)
        .map_err(|e| format!("the model metadata is not OIP v2 JSON ({e})"))?;
    let [input] = meta.inputs.as_slice() else {
        return Err(format!(
            "the model declares {} inputs; proxy mode feeds exactly one [rows, features] tensor",
            meta.inputs.len()
        ));
    };
    let dtype = match input.datatype.as_str() {
        "FP32" => Dtype::Fp32,
        "FP64" => Dtype::Fp64,
        other => {
            return Err(format!(
                "input '{}' is {other}; proxy mode sends FP32 or FP64",
                input.name
            ))
        }
    };
    let width = match input.shape.as_slice() {
        [_, w] if *w > 0 => usize::try_from(*w).map_err(|_| "input width too large".to_owned())?,
        _ => {
            return Err(format!(
                "input '{}' has shape {:?}; proxy mode needs [rows, features] with a fixed feature count",
                input.name, input.shape
            ))
        }
    };
    let Some(out) = meta.outputs.iter().find(|o| o.name == output) else {
        let names: Vec<&str> = meta.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(format!(
            "the model has no output '{output}' (it declares {names:?}); set upstream.output, and for a \
             Rampart upstream grant the proxy's identity output:full"
        ));
    };
    if !matches!(out.datatype.as_str(), "FP32" | "FP64" | "FP16") {
        return Err(format!(
            "output '{output}' is {}; proxy mode reads FP32 or FP64",
            out.datatype
        ));
    }
    let columns = match out.shape.as_slice() {
        [_] => Some(1),
        [_, c] if *c > 0 => usize::try_from(*c).ok(),
        [_, _] => None,
        _ => {
            return Err(format!(
                "output '{output}' has shape {:?}; proxy mode reads [rows] or [rows, columns]",
                out.shape
            ))
        }
    };
    let kind = match kind {
        UpstreamKind::Classifier => {
            let classes = match (columns, labels.len()) {
                (Some(c), _) => c,
                (None, 0) => {
                    return Err(format!(
                    "output '{output}' does not say how many classes it has: name them with labels"
                ))
                }
                (None, n) => n,
            };
            if classes < 2 {
                return Err(format!(
                    "output '{output}' has {classes} column(s); a classifier's probabilities need at least 2"
                ));
            }
            ModelKind::Classifier { classes }
        }
        UpstreamKind::Regressor => ModelKind::Regressor {
            outputs: columns.unwrap_or(1),
        },
    };
    let labels = meta
        .parameters
        .as_ref()
        .and_then(|p| p.get("labels"))
        .and_then(|l| l.as_array())
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        });
    Ok(Spec {
        input: input.name.clone(),
        dtype,
        width,
        kind,
        labels,
    })
}

/// The request body for `n_rows` rows, and the one output asked for.
///
/// # Errors
/// When a value is not finite (JSON has no NaN): validated features never are, but a hardening wrapper's
/// noise is the caller's.
pub(crate) fn encode_request(
    spec: &Spec,
    output: &str,
    rows: &[f32],
    n_rows: usize,
) -> Result<Vec<u8>, &'static str> {
    let mut s = String::with_capacity(64 + rows.len() * 12);
    s.push_str("{\"inputs\":[{\"name\":");
    push_json_str(&mut s, &spec.input);
    let _ = write!(
        s,
        ",\"shape\":[{n_rows},{}],\"datatype\":\"{}\",\"data\":[",
        spec.width,
        spec.dtype.as_str()
    );
    for (i, v) in rows.iter().enumerate() {
        if !v.is_finite() {
            return Err("a value is not finite");
        }
        if i > 0 {
            s.push(',');
        }
        // `Display` for f32 is the shortest text that reads back as the same f32: the upstream sees exactly
        // the validated value (FP64 upstreams widen it exactly).
        let _ = write!(s, "{v}");
    }
    s.push_str("]}],\"outputs\":[{\"name\":");
    push_json_str(&mut s, output);
    s.push_str("}]}");
    Ok(s.into_bytes())
}

fn push_json_str(s: &mut String, v: &str) {
    // A `&str` always serializes; the fallback keeps the body valid JSON regardless.
    match serde_json::to_string(v) {
        Ok(q) => s.push_str(&q),
        Err(_) => s.push_str("\"\""),
    }
}

/// Why an answer was refused. Logged for the operator; never sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("the answer is not OIP v2 JSON")]
    NotJson,
    #[error("the answer has no output '{0}'")]
    NoOutput(String),
    #[error("output '{0}' is not FP32/FP64")]
    Dtype(String),
    #[error("output '{name}' has shape {shape:?}, expected [{rows}, {columns}]")]
    Shape {
        name: String,
        shape: Vec<i64>,
        rows: usize,
        columns: usize,
    },
    #[error("output '{0}' holds a value that is not a finite number")]
    NotNumber(String),
    #[error("output '{0}' holds a probability outside [0, 1]")]
    NotProbability(String),
}

#[derive(Deserialize)]
struct Answer {
    outputs: Vec<OutTensor>,
}

#[derive(Deserialize)]
struct OutTensor {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    // Other outputs (a Rampart upstream's labels are strings) are read as JSON values and left alone.
    data: serde_json::Value,
}

/// Reads the answer to a request of `n_rows` rows into the backend's [`Output`]: the named output only, its
/// shape and values checked against the kind.
///
/// # Errors
/// [`Malformed`].
pub(crate) fn decode_response(
    body: &[u8],
    output: &str,
    kind: ModelKind,
    n_rows: usize,
) -> Result<Output, Malformed> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| Malformed::NotJson)?;
    let Some(t) = answer.outputs.into_iter().find(|o| o.name == output) else {
        return Err(Malformed::NoOutput(output.to_owned()));
    };
    if !matches!(t.datatype.as_str(), "FP32" | "FP64" | "FP16") {
        return Err(Malformed::Dtype(t.name));
    }
    let columns = kind.columns();
    let shape_ok = match t.shape.as_slice() {
        [r] => columns == 1 && usize::try_from(*r).ok() == Some(n_rows),
        [r, c] => {
            usize::try_from(*r).ok() == Some(n_rows) && usize::try_from(*c).ok() == Some(columns)
        }
        _ => false,
    };
    let bad_shape = |t: OutTensor| Malformed::Shape {
        name: t.name,
        shape: t.shape,
        rows: n_rows,
        columns,
    };
    if !shape_ok {
        return Err(bad_shape(t));
    }
    let Some(data) = t.data.as_array() else {
        return Err(Malformed::NotNumber(t.name));
    };
    // Checked against the shape before anything is read (a tensor's count must match its declared shape).
    if data.len() != n_rows * columns {
        return Err(bad_shape(t));
    }
    let mut values = Vec::with_capacity(data.len());
    for v in data {
        let x = v
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| Malformed::NotNumber(t.name.clone()))?;
        #[allow(clippy::cast_possible_truncation)]
        let x = x as f32;
        if !x.is_finite() {
            return Err(Malformed::NotNumber(t.name.clone()));
        }
        if matches!(kind, ModelKind::Classifier { .. }) && !(0.0..=1.0).contains(&x) {
            return Err(Malformed::NotProbability(t.name.clone()));
        }
        values.push(x);
    }
    Ok(Output {
        n_rows,
        kind,
        values,
        labels: None,
    })
}
