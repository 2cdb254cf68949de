//! The binary itself: key management, profile, check-config, and the embedded demo.

use crate::{run, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn key_new_prints_the_key_alone_on_the_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let keys = keys.to_str().unwrap();
    let (code, out, _) = run(&[
        "key",
        "new",
        "--id",
        "alice",
        "--role",
        "predictor",
        "--keys-file",
        keys,
    ]);
    assert_eq!(code, 0);
    let key = out.lines().next().unwrap();
    assert!(key.starts_with("rk_") && key.len() == 67, "{key}");
    let stored = std::fs::read_to_string(keys).unwrap();
    assert!(!stored.contains(&key[3..]));
    let (code, _, err) = run(&["key", "new", "--id", "alice", "--keys-file", keys]);
    assert_eq!(code, 2);
    assert!(err.contains("already"), "{err}");
    let (code, out, _) = run(&["key", "list", "--keys-file", keys, "--format", "json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], "alice");
    assert_eq!(
        run(&["key", "revoke", "--id", "alice", "--keys-file", keys]).0,
        0
    );
    assert_eq!(
        run(&["key", "revoke", "--id", "alice", "--keys-file", keys]).0,
        2
    );
}

#[test]
fn profile_reports_bad_rows_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    std::fs::write(&csv, "a,b,label\n1,2,x\n3,oops,y\n5,6,x\n7,,y\n").unwrap();
    let out = dir.path().join("b.json");
    let (code, _, err) = run(&[
        "profile",
        "--data",
        csv.to_str().unwrap(),
        "--label-column",
        "label",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3") && err.contains("line 5"), "{err}");
    assert!(!out.exists());
}

#[test]
fn profile_writes_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.json");
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/demo/demo_train.csv"
    );
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/demo.onnx");
    let (code, _, err) = run(&[
        "profile",
        "--data",
        data,
        "--label-column",
        "label",
        "--model",
        model,
        "--labels",
        "setosa,versicolor,virginica",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(b["features"].as_array().unwrap().len(), 4);
    assert_eq!(b["features"][0]["count"], 150);
    assert_eq!(b["label_counts"]["setosa"], 50);
    // The model ran on every row: its predicted-class mix and confidence histogram, for prediction drift.
    let predicted = &b["predictions"]["class_counts"];
    let total: u64 = ["setosa", "versicolor", "virginica"]
        .iter()
        .map(|l| predicted[l].as_u64().unwrap())
        .sum();
    assert_eq!(total, 150);
    let histogram = b["predictions"]["confidence_histogram"].as_array().unwrap();
    assert_eq!(histogram.len(), 10);
    assert_eq!(
        histogram.iter().map(|c| c.as_u64().unwrap()).sum::<u64>(),
        150
    );
    // The committed demo baseline is exactly what the command makes.
    let committed = include_str!("../../../../examples/demo/demo.baseline.json");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), committed);
}

#[test]
fn check_config_reports_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[models]]\nname = \"BAD\"\npath = \"x.onnx\"\nconfidence = { min = 2.0 }\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    for path in [
        "auth",
        "models[0].name",
        "models[0].confidence.min",
        "models[0].baseline",
    ] {
        assert!(err.contains(path), "{path} missing: {err}");
    }
    std::fs::write(&cfg, "[[models]]\nname = \"m\"\npaht = \"x.onnx\"\n").unwrap();
    let (code, _, err) = run(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("models[0]") && err.contains("paht"), "{err}");
}

#[test]
fn check_config_accepts_the_demo_config_once_keys_exist() {
    let dir = tempfile::tempdir().unwrap();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo");
    for f in ["rampart.toml", "demo.onnx", "demo.baseline.json"] {
        std::fs::copy(format!("{demo}/{f}"), dir.path().join(f)).unwrap();
    }
    let keys = dir.path().join("keys.toml");
    assert_eq!(
        run(&[
            "key",
            "new",
            "--id",
            "me",
            "--keys-file",
            keys.to_str().unwrap()
        ])
        .0,
        0
    );
    let (code, _, err) = run(&[
        "check-config",
        dir.path().join("rampart.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("✓ build"), "{err}");
}

#[test]
fn serve_without_config_runs_the_embedded_demo() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .args(crate::serve_root_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut base = String::new();
    let mut key = String::new();
    let mut curl = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("inference: ") {
            base = rest.to_owned();
        }
        if let Some(rest) = line.strip_prefix("api key: ") {
            key = rest.to_owned();
        }
        if line.starts_with("try:") {
            curl = line;
            break;
        }
    }
    assert!(
        curl.contains(&key) && curl.contains("/v1/models/demo/predict"),
        "{curl}"
    );
    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("{base}/v1/models/demo/predict"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(include_str!("../../../../examples/demo/request.json"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["prediction"], "setosa");
    let uncertain = client
        .post(format!("{base}/v1/models/demo/predict"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(include_str!("../../../../examples/demo/uncertain.json"))
        .send()
        .unwrap();
    let body: serde_json::Value = uncertain.json().unwrap();
    assert_eq!(body["result"], "uncertain");
    let _ = child.kill();
    let _ = child.wait();
    assert!(dir.path().join("audit").exists());
    // The demo signs its checkpoints with a key of its own, kept for the next run.
    let key = dir.path().join("audit-signing.key");
    assert!(key.exists() && dir.path().join("audit-signing.key.pub").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's only");
    }
}

/// `serve` refuses uid 0 without `--allow-root` (except the embedded demo on loopback), with exit 2 and a
/// message saying what to do, before it writes anything (the demo's data directory is not created).
#[test]
fn serve_refuses_root_without_allow_root() {
    if crate::serve_root_args().is_empty() {
        eprintln!("skipped: the tests do not run as root, so there is no root to refuse");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The embedded demo on loopback is let through (the README's first command); beyond loopback it is not.
    let (code, _, err) = run(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refusing to run as root") && err.contains("--allow-root"),
        "{err}"
    );
    assert!(!data.exists(), "nothing written before the refusal");
}
