//! One test per reason code the gateway can produce, checking status, code and body.

use rampart_testkit::{TestGateway, CONFIDENT};
use serde_json::json;

use crate::error_body;

const PREDICT: &str = "/v1/models/demo/predict";

async fn post_str(gw: &TestGateway, body: &str) -> reqwest::Response {
    gw.post_raw(PREDICT, body.as_bytes().to_vec(), Some(&gw.key.clone()))
        .await
}

#[tokio::test]
async fn invalid_json() {
    let gw = TestGateway::demo().await;
    error_body(
        post_str(&gw, "{\"features\": [1,2,").await,
        400,
        "invalid_json",
    )
    .await;
}

#[tokio::test]
async fn missing_field() {
    let gw = TestGateway::demo().await;
    error_body(post_str(&gw, "{}").await, 400, "missing_field").await;
}

#[tokio::test]
async fn shape_mismatch() {
    let gw = TestGateway::demo().await;
    error_body(
        post_str(&gw, r#"{"features": [1,2,3,4,5]}"#).await,
        400,
        "shape_mismatch",
    )
    .await;
}

#[tokio::test]
async fn dtype_mismatch() {
    let gw = TestGateway::demo().await;
    error_body(
        post_str(&gw, r#"{"features": [5.1,"3.5",1.4,0.2]}"#).await,
        400,
        "dtype_mismatch",
    )
    .await;
}

#[tokio::test]
async fn non_finite() {
    let gw = TestGateway::demo().await;
    error_body(
        post_str(&gw, r#"{"features": [5.1,3.5,1e39,0.2]}"#).await,
        400,
        "non_finite",
    )
    .await;
    error_body(
        post_str(&gw, r#"{"features": [5.1,3.5,1e999,0.2]}"#).await,
        400,
        "non_finite",
    )
    .await;
}

#[tokio::test]
async fn out_of_range() {
    let gw = TestGateway::demo().await;
    error_body(
        post_str(&gw, r#"{"features": [5.1,3.5,1.4,9.0]}"#).await,
        400,
        "out_of_range",
    )
    .await;
}

#[tokio::test]
async fn unauthenticated() {
    let gw = TestGateway::demo().await;
    let body = serde_json::to_vec(&json!({"features": CONFIDENT})).unwrap();
    let none = gw.post_raw(PREDICT, body.clone(), None).await;
    assert!(none.headers().contains_key("www-authenticate"));
    let a = error_body(none, 401, "unauthenticated").await;
    let wrong = gw.post_raw(PREDICT, body, Some("rk_0000")).await;
    let b = error_body(wrong, 401, "unauthenticated").await;
    assert_eq!(a["error"], b["error"], "one body whatever was wrong");
}

#[tokio::test]
async fn model_not_found_never_echoes_the_name() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .post(
            "/v1/models/secret-model-name/predict",
            &json!({"features": CONFIDENT}),
        )
        .await;
    let body = error_body(resp, 404, "model_not_found").await;
    assert!(!body.to_string().contains("secret-model-name"));
}

#[tokio::test]
async fn not_found_and_method_not_allowed() {
    let gw = TestGateway::demo().await;
    error_body(gw.get("/nowhere").await, 404, "not_found").await;
    error_body(gw.get(PREDICT).await, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn payload_too_large() {
    let gw = TestGateway::start(&format!(
        "{}validate = {{ max_rows = 100000 }}\n",
        rampart_testkit::DEMO_MODEL_ENTRY
    ))
    .await;
    let big = format!(
        r#"{{"instances": [{}]}}"#,
        vec!["[5.1,3.5,1.4,0.2]"; 80_000].join(",")
    );
    error_body(post_str(&gw, &big).await, 413, "payload_too_large").await;
}

#[tokio::test]
async fn unsupported_media_type() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .http
        .post(format!("{}{PREDICT}", gw.base))
        .bearer_auth(&gw.key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("features=1")
        .send()
        .await
        .unwrap();
    error_body(resp, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn anomalous_input_by_zscore() {
    let gw = TestGateway::start(
        r#"
[[models]]
name = "demo"
path = "demo.onnx"
baseline = "demo.baseline.json"
validate = { ranges = "none" }
anomaly = { zscore = 3.0, mahalanobis = "off" }
"#,
    )
    .await;
    let resp = gw
        .post(PREDICT, &json!({"features": [5.1, 3.5, 1.4, 4.0]}))
        .await;
    let body = error_body(resp, 422, "anomalous_input").await;
    assert!(body["error"].as_str().unwrap().contains("feature"));
}

#[tokio::test]
async fn rate_limited() {
    let gw = TestGateway::start(&format!(
        "{}rate_limit = {{ per_minute = 1 }}\n",
        rampart_testkit::DEMO_MODEL_ENTRY
    ))
    .await;
    assert_eq!(
        gw.post(PREDICT, &json!({"features": CONFIDENT}))
            .await
            .status(),
        200
    );
    error_body(
        gw.post(PREDICT, &json!({"features": CONFIDENT})).await,
        429,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn audit_unavailable_fails_closed() {
    // The audit segment is a link to /dev/full: every write fails with ENOSPC, as on a full disk.
    let gw = TestGateway::demo().await;
    let dir = gw.stop().await;
    let audit = dir.path().join("data/audit");
    std::fs::remove_dir_all(&audit).unwrap();
    std::fs::create_dir_all(&audit).unwrap();
    std::os::unix::fs::symlink("/dev/full", audit.join("audit-00000000000000000000.jsonl"))
        .unwrap();
    let body = format!(
        "[audit]\ndir = \"{}\"\n{}",
        audit.display(),
        rampart_testkit::DEMO_MODEL_ENTRY
    );
    let gw = match TestGateway::try_start(&body).await {
        Ok(gw) => gw,
        Err(e) => panic!("gateway over /dev/full should start and fail per request: {e}"),
    };
    let resp = gw.post(PREDICT, &json!({"features": CONFIDENT})).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    error_body(resp, 503, "audit_unavailable").await;
    // Alerts are written by a background task: wait for it (bounded) rather than race it.
    let mut alerted = false;
    for _ in 0..50 {
        alerted = gw.alerts().iter().any(|a| a["kind"] == "audit_unavailable");
        if alerted {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(alerted);
}

#[tokio::test]
async fn request_timeout_for_a_slow_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = TestGateway::demo().await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {PREDICT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"feat",
        gw.key
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"reason\":\"request_timeout\""));
}
