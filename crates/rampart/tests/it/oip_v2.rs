//! Open Inference Protocol v2 round trips.

use rampart_testkit::{TestGateway, CONFIDENT, UNCERTAIN};
use serde_json::{json, Value};

use crate::error_body;

#[tokio::test]
async fn health_and_server_metadata() {
    let gw = TestGateway::demo().await;
    let live: Value = gw.get("/v2/health/live").await.json().await.unwrap();
    assert_eq!(live["live"], true);
    let ready: Value = gw.get("/v2/health/ready").await.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    let meta: Value = gw.get("/v2").await.json().await.unwrap();
    assert_eq!(meta["name"], "rampart");
}

#[tokio::test]
async fn model_metadata_and_readiness() {
    let gw = TestGateway::demo().await;
    let meta: Value = gw.get("/v2/models/demo").await.json().await.unwrap();
    assert_eq!(meta["name"], "demo");
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(
        meta["inputs"][0],
        json!({"name": "X", "datatype": "FP32", "shape": [-1, 4]})
    );
    let v: Value = gw
        .get("/v2/models/demo/versions/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "demo");
    error_body(
        gw.get("/v2/models/demo/versions/9").await,
        404,
        "model_not_found",
    )
    .await;
    let ready: Value = gw.get("/v2/models/demo/ready").await.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    // Metadata needs a credential.
    let anon = gw
        .http
        .get(format!("{}/v2/models/demo", gw.base))
        .send()
        .await
        .unwrap();
    error_body(anon, 401, "unauthenticated").await;
}

#[tokio::test]
async fn infer_batch_round_trip_echoes_id() {
    let gw = TestGateway::demo().await;
    let data: Vec<f32> = [CONFIDENT, [6.5, 3.0, 5.5, 2.0], UNCERTAIN].concat();
    let req = json!({
        "id": "req-42",
        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": data}],
        "parameters": {"anything": {"nested": [1, 2]}},
    });
    let resp = gw.post("/v2/models/demo/infer", &req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "req-42");
    assert_eq!(body["model_name"], "demo");
    assert_eq!(body["model_version"], "1");
    let outputs = body["outputs"].as_array().unwrap();
    let by_name = |n: &str| outputs.iter().find(|o| o["name"] == n).cloned().unwrap();
    assert_eq!(
        by_name("label")["data"],
        json!(["setosa", "virginica", "uncertain"])
    );
    assert_eq!(by_name("label")["shape"], json!([3]));
    assert_eq!(
        by_name("requires_review")["data"],
        json!([false, false, true])
    );
    let conf = by_name("confidence")["data"].clone();
    assert_eq!(conf[0], 0.98);
    assert_eq!(conf[2], Value::Null);
    assert_eq!(gw.review_items().len(), 1);
}

#[tokio::test]
async fn versioned_infer_and_nested_data() {
    let gw = TestGateway::demo().await;
    let req = json!({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP64", "data": [CONFIDENT]}]});
    let resp = gw.post("/v2/models/demo/versions/1/infer", &req).await;
    assert_eq!(resp.status(), 200);
    let resp = gw.post("/v2/models/demo/versions/2/infer", &req).await;
    error_body(resp, 404, "model_not_found").await;
}

#[tokio::test]
async fn element_count_must_match_shape() {
    let gw = TestGateway::demo().await;
    let req =
        json!({"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": CONFIDENT}]});
    error_body(
        gw.post("/v2/models/demo/infer", &req).await,
        400,
        "shape_mismatch",
    )
    .await;
    let req =
        json!({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "BYTES", "data": CONFIDENT}]});
    error_body(
        gw.post("/v2/models/demo/infer", &req).await,
        400,
        "dtype_mismatch",
    )
    .await;
}
