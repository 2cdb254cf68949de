//! Serving from the signed model registry: refusal of a tampered version at start, hot swap under load, and
//! rollback, through the admin API, over HTTP.
//! See: issue #6

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rampart_testkit::{fixture_models, Setup, TestGateway, CONFIDENT};
use serde_json::{json, Value};

use crate::error_body;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo");

/// Rows on which the two versions below answer differently (a forest and a logistic regression).
const ROWS: [[f32; 4]; 4] = [
    CONFIDENT,
    [6.3, 3.4, 5.6, 2.4],
    [5.8, 2.7, 5.1, 1.9],
    [6.7, 3.1, 4.4, 1.4],
];

fn rampart(cwd: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .current_dir(cwd)
        .env("USER", "ci")
        .args(args)
        .output()
        .expect("rampart runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn ok(cwd: &Path, args: &[&str]) {
    let (code, text) = rampart(cwd, args);
    assert_eq!(code, 0, "{args:?}: {text}");
}

/// A registry under a temporary directory: `sign.key`(.pub); `models/demo/1` = the demo model (logistic
/// regression), `models/demo/2` = the iris forest fixture, both with the demo baseline and signed; version 1
/// active.
fn registry() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    ok(
        t.path(),
        &["keygen", "--kind", "ed25519", "--out", "sign.key"],
    );
    let versions = [
        ("1", PathBuf::from(DEMO).join("demo.onnx")),
        ("2", fixture_models().join("iris_forest.onnx")),
    ];
    for (v, onnx) in versions {
        let dir = t.path().join("models/demo").join(v);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(onnx, dir.join("demo.onnx")).unwrap();
        std::fs::copy(
            Path::new(DEMO).join("demo.baseline.json"),
            dir.join("demo.baseline.json"),
        )
        .unwrap();
        ok(
            t.path(),
            &[
                "model",
                "sign",
                "--key",
                "sign.key",
                &format!("models/demo/{v}"),
            ],
        );
    }
    ok(
        t.path(),
        &[
            "model",
            "activate",
            "--registry",
            "models",
            "demo",
            "1",
            "--public-key",
            "sign.key.pub",
        ],
    );
    t
}

/// Starts a gateway serving `demo` from the registry, signatures required, with an `ops` admin key.
async fn serve(reg: &Path) -> Result<TestGateway, String> {
    serve_with(reg, "").await
}

/// As [`serve`], with more config after the model entry.
async fn serve_with(reg: &Path, extra: &str) -> Result<TestGateway, String> {
    let server = format!(
        "require_signatures = true\nmodel_public_key_file = \"{}\"\n",
        reg.join("sign.key.pub").display()
    );
    let body = format!(
        "[[models]]\nname = \"demo\"\nregistry = \"{}\"\n\
         labels = [\"setosa\", \"versicolor\", \"virginica\"]\n\
         rate_limit = {{ per_minute = 1000000 }}\nconfidence = {{ min = 0.0 }}\n\
         anomaly = {{ mode = \"enforce\", zscore = 3.0, mahalanobis = \"baseline:max\" }}\n{extra}",
        reg.join("models").display()
    );
    TestGateway::start_with(Setup {
        server: &server,
        body: &body,
        keys: &[("ops", &["admin"])],
        ..Setup::default()
    })
    .await
}

async fn admin_post(gw: &TestGateway, path: &str) -> reqwest::Response {
    gw.http
        .post(format!("{}{path}", gw.admin))
        .bearer_auth(&gw.keys["ops"])
        .send()
        .await
        .unwrap()
}

async fn predict_bytes(gw: &TestGateway) -> Vec<u8> {
    let resp = gw
        .post("/v1/models/demo/predict", &json!({ "instances": ROWS }))
        .await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_tampered_onnx_file_in_the_active_version_refuses_start_naming_the_file() {
    let reg = registry();
    let onnx = reg.path().join("models/demo/1/demo.onnx");
    let mut bytes = std::fs::read(&onnx).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&onnx, bytes).unwrap();
    let err = serve(reg.path()).await.err().expect("start is refused");
    assert!(err.contains("models[0] (demo)"), "{err}");
    assert!(err.contains("changed file demo.onnx"), "{err}");
}

