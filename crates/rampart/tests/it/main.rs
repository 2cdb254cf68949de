//! Integration tests: the real gateway on loopback ports, spoken to over HTTP. One test binary (one link) for
//! all of them; modules by concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod cli;
mod data;
mod forensics;
mod hostile_input;
mod identity;
mod limits;
mod models;
mod monitoring;
mod oip_v2;
mod outcomes;
mod reasons;
mod registry;
mod tls;

use serde_json::Value;

/// Asserts the one error body and returns it.
pub(crate) async fn error_body(resp: reqwest::Response, status: u16, reason: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status for {reason}");
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("x-request-id on every response")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.expect("a JSON error body");
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["code"], status);
    assert_eq!(body["request_id"], id.as_str());
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(4),
        "exactly error, code, reason, request_id"
    );
    body
}
