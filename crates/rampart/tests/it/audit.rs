//! The audit log: every decision, durable before the response, chained, free of secrets.

use rampart_testkit::{TestGateway, CONFIDENT, UNCERTAIN};
use serde_json::json;

#[tokio::test]
async fn every_response_has_exactly_one_record_and_the_chain_verifies() {
    let gw = TestGateway::demo().await;
    let mut ids = Vec::new();
    let bodies = [
        json!({"features": CONFIDENT}),
        json!({"features": UNCERTAIN}),
        json!({"features": [1, 2]}),
        json!({"features": [5.0, 3.6, 6.0, 2.3]}),
        json!({}),
    ];
    for b in &bodies {
        let resp = gw.post("/v1/models/demo/predict", b).await;
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    let resp = gw
        .post_raw("/v1/models/demo/predict", b"{}".to_vec(), Some("rk_wrong"))
        .await;
    ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());

    let records = gw.audit_records();
    for id in &ids {
        let n = records
            .iter()
            .filter(|r| r["request_id"] == id.as_str())
            .count();
        assert_eq!(n, 1, "request {id} has {n} audit records");
    }
    let text = std::fs::read_dir(gw.audit_dir())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(!text.contains(&gw.key), "an API key reached the audit log");
    assert!(
        !text.contains("rk_wrong"),
        "a presented credential reached the audit log"
    );
    let report = rampart_audit::verify_dir(&gw.audit_dir()).unwrap();
    assert_eq!(report.decisions, ids.len() as u64);
}

#[tokio::test]
async fn concurrent_requests_are_all_durable_in_one_chain() {
    let gw = std::sync::Arc::new(
        TestGateway::start(&format!(
            "{}rate_limit = {{ per_minute = 100000 }}\n",
            rampart_testkit::DEMO_MODEL_ENTRY
        ))
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            gw.post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
                .await
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let report = rampart_audit::verify_dir(&gw.audit_dir()).unwrap();
    assert_eq!(report.decisions, 200);
    let text = gw.metrics().await;
    let groups: f64 = text
        .lines()
        .find(|l| l.starts_with("rampart_audit_commit_groups "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!((1.0..=200.0).contains(&groups));
}

#[tokio::test]
async fn the_chain_continues_across_restarts() {
    let gw = TestGateway::demo().await;
    gw.post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    let audit = gw.audit_dir();
    let dir = gw.stop().await;
    let body = format!(
        "[audit]\ndir = \"{}\"\n{}",
        audit.display(),
        rampart_testkit::DEMO_MODEL_ENTRY
    );
    let gw2 = TestGateway::start(&body).await;
    gw2.post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    let report = rampart_audit::verify_dir(&audit).unwrap();
    assert_eq!(report.decisions, 2);
    drop(dir);
}