#[tokio::test]
async fn an_unsigned_plain_path_is_refused_when_signatures_are_required() {
    let err = TestGateway::start_with(Setup {
        server: "require_signatures = true\n",
        body: rampart_testkit::DEMO_MODEL_ENTRY,
        ..Setup::default()
    })
    .await
    .err()
    .expect("start is refused");
    assert!(err.contains("models[0].path"), "{err}");
    assert!(err.contains("require_signatures"), "{err}");
}

#[tokio::test]
async fn activation_under_load_loses_no_request_and_each_is_answered_by_one_version() {
    let reg = registry();
    let gw = Arc::new(serve(reg.path()).await.unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (gw, stop) = (gw.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = gw
                    .post("/v1/models/demo/predict", &json!({ "features": CONFIDENT }))
                    .await;
                assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
                let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
                ids.push(id);
            }
            ids
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = admin_post(&gw, "/admin/models/demo/versions/2/activate").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str()),
        (Some("1"), Some("2"))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut per_task = Vec::new();
    for t in tasks {
        per_task.push(t.await.unwrap());
    }
    let gw = Arc::into_inner(gw).expect("tasks are done");
    let dir = gw.stop().await;
    let records: Vec<Value> = rampart_testkit::read_jsonl_dir(&dir.path().join("data/audit"))
        .into_iter()
        .filter(|r| r["kind"] == "decision")
        .collect();
    let version_of = |id: &str| -> String {
        let found: Vec<&Value> = records.iter().filter(|r| r["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "request {id} audited once");
        found[0]["model_version"].as_str().unwrap().to_owned()
    };
    let mut seen = std::collections::BTreeSet::new();
    for ids in &per_task {
        // One task's requests are sequential: their versions go 1…1 then 2…2, never back.
        let versions: Vec<String> = ids.iter().map(|id| version_of(id)).collect();
        let first_new = versions
            .iter()
            .position(|v| v == "2")
            .unwrap_or(versions.len());
        assert!(
            versions[first_new..].iter().all(|v| v == "2"),
            "{versions:?}"
        );
        seen.extend(versions);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["1", "2"]);
    let total: usize = per_task.iter().map(Vec::len).sum();
    assert_eq!(records.len(), total, "no request lost or audited twice");
    // The change itself is an action record.
    let actions: Vec<Value> = rampart_testkit::read_jsonl_dir(&dir.path().join("data/audit"))
        .into_iter()
        .filter(|r| r["kind"] == "action")
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.to_string().contains("\"activate\"")
                && a.to_string().contains("\"to\":\"2\"")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn rollback_restores_byte_identical_outputs_and_the_history_is_kept() {
    let reg = registry();
    let gw = serve(reg.path()).await.unwrap();
    let before = predict_bytes(&gw).await;
    assert_eq!(
        admin_post(&gw, "/admin/models/demo/versions/2/activate")
            .await
            .status(),
        200
    );
    let during = predict_bytes(&gw).await;
    assert_ne!(before, during, "the two versions answer differently");
    let resp = admin_post(&gw, "/admin/models/demo/rollback").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str()),
        (Some("2"), Some("1"))
    );
    assert_eq!(predict_bytes(&gw).await, before);

    // Nothing left to roll back to: 409 conflict, still serving 1.
    error_body(
        admin_post(&gw, "/admin/models/demo/rollback").await,
        409,
        "conflict",
    )
    .await;
    let history: Value = gw
        .http
        .get(format!("{}/admin/models/demo/history", gw.admin))
        .bearer_auth(&gw.keys["ops"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["serving"], "1");
    let actions: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["activate", "activate", "rollback"]);
    let active = std::fs::read_to_string(reg.path().join("models/demo/active.json")).unwrap();
    assert!(active.contains("\"version\":\"1\""), "{active}");
    let records = gw.audit_records();
    let versions: Vec<&str> = records
        .iter()
        .map(|r| r["model_version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1", "2", "1"]);
}

#[tokio::test]
async fn a_tampered_version_is_refused_by_the_admin_api_and_the_old_one_serves_on() {
    let reg = registry();
    let gw = serve(reg.path()).await.unwrap();
    std::fs::write(reg.path().join("models/demo/2/demo.baseline.json"), b"{}").unwrap();
    let body = error_body(
        admin_post(&gw, "/admin/models/demo/versions/2/activate").await,
        422,
        "version_refused",
    )
    .await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("demo.baseline.json"),
        "{body}"
    );
    // Not a registry operation either: the registry still names 1.
    let active = std::fs::read_to_string(reg.path().join("models/demo/active.json")).unwrap();
    assert!(active.contains("\"version\":\"1\""), "{active}");
    error_body(
        admin_post(&gw, "/admin/models/demo/versions/9/activate").await,
        404,
        "not_found",
    )
    .await;
    // A predictor may not deploy.
    let resp = gw
        .http
        .post(format!(
            "{}/admin/models/demo/versions/2/activate",
            gw.admin
        ))
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap();
    error_body(resp, 403, "forbidden").await;
    let resp = gw
        .post("/v1/models/demo/predict", &json!({ "features": CONFIDENT }))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(gw
        .alerts()
        .iter()
        .any(|a| a["kind"] == "model_version_refused"));
}

