//! Monitoring end to end: the demo model behind the real gateway, traffic replayed over HTTP, and the alerts,
//! metrics and audit events the monitors produce. Every wait is a poll with a deadline on something the
//! gateway exposes (a metric, the alerts file), never a fixed sleep.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_testkit::{Setup, TestGateway, CONFIDENT, DEMO_BASELINE};
use serde_json::{json, Value};

use crate::error_body;

/// The demo model, answering every decoded row (no range check, anomaly guard observing, no review gate, no
/// rate limit), so the monitors see exactly the traffic the test sends. Shifted rows would otherwise be
/// refused before they reach the model — which is the gateway's job, not the monitor's.
pub(crate) fn model(monitor: &str) -> String {
    format!(
        r#"
[[models]]
name = "demo"
path = "demo.onnx"
baseline = "demo.baseline.json"
labels = ["setosa", "versicolor", "virginica"]
rate_limit = {{ mode = "off" }}
validate = {{ ranges = "none" }}
anomaly = {{ mode = "observe", zscore = 3.0, mahalanobis = "baseline:max" }}
confidence = {{ min = 0.0 }}
monitor = {{ {monitor} }}
"#
    )
}

/// A deterministic generator (xorshift64*), so a failure replays exactly.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The baseline's reference sample (the demo's training rows) and per-feature standard deviations.
pub(crate) fn reference() -> (Vec<Vec<f64>>, Vec<f64>) {
    let b: Value = serde_json::from_slice(DEMO_BASELINE).unwrap();
    let rows: Vec<Vec<f64>> = serde_json::from_value(b["reference_sample"].clone()).unwrap();
    let std = b["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["std"].as_f64().unwrap())
        .collect();
    (rows, std)
}

/// One metric's value (the first series whose name and labels start with `series`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `f` until it returns `Some`, or fails after `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric_at_least(gw: &TestGateway, series: &str, n: f64) {
    wait_for(series, Duration::from_secs(60), || async {
        metric(&gw.metrics().await, series).filter(|v| *v >= n)
    })
    .await;
}

async fn predict_rows(gw: &TestGateway, key: &str, rows: &[Vec<f64>]) {
    let body = serde_json::to_vec(&json!({ "instances": rows })).unwrap();
    let resp = gw
        .post_raw("/v1/models/demo/predict", body, Some(key))
        .await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

/// Runs `rampart monitor report` on a stopped gateway's directory; returns the HTML.
fn report(dir: &Path, extra: &[&str]) -> String {
    let out = dir.join("report.html");
    let audit = dir.join("data/audit");
    let baseline = dir.join("demo.baseline.json");
    let mut args = vec![
        "monitor",
        "report",
        "--audit",
        audit.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model",
        "demo",
    ];
    args.extend_from_slice(extra);
    let run = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(out).unwrap();
    // One self-contained file: inline SVG, nothing fetched.
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    for external in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "{external} in the report");
    }
    html
}

fn kinds(gw: &TestGateway, kind: &str) -> Vec<Value> {
    gw.alerts()
        .into_iter()
        .filter(|a| a["kind"] == kind)
        .collect()
}

