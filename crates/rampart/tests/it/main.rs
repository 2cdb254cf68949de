//! Integration tests: the real gateway on loopback ports, spoken to over HTTP. One test binary (one link) for
//! all of them; modules by concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod certify;
mod cli;
mod data;
mod deploy;
mod forensics;
mod hostile_input;
mod identity;
mod incident;
mod limits;
mod models;
mod monitoring;
mod oip_v2;
mod outcomes;
mod reasons;
mod registry;
mod registry_serve;
mod serve;
mod shared_state;
mod tls;

use serde_json::Value;

/// `rampart serve` refuses uid 0 without `--allow-root`; CI and some sandboxes run the tests as root.
pub(crate) fn serve_root_args() -> &'static [&'static str] {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        });
    if uid.as_deref() == Some("0") {
        &["--allow-root"]
    } else {
        &[]
    }
}

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