#[tokio::test]
async fn a_cli_activation_while_serving_is_followed() {
    let reg = registry();
    let gw = serve(reg.path()).await.unwrap();
    ok(
        reg.path(),
        &[
            "model",
            "activate",
            "--registry",
            "models",
            "demo",
            "2",
            "--public-key",
            "sign.key.pub",
        ],
    );
    let mut serving = String::new();
    for _ in 0..50 {
        let models: Value = gw
            .http
            .get(format!("{}/admin/models", gw.admin))
            .bearer_auth(&gw.keys["ops"])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        serving = models["models"][0]["version"].as_str().unwrap().to_owned();
        if serving == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(serving, "2");
}

#[tokio::test]
async fn a_quarantine_rule_rolls_the_model_back_to_its_previous_version() {
    let reg = registry();
    let gw = serve_with(
        reg.path(),
        "\n[[incidents.rules]]\non = \"anomalous_input\"\naction = \"quarantine_model\"\n",
    )
    .await
    .unwrap();
    let v1 = predict_bytes(&gw).await;
    assert_eq!(
        admin_post(&gw, "/admin/models/demo/versions/2/activate")
            .await
            .status(),
        200
    );
    let resp = gw
        .post(
            "/v1/models/demo/predict",
            &json!({ "features": [5.0, 3.6, 6.0, 2.3] }),
        )
        .await;
    error_body(resp, 422, "anomalous_input").await;
    let mut history = Value::Null;
    for _ in 0..40 {
        history = gw
            .http
            .get(format!("{}/admin/models/demo/history", gw.admin))
            .bearer_auth(&gw.keys["ops"])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if history["serving"] == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(history["serving"], "1", "{history}");
    let last = history["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "rollback");
    assert_eq!(last["who"], "incident responder");
    assert_eq!(predict_bytes(&gw).await, v1);
    let actions: Vec<Value> = gw
        .audit_lines()
        .into_iter()
        .filter(|r| r["kind"] == "action")
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a["action"]["type"] == "quarantine_model"),
        "{actions:?}"
    );
}

/// The archive's entries, by path.
fn untar(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::copy(&mut (&mut entry).take(1 << 20), &mut bytes).unwrap();
        out.insert(name, bytes);
    }
    out
}

