//! The signed model registry (issue #6): `rampart model sign|verify|activate|rollback|list|history` on the demo
//! model, with keys from `rampart keygen`.
//! See: issue #6

use std::path::{Path, PathBuf};

use crate::run_in;
use sha2::Digest;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo");

fn ok(cwd: &Path, args: &[&str]) -> String {
    let (code, out, err) = run_in(cwd, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// `models/demo/<v>/` holding the demo model and baseline.
fn demo_version(root: &Path, v: &str) -> PathBuf {
    let dir = root.join("models/demo").join(v);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["demo.onnx", "demo.baseline.json"] {
        std::fs::copy(Path::new(DEMO).join(f), dir.join(f)).unwrap();
    }
    dir
}

/// A tempdir with `sign.key`(.pub), `other.key`(.pub) and signed demo versions.
fn registry(versions: &[&str]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    ok(
        t.path(),
        &["keygen", "--kind", "ed25519", "--out", "sign.key"],
    );
    ok(
        t.path(),
        &["keygen", "--kind", "ed25519", "--out", "other.key"],
    );
    for v in versions {
        demo_version(t.path(), v);
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
    t
}

fn verify(cwd: &Path, key: &str, dir: &str) -> (i32, String) {
    let (code, out, err) = run_in(cwd, &["model", "verify", "--public-key", key, dir]);
    (code, format!("{out}{err}"))
}

#[test]
fn the_signed_demo_model_verifies_with_its_digest() {
    let t = registry(&["1"]);
    let (code, out, err) = run_in(
        t.path(),
        &[
            "model",
            "verify",
            "--public-key",
            "sign.key.pub",
            "models/demo/1",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let onnx = std::fs::read(Path::new(DEMO).join("demo.onnx")).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["model_sha256"], hex::encode(sha2::Sha256::digest(&onnx)));
    assert!(v["model"].as_str().unwrap().ends_with("demo/1/demo.onnx"));
    assert!(v["baseline"]
        .as_str()
        .unwrap()
        .ends_with("demo/1/demo.baseline.json"));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path().join("models/demo/1/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["format"], "rampart-model-manifest/v1");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
}

#[test]
fn every_kind_of_failure_exits_1_with_its_own_message() {
    type Tamper = fn(&Path);
    let cases: &[(&str, Tamper, &str)] = &[
        (
            "changed model",
            |d| std::fs::write(d.join("demo.onnx"), b"evil").unwrap(),
            "changed file demo.onnx",
        ),
        (
            "changed baseline",
            |d| std::fs::write(d.join("demo.baseline.json"), b"{}").unwrap(),
            "changed file demo.baseline.json",
        ),
        (
            "extra file",
            |d| std::fs::write(d.join("notes.txt"), b"hi").unwrap(),
            "extra file notes.txt",
        ),
        (
            "missing file",
            |d| std::fs::remove_file(d.join("demo.baseline.json")).unwrap(),
            "missing file demo.baseline.json",
        ),
        (
            "edited manifest",
            |d| {
                let m = std::fs::read_to_string(d.join("manifest.json")).unwrap();
                std::fs::write(d.join("manifest.json"), format!("{m} ")).unwrap();
            },
            "bad signature",
        ),
        (
            "malformed manifest",
            |d| std::fs::write(d.join("manifest.json"), b"{\"format\":").unwrap(),
            "malformed manifest",
        ),
        (
            "missing manifest",
            |d| std::fs::remove_file(d.join("manifest.json")).unwrap(),
            "missing manifest",
        ),
        (
            "missing signature",
            |d| std::fs::remove_file(d.join("manifest.sig")).unwrap(),
            "unsigned",
        ),
        (
            "malformed signature",
            |d| std::fs::write(d.join("manifest.sig"), b"garbage").unwrap(),
            "malformed signature file",
        ),
    ];
    for (case, tamper, expected) in cases {
        let t = registry(&["1"]);
        tamper(&t.path().join("models/demo/1"));
        let (code, out) = verify(t.path(), "sign.key.pub", "models/demo/1");
        assert_eq!(code, 1, "{case}: {out}");
        assert!(
            out.contains(expected),
            "{case}: expected {expected:?} in {out}"
        );
    }
    let t = registry(&["1"]);
    let (code, out) = verify(t.path(), "other.key.pub", "models/demo/1");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wrong key"), "{out}");
}

#[test]
fn unreadable_input_exits_2() {
    let t = registry(&["1"]);
    let (code, out) = verify(t.path(), "sign.key.pub", "models/demo/9");
    assert_eq!(code, 2, "a missing directory is an input error: {out}");
    let (code, out) = verify(t.path(), "sign.key", "models/demo/1");
    assert_eq!(code, 2, "a private key where a public one is needed: {out}");
    assert!(out.contains("ed25519-public"), "{out}");
}

#[test]
fn sign_refuses_to_replace_a_signature_without_force() {
    let t = registry(&["1"]);
    let (code, _, err) = run_in(
        t.path(),
        &["model", "sign", "--key", "sign.key", "models/demo/1"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    std::fs::write(t.path().join("models/demo/1/demo.onnx"), b"retrained").unwrap();
    ok(
        t.path(),
        &[
            "model",
            "sign",
            "--key",
            "sign.key",
            "--force",
            "models/demo/1",
        ],
    );
    assert_eq!(verify(t.path(), "sign.key.pub", "models/demo/1").0, 0);
}

fn activate(cwd: &Path, version: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["model", "activate", "--registry", "models", "demo", version];
    args.extend_from_slice(extra);
    run_in(cwd, &args)
}

#[test]
fn activate_rollback_list_and_history() {
    let t = registry(&["1", "2", "10"]);
    let key = ["--public-key", "sign.key.pub"];
    for v in ["1", "2", "10"] {
        let (code, out, err) = activate(t.path(), v, &[&key[..], &["--why", "release"]].concat());
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("-> {v}")), "{out}");
    }
    let list = ok(
        t.path(),
        &["model", "list", "--registry", "models", "--format", "json"],
    );
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "demo");
    assert_eq!(list[0]["active"], "10");
    let versions: Vec<&str> = list[0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1", "2", "10"], "natural order");
    assert_eq!(list[0]["versions"][0]["signature"]["state"], "signed");

    let rollback = ["model", "rollback", "--registry", "models", "demo"];
    let out = ok(
        t.path(),
        &[&rollback[..], &key[..], &["--why", "drift"]].concat(),
    );
    assert!(out.contains("rollback 10 -> 2"), "{out}");
    let out = ok(t.path(), &[&rollback[..], &key[..]].concat());
    assert!(out.contains("rollback 2 -> 1"), "{out}");
    let (code, _, err) = run_in(t.path(), &[&rollback[..], &key[..]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no previous version to roll back to"), "{err}");

    let text = ok(
        t.path(),
        &[
            "model",
            "list",
            "--registry",
            "models",
            "demo",
            "--public-key",
            "sign.key.pub",
        ],
    );
    assert!(text.contains("* 1") && text.contains("verified"), "{text}");

    let history = ok(
        t.path(),
        &[
            "model",
            "history",
            "--registry",
            "models",
            "demo",
            "--format",
            "json",
        ],
    );
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(history[3]["action"], "rollback");
    assert_eq!(history[3]["from"], "10");
    assert_eq!(history[3]["to"], "2");
    assert_eq!(history[3]["who"], "ci");
    assert_eq!(history[3]["why"], "drift");
    assert_eq!(history[0]["from"], serde_json::Value::Null);
    let active = std::fs::read_to_string(t.path().join("models/demo/active.json")).unwrap();
    assert!(active.contains("\"version\":\"1\""), "{active}");
}

#[test]
fn activate_refuses_a_tampered_version_and_needs_a_key_or_allow_unsigned() {
    let t = registry(&["1", "2"]);
    let key = ["--public-key", "sign.key.pub"];
    assert_eq!(activate(t.path(), "1", &key).0, 0);
    std::fs::write(t.path().join("models/demo/2/demo.onnx"), b"evil").unwrap();
    let (code, _, err) = activate(t.path(), "2", &key);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused to activate demo 2") && err.contains("changed file demo.onnx"),
        "{err}"
    );
    let (code, _, err) = activate(t.path(), "2", &[]);
    assert_eq!(code, 2, "neither --public-key nor --allow-unsigned: {err}");
    let (code, _, err) = activate(t.path(), "2", &["--public-key", "other.key.pub"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("wrong key"), "{err}");
    let (code, out, err) = activate(t.path(), "2", &["--allow-unsigned", "--who", "oncall"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("UNSIGNED") && out.contains("by oncall"),
        "{out}"
    );
    let (code, _, err) = activate(t.path(), "2", &["--allow-unsigned"]);
    assert_eq!(code, 0, "already active is not an error: {err}");
    assert!(err.contains("already active"), "{err}");
}

#[test]
fn names_that_leave_the_registry_are_usage_errors() {
    let t = registry(&["1"]);
    for (name, version) in [
        ("demo", "../1"),
        ("..", "1"),
        ("demo", ".hidden"),
        ("a/b", "1"),
    ] {
        let (code, _, err) = run_in(
            t.path(),
            &[
                "model",
                "activate",
                "--registry",
                "models",
                name,
                version,
                "--allow-unsigned",
            ],
        );
        assert_eq!(code, 2, "{name} {version}: {err}");
        assert!(err.contains("invalid"), "{err}");
    }
    let (code, _, err) = activate(t.path(), "7", &["--allow-unsigned"]);
    assert_eq!(code, 2);
    assert!(err.contains("no version 7 of model demo"), "{err}");
}