#[tokio::test]
async fn benign_replay_raises_nothing_and_shifted_traffic_raises_data_drift_within_a_window() {
    // Window 100; PSI is reported but not acted on below 1.0, because with 150 reference rows and 100-row
    // windows its noise alone reaches 0.25 (KS and MMD, with Bonferroni, carry the decision).
    // Inputs stored sealed, so the offline report can recompute per-feature drift over time.
    let keys = tempfile::tempdir().unwrap();
    let key_path = keys.path().join("audit.key");
    let made = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "keygen",
            "--kind",
            "aes256",
            "--out",
            key_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(made.status.success());
    let key = std::fs::read(&key_path).unwrap();
    let body = format!(
        "[audit]\nencryption_key_file = \"audit.key\"\nstore_input = true\n\n{}",
        model("window = 100, alpha = 0.01, psi_threshold = 1.0, mmd_permutations = 100, prada = false")
    );
    let gw = TestGateway::start_with(Setup {
        body: &body,
        files: &[("audit.key", &key)],
        ..Setup::default()
    })
    .await
    .unwrap();
    let (reference, std) = reference();
    let mut rng = Rng(0x5EED_1234);
    // Two windows of benign traffic: rows drawn from the training distribution, 10 per request.
    for _ in 0..20 {
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|_| reference[rng.below(reference.len())].clone())
            .collect();
        predict_rows(&gw, &gw.key, &rows).await;
    }
    metric_at_least(&gw, "rampart_drift_windows_total{model=\"demo\"}", 2.0).await;
    assert!(
        kinds(&gw, "data_drift").is_empty(),
        "benign traffic raised {:?}",
        kinds(&gw, "data_drift")
    );
    let text = gw.metrics().await;
    assert_eq!(
        metric(&text, "rampart_drift_detected_total{model=\"demo\"}"),
        Some(0.0)
    );
    assert!(text.contains("rampart_drift_ks_pvalue{"), "{text}");
    assert!(text.contains("rampart_drift_mmd_pvalue{model=\"demo\"}"));
    // The predicted-class mix matches the one `rampart profile --model` recorded in the baseline.
    assert!(kinds(&gw, "prediction_drift").is_empty());
    assert!(
        metric(
            &text,
            "rampart_drift_prediction_class_pvalue{model=\"demo\"}"
        )
        .is_some_and(|p| p > 0.01),
        "{text}"
    );

    // One window of shifted traffic: +1.5 standard deviations on sepal length and sepal width.
    for _ in 0..10 {
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|_| {
                let mut r = reference[rng.below(reference.len())].clone();
                r[0] += 1.5 * std[0];
                r[1] += 1.5 * std[1];
                r
            })
            .collect();
        predict_rows(&gw, &gw.key, &rows).await;
    }
    let alert = wait_for("a data_drift alert", Duration::from_secs(60), || async {
        kinds(&gw, "data_drift").into_iter().next()
    })
    .await;
    assert_eq!(alert["model"], "demo");
    let detail = alert["detail"].as_str().unwrap();
    assert!(detail.contains("window 2"), "{detail}");
    assert!(
        detail.contains("sepal_length") && detail.contains("sepal_width"),
        "{detail}"
    );
    let text = gw.metrics().await;
    assert_eq!(
        metric(&text, "rampart_drift_detected_total{model=\"demo\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "rampart_observations_dropped_total"),
        Some(0.0)
    );
    // The alert is in the tamper-evident log too.
    let audited = wait_for(
        "the alert in the audit log",
        Duration::from_secs(10),
        || async {
            gw.audit_lines()
                .into_iter()
                .find(|l| l["kind"] == "alert" && l["alert"]["kind"] == "data_drift")
        },
    )
    .await;
    assert_eq!(audited["alert"]["model"], "demo");

    let dir = gw.stop().await;
    // Without the key the report says why it cannot show feature drift, and shows the rest.
    let html = report(dir.path(), &[]);
    assert!(html.contains("cannot be recomputed"), "{html}");
    assert!(html.contains("data_drift"));
    // With it, KS and PSI per feature over time.
    let key = dir.path().join("audit.key");
    let html = report(dir.path(), &["--key-file", key.to_str().unwrap()]);
    assert!(
        html.contains("KS −log10(p)") && html.contains("sepal_width"),
        "{html}"
    );
    assert!(html.contains("Predicted classes") && html.contains("setosa"));
}