#[tokio::test]
async fn an_incident_bundle_holds_the_window_s_audit_alerts_actions_and_versions() {
    let reg = registry();
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let gw = serve(reg.path()).await.unwrap();
    predict_bytes(&gw).await;
    assert_eq!(
        admin_post(&gw, "/admin/models/demo/versions/2/activate")
            .await
            .status(),
        200
    );
    predict_bytes(&gw).await;
    let dir = gw.stop().await;
    let until = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let out = reg.path().join("incident.tar");
    let data = dir.path().join("data");
    let (code, text) = rampart(
        reg.path(),
        &[
            "incident",
            "export",
            "--since",
            &fmt(since),
            "--until",
            &fmt(until),
            "--audit",
            data.join("audit").to_str().unwrap(),
            "--alerts",
            data.join("alerts/alerts.jsonl").to_str().unwrap(),
            "--registry",
            "models",
            "--out",
            out.to_str().unwrap(),
            "--sign-key",
            "sign.key",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let files = untar(&out);
    let actions = String::from_utf8(files["actions.jsonl"].clone()).unwrap();
    assert!(actions.contains("\"activate\""), "{actions}");
    let alerts = String::from_utf8(files["alerts.jsonl"].clone()).unwrap();
    assert!(alerts.contains("model_version_changed"), "{alerts}");
    let history = String::from_utf8(files["registry/0/demo/history.jsonl"].clone()).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(files.contains_key("registry/0/demo/active.json"));
    assert!(files.contains_key("registry/0/demo/2/manifest.sig"));
    assert!(files.keys().any(|k| k.starts_with("audit/")));

    // The manifest is signed, and lists every other file with its digest.
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["format"], "rampart incident export v1");
    let listed: Vec<&str> = manifest["other_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"alerts.jsonl") && listed.contains(&"actions.jsonl"));
    let sig = String::from_utf8(files["manifest.json.sig"].clone()).unwrap();
    let (key_id, hex_sig) = sig.trim().split_once(' ').unwrap();
    let key = rampart_crypto::sign::VerifyingKey::load(&reg.path().join("sign.key.pub")).unwrap();
    let mut message = b"rampart incident export v1\n".to_vec();
    message.extend_from_slice(&files["manifest.json"]);
    assert_eq!(key_id, key.id().to_string());
    let mut raw = [0u8; 64];
    hex::decode_to_slice(hex_sig, &mut raw).unwrap();
    key.verify(&message, &raw).unwrap();
}

/// A hardened registry model stays hardened across a hot swap: the new version is built with the same
/// smoothing runner, so its answers still carry a certified radius for a caller allowed to see one.
#[tokio::test]
async fn a_hot_swap_keeps_the_model_hardened() {
    let reg = registry();
    let server = format!(
        "require_signatures = true\nmodel_public_key_file = \"{}\"\n",
        reg.path().join("sign.key.pub").display()
    );
    let body = format!(
        "[roles]\ncertified = [\"predict:*\", \"output:certificate\"]\nadmin = [\"admin:*\"]\n\n\
         [[models]]\nname = \"demo\"\nregistry = \"{}\"\n\
         labels = [\"setosa\", \"versicolor\", \"virginica\"]\n\
         confidence = {{ min = 0.0 }}\nanomaly = {{ mode = \"off\" }}\nvalidate = {{ ranges = \"none\" }}\n\
         smoothing = {{ sigma = 0.01, n0 = 20, n = 200, alpha = 0.001, mode = \"certify\", seed = 3 }}\n",
        reg.path().join("models").display()
    );
    let gw = TestGateway::start_with(Setup {
        server: &server,
        body: &body,
        keys: &[("ops", &["admin"]), ("cert", &["certified"])],
        ..Setup::default()
    })
    .await
    .unwrap();
    let certified = |gw: &TestGateway| {
        let req = gw
            .http
            .post(format!("{}/v1/models/demo/predict", gw.base))
            .bearer_auth(&gw.keys["cert"])
            .json(&json!({ "features": CONFIDENT }));
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let before = certified(&gw).await;
    assert!(
        before["certified_radius"].as_f64().unwrap_or(0.0) > 0.0,
        "{before}"
    );
    assert_eq!(
        admin_post(&gw, "/admin/models/demo/versions/2/activate")
            .await
            .status(),
        200
    );
    let after = certified(&gw).await;
    assert!(
        after["certified_radius"].as_f64().unwrap_or(0.0) > 0.0,
        "{after}"
    );
    let versions: Vec<String> = gw
        .audit_records()
        .iter()
        .map(|r| r["model_version"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(versions, ["1", "2"]);
}
