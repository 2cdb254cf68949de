//! Integration tests: the real gateway on loopback ports, spoken to over HTTP. One test binary (one link) for
//! all of them; modules by concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod certify;
mod cli;
mod data;
mod deploy;
mod forensics;
mod hardening;
mod hostile_input;
mod identity;
mod incident;
mod limits;
mod models;
mod monitoring;
mod oip_v2;
mod outcomes;
mod proxy;
mod reasons;
mod registry;
mod registry_serve;
mod serve;
mod shared_state;
mod tls;

use serde_json::Value;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// Runs the binary with `args`; (exit code, stdout, stderr).
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    run_in(std::path::Path::new("."), args)
}

/// Runs the binary in `cwd` (with `USER=ci`, which the registry records as who changed a version);
/// (exit code, stdout, stderr).
pub(crate) fn run_in(cwd: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .current_dir(cwd)
        .env("USER", "ci")
        .args(args)
        .output()
        .expect("rampart runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
