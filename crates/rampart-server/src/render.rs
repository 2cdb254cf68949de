//! Renders a sanitized [`Answer`] in the request's wire format. Nothing here sees the raw prediction: what
//! leaves was decided by the sanitizer.

use serde_json::{json, Map, Value};

use rampart_pipeline::{Answer, Protocol, RowAnswer};

fn round_f64(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn v1_row(row: &RowAnswer) -> Value {
    match row {
        RowAnswer::Label {
            label,
            confidence,
            top,
            certified_radius,
            ..
        } => {
            let mut m = Map::new();
            m.insert("prediction".into(), Value::String(label.to_string()));
            if let Some(c) = confidence {
                m.insert("confidence".into(), round_f64(*c));
            }
            if let Some(r) = certified_radius {
                m.insert("certified_radius".into(), round_f64(*r));
            }
            if !top.is_empty() {
                let top: Vec<Value> = top
                    .iter()
                    .map(|(l, p)| json!({"label": l.as_ref(), "confidence": round_f64(*p)}))
                    .collect();
                m.insert("top_k".into(), Value::Array(top));
            }
            Value::Object(m)
        }
        RowAnswer::Value(values) => match values.as_slice() {
            [one] => json!({ "prediction": round_f64(*one) }),
            many => json!({ "prediction": many.iter().map(|v| round_f64(*v)).collect::<Vec<_>>() }),
        },
        RowAnswer::Uncertain { review_id } => json!({
            "result": "uncertain",
            "requires_review": true,
            "review_id": review_id,
        }),
        RowAnswer::Abstain => json!({ "result": "abstain" }),
    }
}

/// The response body.
pub(crate) fn answer(
    answer: &Answer,
    protocol: Protocol,
    model: &str,
    version: &str,
    echo_id: Option<&str>,
) -> Value {
    match protocol {
        Protocol::V1 => match answer.rows.as_slice() {
            [one] => v1_row(one),
            rows => json!({ "predictions": rows.iter().map(v1_row).collect::<Vec<_>>() }),
        },
        Protocol::V2 => v2(answer, model, version, echo_id),
    }
}

/// OIP v2 outputs: `label` (BYTES) and `confidence` (FP32) for classifiers — plus `probabilities` (FP64,
/// `[rows, classes]`, class order) when the caller may see every class (`output:full`); `requires_review`
/// (BOOL) and `review_id` (BYTES) when the gate withheld a row, whose label is then `"uncertain"`; `abstained`
/// (BOOL) when randomized smoothing abstained on a row, whose label is then `"abstain"`; `certified_radius`
/// (FP64, null where none) when a row carries one — or `prediction` (FP32, `[rows, outputs]`) for regressors.
fn v2(answer: &Answer, model: &str, version: &str, echo_id: Option<&str>) -> Value {
    let n = answer.rows.len();
    let mut outputs = Vec::new();
    let regression: Vec<&Vec<f64>> = answer
        .rows
        .iter()
        .filter_map(|r| match r {
            RowAnswer::Value(v) => Some(v),
            _ => None,
        })
        .collect();
    if regression.len() == n && n > 0 {
        let width = regression[0].len();
        let data: Vec<Value> = regression
            .iter()
            .flat_map(|v| v.iter().map(|x| round_f64(*x)))
            .collect();
        outputs.push(
            json!({"name": "prediction", "datatype": "FP64", "shape": [n, width], "data": data}),
        );
    } else {
        let mut labels = Vec::with_capacity(n);
        let mut confidences = Vec::with_capacity(n);
        let mut review = Vec::with_capacity(n);
        let mut review_ids = Vec::with_capacity(n);
        let mut abstained = Vec::with_capacity(n);
        let mut radii = Vec::with_capacity(n);
        let mut any_confidence = false;
        // Every class's probability, in class order, when every row has them (callers granted output:full).
        let mut probabilities: Vec<Value> = Vec::new();
        let mut classes = None;
        let mut all_probabilities = true;
        for row in &answer.rows {
            abstained.push(Value::Bool(matches!(row, RowAnswer::Abstain)));
            radii.push(match row {
                RowAnswer::Label {
                    certified_radius: Some(r),
                    ..
                } => round_f64(*r),
                _ => Value::Null,
            });
            match row {
                RowAnswer::Label {
                    label,
                    confidence,
                    probabilities: p,
                    ..
                } => {
                    if p.is_empty() || classes.is_some_and(|c| c != p.len()) {
                        all_probabilities = false;
                    } else {
                        classes = Some(p.len());
                        probabilities.extend(p.iter().map(|x| round_f64(*x)));
                    }
                    labels.push(Value::String(label.to_string()));
                    any_confidence |= confidence.is_some();
                    confidences.push(confidence.map_or(Value::Null, round_f64));
                    review.push(Value::Bool(false));
                    review_ids.push(Value::String(String::new()));
                }
                RowAnswer::Abstain => {
                    all_probabilities = false;
                    labels.push(Value::String("abstain".into()));
                    confidences.push(Value::Null);
                    review.push(Value::Bool(false));
                    review_ids.push(Value::String(String::new()));
                }
                RowAnswer::Uncertain { review_id } => {
                    all_probabilities = false;
                    labels.push(Value::String("uncertain".into()));
                    confidences.push(Value::Null);
                    review.push(Value::Bool(true));
                    review_ids.push(Value::String(review_id.clone()));
                }
                RowAnswer::Value(_) => {
                    all_probabilities = false;
                    labels.push(Value::String(String::new()));
                    confidences.push(Value::Null);
                    review.push(Value::Bool(false));
                    review_ids.push(Value::String(String::new()));
                }
            }
        }
        outputs.push(json!({"name": "label", "datatype": "BYTES", "shape": [n], "data": labels}));
        if any_confidence {
            outputs.push(json!({"name": "confidence", "datatype": "FP64", "shape": [n], "data": confidences}));
        }
        if let (true, Some(c)) = (all_probabilities, classes) {
            outputs.push(json!({"name": "probabilities", "datatype": "FP64", "shape": [n, c], "data": probabilities}));
        }
        if review.iter().any(|v| v == &Value::Bool(true)) {
            outputs.push(json!({"name": "requires_review", "datatype": "BOOL", "shape": [n], "data": review}));
            outputs.push(
                json!({"name": "review_id", "datatype": "BYTES", "shape": [n], "data": review_ids}),
            );
        }
        if abstained.iter().any(|v| v == &Value::Bool(true)) {
            outputs.push(
                json!({"name": "abstained", "datatype": "BOOL", "shape": [n], "data": abstained}),
            );
        }
        if radii.iter().any(|v| !v.is_null()) {
            outputs.push(
                json!({"name": "certified_radius", "datatype": "FP64", "shape": [n], "data": radii}),
            );
        }
    }
    let mut body = Map::new();
    body.insert("model_name".into(), Value::String(model.to_owned()));
    body.insert("model_version".into(), Value::String(version.to_owned()));
    if let Some(id) = echo_id {
        body.insert("id".into(), Value::String(id.to_owned()));
    }
    body.insert("outputs".into(), Value::Array(outputs));
    Value::Object(body)
}
