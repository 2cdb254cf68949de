//! Unit tests: the breaker's states, the OIP v2 codec, the failure mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rampart_core::Reason;
use rampart_model::ModelKind;

use super::breaker::{Admit, Breaker, State, Transition};
use super::config::UpstreamKind;
use super::oip::{self, Dtype, Malformed, Spec};
use super::CallError;

const COOL: Duration = Duration::from_millis(100);

#[test]
fn breaker_opens_after_consecutive_failures_only() {
    let b = Breaker::new(3, COOL);
    let t0 = Instant::now();
    assert_eq!(b.failure(t0), None);
    assert_eq!(b.failure(t0), None);
    // A success in between resets the count.
    assert_eq!(b.success(), None);
    assert_eq!(b.failure(t0), None);
    assert_eq!(b.failure(t0), None);
    assert_eq!(b.admit(t0), Admit::Call);
    assert_eq!(b.failure(t0), Some(Transition::Opened));
    assert_eq!(b.state(), State::Open);
    assert!(matches!(b.admit(t0), Admit::Refuse(d) if d == COOL));
}

#[test]
fn breaker_half_opens_after_cool_down_with_one_probe() {
    let b = Breaker::new(1, COOL);
    let t0 = Instant::now();
    assert_eq!(b.failure(t0), Some(Transition::Opened));
    let later = t0 + COOL;
    assert_eq!(b.admit(later), Admit::Probe);
    assert_eq!(b.state(), State::HalfOpen);
    // Only one probe at a time.
    assert!(matches!(b.admit(later), Admit::Refuse(_)));
    assert_eq!(b.success(), Some(Transition::Closed));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.admit(later), Admit::Call);
}

#[test]
fn failed_probe_reopens_without_a_new_alert() {
    let b = Breaker::new(1, COOL);
    let t0 = Instant::now();
    b.failure(t0);
    assert_eq!(b.admit(t0 + COOL), Admit::Probe);
    assert_eq!(b.failure(t0 + COOL), None);
    assert_eq!(b.state(), State::Open);
    assert!(matches!(b.admit(t0 + COOL), Admit::Refuse(_)));
    assert_eq!(b.admit(t0 + COOL * 2), Admit::Probe);
}

#[test]
fn abandoned_probe_hands_over_to_the_next_call() {
    let b = Breaker::new(1, COOL);
    let t0 = Instant::now();
    b.failure(t0);
    assert_eq!(b.admit(t0 + COOL), Admit::Probe);
    b.abandon();
    assert_eq!(b.admit(t0 + COOL), Admit::Probe);
}

#[test]
fn late_success_does_not_close_an_open_breaker() {
    let b = Breaker::new(1, COOL);
    b.failure(Instant::now());
    assert_eq!(b.success(), None);
    assert_eq!(b.state(), State::Open);
}

fn spec(kind: ModelKind) -> Spec {
    Spec {
        input: "X".into(),
        dtype: Dtype::Fp32,
        width: 2,
        kind,
        labels: None,
    }
}

#[test]
fn metadata_gives_width_classes_and_labels() {
    let meta = br#"{"name":"m","versions":["1"],"platform":"onnx",
        "inputs":[{"name":"X","datatype":"FP32","shape":[-1,30]}],
        "outputs":[{"name":"label","datatype":"BYTES","shape":[-1]},
                   {"name":"probabilities","datatype":"FP64","shape":[-1,2]}],
        "parameters":{"kind":"classifier","labels":["a","b"]}}"#;
    let s = oip::parse_metadata(meta, "probabilities", UpstreamKind::Classifier, &[]).unwrap();
    assert_eq!(s.width, 30);
    assert_eq!(s.input, "X");
    assert_eq!(s.dtype, Dtype::Fp32);
    assert_eq!(s.kind, ModelKind::Classifier { classes: 2 });
    assert_eq!(s.labels, Some(vec!["a".to_owned(), "b".to_owned()]));
}