#[tokio::test]
async fn an_extraction_stream_is_flagged_for_its_identity_only() {
    // PRADA's delta is calibrated on the demo: benign iris clients' W stays above ~0.85, a line search falls
    // to ~0.7; 0.8 separates them (the README says to calibrate delta per model).
    let gw = TestGateway::start_with(Setup {
        body: &model("window = 100000, prada_delta = 0.8"),
        keys: &[
            ("attacker", &["predictor"]),
            ("alice", &["predictor"]),
            ("bob", &["predictor"]),
        ],
        ..Setup::default()
    })
    .await
    .unwrap();
    let (reference, std) = reference();
    let queries = 140;

    // The attacker: a line search between a setosa and a virginica training row (PRADA paper, §IV), one
    // query per request as an extraction client sends them.
    let attacker = {
        let mut rng = Rng(0xA77A_C4E5);
        let (a, b) = (reference[0].clone(), reference[100].clone());
        (0..queries)
            .map(|_| {
                let t = rng.uniform();
                a.iter().zip(&b).map(|(x, y)| x + (y - x) * t).collect()
            })
            .collect::<Vec<Vec<f64>>>()
    };
    // Benign clients: real rows, each measured again (a little noise), in their own order.
    let benign = |seed| {
        let mut rng = Rng(seed);
        (0..queries)
            .map(|_| {
                reference[rng.below(reference.len())]
                    .iter()
                    .zip(&std)
                    .map(|(v, s)| v + 0.2 * s * rng.normal())
                    .collect()
            })
            .collect::<Vec<Vec<f64>>>()
    };
    let streams = [
        ("attacker", attacker),
        ("alice", benign(0xA11CE)),
        ("bob", benign(0xB0B)),
    ];
    // Interleaved, as concurrent clients are.
    for i in 0..queries {
        for (id, rows) in &streams {
            predict_rows(&gw, &gw.keys[*id], &rows[i..=i]).await;
        }
    }
    let total = (queries * streams.len()) as f64;
    metric_at_least(&gw, "rampart_observations_total{model=\"demo\"}", total).await;
    let flagged = kinds(&gw, "model_extraction");
    let who: Vec<&str> = flagged
        .iter()
        .filter_map(|a| a["identity"].as_str())
        .collect();
    assert_eq!(who, ["attacker"], "{flagged:?}");
    assert_eq!(flagged[0]["severity"], "high");
    assert_eq!(flagged[0]["model"], "demo");
    let text = gw.metrics().await;
    assert_eq!(
        metric(&text, "rampart_prada_flagged_total{model=\"demo\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "rampart_prada_identities{model=\"demo\"}"),
        Some(3.0)
    );

    // The offline report lists the flagged identity, and only it.
    let dir = gw.stop().await;
    let html = report(dir.path(), &[]);
    let flagged = html
        .split("Flagged for model extraction")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("a flagged-identities table");
    assert!(flagged.contains("<td>attacker</td>"), "{flagged}");
    assert!(!flagged.contains("alice") && !flagged.contains("bob"));
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

async fn feedback(gw: &TestGateway, body: &Value) -> reqwest::Response {
    gw.post("/v1/models/demo/feedback", body).await
}

#[tokio::test]
async fn feedback_feeds_rolling_accuracy_and_a_drop_below_the_floor_alerts() {
    let gw = TestGateway::start(&model(
        "accuracy_window = 10, accuracy_floor = 0.8, prada = false",
    ))
    .await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let resp = gw
            .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
            .await;
        assert_eq!(resp.status(), 200);
        ids.push(request_id(&resp));
    }
    // Ten right labels: accuracy 1.
    for id in &ids[..10] {
        let resp = feedback(&gw, &json!({"request_id": id, "label": "setosa"})).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"request_id": id, "accepted": true, "rows": 1}));
    }
    let text = gw.metrics().await;
    assert_eq!(metric(&text, "rampart_accuracy{model=\"demo\"}"), Some(1.0));
    assert_eq!(
        metric(&text, "rampart_accuracy_samples{model=\"demo\"}"),
        Some(10.0)
    );
    assert!(kinds(&gw, "accuracy_drop").is_empty());

    // A label counts once; an unknown id, or one of another model, is the same 404.
    let resp = feedback(&gw, &json!({"request_id": ids[0], "label": "setosa"})).await;
    error_body(resp, 404, "unknown_request").await;
    let resp = feedback(&gw, &json!({"request_id": "nope", "label": "setosa"})).await;
    error_body(resp, 404, "unknown_request").await;
    // One label per row.
    let resp = feedback(&gw, &json!({"request_id": ids[10], "label": ["a", "b"]})).await;
    error_body(resp, 400, "shape_mismatch").await;
    let resp = feedback(&gw, &json!({"request_id": ids[10]})).await;
    error_body(resp, 400, "invalid_json").await;
    // Behind authentication like predict.
    let resp = gw
        .post_raw(
            "/v1/models/demo/feedback",
            serde_json::to_vec(&json!({"request_id": ids[10], "label": "setosa"})).unwrap(),
            None,
        )
        .await;
    error_body(resp, 401, "unauthenticated").await;

    // Three wrong labels bring the window of ten to 0.7, below the floor of 0.8.
    for id in &ids[10..13] {
        let resp = feedback(&gw, &json!({"request_id": id, "label": ["virginica"]})).await;
        assert_eq!(resp.status(), 200);
    }
    let text = gw.metrics().await;
    let acc = metric(&text, "rampart_accuracy{model=\"demo\"}").unwrap();
    assert!((acc - 0.7).abs() < 1e-9, "{acc}");
    assert_eq!(
        metric(
            &text,
            "rampart_feedback_total{model=\"demo\",outcome=\"wrong\"}"
        ),
        Some(3.0)
    );
    let alert = wait_for(
        "an accuracy_drop alert",
        Duration::from_secs(10),
        || async { kinds(&gw, "accuracy_drop").into_iter().next() },
    )
    .await;
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["model"], "demo");

    // Each taken feedback is an audited action.
    let actions = wait_for("13 feedback actions", Duration::from_secs(10), || async {
        let a: Vec<Value> = gw
            .audit_lines()
            .into_iter()
            .filter(|l| l["kind"] == "action" && l["action"]["action"] == "feedback")
            .collect();
        (a.len() == 13).then_some(a)
    })
    .await;
    assert_eq!(actions[0]["action"]["request_id"], ids[0].as_str());
    assert_eq!(actions[0]["action"]["identity"], "tester");
    assert_eq!(actions[12]["action"]["correct"], 0);
}

