//! Automatic incident actions from alerts, their expiry and lifting, and the review queue's admin API, over
//! HTTP.
//! See: issue #6

use std::time::Duration;

use rampart_testkit::{Setup, TestGateway, CONFIDENT, DEMO_MODEL_ENTRY, UNCERTAIN};
use serde_json::{json, Value};

use crate::error_body;

/// Every feature within range, but only Mahalanobis sees it: 422 `anomalous_input` and its alert.
const ANOMALOUS: [f32; 4] = [5.0, 3.6, 6.0, 2.3];

async fn start(rules: &str) -> TestGateway {
    let body = format!("{DEMO_MODEL_ENTRY}\n{rules}");
    TestGateway::start_with(Setup {
        body: &body,
        keys: &[("ops", &["admin"])],
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn predict(gw: &TestGateway, key: &str, row: [f32; 4]) -> reqwest::Response {
    gw.post_raw(
        "/v1/models/demo/predict",
        serde_json::to_vec(&json!({ "features": row })).unwrap(),
        Some(key),
    )
    .await
}

async fn admin(gw: &TestGateway, method: reqwest::Method, path: &str) -> reqwest::Response {
    gw.http
        .request(method, format!("{}{path}", gw.admin))
        .bearer_auth(&gw.keys["ops"])
        .send()
        .await
        .unwrap()
}

/// Waits (at most 2 s) until `tester`'s next request gets `status`.
async fn until_status(gw: &TestGateway, status: u16) -> reqwest::Response {
    for _ in 0..40 {
        let resp = predict(gw, &gw.key, CONFIDENT).await;
        if resp.status().as_u16() == status {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never got {status}");
}

fn actions(gw: &TestGateway) -> Vec<Value> {
    gw.audit_lines()
        .into_iter()
        .filter(|r| r["kind"] == "action")
        .collect()
}

#[tokio::test]
async fn an_anomalous_input_alert_blocks_the_identity_and_the_block_expires() {
    let gw = start(
        "[[incidents.rules]]\non = \"anomalous_input\"\naction = \"block_identity\"\nduration_secs = 1\n",
    )
    .await;
    error_body(
        predict(&gw, &gw.key, ANOMALOUS).await,
        422,
        "anomalous_input",
    )
    .await;
    error_body(until_status(&gw, 403).await, 403, "blocked").await;
    // Only the identity the alert named.
    assert_eq!(predict(&gw, &gw.other_key, CONFIDENT).await.status(), 200);
    let listed: Value = admin(&gw, reqwest::Method::GET, "/admin/incidents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["actions"][0]["action"], "block_identity");
    assert_eq!(listed["actions"][0]["identity"], "tester");
    assert_eq!(listed["actions"][0]["on"], "anomalous_input");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(predict(&gw, &gw.key, CONFIDENT).await.status(), 200);
    let records = actions(&gw);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["action"]["action"].as_str().unwrap_or(""))
        .collect();
    assert!(kinds.contains(&"apply"), "{records:?}");
    assert!(kinds.contains(&"expire"), "{records:?}");
    let alerts = gw.alerts();
    assert!(
        alerts.iter().any(|a| a["kind"] == "incident_action"),
        "{alerts:?}"
    );
}

#[tokio::test]
async fn label_only_and_tightened_limits_apply_until_lifted() {
    let gw = start(
        "[[incidents.rules]]\non = \"anomalous_input\"\naction = \"label_only_identity\"\nduration_secs = 600\n\n\
         [[incidents.rules]]\non = \"anomalous_input\"\naction = \"tighten_rate_limit\"\nduration_secs = 600\nfactor = 20\n",
    )
    .await;
    let before: Value = predict(&gw, &gw.key, CONFIDENT).await.json().await.unwrap();
    assert!(before["confidence"].is_number(), "{before}");
    error_body(
        predict(&gw, &gw.key, ANOMALOUS).await,
        422,
        "anomalous_input",
    )
    .await;
    let mut listed = Value::Null;
    for _ in 0..40 {
        listed = admin(&gw, reqwest::Method::GET, "/admin/incidents")
            .await
            .json()
            .await
            .unwrap();
        if listed["actions"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = listed["actions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{listed}");
    let during: Value = predict(&gw, &gw.key, CONFIDENT).await.json().await.unwrap();
    assert_eq!(during["prediction"], before["prediction"]);
    assert!(
        during.get("confidence").is_none_or(Value::is_null),
        "{during}"
    );
    // 60 per minute / 20: a burst of 3, then 429.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(predict(&gw, &gw.key, CONFIDENT).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(predict(&gw, &gw.other_key, CONFIDENT).await.status(), 200);

    for a in list {
        let id = a["id"].as_str().unwrap();
        let resp = admin(
            &gw,
            reqwest::Method::DELETE,
            &format!("/admin/incidents/{id}"),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    error_body(
        admin(&gw, reqwest::Method::DELETE, "/admin/incidents/nope").await,
        404,
        "not_found",
    )
    .await;
    let after: Value = predict(&gw, &gw.key, CONFIDENT).await.json().await.unwrap();
    assert!(after["confidence"].is_number(), "{after}");
    let lifted = actions(&gw)
        .iter()
        .filter(|r| r.to_string().contains("\"lift\""))
        .count();
    assert_eq!(lifted, 2);
    // Each apply and each lift is an alert of its own (never folded into an earlier one).
    let mut raised = 0;
    for _ in 0..20 {
        raised = gw
            .alerts()
            .iter()
            .filter(|a| a["kind"] == "incident_action")
            .count();
        if raised == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(raised, 4);
}

#[tokio::test]
async fn a_rule_on_an_unknown_alert_kind_is_refused_at_start() {
    let err = TestGateway::try_start(&format!(
        "{DEMO_MODEL_ENTRY}\n[[incidents.rules]]\non = \"anomalus_input\"\naction = \"block_identity\"\nduration_secs = 1\n"
    ))
    .await
    .err()
    .expect("refused");
    assert!(err.contains("incidents.rules[0].on"), "{err}");
}

#[tokio::test]
async fn review_items_are_resolved_with_a_label_and_old_ones_expire() {
    let gw = start("").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let body: Value = predict(&gw, &gw.key, UNCERTAIN).await.json().await.unwrap();
        ids.push(body["review_id"].as_str().unwrap().to_owned());
    }
    let resp = gw
        .http
        .post(format!("{}/admin/review/{}/resolve", gw.admin, ids[0]))
        .bearer_auth(&gw.keys["ops"])
        .json(&json!({"label": "virginica"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resolve = actions(&gw)
        .into_iter()
        .find(|r| r.to_string().contains("review_resolve"))
        .expect("a review_resolve action record");
    assert!(resolve.to_string().contains("virginica"), "{resolve}");
    assert!(resolve.to_string().contains(&ids[0]), "{resolve}");

    // No max_age configured: the caller must say how old.
    error_body(
        admin(&gw, reqwest::Method::POST, "/admin/review/expire").await,
        409,
        "conflict",
    )
    .await;
    let expired: Value = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/review/expire?older_than_secs=0",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(expired["expired"], json!([ids[1]]));
    let pending: Value = admin(&gw, reqwest::Method::GET, "/admin/review?status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["items"], json!([]));
    let all: Value = admin(&gw, reqwest::Method::GET, "/admin/review")
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["resolved", "expired"]);
}