#[test]
fn metadata_without_the_output_or_a_fixed_width_is_refused() {
    let no_output = br#"{"inputs":[{"name":"X","datatype":"FP32","shape":[-1,4]}],
        "outputs":[{"name":"label","datatype":"BYTES","shape":[-1]}]}"#;
    let e =
        oip::parse_metadata(no_output, "probabilities", UpstreamKind::Classifier, &[]).unwrap_err();
    assert!(e.contains("no output 'probabilities'"), "{e}");
    let open_width = br#"{"inputs":[{"name":"X","datatype":"FP32","shape":[-1,-1]}],
        "outputs":[{"name":"probabilities","datatype":"FP32","shape":[-1,2]}]}"#;
    let e = oip::parse_metadata(open_width, "probabilities", UpstreamKind::Classifier, &[])
        .unwrap_err();
    assert!(e.contains("fixed feature count"), "{e}");
    let strings = br#"{"inputs":[{"name":"X","datatype":"BYTES","shape":[-1,4]}],"outputs":[]}"#;
    assert!(oip::parse_metadata(strings, "p", UpstreamKind::Classifier, &[]).is_err());
    assert!(oip::parse_metadata(b"<html>", "p", UpstreamKind::Classifier, &[]).is_err());
}

#[test]
fn open_class_count_comes_from_labels() {
    let meta = br#"{"inputs":[{"name":"X","datatype":"FP64","shape":[-1,4]}],
        "outputs":[{"name":"probabilities","datatype":"FP32","shape":[-1,-1]}]}"#;
    let labels = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let s = oip::parse_metadata(meta, "probabilities", UpstreamKind::Classifier, &labels).unwrap();
    assert_eq!(s.kind, ModelKind::Classifier { classes: 3 });
    assert_eq!(s.dtype, Dtype::Fp64);
    assert!(oip::parse_metadata(meta, "probabilities", UpstreamKind::Classifier, &[]).is_err());
}

#[test]
fn request_is_oip_v2_json_with_exact_floats() {
    let s = spec(ModelKind::Classifier { classes: 2 });
    let body = oip::encode_request(&s, "probabilities", &[5.1, 0.1, -3.0, 1e-7], 2).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["inputs"][0]["name"], "X");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([2, 2]));
    assert_eq!(v["inputs"][0]["datatype"], "FP32");
    assert_eq!(v["outputs"][0]["name"], "probabilities");
    let data: Vec<f32> = v["inputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(data, vec![5.1, 0.1, -3.0, 1e-7]);
    assert!(oip::encode_request(&s, "p", &[f32::NAN, 0.0], 1).is_err());
}

#[test]
fn answer_is_read_into_output() {
    let kind = ModelKind::Classifier { classes: 2 };
    let body = br#"{"model_name":"m","outputs":[
        {"name":"label","datatype":"BYTES","shape":[2],"data":["a","b"]},
        {"name":"probabilities","datatype":"FP64","shape":[2,2],"data":[0.9,0.1,0.25,0.75]}]}"#;
    let o = oip::decode_response(body, "probabilities", kind, 2).unwrap();
    assert_eq!(o.n_rows, 2);
    assert_eq!(o.values, vec![0.9, 0.1, 0.25, 0.75]);
    let reg = ModelKind::Regressor { outputs: 1 };
    let flat =
        br#"{"outputs":[{"name":"variable","datatype":"FP32","shape":[3],"data":[1.5,2,3]}]}"#;
    let o = oip::decode_response(flat, "variable", reg, 3).unwrap();
    assert_eq!(o.values, vec![1.5, 2.0, 3.0]);
}

#[test]
fn malformed_answers_are_refused() {
    let kind = ModelKind::Classifier { classes: 2 };
    let cases: [(&[u8], Malformed); 6] = [
        (b"not json", Malformed::NotJson),
        (
            br#"{"outputs":[{"name":"other","datatype":"FP32","shape":[1,2],"data":[0.5,0.5]}]}"#,
            Malformed::NoOutput("probabilities".into()),
        ),
        (
            br#"{"outputs":[{"name":"probabilities","datatype":"BYTES","shape":[1,2],"data":["a","b"]}]}"#,
            Malformed::Dtype("probabilities".into()),
        ),
        (
            // The count must match the declared shape.
            br#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.5]}]}"#,
            Malformed::Shape {
                name: "probabilities".into(),
                shape: vec![1, 2],
                rows: 1,
                columns: 2,
            },
        ),
        (
            br#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.5,"x"]}]}"#,
            Malformed::NotNumber("probabilities".into()),
        ),
        (
            br#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[1.5,-0.5]}]}"#,
            Malformed::NotProbability("probabilities".into()),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            oip::decode_response(body, "probabilities", kind, 1).unwrap_err(),
            expected
        );
    }
    // Rows other than those sent.
    let two = br#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[2,2],"data":[0.5,0.5,0.5,0.5]}]}"#;
    assert!(oip::decode_response(two, "probabilities", kind, 1).is_err());
}

