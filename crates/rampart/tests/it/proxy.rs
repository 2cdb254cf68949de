//! Proxy mode (issue 11): a model served by an upstream OIP v2 server, with the whole pipeline in front of it.
//! The upstream is a second Rampart *process* serving the breast-cancer model in process (both speak OIP v2);
//! a tiny TCP stub stands in for upstreams that hang or answer garbage.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rampart_testkit::{fixture_models, Setup, TestGateway};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::Ca;
use crate::{error_body, run_in, serve_root_args, BIN};

const LABELS: &str = r#"labels = ["malignant", "benign"]"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn baseline() -> PathBuf {
    repo().join("bench/data/breast_cancer.baseline.json")
}

/// The first `n` rows of the breast-cancer test set (30 features each).
fn rows(n: usize) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(repo().join("bench/data/breast_cancer_test.csv")).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let mut v: Vec<f32> = l.split(',').map(|x| x.parse().unwrap()).collect();
            v.pop(); // the label column
            v
        })
        .collect()
}

/// A loopback port nothing listens on now (the OS picked it; the caller binds it next).
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `rampart serve` process serving the breast-cancer model as `upstream-cancer`, with every layer that would
/// change its answers off, probabilities at 4 decimals, and an identity `proxy` granted `output:full`.
struct UpstreamServer {
    dir: tempfile::TempDir,
    port: u16,
    key: String,
    child: Option<Child>,
    tls: bool,
}