#[tokio::test]
async fn a_model_without_a_baseline_gets_the_monitors_that_need_none() {
    let gw = TestGateway::start(
        r#"
[[models]]
name = "demo"
path = "demo.onnx"
labels = ["setosa", "versicolor", "virginica"]
validate = { ranges = "none" }
anomaly = { mode = "off" }
monitor = { window = 2 }
"#,
    )
    .await;
    for _ in 0..3 {
        let resp = gw
            .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    metric_at_least(&gw, "rampart_observations_total{model=\"demo\"}", 3.0).await;
    let text = gw.metrics().await;
    // PRADA and the change detectors run; no drift window ever closes without a reference sample.
    assert_eq!(
        metric(&text, "rampart_prada_identities{model=\"demo\"}"),
        Some(1.0)
    );
    assert!(text.contains("rampart_latency_changes_total{model=\"demo\"}"));
    assert_eq!(
        metric(&text, "rampart_drift_windows_total{model=\"demo\"}"),
        Some(0.0)
    );
    // And feedback works without one.
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    let id = request_id(&resp);
    let resp = feedback(&gw, &json!({"request_id": id, "label": "setosa"})).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn monitoring_off_observes_nothing_and_a_bad_monitor_config_refuses_to_start() {
    let gw = TestGateway::start(&format!("[monitoring]\nenabled = false\n{}", model(""))).await;
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    assert_eq!(resp.status(), 200);
    let text = gw.metrics().await;
    assert!(
        !text.contains("rampart_observations_total{model="),
        "{text}"
    );
    assert_eq!(
        metric(&text, "rampart_observations_dropped_total"),
        Some(0.0)
    );

    // A categorical index beyond the baseline's four features is caught at start-up, naming the model.
    let err = TestGateway::try_start(&model("categorical = [7]"))
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("models[0]") && err.contains("categorical"),
        "{err}"
    );
    let err = TestGateway::try_start(&model("window = 1, alpha = 2.0"))
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("models[0].monitor.window") && err.contains("models[0].monitor.alpha"),
        "{err}"
    );
}

/// The response issue's end to end: PRADA flags a line-searching identity, the `model_extraction` alert
/// triggers a `block_identity` rule, the identity gets 403 `blocked` while others are served, and the block
/// expires by itself.
#[tokio::test]
async fn an_extraction_alert_blocks_the_identity_until_the_block_expires() {
    let body = format!(
        "{}\n[[incidents.rules]]\non = \"model_extraction\"\naction = \"block_identity\"\nduration_secs = 2\n",
        model("window = 100000, prada_delta = 0.8")
    );
    let gw = TestGateway::start_with(Setup {
        body: &body,
        keys: &[("attacker", &["predictor"]), ("alice", &["predictor"])],
        ..Setup::default()
    })
    .await
    .unwrap();
    let (reference, _) = reference();
    let mut rng = Rng(0xA77A_C4E5);
    let (a, b) = (reference[0].clone(), reference[100].clone());
    let post = |key: String, row: Vec<f64>| {
        let gw = &gw;
        async move {
            gw.post_raw(
                "/v1/models/demo/predict",
                serde_json::to_vec(&json!({ "features": row })).unwrap(),
                Some(&key),
            )
            .await
            .status()
            .as_u16()
        }
    };
    let mut blocked = false;
    for _ in 0..400 {
        let t = rng.uniform();
        let row: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + (y - x) * t).collect();
        if post(gw.keys["attacker"].clone(), row).await == 403 {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "the extraction stream was never blocked");
    assert_eq!(
        post(gw.keys["alice"].clone(), reference[3].clone()).await,
        200
    );
    let actions: Vec<Value> = gw
        .audit_lines()
        .into_iter()
        .filter(|l| l["kind"] == "action")
        .collect();
    assert!(
        actions
            .iter()
            .any(|l| l.to_string().contains("block_identity")),
        "{actions:?}"
    );
    // The block expires without a restart.
    let served_again = wait_for("the block to expire", Duration::from_secs(10), || async {
        (post(gw.keys["attacker"].clone(), reference[3].clone()).await == 200).then_some(())
    })
    .await;
    let () = served_again;
}
