//! Bounded resources: batch size, slow headers.

use rampart_testkit::{TestGateway, CONFIDENT};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error_body;

#[tokio::test]
async fn batch_larger_than_max_rows_is_refused() {
    let gw = TestGateway::start(&format!(
        "{}validate = {{ max_rows = 2 }}\n",
        rampart_testkit::DEMO_MODEL_ENTRY
    ))
    .await;
    let ok = gw
        .post(
            "/v1/models/demo/predict",
            &json!({"instances": [CONFIDENT, CONFIDENT]}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let resp = gw
        .post(
            "/v1/models/demo/predict",
            &json!({"instances": [CONFIDENT, CONFIDENT, CONFIDENT]}),
        )
        .await;
    error_body(resp, 400, "shape_mismatch").await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let gw = TestGateway::demo().await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /v1/models/demo/predict HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // The kit sets a 2 s header timeout; the server must close well before this 10 s guard.
    let mut buf = Vec::new();
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(
        r.is_ok(),
        "the connection stayed open without complete headers"
    );
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .http
        .get(format!("{}/v2/health/live", gw.base))
        .header(
            "x-padding",
            "a".repeat(2 * rampart_server::listen::MAX_HEADER_BYTES),
        )
        .send()
        .await;
    // hyper answers 431 or closes the connection: either way the request is not served.
    let status = resp.map(|r| r.status().as_u16());
    assert!(status.as_ref().map_or(true, |s| *s == 431), "{status:?}");
}
