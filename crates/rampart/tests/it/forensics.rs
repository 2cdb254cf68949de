//! The audit log as evidence: signed checkpoints checked by `rampart audit verify`, pseudonymized
//! identities, sealed records opened and replayed, alerts recorded and deduplicated, exports that verify.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{run as rampart, BIN};
use rampart_testkit::{TestGateway, CONFIDENT, DEMO_MODEL_ENTRY};
use serde_json::{json, Value};

/// In range feature by feature, but a setosa sepal with virginica petals: Mahalanobis refuses it.
const ANOMALOUS: [f32; 4] = [5.0, 3.6, 6.0, 2.3];

fn keygen(kind: &str, path: &Path) {
    let (code, _, err) = rampart(&["keygen", "--kind", kind, "--out", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

struct Keys {
    _dir: tempfile::TempDir,
    signing: PathBuf,
    public: PathBuf,
    hmac: PathBuf,
    aes: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("audit.key");
    let hmac = dir.path().join("pseudonym.key");
    let aes = dir.path().join("seal.key");
    keygen("ed25519", &signing);
    keygen("hmac", &hmac);
    keygen("aes256", &aes);
    Keys {
        public: dir.path().join("audit.key.pub"),
        _dir: dir,
        signing,
        hmac,
        aes,
    }
}

async fn gateway(audit: &str) -> TestGateway {
    TestGateway::start(&format!(
        "[audit]\n{audit}\n[alerts]\ndedupe_secs = 60\n{DEMO_MODEL_ENTRY}"
    ))
    .await
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn predict(gw: &TestGateway, features: [f32; 4]) -> String {
    let resp = gw
        .post("/v1/models/demo/predict", &json!({ "features": features }))
        .await;
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

fn audit_text(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[tokio::test]
async fn signed_log_verifies_with_the_cli_and_a_flipped_byte_is_named() {
    let k = keys();
    let gw = gateway(&format!(
        "signing_key_file = \"{}\"\ncheckpoint_every = 3\n",
        path(&k.signing)
    ))
    .await;
    for _ in 0..10 {
        predict(&gw, CONFIDENT).await;
    }
    let audit = gw.audit_dir();
    let dir = gw.stop().await;

    let (code, out, err) = rampart(&[
        "audit",
        "verify",
        path(&audit),
        "--public-key",
        path(&k.public),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains("every checkpoint verified with key"), "{out}");
    assert!(
        !out.contains("unsigned tail"),
        "shutdown signs the tail: {out}"
    );

    let (code, out, _) = rampart(&["audit", "verify", path(&audit)]);
    assert_eq!(code, 0);
    assert!(out.contains("NOT checked"), "{out}");

    // Flip one byte inside the fourth line's request id.
    let file = rampart_audit::log_files(&audit).unwrap()[0].1.clone();
    let mut text = std::fs::read_to_string(&file).unwrap();
    let line_start = text.match_indices('\n').nth(2).unwrap().0 + 1;
    let at = line_start + text[line_start..].find("\"request_id\":\"").unwrap() + 14;
    let flipped = if &text[at..=at] == "0" { "1" } else { "0" };
    text.replace_range(at..=at, flipped);
    std::fs::write(&file, text).unwrap();
    let (code, out, _) = rampart(&[
        "audit",
        "verify",
        path(&audit),
        "--public-key",
        path(&k.public),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED: audit log fails at seq"), "{out}");
    assert!(out.contains("but the previous line hashes to"), "{out}");
    drop(dir);
}

#[tokio::test]
async fn pseudonyms_hide_identities_and_alerts_are_deduplicated_and_audited() {
    let k = keys();
    let gw = gateway(&format!(
        "pseudonymize = true\npseudonym_key_file = \"{}\"\n",
        path(&k.hmac)
    ))
    .await;
    predict(&gw, CONFIDENT).await;
    let first = predict(&gw, ANOMALOUS).await;
    predict(&gw, ANOMALOUS).await;

    let records = gw.audit_records();
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|r| r["identity"].as_str().unwrap().starts_with("ps_")));
    // The repeat is suppressed: one alert in the file, one alert record in the audit.
    let mut alert_lines = Vec::new();
    for _ in 0..100 {
        alert_lines = gw
            .audit_lines()
            .into_iter()
            .filter(|l| l["kind"] == "alert")
            .collect();
        if !alert_lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alert_lines.len(), 1, "{alert_lines:?}");
    assert_eq!(alert_lines[0]["alert"]["request_id"], first.as_str());
    assert_eq!(alert_lines[0]["alert"]["identity"], records[0]["identity"]);
    let alerts = gw.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["identity"], records[0]["identity"]);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("rampart_alerts_suppressed_total 1"),
        "{metrics}"
    );
    let audit = gw.audit_dir();
    let alerts_file = gw.data_dir().join("alerts/alerts.jsonl");
    let text = audit_text(&audit) + &std::fs::read_to_string(alerts_file).unwrap();
    assert!(!text.contains("tester"), "an identity reached the logs");
    let dir = gw.stop().await;

    // With the key, a query finds the identity's records by its name.
    let (code, out, err) = rampart(&[
        "audit",
        "query",
        path(&audit),
        "--identity",
        "tester",
        "--pseudonym-key",
        path(&k.hmac),
        "--kind",
        "decision",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let (_, out, _) = rampart(&["audit", "query", path(&audit), "--identity", "tester"]);
    assert_eq!(
        out.lines().count(),
        0,
        "without the key the name matches nothing"
    );
    let (_, out, _) = rampart(&[
        "audit",
        "query",
        path(&audit),
        "--reason",
        "anomalous_input",
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");
    drop(dir);
}

#[tokio::test]
async fn sealed_records_open_with_the_key_and_replay_against_the_model() {
    let k = keys();
    let gw = gateway(&format!(
        "encryption_key_file = \"{}\"\nstore_input = true\n",
        path(&k.aes)
    ))
    .await;
    let id = predict(&gw, CONFIDENT).await;
    let record = gw.audit_records().pop().unwrap();
    assert_eq!(record["output"], Value::Null);
    assert!(record["sealed"]["data"].is_string());
    let audit = gw.audit_dir();
    assert!(
        !audit_text(&audit).contains("setosa"),
        "the output is sealed"
    );
    let model = gw.dir.path().join("demo.onnx");
    let dir = gw.stop().await;

    let (code, out, err) = rampart(&[
        "audit",
        "query",
        path(&audit),
        "--request-id",
        &id,
        "--key-file",
        path(&k.aes),
    ]);
    assert_eq!(code, 0, "{err}");
    let opened: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(opened["opened"]["input"], json!([[5.1, 3.5, 1.4, 0.2]]));
    let recorded_label = opened["opened"]["output"]["prediction"].clone();
    assert_eq!(recorded_label, "setosa", "{opened}");

    let (code, out, err) = rampart(&[
        "audit",
        "replay",
        path(&audit),
        "--request-id",
        &id,
        "--model",
        path(&model),
        "--key-file",
        path(&k.aes),
    ]);
    assert_eq!(code, 0, "{err}");
    let replay: Value = serde_json::from_str(&out).unwrap();
    let values: Vec<f64> = serde_json::from_value(replay["replayed"]["values"].clone()).unwrap();
    assert_eq!(values.len(), 3);
    let best = (0..3)
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap();
    assert_eq!(best, 0, "setosa again: {replay}");
    assert_eq!(replay["recorded"]["output"]["prediction"], recorded_label);

    let (code, _, err) = rampart(&[
        "audit",
        "replay",
        path(&audit),
        "--request-id",
        "no-such-request",
        "--model",
        path(&model),
        "--key-file",
        path(&k.aes),
    ]);
    assert_eq!(code, 1, "{err}");
    drop(dir);
}

#[tokio::test]
async fn export_is_a_signed_bundle_whose_segments_verify() {
    let k = keys();
    let gw = gateway(&format!(
        "signing_key_file = \"{}\"\nsegment_max_bytes = 4096\n",
        path(&k.signing)
    ))
    .await;
    for _ in 0..30 {
        predict(&gw, CONFIDENT).await;
    }
    let audit = gw.audit_dir();
    let dir = gw.stop().await;
    assert!(rampart_audit::log_files(&audit).unwrap().len() > 2);

    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("incident.tar");
    let (code, out, err) = rampart(&[
        "audit",
        "export",
        path(&audit),
        "--since",
        "2000-01-01T00:00:00Z",
        "--out",
        path(&bundle),
        "--sign-key",
        path(&k.signing),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("30 record(s) in range") || out.contains("record(s) in range"),
        "{out}"
    );

    let mut archive = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
    let extracted = out_dir.path().join("x");
    archive.unpack(&extracted).unwrap();
    let manifest = std::fs::read(extracted.join("manifest.json")).unwrap();
    let sig = std::fs::read_to_string(extracted.join("manifest.json.sig")).unwrap();
    let (key_id, sig_hex) = sig.trim().split_once(' ').unwrap();
    let public = rampart_crypto::sign::VerifyingKey::load(&k.public).unwrap();
    let mut message = b"rampart audit export v1\n".to_vec();
    message.extend_from_slice(&manifest);
    public
        .verify_hex(
            &message,
            rampart_crypto::keyfile::KeyId::parse(key_id).unwrap(),
            sig_hex,
        )
        .unwrap();
    let (code, out, _) = rampart(&[
        "audit",
        "verify",
        path(&extracted.join("audit")),
        "--public-key",
        path(&k.public),
    ]);
    assert_eq!(code, 0, "a whole-log export verifies as is: {out}");

    // Refusals: an existing output, a malformed time.
    let (code, _, err) = rampart(&[
        "audit",
        "export",
        path(&audit),
        "--out",
        path(&bundle),
        "--sign-key",
        path(&k.signing),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = rampart(&[
        "audit",
        "export",
        path(&audit),
        "--since",
        "yesterday",
        "--out",
        "x.tar",
        "--sign-key",
        path(&k.signing),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("RFC 3339"), "{err}");
    drop(dir);
}

#[tokio::test]
async fn bad_audit_keys_stop_the_start_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let err = TestGateway::try_start(&format!(
        "[audit]\nsigning_key_file = \"{}\"\n{DEMO_MODEL_ENTRY}",
        path(&missing)
    ))
    .await
    .err()
    .unwrap();
    assert!(err.contains("missing.key"), "{err}");
    let err = TestGateway::try_start(&format!("[audit]\nstore_input = true\n{DEMO_MODEL_ENTRY}"))
        .await
        .err()
        .unwrap();
    assert!(err.contains("audit.store_input"), "{err}");
}

/// Starts `rampart serve` (the embedded demo) in `dir`; returns the child, its base URL and its API key.
fn spawn_demo(dir: &Path) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .args(crate::serve_root_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (mut base, mut key) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("inference: ") {
            base = rest.to_owned();
        }
        if let Some(rest) = line.strip_prefix("api key: ") {
            key = rest.to_owned();
            break;
        }
    }
    (child, base, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_under_load_every_acknowledged_request_is_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, key) = spawn_demo(dir.path());
    let client = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, base, key, stop) = (client.clone(), base.clone(), key.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = client
                    .post(format!("{base}/v1/models/demo/predict"))
                    .bearer_auth(&key)
                    .json(&json!({ "features": CONFIDENT }))
                    .send()
                    .await;
                match sent {
                    // A response (200, or 429 once the demo's limit is reached) is an acknowledged decision.
                    Ok(resp) => acknowledged
                        .push(resp.headers()["x-request-id"].to_str().unwrap().to_owned()),
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    // SIGKILL: no shutdown, no final sync, no final checkpoint.
    child.kill().unwrap();
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert!(
        acknowledged.len() > 10,
        "too little load: {}",
        acknowledged.len()
    );

    let audit = dir.path().join("audit");
    // The log verifies, or fails only at a torn last line — which is reported, never skipped silently.
    let complete = match rampart_audit::verify_dir(&audit) {
        Ok(r) => r.records,
        Err(e) => {
            assert!(
                matches!(e.what, rampart_audit::VerifyFailure::TornTail { .. }),
                "{e}"
            );
            e.seq
        }
    };
    let mut logged = std::collections::HashSet::new();
    let _ = rampart_audit::read_log(&audit, None, |entry, _| {
        if let Some(d) = entry.decision() {
            if entry.seq < complete {
                logged.insert(d.request_id.clone());
            }
        }
    });
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !logged.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the log: {missing:?}"
    );

    // A restart repairs a torn tail and continues the chain; the whole log then verifies with the demo's key.
    let (mut child, _, _) = spawn_demo(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let public =
        rampart_crypto::sign::VerifyingKey::load(&dir.path().join("audit-signing.key.pub"))
            .unwrap();
    let report = rampart_audit::verify_dir_with(
        &audit,
        rampart_audit::VerifyOptions {
            public_key: Some(&public),
            ..rampart_audit::VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(report.decisions >= acknowledged.len() as u64);
}

/// A one-route HTTP server on loopback that records every POST body it receives.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        let body = &buf[head_end + 4..head_end + 4 + len];
                        let _ = tx.send(serde_json::from_slice(body).unwrap_or(Value::Null));
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn alerts_reach_the_webhook_with_pseudonymized_identities() {
    let k = keys();
    let (url, mut received) = webhook_receiver().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let url_file = secret_dir.path().join("webhook.url");
    std::fs::write(&url_file, &url).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let gw = TestGateway::start(&format!(
        "[audit]\npseudonymize = true\npseudonym_key_file = \"{}\"\n\
         [alerts.webhook]\nurl_file = \"{}\"\n{DEMO_MODEL_ENTRY}",
        path(&k.hmac),
        path(&url_file)
    ))
    .await;
    let id = predict(&gw, ANOMALOUS).await;
    let alert = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the webhook got the alert in time")
        .unwrap();
    assert_eq!(alert["kind"], "anomalous_input");
    assert_eq!(alert["request_id"], id.as_str());
    assert!(
        alert["identity"].as_str().unwrap().starts_with("ps_"),
        "{alert}"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("rampart_alert_webhook_sent_total"),
        "{metrics}"
    );
}
