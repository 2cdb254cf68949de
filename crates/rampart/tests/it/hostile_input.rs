//! Hostile input: the server answers every malformed request with a 4xx and the one error body, never panics,
//! never echoes input, and never leaves an unread body on a connection.

use rampart_testkit::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error_body;

const PREDICT: &str = "/v1/models/demo/predict";

#[tokio::test]
async fn garbage_bodies_get_4xx_never_5xx() {
    let gw = TestGateway::demo().await;
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        b"\xff\xfe\x00garbage".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"features\": {}}".to_vec(),
        b"{\"features\": [[[[[[1]]]]]]}".to_vec(),
        format!(
            "{{\"features\": {}1{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        )
        .into_bytes(),
        b"{\"instances\": [[1,2,3,4]], \"instances\": [[1,2,3,4]]}".to_vec(),
        b"{\"features\": [1,2,3,4]}{\"features\": [1,2,3,4]}".to_vec(),
        b"{\"features\": [-0, 1e-400, 3, 4]}".to_vec(),
        "{\"features\": [\"\u{202e}\", 1, 2, 3]}"
            .as_bytes()
            .to_vec(),
    ];
    for body in bodies {
        let resp = gw
            .post_raw(PREDICT, body.clone(), Some(&gw.key.clone()))
            .await;
        let status = resp.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{status} for {:?}",
            String::from_utf8_lossy(&body)
        );
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("garbage") && !text.contains('\u{202e}'),
            "input echoed: {text}"
        );
    }
    // The server is still healthy.
    assert_eq!(gw.get("/v2/health/live").await.status(), 200);
}

#[tokio::test]
async fn oversized_content_length_is_refused_before_reading() {
    let gw = TestGateway::demo().await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Announce 100 MB and send none of it: the answer must come at once, not after a read.
    let head = format!(
        "POST {PREDICT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n",
        gw.key
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"));
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_refused() {
    let gw = TestGateway::demo().await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {PREDICT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        gw.key
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("2000\r\n{}\r\n", " ".repeat(0x2000));
    // 2 MiB against the 1 MiB cap; the server may stop reading (and close) before the end.
    for _ in 0..256 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"reason\":\"payload_too_large\""));
}

#[tokio::test]
async fn refused_before_body_closes_the_connection() {
    let gw = TestGateway::demo().await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A 401 with a body that itself looks like a second request: it must never be parsed as one.
    let smuggled = "GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n";
    let req = format!(
        "POST {PREDICT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "the body was parsed as a request: {text}"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let gw = TestGateway::demo().await;
    for path in [
        "/v2/health/live",
        "/v2",
        "/nowhere",
        "/v2/models/demo",
        "/v2/models/x",
    ] {
        let resp = gw.get(path).await;
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test]
async fn metrics_live_on_the_admin_listener_only() {
    let gw = TestGateway::demo().await;
    let _ = gw
        .post(
            PREDICT,
            &serde_json::json!({"features": rampart_testkit::CONFIDENT}),
        )
        .await;
    let text = gw.metrics().await;
    assert!(
        text.contains("rampart_requests_total{model=\"demo\",reason=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rampart_layer_duration_seconds_count{model=\"demo\",layer=\"validate\"} 1")
    );
    assert!(text.contains("rampart_model_duration_seconds_count{model=\"demo\"} 1"));
    error_body(gw.get("/metrics").await, 404, "not_found").await;
}

#[tokio::test]
async fn undecodable_path_parameters_get_the_one_error_body() {
    let gw = TestGateway::demo().await;
    let resp = gw
        .post(
            "/v1/models/%FF%FE/predict",
            &serde_json::json!({"features": [1, 2, 3, 4]}),
        )
        .await;
    error_body(resp, 404, "not_found").await;
    let resp = gw.get("/v2/models/%C3%28").await;
    error_body(resp, 404, "not_found").await;
    assert!(gw
        .audit_records()
        .iter()
        .any(|r| r["decision"]["reason"] == "not_found"));
}
