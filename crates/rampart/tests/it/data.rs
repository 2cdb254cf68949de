//! Data security (issue #7): keygen, dataset manifests, lineage, encryption at rest, encrypted models.
//! See: issue #7

use std::path::{Path, PathBuf};

use crate::run_in;
use rampart_testkit::{TestGateway, CONFIDENT, DEMO_MODEL};
use serde_json::json;

fn ok(cwd: &Path, args: &[&str]) -> String {
    let (code, out, err) = run_in(cwd, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn keygen(cwd: &Path, kind: &str, out: &str) {
    ok(cwd, &["keygen", "--kind", kind, "--out", out]);
}

/// A dataset of nested files.
fn dataset(root: &Path) -> PathBuf {
    let d = root.join("dataset");
    std::fs::create_dir_all(d.join("shards")).unwrap();
    for i in 0..30 {
        let body = format!("{i},{}\n", i * i).repeat(50 * (i + 1));
        std::fs::write(d.join(format!("shards/{i:03}.csv")), body).unwrap();
    }
    std::fs::write(d.join("labels.txt"), "a\nb\n").unwrap();
    d
}

/// A dataset under `root/dataset`, a signing key `sign.key`, and the signed manifest at `out`.
fn signed_manifest(root: &Path, out: &str) -> PathBuf {
    let d = dataset(root);
    keygen(root, "ed25519", "sign.key");
    ok(
        root,
        &[
            "data",
            "manifest",
            "dataset",
            "--out",
            out,
            "--sign-key",
            "sign.key",
        ],
    );
    d
}

#[test]
fn keygen_writes_private_files_0600_and_ed25519_pub() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "ed25519", "sign.key");
    keygen(t.path(), "aes256", "data.key");
    keygen(t.path(), "hmac", "pseudo.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["sign.key", "data.key", "pseudo.key"] {
            let mode = std::fs::metadata(t.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        std::fs::set_permissions(
            t.path().join("data.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(t.path().join("x"), "x").unwrap();
        let (code, _, err) = run_in(
            t.path(),
            &["encrypt", "--key-file", "data.key", "x", "x.enc"],
        );
        assert_eq!(code, 2);
        assert!(
            err.contains("must not be readable by group or others"),
            "{err}"
        );
    }
    let public = std::fs::read_to_string(t.path().join("sign.key.pub")).unwrap();
    assert!(public.contains("kind: ed25519-public"), "{public}");
    let (code, _, err) = run_in(
        t.path(),
        &["keygen", "--kind", "aes256", "--out", "data.key"],
    );
    assert_eq!(code, 2, "never overwrites");
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn manifest_round_trip_signed() {
    let t = tempfile::tempdir().unwrap();
    let d = signed_manifest(t.path(), "dataset/manifest.json");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["file_count"], 31, "the manifest leaves itself out");
    assert_eq!(m["merkle_root"].as_str().unwrap().len(), 64);
    let out = ok(
        t.path(),
        &[
            "data",
            "verify",
            "dataset/manifest.json",
            "--public-key",
            "sign.key.pub",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signature"]["status"], "valid");
}

#[test]
fn every_kind_of_dataset_tampering_is_detected() {
    let t = tempfile::tempdir().unwrap();
    let d = signed_manifest(t.path(), "m.json");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "data",
            "verify",
            "m.json",
            "--dir",
            "dataset",
            "--public-key",
            "sign.key.pub",
        ];
        args.extend_from_slice(extra);
        run_in(t.path(), &args)
    };
    std::fs::write(d.join("shards/004.csv"), "poisoned\n").unwrap();
    std::fs::remove_file(d.join("shards/010.csv")).unwrap();
    std::fs::write(d.join("shards/999.csv"), "injected\n").unwrap();
    let (code, out, _) = verify(&[]);
    assert_eq!(code, 1);
    assert!(out.contains("modified  shards/004.csv"), "{out}");
    assert!(out.contains("removed   shards/010.csv"), "{out}");
    assert!(out.contains("added     shards/999.csv"), "{out}");

    // An edited manifest: its root and its signature no longer hold.
    let text = std::fs::read_to_string(t.path().join("m.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["files"][0]["size"] = json!(1);
    std::fs::write(t.path().join("m.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let (code, out, _) = verify(&["--format", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["root_matches"], false);
    assert_eq!(v["signature"]["status"], "invalid");

    // Another signer's key.
    keygen(t.path(), "ed25519", "other.key");
    let (code, out, _) = run_in(
        t.path(),
        &[
            "data",
            "verify",
            "m.json",
            "--dir",
            "dataset",
            "--public-key",
            "other.key.pub",
        ],
    );
    assert_eq!(code, 1);
    assert!(out.contains("signature bad"), "{out}");
}

#[cfg(unix)]
#[test]
fn symlink_out_of_the_dataset_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = dataset(t.path());
    std::os::unix::fs::symlink("/etc/passwd", d.join("escape")).unwrap();
    let (code, _, err) = run_in(
        t.path(),
        &["data", "manifest", "dataset", "--out", "m.json"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("leaves the dataset directory"), "{err}");
    assert!(!t.path().join("m.json").exists());
}

#[test]
fn lineage_chain_dataset_to_model_to_registry() {
    let t = tempfile::tempdir().unwrap();
    dataset(t.path());
    keygen(t.path(), "ed25519", "sign.key");
    ok(
        t.path(),
        &[
            "data",
            "manifest",
            "dataset",
            "--out",
            "train.manifest.json",
        ],
    );
    std::fs::write(t.path().join("model.onnx"), DEMO_MODEL).unwrap();
    let record = |args: &[&str]| {
        let mut all = vec!["lineage", "record", "--sign-key", "sign.key", "--who", "ci"];
        all.extend_from_slice(args);
        ok(t.path(), &all);
    };
    record(&[
        "--step",
        "ingest",
        "--output",
        "train.manifest.json",
        "--params",
        "source=fixture",
    ]);
    record(&[
        "--step",
        "train",
        "--inputs",
        "train.manifest.json",
        "--output",
        "model.onnx",
        "--params",
        "epochs=10",
        "lr=0.01",
    ]);
    std::fs::write(
        t.path().join("registry.json"),
        r#"{"model":"demo","version":"3"}"#,
    )
    .unwrap();
    record(&[
        "--step",
        "register",
        "--inputs",
        "model.onnx",
        "--output",
        "registry.json",
    ]);

    let (code, _, err) = run_in(
        t.path(),
        &["lineage", "verify", "--public-key", "sign.key.pub"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("3 statements, 3 files verified"), "{err}");
    let tree = ok(t.path(), &["lineage", "show", "registry.json"]);
    assert!(
        tree.contains("registry.json") && tree.contains("register"),
        "{tree}"
    );
    assert!(tree.contains("└── model.onnx"), "{tree}");
    assert!(tree.contains("epochs=10 lr=0.01"), "{tree}");
    assert!(tree.contains("train.manifest.json"), "{tree}");
    let json: serde_json::Value = serde_json::from_str(&ok(
        t.path(),
        &["lineage", "show", "model.onnx", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(json["produced_by"]["step"], "train");
    assert_eq!(json["inputs"][0]["produced_by"]["step"], "ingest");

    // A broken link: the model is swapped after it was recorded.
    std::fs::write(t.path().join("model.onnx"), b"another model").unwrap();
    let (code, out, _) = run_in(
        t.path(),
        &["lineage", "verify", "--public-key", "sign.key.pub"],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("model.onnx") && out.contains("modified since"),
        "{out}"
    );
    let (code, _, err) = run_in(t.path(), &["lineage", "show", "model.onnx"]);
    assert_eq!(code, 1);
    assert!(err.contains("no lineage recorded"), "{err}");

    // A statement deleted from the store breaks the chain.
    std::fs::write(t.path().join("model.onnx"), DEMO_MODEL).unwrap();
    let store = std::fs::read_to_string(t.path().join("lineage.jsonl")).unwrap();
    let lines: Vec<&str> = store.lines().collect();
    std::fs::write(
        t.path().join("lineage.jsonl"),
        format!("{}\n{}\n", lines[0], lines[2]),
    )
    .unwrap();
    let (code, out, _) = run_in(
        t.path(),
        &["lineage", "verify", "--public-key", "sign.key.pub"],
    );
    assert_eq!(code, 1);
    assert!(out.contains("chain broken"), "{out}");
}

const CHUNK: usize = 64 * 1024;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 256) as u8).collect()
}

#[test]
fn encrypt_decrypt_round_trip_empty_small_multi_chunk() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "aes256", "k");
    for (name, len) in [("empty", 0), ("small", 100), ("multi", 3 * CHUNK + 17)] {
        let plain = payload(len);
        std::fs::write(t.path().join(name), &plain).unwrap();
        let enc = format!("{name}.enc");
        let dec = format!("{name}.dec");
        ok(t.path(), &["encrypt", "--key-file", "k", name, &enc]);
        let sealed = std::fs::read(t.path().join(&enc)).unwrap();
        assert_eq!(&sealed[..8], b"RAMPENC\0");
        if len > 16 {
            assert!(
                !sealed.windows(16).any(|w| w == &plain[..16]),
                "{name}: plaintext visible"
            );
        }
        ok(t.path(), &["decrypt", "--key-file", "k", &enc, &dec]);
        assert_eq!(std::fs::read(t.path().join(&dec)).unwrap(), plain, "{name}");
    }
}

/// Decrypting `sealed` must fail with `code` and a message containing `needle`, leaving no output (and no
/// temporary file) behind.
fn refused(dir: &Path, key: &str, sealed: &[u8], code: i32, needle: &str) {
    std::fs::write(dir.join("bad.enc"), sealed).unwrap();
    let before = std::fs::read_dir(dir).unwrap().count();
    let (got, _, err) = run_in(dir, &["decrypt", "--key-file", key, "bad.enc", "bad.out"]);
    assert_eq!(got, code, "{needle}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(err.contains("no output written"), "{err}");
    assert!(
        !dir.join("bad.out").exists(),
        "{needle}: partial plaintext left"
    );
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        before,
        "a temporary file was left"
    );
}

#[test]
fn tampered_ciphertexts_are_refused_without_output() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "aes256", "k");
    keygen(t.path(), "aes256", "other");
    std::fs::write(t.path().join("p"), payload(3 * CHUNK + 5)).unwrap();
    ok(t.path(), &["encrypt", "--key-file", "k", "p", "p.enc"]);
    let sealed = std::fs::read(t.path().join("p.enc")).unwrap();
    let sealed_chunk = CHUNK + 16;
    let header = 25;

    refused(t.path(), "other", &sealed, 2, "wrong key");
    let mut flipped = sealed.clone();
    flipped[header + sealed_chunk + 100] ^= 1;
    refused(t.path(), "k", &flipped, 1, "chunk 1 failed authentication");
    refused(
        t.path(),
        "k",
        &sealed[..header + 2 * sealed_chunk],
        1,
        "truncated",
    );
    refused(
        t.path(),
        "k",
        &sealed[..sealed.len() - 1],
        1,
        "failed authentication",
    );
    let mut reordered = sealed[..header].to_vec();
    reordered.extend_from_slice(&sealed[header + sealed_chunk..header + 2 * sealed_chunk]);
    reordered.extend_from_slice(&sealed[header..header + sealed_chunk]);
    reordered.extend_from_slice(&sealed[header + 2 * sealed_chunk..]);
    refused(
        t.path(),
        "k",
        &reordered,
        1,
        "chunk 0 failed authentication",
    );
    refused(
        t.path(),
        "k",
        b"PK\x03\x04 not ours",
        2,
        "not a rampart encrypted file",
    );
}

#[test]
fn reencrypt_rotates_keys() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "aes256", "old");
    keygen(t.path(), "aes256", "new");
    std::fs::write(t.path().join("p"), payload(CHUNK + 1)).unwrap();
    ok(t.path(), &["encrypt", "--key-file", "old", "p", "p.enc"]);
    ok(
        t.path(),
        &[
            "reencrypt",
            "--old-key",
            "old",
            "--new-key",
            "new",
            "p.enc",
            "p.enc2",
        ],
    );
    let (code, _, err) = run_in(t.path(), &["decrypt", "--key-file", "old", "p.enc2", "x"]);
    assert_eq!(code, 2, "{err}");
    ok(
        t.path(),
        &["decrypt", "--key-file", "new", "p.enc2", "p.dec"],
    );
    assert_eq!(
        std::fs::read(t.path().join("p.dec")).unwrap(),
        payload(CHUNK + 1)
    );
}

#[tokio::test]
async fn serves_an_encrypted_model() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "aes256", "model.key");
    std::fs::write(t.path().join("demo.onnx"), DEMO_MODEL).unwrap();
    ok(
        t.path(),
        &[
            "encrypt",
            "--key-file",
            "model.key",
            "demo.onnx",
            "demo.onnx.enc",
        ],
    );
    std::fs::remove_file(t.path().join("demo.onnx")).unwrap();
    let entry = format!(
        "[[models]]\nname = \"secret\"\npath = \"{}\"\nkey_file = \"{}\"\nbaseline = \"demo.baseline.json\"\nlabels = [\"setosa\", \"versicolor\", \"virginica\"]\n",
        t.path().join("demo.onnx.enc").display(),
        t.path().join("model.key").display()
    );
    let gw = TestGateway::start(&entry).await;
    let resp = gw
        .post("/v1/models/secret/predict", &json!({"features": CONFIDENT}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["prediction"], "setosa", "{body}");

    // The wrong key: the gateway refuses to start, naming the model.
    keygen(t.path(), "aes256", "wrong.key");
    let entry = entry.replace("model.key", "wrong.key");
    let err = TestGateway::try_start(&entry).await.err().expect("refused");
    assert!(err.contains("secret") && err.contains("wrong key"), "{err}");

    // A key pasted inline is a config error that does not echo it.
    let inline = "ab".repeat(32);
    let err = TestGateway::try_start(
        &entry.replace(&t.path().join("wrong.key").display().to_string(), &inline),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.contains("models[0].key_file"), "{err}");
    assert!(!err.contains(&inline), "{err}");
}

#[tokio::test]
async fn serve_requires_the_training_data_to_verify() {
    let root = tempfile::tempdir().unwrap();
    let data = signed_manifest(root.path(), "train.manifest.json");
    let entry = format!(
        "{}training_data = {{ manifest = \"{m}\", dir = \"{d}\", public_key_file = \"{k}\" }}\n",
        rampart_testkit::DEMO_MODEL_ENTRY,
        m = root.path().join("train.manifest.json").display(),
        d = data.display(),
        k = root.path().join("sign.key.pub").display(),
    );
    let gw = TestGateway::start(&entry).await;
    let resp = gw
        .post("/v1/models/demo/predict", &json!({"features": CONFIDENT}))
        .await;
    assert_eq!(resp.status(), 200);
    drop(gw);

    // One training file changed since the manifest was signed: the model is not served.
    std::fs::write(data.join("labels.txt"), "a\nb\nc\n").unwrap();
    let err = TestGateway::try_start(&entry).await.err().expect("refused");
    assert!(
        err.contains("does not verify") && err.contains("labels.txt"),
        "{err}"
    );

    // A key other than the signer's is refused too, even with the data restored.
    std::fs::write(data.join("labels.txt"), "a\nb\n").unwrap();
    keygen(root.path(), "ed25519", "other.key");
    let entry = entry.replace("sign.key.pub", "other.key.pub");
    let err = TestGateway::try_start(&entry).await.err().expect("refused");
    assert!(err.contains("signature"), "{err}");
}