#[test]
fn failures_map_to_stable_reasons() {
    let reason = |e: CallError| e.rejection().reason;
    assert_eq!(reason(CallError::Timeout(200)), Reason::UpstreamTimeout);
    assert_eq!(
        reason(CallError::Connect("refused".into())),
        Reason::ModelUnavailable
    );
    assert_eq!(reason(CallError::Open(COOL)), Reason::ModelUnavailable);
    assert_eq!(reason(CallError::Overloaded(64)), Reason::Overloaded);
    assert_eq!(reason(CallError::Status(429)), Reason::Overloaded);
    assert_eq!(reason(CallError::Status(500)), Reason::UpstreamError);
    assert_eq!(reason(CallError::TooLarge(1024)), Reason::UpstreamError);
    assert_eq!(
        reason(CallError::Malformed(Malformed::NotJson)),
        Reason::UpstreamError
    );
    // Nothing of the upstream's answer is in what the client sees.
    let r = CallError::Malformed(Malformed::NoOutput("secret_output".into())).rejection();
    assert!(!r.detail.contains("secret_output"));
}

#[test]
fn only_upstream_faults_count_towards_the_breaker() {
    assert!(CallError::Status(503).is_upstream_fault());
    assert!(CallError::Status(401).is_upstream_fault());
    assert!(CallError::Timeout(1).is_upstream_fault());
    // An upstream's refusal of one input must not let a caller open the breaker for everyone.
    assert!(!CallError::Status(400).is_upstream_fault());
    assert!(!CallError::Status(422).is_upstream_fault());
    assert!(!CallError::Overloaded(1).is_upstream_fault());
}

/// A keep-alive HTTP/1.1 stub: metadata for `GET`, `answer` for `POST` (`None`: never answers).
async fn stub(answer: Option<&'static str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const META: &str = r#"{"inputs":[{"name":"X","datatype":"FP32","shape":[-1,2]}],
        "outputs":[{"name":"probabilities","datatype":"FP32","shape":[-1,2]}]}"#;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    buf.drain(..end + 4 + len);
                    let body = if head.starts_with("get ") {
                        META
                    } else if let Some(a) = answer {
                        a
                    } else {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    };
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn connect(port: u16, extra: &str) -> super::Upstream {
    let text = format!(
        r#"url = "http://127.0.0.1:{port}"
model = "m"
{extra}"#
    );
    let cfg: super::UpstreamConfig = toml::from_str(&text).unwrap();
    super::Upstream::connect(
        "m",
        &cfg,
        &[],
        |p| p.to_path_buf(),
        crate::metrics::UpstreamMetrics::detached(),
    )
    .await
    .unwrap()
}

// See: issue 11 (hardening wrappers call `Backend::predict` on a blocking thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_predict_works_on_a_blocking_thread() {
    use rampart_model::Backend;
    let port = stub(Some(
        r#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.25,0.75]}]}"#,
    ))
    .await;
    let up = std::sync::Arc::new(connect(port, "").await);
    assert_eq!(up.info().width, 2);
    assert_eq!(up.info().kind, ModelKind::Classifier { classes: 2 });
    let blocking = up.clone();
    let out = tokio::task::spawn_blocking(move || blocking.predict(&[1.0, 2.0], 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.values, vec![0.25, 0.75]);
    // The wrong count is the caller's error, caught before any request.
    let short = up.clone();
    let err = tokio::task::spawn_blocking(move || short.predict(&[1.0], 1))
        .await
        .unwrap();
    assert!(matches!(
        err,
        Err(rampart_model::RunError::WrongLength { .. })
    ));
}

// See: issue 11 (a per-upstream concurrency limit: excess is refused, not queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_max_in_flight_are_overloaded() {
    let port = stub(None).await;
    let up = std::sync::Arc::new(connect(port, "max_in_flight = 1\ntimeout_ms = 60000").await);
    let hanging = up.clone();
    let first = tokio::spawn(async move { hanging.infer(&[1.0, 2.0], 1).await });
    while up.in_flight.available_permits() > 0 {
        tokio::task::yield_now().await;
    }
    let second = up.infer(&[1.0, 2.0], 1).await;
    assert!(
        matches!(second, Err(CallError::Overloaded(1))),
        "{second:?}"
    );
    assert_eq!(second.unwrap_err().rejection().reason, Reason::Overloaded);
    first.abort();
}