impl UpstreamServer {
    /// `tls`: (server CA, client CA) — TLS with mTLS; the client certificate alone then authenticates.
    fn start(tls: Option<(&Ca, &Ca)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (_, out, err) = run_in(
            dir.path(),
            &[
                "key",
                "new",
                "--id",
                "proxy",
                "--role",
                "proxy",
                "--keys-file",
                "keys.toml",
            ],
        );
        let key = out.lines().next().unwrap_or_default().trim().to_owned();
        assert!(key.starts_with("rk_") || !key.is_empty(), "key new: {err}");
        let transport = match tls {
            Some((server_ca, client_ca)) => {
                let (cert, k) = server_ca.server();
                rampart_testkit::write_private(&dir.path().join("tls.crt"), cert.as_bytes())
                    .unwrap();
                rampart_testkit::write_private(&dir.path().join("tls.key"), k.as_bytes()).unwrap();
                rampart_testkit::write_private(
                    &dir.path().join("clients.crt"),
                    client_ca.pem().as_bytes(),
                )
                .unwrap();
                "tls = { cert_file = \"tls.crt\", key_file = \"tls.key\", client_ca_file = \"clients.crt\" }"
            }
            None => "insecure_plaintext = true",
        };
        let port = free_port();
        let config = format!(
            r#"[server]
require_signatures = false
{transport}
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"
data_dir = "data"

[auth]
api_keys_file = "keys.toml"
client_cert_roles = ["proxy"]

[roles]
proxy = ["predict:*", "output:full"]

[[models]]
name = "upstream-cancer"
path = "{model}"
{LABELS}
rate_limit = {{ mode = "off" }}
validate = {{ ranges = "none" }}
anomaly = {{ mode = "off" }}
confidence = {{ min = 0.0 }}
output = {{ decimals = 4 }}
"#,
            model = fixture_models().join("breast_cancer_folded.onnx").display()
        );
        std::fs::write(dir.path().join("rampart.toml"), config).unwrap();
        let mut server = Self {
            dir,
            port,
            key,
            child: None,
            tls: tls.is_some(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        self.child = Some(serve(self.dir.path(), self.port));
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn localhost_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

/// `rampart serve --config rampart.toml` in `dir`, once it listens on `port`.
fn serve(dir: &Path, port: u16) -> Child {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--config", "rampart.toml"])
        .args(serve_root_args())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // The listener binds once the models are loaded: a connection means it serves.
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    panic!("rampart serve did not start:\n{log}");
}

impl Drop for UpstreamServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The proxy's `[[models]]` entry, in front of `upstream_table`; every layer on (anomaly in observe mode, so
/// that a test-set row far out is flagged and still answered, like the direct call).
fn proxy_entry(upstream_table: &str) -> String {
    format!(
        r#"
[[models]]
name = "cancer"
baseline = "{baseline}"
{LABELS}
upstream = {upstream_table}
validate = {{ ranges = "baseline", margin = 0.5 }}
anomaly = {{ mode = "observe", zscore = 3.0 }}
confidence = {{ min = 0.0 }}
output = {{ decimals = 4 }}
"#,
        baseline = baseline().display()
    )
}

async fn start_proxy(upstream_table: &str, files: &[(&str, &[u8])]) -> Result<TestGateway, String> {
    let body = proxy_entry(upstream_table);
    TestGateway::start_with(Setup {
        body: &body,
        files,
        ..Setup::default()
    })
    .await
}

/// A proxy in front of `up`, authenticating with its API key.
async fn proxy_for(up: &UpstreamServer, extra: &str) -> TestGateway {
    let table = format!(
        r#"{{ url = "{}", model = "upstream-cancer", timeout_ms = 5000, api_key_file = "upstream.key"{extra} }}"#,
        up.url()
    );
    start_proxy(&table, &[("upstream.key", up.key.as_bytes())])
        .await
        .expect("the proxy starts")
}

async fn predict(http: &reqwest::Client, base: &str, key: &str, row: &[f32]) -> reqwest::Response {
    http.post(format!("{base}/v1/models/{}/predict", "cancer"))
        .bearer_auth(key)
        .json(&json!({ "features": row }))
        .send()
        .await
        .unwrap()
}

async fn direct(http: &reqwest::Client, up: &UpstreamServer, row: &[f32]) -> Value {
    http.post(format!("{}/v1/models/upstream-cancer/predict", up.url()))
        .bearer_auth(&up.key)
        .json(&json!({ "features": row }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn count_alerts(gw: &TestGateway, kind: &str) -> usize {
    gw.alerts().iter().filter(|a| a["kind"] == kind).count()
}

/// Waits (bounded) for the alerts file to show `kind`: alerts are written by a background task.
async fn wait_alert(gw: &TestGateway, kind: &str) -> bool {
    for _ in 0..100 {
        if count_alerts(gw, kind) > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn metric_line(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains("model=\"cancer\""))
        .map(str::to_owned)
}

// See: issue 11.
#[tokio::test]
async fn proxied_answers_equal_direct_ones() {
    let up = UpstreamServer::start(None);
    let gw = proxy_for(&up, "").await;
    let http = reqwest::Client::new();
    for row in rows(12) {
        let want = direct(&http, &up, &row).await;
        let resp = predict(&http, &gw.base, &gw.key, &row).await;
        assert_eq!(resp.status(), 200);
        let got: Value = resp.json().await.unwrap();
        assert_eq!(got["prediction"], want["prediction"], "{got} vs {want}");
        assert_eq!(got["confidence"], want["confidence"], "{got} vs {want}");
        // The proxy's caller has no output:full: the upstream's every-class answer does not reach it.
        assert!(got.get("top_k").is_none(), "{got}");
    }

    // OIP v2 through the proxy: the proxy's own names, its own outputs, the id echoed.
    let batch = rows(3);
    let req = json!({
        "id": "b-1",
        "inputs": [{"name": "X", "shape": [3, 30], "datatype": "FP32", "data": batch.concat()}],
    });
    let resp = gw.post("/v2/models/cancer/infer", &req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["model_name"], "cancer");
    assert_eq!(body["id"], "b-1");
    let names: Vec<&str> = body["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["label", "confidence"], "{body}");

    // Metadata served by the proxy comes from the upstream's.
    let meta: Value = gw.get("/v2/models/cancer").await.json().await.unwrap();
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 30]));

    // Audited and measured like any other model.
    assert!(gw.audit_records().len() >= 13);
    let metrics = gw.metrics().await;
    assert!(
        metric_line(&metrics, "rampart_upstream_duration_seconds_count").is_some(),
        "{metrics}"
    );
    assert_eq!(
        metric_line(&metrics, "rampart_upstream_breaker_state").as_deref(),
        Some("rampart_upstream_breaker_state{model=\"cancer\"} 0")
    );
}

// See: issue 11.
#[tokio::test]
async fn upstream_killed_opens_the_breaker_and_restart_closes_it() {
    let mut up = UpstreamServer::start(None);
    let gw = proxy_for(
        &up,
        ", retries = 0, breaker = { failures = 2, cool_down_ms = 200 }",
    )
    .await;
    let http = reqwest::Client::new();
    let row = rows(1).remove(0);
    assert_eq!(predict(&http, &gw.base, &gw.key, &row).await.status(), 200);

    up.kill();
    // Each call fails (503 connect refused, or 502 for a pooled connection cut mid-request) until the
    // breaker opens; then every call is 503 model_unavailable at once, without touching the upstream.
    let mut opened = false;
    for _ in 0..10 {
        let resp = predict(&http, &gw.base, &gw.key, &row).await;
        let status = resp.status().as_u16();
        assert!(status == 503 || status == 502, "status {status}");
        if count_alerts(&gw, "upstream_down") > 0 || wait_alert(&gw, "upstream_down").await {
            opened = true;
            break;
        }
    }
    assert!(opened, "the breaker never opened: {:?}", gw.alerts());
    let resp = predict(&http, &gw.base, &gw.key, &row).await;
    assert!(resp.headers().get("retry-after").is_some());
    error_body(resp, 503, "model_unavailable").await;
    let metrics = gw.metrics().await;
    assert!(
        metric_line(&metrics, "rampart_upstream_breaker_state")
            .is_some_and(|l| l.ends_with(" 1") || l.ends_with(" 2")),
        "{metrics}"
    );

    // Back on the same port: after the cool-down one probe goes through, succeeds, and closes the breaker.
    up.spawn();
    let mut recovered = false;
    for _ in 0..200 {
        if predict(&http, &gw.base, &gw.key, &row).await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(recovered, "the proxy never recovered");
    assert!(
        wait_alert(&gw, "upstream_recovered").await,
        "{:?}",
        gw.alerts()
    );
    assert_eq!(predict(&http, &gw.base, &gw.key, &row).await.status(), 200);
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_line(&metrics, "rampart_upstream_breaker_state").as_deref(),
        Some("rampart_upstream_breaker_state{model=\"cancer\"} 0")
    );
}

/// What the stub does with an inference request (metadata requests are always answered).
enum Stub {
    /// Reads the request and never answers.
    Hang,
    /// Answers 200 with this body.
    Reply(Vec<u8>),
}

const STUB_METADATA: &str = r#"{"name":"stub","versions":["1"],"platform":"onnx",
"inputs":[{"name":"X","datatype":"FP32","shape":[-1,30]}],
"outputs":[{"name":"probabilities","datatype":"FP32","shape":[-1,2]}]}"#;

/// A keep-alive HTTP/1.1 stub upstream on a loopback port.
async fn stub(mode: Stub) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mode = Arc::new(mode);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(stub_connection(s, mode.clone()));
        }
    });
    port
}

async fn stub_connection(mut s: tokio::net::TcpStream, mode: Arc<Stub>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        let body: &[u8] = if head.starts_with("get ") {
            STUB_METADATA.as_bytes()
        } else {
            match mode.as_ref() {
                Stub::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                Stub::Reply(b) => b,
            }
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() || s.write_all(body).await.is_err() {
            return;
        }
    }
}

// See: issue 11.
#[tokio::test]
async fn slow_upstream_is_504_upstream_timeout() {
    let port = stub(Stub::Hang).await;
    let table =
        format!(r#"{{ url = "http://127.0.0.1:{port}", model = "stub", timeout_ms = 300 }}"#);
    let gw = start_proxy(&table, &[]).await.unwrap();
    let http = reqwest::Client::new();
    let resp = predict(&http, &gw.base, &gw.key, &rows(1)[0]).await;
    error_body(resp, 504, "upstream_timeout").await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("rampart_upstream_failures_total{model=\"cancer\",kind=\"timeout\"} 1"),
        "{metrics}"
    );
}

// See: issue 11.
#[tokio::test]
async fn malformed_or_oversized_answers_are_502_and_never_echoed() {
    let garbage = br#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.5,"<script>leak</script>"]}]}"#;
    let port = stub(Stub::Reply(garbage.to_vec())).await;
    let table = format!(r#"{{ url = "http://127.0.0.1:{port}", model = "stub" }}"#);
    let gw = start_proxy(&table, &[]).await.unwrap();
    let http = reqwest::Client::new();
    let resp = predict(&http, &gw.base, &gw.key, &rows(1)[0]).await;
    let body = error_body(resp, 502, "upstream_error").await;
    assert!(!body.to_string().contains("leak"), "{body}");

    let mut huge = br#"{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.5,0.5]}],"pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 64 * 1024));
    huge.extend_from_slice(b"\"}");
    let port = stub(Stub::Reply(huge)).await;
    let table = format!(
        r#"{{ url = "http://127.0.0.1:{port}", model = "stub", max_response_bytes = 16384 }}"#
    );
    let gw = start_proxy(&table, &[]).await.unwrap();
    let resp = predict(&http, &gw.base, &gw.key, &rows(1)[0]).await;
    error_body(resp, 502, "upstream_error").await;
}

// See: issue 11.
#[tokio::test]
async fn mtls_to_the_upstream() {
    let server_ca = Ca::new("upstream server ca");
    let client_ca = Ca::new("upstream client ca");
    let up = UpstreamServer::start(Some((&server_ca, &client_ca)));
    let (cert, key) = client_ca.leaf("rampart-proxy", Vec::new());
    let ca_pem = server_ca.pem();
    let files: &[(&str, &[u8])] = &[
        ("upstream-ca.crt", ca_pem.as_bytes()),
        ("proxy.crt", cert.as_bytes()),
        ("proxy.key", key.as_bytes()),
    ];
    // The client certificate is the credential (the upstream maps it to the `proxy` role): no API key.
    let table = format!(
        r#"{{ url = "{}", model = "upstream-cancer", ca_file = "upstream-ca.crt", client_cert_file = "proxy.crt", client_key_file = "proxy.key" }}"#,
        up.localhost_url()
    );
    let gw = start_proxy(&table, files).await.expect("the proxy starts");
    let http = reqwest::Client::new();
    let resp = predict(&http, &gw.base, &gw.key, &rows(1)[0]).await;
    assert_eq!(resp.status(), 200);

    // Without the client certificate the upstream refuses the handshake: start-up fails, naming it.
    let table = format!(
        r#"{{ url = "{}", model = "upstream-cancer", ca_file = "upstream-ca.crt" }}"#,
        up.localhost_url()
    );
    let err = start_proxy(&table, files).await.err().expect("refused");
    assert!(err.contains("cannot read the model metadata"), "{err}");
}

// See: issue 11.
#[tokio::test]
async fn start_up_checks_the_upstream_against_the_entry() {
    let up = UpstreamServer::start(None);
    let files: &[(&str, &[u8])] = &[("upstream.key", up.key.as_bytes())];
    let table = |extra: &str| {
        format!(
            r#"{{ url = "{}", model = "upstream-cancer", api_key_file = "upstream.key"{extra} }}"#,
            up.url()
        )
    };
    // Labels that differ from the upstream's.
    let refused = |body: String| async move {
        TestGateway::start_with(Setup {
            body: &body,
            files,
            ..Setup::default()
        })
        .await
        .err()
        .expect("refused")
    };
    let err =
        refused(proxy_entry(&table("")).replace(LABELS, r#"labels = ["benign", "malignant"]"#))
            .await;
    assert!(err.contains("labels"), "{err}");
    // A baseline of another width (the demo's 4 features).
    let err = refused(
        proxy_entry(&table("")).replace(&baseline().display().to_string(), "demo.baseline.json"),
    )
    .await;
    assert!(
        err.contains("30 features") && err.contains("baseline"),
        "{err}"
    );
    // Without a credential the upstream refuses the metadata request.
    let no_key = format!(r#"{{ url = "{}", model = "upstream-cancer" }}"#, up.url());
    let err = start_proxy(&no_key, &[]).await.err().expect("refused");
    assert!(err.contains("status 401"), "{err}");
    // Nothing listening: a clear start-up error naming the upstream.
    let dead = format!(
        r#"{{ url = "http://127.0.0.1:{}", model = "upstream-cancer" }}"#,
        free_port()
    );
    let err = start_proxy(&dead, &[]).await.err().expect("refused");
    assert!(err.contains("cannot read the model metadata"), "{err}");
}

// See: issue 11. The binary in proxy mode: `check-config` reads the upstream's metadata, and `serve` reads the
// upstream's credential from outside the config's directory under its own sandbox.
#[tokio::test]
async fn proxy_binary_checks_and_serves() {
    let up = UpstreamServer::start(None);
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("upstream.key");
    rampart_testkit::write_private(&key_file, up.key.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = |url: &str| {
        format!(
            r#"[server]
require_signatures = false
insecure_plaintext = true
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"
data_dir = "data"

[auth]
anonymous = true
{entry}"#,
            entry = proxy_entry(&format!(
                r#"{{ url = "{url}", model = "upstream-cancer", api_key_file = "{}" }}"#,
                key_file.display()
            ))
        )
    };
    std::fs::write(dir.path().join("rampart.toml"), config(&up.url())).unwrap();
    let (code, _, err) = run_in(dir.path(), &["check-config", "rampart.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("✓ build"), "{err}");

    let mut proxy = serve(dir.path(), port);
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/models/cancer/predict"))
        .json(&json!({ "features": rows(1)[0] }))
        .send()
        .await
        .unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(resp.status(), 200);

    let dead = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(dir.path().join("rampart.toml"), config(&dead)).unwrap();
    let (code, _, err) = run_in(dir.path(), &["check-config", "rampart.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read the model metadata"), "{err}");
}

// See: issue 11 — smoothing and feature squeezing only need predictions, so they work against an upstream:
// the hardened runner calls the upstream's blocking `Backend::predict` from the hardening pool.
#[tokio::test]
async fn smoothing_and_squeezing_run_against_an_upstream() {
    let up = UpstreamServer::start(None);
    let table = format!(
        r#"{{ url = "{}", model = "upstream-cancer", timeout_ms = 5000, api_key_file = "upstream.key" }}"#,
        up.url()
    );
    // Noise far below the features' scale: the smoothed class is the plain one, and 20 agreeing votes are
    // far inside alpha, so nothing abstains.
    let body = format!(
        "{}smoothing = {{ sigma = 0.001, n0 = 10, n = 20, alpha = 0.01, mode = \"predict\", seed = 7 }}\n\
         adversarial = {{ mode = \"observe\", method = \"feature_squeezing\", squeezers = [\"round:3\"], threshold = 2.0 }}\n",
        proxy_entry(&table)
    );
    let gw = TestGateway::start_with(Setup {
        body: &body,
        files: &[("upstream.key", up.key.as_bytes())],
        ..Setup::default()
    })
    .await
    .expect("a hardened proxy starts");
    let http = reqwest::Client::new();
    for row in rows(4) {
        let want = direct(&http, &up, &row).await;
        let resp = predict(&http, &gw.base, &gw.key, &row).await;
        assert_eq!(resp.status(), 200);
        let got: Value = resp.json().await.unwrap();
        assert_eq!(got["prediction"], want["prediction"], "{got} vs {want}");
    }
    // Each request cost the upstream more than one call (the noisy copies, the squeezed input).
    let metrics = gw.metrics().await;
    let calls: f64 = metric_line(&metrics, "rampart_upstream_duration_seconds_count")
        .and_then(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    assert!(calls > 4.0, "{calls} upstream calls for 4 requests");
}
