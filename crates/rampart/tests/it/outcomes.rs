//! The five outcomes of the seed's pipeline, each audited under the response's request id.

use rampart_testkit::{TestGateway, CONFIDENT, UNCERTAIN};
use serde_json::json;

use crate::error_body;

#[tokio::test]
async fn success_is_sanitized_and_audited() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["ratelimit-limit"], "60");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"prediction": "setosa", "confidence": 0.98}));
    let records = gw.audit_records();
    let rec = records
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .expect("audited");
    assert_eq!(rec["decision"]["outcome"], "pass");
    assert_eq!(rec["decision"]["status"], 200);
    assert_eq!(rec["identity"], "tester");
    assert_eq!(rec["model"], "demo");
    assert_eq!(rec["output"], body);
    assert_eq!(rec["input_sha256"].as_str().map(str::len), Some(64));
}

#[tokio::test]
async fn uncertain_goes_to_review() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": UNCERTAIN}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["result"], "uncertain");
    assert_eq!(body["requires_review"], true);
    let review_id = body["review_id"].as_str().unwrap().to_owned();
    assert!(
        body.get("prediction").is_none(),
        "the withheld answer must not leak"
    );
    let items = gw.review_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["review_id"], review_id.as_str());
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["features"].as_array().map(Vec::len), Some(4));
    let rec = gw.audit_records().pop().unwrap();
    assert_eq!(rec["decision"]["outcome"], "uncertain");
}

#[tokio::test]
async fn anomalous_input_is_refused_with_an_alert() {
    let gw = TestGateway::demo().await;
    // Every feature within range, but a setosa sepal with virginica petals: only Mahalanobis sees it.
    let resp = gw
        .post(
            "/v1/models/demo/predict",
            &json!({"features": [5.0, 3.6, 6.0, 2.3]}),
        )
        .await;
    let body = error_body(resp, 422, "anomalous_input").await;
    // Alerts are written off the request path: wait for this one, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let alerted = loop {
        let found = gw
            .alerts()
            .iter()
            .any(|a| a["kind"] == "anomalous_input" && a["request_id"] == body["request_id"]);
        if found || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(alerted, "no anomalous_input alert for {body}");
    let rec = gw.audit_records().pop().unwrap();
    assert_eq!(rec["decision"]["reason"], "anomalous_input");
    assert_eq!(rec["decision"]["guard"], "anomaly_mahalanobis");
}

#[tokio::test]
async fn invalid_input_is_refused_and_audited() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": [1.0, 2.0]}))
        .await;
    let body = error_body(resp, 400, "shape_mismatch").await;
    let rec = gw.audit_records().pop().unwrap();
    assert_eq!(rec["request_id"], body["request_id"]);
    assert_eq!(rec["decision"]["outcome"], "reject");
    assert_eq!(rec["output"], serde_json::Value::Null);
}

#[tokio::test]
async fn rate_limited_after_quota_with_headers() {
    let gw = TestGateway::start(&format!(
        "{}rate_limit = {{ per_minute = 3 }}\n",
        rampart_testkit::DEMO_MODEL_ENTRY
    ))
    .await;
    for _ in 0..3 {
        let r = gw
            .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    let headers = resp.headers().clone();
    error_body(resp, 429, "rate_limited").await;
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=3;w=60");
    // Another identity has its own quota.
    let r = gw
        .post_raw(
            "/v1/models/demo/predict",
            serde_json::to_vec(&json!({"features": CONFIDENT})).unwrap(),
            Some(&gw.other_key.clone()),
        )
        .await;
    assert_eq!(r.status(), 200);
    let rec = gw.audit_records();
    assert_eq!(
        rec.iter()
            .filter(|r| r["decision"]["reason"] == "rate_limited")
            .count(),
        1
    );
}

#[tokio::test]
async fn observe_mode_flags_without_refusing() {
    let gw = TestGateway::start(
        r#"
[[models]]
name = "demo"
path = "demo.onnx"
baseline = "demo.baseline.json"
anomaly = { mode = "observe", mahalanobis = "baseline:max" }
"#,
    )
    .await;
    let resp = gw
        .post(
            "/v1/models/demo/predict",
            &json!({"features": [5.0, 3.6, 6.0, 2.3]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let rec = gw.audit_records().pop().unwrap();
    assert_eq!(rec["decision"]["outcome"], "pass");
    assert_eq!(rec["flags"][0]["reason"], "anomalous_input");
}

#[tokio::test]
async fn a_rate_limit_storm_raises_one_alert() {
    let gw = TestGateway::start(&format!(
        "[alerts]\nrate_limit_storm = 2\n{}rate_limit = {{ per_minute = 1 }}\n",
        rampart_testkit::DEMO_MODEL_ENTRY
    ))
    .await;
    for _ in 0..5 {
        gw.post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
            .await;
    }
    // Alerts reach their file through a bounded queue; give the writer a moment.
    let mut storms = 0;
    for _ in 0..50 {
        storms = gw
            .alerts()
            .iter()
            .filter(|a| a["kind"] == "rate_limit_storm")
            .count();
        if storms > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(storms, 1);
    assert!(gw.metrics().await.contains("rampart_alerts_raised_total 1"));
}
