//! Reference models from scikit-learn served end to end, checked against onnxruntime's outputs.

use rampart_testkit::{fixture_models, TestGateway};
use serde_json::{json, Value};

fn expected(name: &str) -> Value {
    let path = fixture_models().join(format!("{name}.expected.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The rows of a fixture's `sample_input` (flat, row-major in the file).
fn sample_rows(exp: &Value) -> Vec<Vec<f64>> {
    let input = &exp["sample_input"];
    let width = input["shape"][1].as_u64().unwrap() as usize;
    input["data"]
        .as_array()
        .unwrap()
        .chunks(width)
        .map(|r| r.iter().map(|v| v.as_f64().unwrap()).collect())
        .collect()
}

fn entry(name: &str, extra: &str) -> String {
    format!(
        "[[models]]\nname = \"m\"\npath = \"{}\"\nvalidate = {{ ranges = \"none\" }}\nanomaly = {{ mode = \"off\" }}\n\
         confidence = {{ min = 0.0 }}\noutput = {{ decimals = 6 }}\n{extra}",
        fixture_models().join(format!("{name}.onnx")).display()
    )
}

#[tokio::test]
async fn scaler_pipeline_classifier_end_to_end() {
    // Pipeline(StandardScaler, LogisticRegression): the `Scaler` op stock tract cannot load.
    let exp = expected("cancer_logreg");
    let gw = TestGateway::start(&entry("cancer_logreg", "")).await;
    let rows = sample_rows(&exp);
    let resp = gw
        .post("/v1/models/m/predict", &json!({"instances": rows}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let preds = body["predictions"].as_array().unwrap();
    let labels = exp["expected_outputs"]["label"]["data"].as_array().unwrap();
    let probs = exp["expected_outputs"]["probabilities"]["data"]
        .as_array()
        .unwrap();
    assert_eq!(preds.len(), labels.len());
    for (i, p) in preds.iter().enumerate() {
        let label = labels[i].as_i64().unwrap();
        assert_eq!(p["prediction"], label.to_string(), "row {i}");
        let want = probs[i * 2 + label as usize].as_f64().unwrap();
        let got = p["confidence"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 + 1e-5,
            "row {i}: {got} vs {want}"
        );
    }
}

#[tokio::test]
async fn scaler_pipeline_regressor_end_to_end() {
    let exp = expected("diabetes_ridge");
    let gw = TestGateway::start(&entry("diabetes_ridge", "")).await;
    let input = &exp["sample_input"];
    let width = input["shape"][1].as_u64().unwrap() as usize;
    let data: Vec<f64> = input["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let rows = data.len() / width;
    let req = json!({"inputs": [{"name": input["name"], "shape": [rows, width], "datatype": "FP32", "data": data}]});
    let resp = gw.post("/v2/models/m/infer", &req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let out = &body["outputs"][0];
    assert_eq!(out["name"], "prediction");
    let (_, want) = exp["expected_outputs"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let want = want["data"].as_array().unwrap();
    let got = out["data"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0) + 1e-6,
            "{g} vs {w}"
        );
    }
}

#[tokio::test]
async fn labels_must_match_the_model() {
    let err = TestGateway::try_start(&entry("cancer_logreg", "labels = [\"a\", \"b\", \"c\"]\n"))
        .await
        .err()
        .expect("three labels for a two-class model must not start");
    assert!(err.contains("labels"), "{err}");
}

#[tokio::test]
async fn a_broken_model_file_is_a_clear_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.onnx");
    std::fs::write(&bad, b"not an onnx file").unwrap();
    let body = format!(
        "[[models]]\nname = \"m\"\npath = \"{}\"\nvalidate = {{ ranges = \"none\" }}\nanomaly = {{ mode = \"off\" }}\n",
        bad.display()
    );
    let err = TestGateway::try_start(&body)
        .await
        .err()
        .expect("must not start");
    assert!(err.contains("broken.onnx"), "{err}");
    assert!(err.contains("models[0]"), "{err}");
}

/// Dynamic batching changes how the model is called, never what a caller gets: 32 concurrent callers of a
/// batched model receive, row for row, what an unbatched gateway answers each alone.
#[tokio::test]
async fn batched_answers_equal_unbatched_ones() {
    let exp = expected("cancer_logreg");
    let rows = sample_rows(&exp);
    let plain = TestGateway::start(&entry("cancer_logreg", "")).await;
    let batched = TestGateway::start(&entry(
        "cancer_logreg",
        "batch = { max_batch = 16, max_delay_us = 2000 }\n",
    ))
    .await;
    let requests: Vec<Value> = (0..32)
        .map(|i| {
            // One to three rows per request, so batches mix request sizes.
            let n = 1 + i % 3;
            let chosen: Vec<&Vec<f64>> = (0..n).map(|k| &rows[(i + k) % rows.len()]).collect();
            json!({ "instances": chosen })
        })
        .collect();
    let answers = futures_util::future::join_all(requests.iter().map(|req| async {
        let resp = batched.post("/v1/models/m/predict", req).await;
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().await.unwrap()
    }))
    .await;
    for (req, got) in requests.iter().zip(answers) {
        let resp = plain.post("/v1/models/m/predict", req).await;
        assert_eq!(resp.status(), 200);
        let want: Value = resp.json().await.unwrap();
        assert_eq!(got["predictions"], want["predictions"]);
    }
}

#[tokio::test]
async fn bad_batch_settings_refuse_to_start() {
    let err = TestGateway::try_start(&entry("cancer_logreg", "batch = { max_batch = 0 }\n"))
        .await
        .err()
        .unwrap();
    assert!(err.contains("batch.max_batch"), "{err}");
}
