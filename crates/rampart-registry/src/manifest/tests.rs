#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

/// `<tmp>/fraud/<version>/` holding a model and a baseline.
fn version(root: &Path, v: &str) -> PathBuf {
    let dir = root.join("fraud").join(v);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fraud.onnx"), format!("onnx bytes of {v}")).unwrap();
    std::fs::write(dir.join("fraud.baseline.json"), "{\"features\": []}").unwrap();
    dir
}

fn signed(root: &Path, key: &SigningKey) -> PathBuf {
    let dir = version(root, "1");
    sign_version(&dir, key).unwrap();
    dir
}

fn problems(e: VerifyError) -> Vec<FileProblem> {
    match e {
        VerifyError::Files { problems, .. } => problems,
        other => panic!("expected file problems, got {other}"),
    }
}

#[test]
fn a_signed_version_verifies_and_gives_paths_and_digests() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = version(t.path(), "1");
    let m = sign_version(&dir, &key).unwrap();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("fraud", "1"));
    assert_eq!(
        (m.model.as_str(), m.baseline.as_str()),
        ("fraud.onnx", "fraud.baseline.json")
    );
    let v = verify_version(&dir, &key.verifying_key()).unwrap();
    assert_eq!(v.name().as_str(), "fraud");
    assert_eq!(v.version().as_str(), "1");
    assert!(v.model_path().ends_with("fraud/1/fraud.onnx"));
    assert!(v.baseline_path().ends_with("fraud/1/fraud.baseline.json"));
    assert_eq!(v.model_sha256(), Sha256Digest::of(b"onnx bytes of 1"));
    assert_eq!(v.key_id(), key.id());
    assert_eq!(v.file_count(), 2);
    let manifest = std::fs::read(dir.join(MANIFEST_FILE)).unwrap();
    assert_eq!(v.manifest_sha256(), Sha256Digest::of(&manifest));
}

#[test]
fn the_signature_covers_the_domain_and_the_exact_manifest_bytes() {
    // What the module doc promises an outside verifier.
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    let manifest = std::fs::read(dir.join(MANIFEST_FILE)).unwrap();
    let sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(SIGNATURE_FILE)).unwrap()).unwrap();
    assert_eq!(sig["format"], SIGNATURE_FORMAT);
    assert_eq!(sig["key_id"], key.id().to_string());
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(sig["sig"].as_str().unwrap(), &mut bytes).unwrap();
    let mut message = b"rampart model manifest v1\0".to_vec();
    message.extend_from_slice(&manifest);
    key.verifying_key().verify(&message, &bytes).unwrap();
}

#[test]
fn tampering_with_each_file_names_that_file() {
    for file in ["fraud.onnx", "fraud.baseline.json"] {
        let t = tempfile::tempdir().unwrap();
        let key = SigningKey::generate();
        let dir = signed(t.path(), &key);
        std::fs::write(dir.join(file), "tampered").unwrap();
        let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
        assert!(e.is_finding());
        let msg = e.to_string();
        assert!(msg.contains(&format!("changed file {file}")), "{msg}");
        let p = problems(e);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path(), file);
    }
}

#[test]
fn a_same_size_change_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    std::fs::write(dir.join("fraud.onnx"), "onnx bytes of 2").unwrap();
    let p = problems(verify_version(&dir, &key.verifying_key()).unwrap_err());
    assert!(
        matches!(&p[0], FileProblem::Changed { expected_size, actual_size, .. } if expected_size == actual_size)
    );
}

#[test]
fn extra_and_missing_files_are_named() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    std::fs::remove_file(dir.join("fraud.baseline.json")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/backdoor.onnx"), "x").unwrap();
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("missing file fraud.baseline.json"), "{msg}");
    assert!(msg.contains("extra file sub/backdoor.onnx"), "{msg}");
    assert_eq!(
        problems(e),
        [
            FileProblem::Missing {
                path: "fraud.baseline.json".into()
            },
            FileProblem::Extra {
                path: "sub/backdoor.onnx".into()
            },
        ]
    );
}

#[test]
fn missing_manifest_and_missing_signature_are_told_apart() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = version(t.path(), "1");
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    assert!(matches!(e, VerifyError::MissingManifest { .. }), "{e}");
    assert!(e.to_string().contains("missing manifest"));
    sign_version(&dir, &key).unwrap();
    std::fs::remove_file(dir.join(SIGNATURE_FILE)).unwrap();
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    assert!(matches!(e, VerifyError::Unsigned { .. }), "{e}");
    assert!(e.to_string().contains("unsigned"));
}

#[test]
fn a_wrong_key_is_named_with_both_ids() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let dir = signed(t.path(), &key);
    let e = verify_version(&dir, &other.verifying_key()).unwrap_err();
    assert!(
        matches!(&e, VerifyError::WrongKey { expected, found, .. } if *expected == other.id() && *found == key.id()),
        "{e}"
    );
    assert!(e.to_string().starts_with("wrong key"));
}

#[test]
fn any_edit_to_the_manifest_is_a_bad_signature() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    // Point the manifest at a replaced model: a valid manifest, but not the signed bytes.
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(dir.join("fraud.onnx"), "evil").unwrap();
    let mut m: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for f in &mut m.files {
        if f.path == "fraud.onnx" {
            f.sha256 = Sha256Digest::of(b"evil");
            f.size = 4;
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    assert!(matches!(e, VerifyError::BadSignature { .. }), "{e}");
    assert!(e.to_string().starts_with("bad signature"));
}

#[test]
fn a_forged_signature_is_a_bad_signature() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    let path = dir.join(SIGNATURE_FILE);
    let mut sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    sig["sig"] = serde_json::Value::String("ab".repeat(64));
    std::fs::write(&path, sig.to_string()).unwrap();
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    assert!(matches!(e, VerifyError::BadSignature { .. }), "{e}");
}

#[test]
fn malformed_manifest_and_signature_are_named() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    std::fs::write(dir.join(SIGNATURE_FILE), "not json").unwrap();
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    assert!(matches!(e, VerifyError::MalformedSignature { .. }), "{e}");
    for bad in [
        "{\"format\": \"rampart-model-manifest/v1\"",
        "{\"format\":\"rampart-model-manifest/v9\",\"name\":\"fraud\",\"version\":\"1\",\"model\":\"m.onnx\",\"baseline\":\"b\",\"files\":[]}",
        "{\"format\":\"rampart-model-manifest/v1\",\"name\":\"..\",\"version\":\"1\",\"model\":\"m.onnx\",\"baseline\":\"b\",\"files\":[]}",
        "{\"format\":\"rampart-model-manifest/v1\",\"name\":\"fraud\",\"version\":\"1\",\"model\":\"m.onnx\",\"baseline\":\"b\",\"files\":[]}",
        "{\"format\":\"rampart-model-manifest/v1\",\"name\":\"fraud\",\"version\":\"1\",\"model\":\"../m.onnx\",\"baseline\":\"../m.onnx\",\"files\":[{\"path\":\"../m.onnx\",\"size\":1,\"sha256\":\"00\"}]}",
    ] {
        std::fs::write(dir.join(MANIFEST_FILE), bad).unwrap();
        let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
        assert!(matches!(e, VerifyError::MalformedManifest { .. }), "{bad}: {e}");
        assert!(e.to_string().starts_with("malformed manifest"), "{e}");
    }
}

#[test]
fn a_signed_version_copied_under_another_version_does_not_verify() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let one = signed(t.path(), &key);
    let two = t.path().join("fraud/2");
    std::fs::create_dir(&two).unwrap();
    for f in [
        "fraud.onnx",
        "fraud.baseline.json",
        MANIFEST_FILE,
        SIGNATURE_FILE,
    ] {
        std::fs::copy(one.join(f), two.join(f)).unwrap();
    }
    let e = verify_version(&two, &key.verifying_key()).unwrap_err();
    assert!(
        matches!(&e, VerifyError::Misplaced { signed_for, found_at, .. } if signed_for == "fraud/1" && found_at == "fraud/2"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_out_of_the_version_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    std::fs::write(t.path().join("outside"), "x").unwrap();
    std::os::unix::fs::symlink(t.path().join("outside"), dir.join("link")).unwrap();
    let e = verify_version(&dir, &key.verifying_key()).unwrap_err();
    assert!(matches!(e, VerifyError::Walk(_)) && e.is_finding(), "{e}");
}

#[test]
fn an_unreadable_directory_is_an_input_error_not_a_finding() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let e = verify_version(&t.path().join("fraud/9"), &key.verifying_key()).unwrap_err();
    assert!(
        matches!(e, VerifyError::Io { .. }) && !e.is_finding(),
        "{e}"
    );
}

#[test]
fn signing_needs_exactly_one_model_and_one_baseline() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = version(t.path(), "1");
    std::fs::write(dir.join("other.onnx"), "x").unwrap();
    let e = sign_version(&dir, &key).unwrap_err();
    assert!(e.to_string().contains("more than one ONNX model"), "{e}");
    std::fs::remove_file(dir.join("other.onnx")).unwrap();
    std::fs::remove_file(dir.join("fraud.onnx")).unwrap();
    let e = sign_version(&dir, &key).unwrap_err();
    assert!(e.to_string().contains("no ONNX model"), "{e}");
    std::fs::write(dir.join("fraud.onnx"), "x").unwrap();
    std::fs::remove_file(dir.join("fraud.baseline.json")).unwrap();
    let e = sign_version(&dir, &key).unwrap_err();
    assert!(e.to_string().contains("no baseline"), "{e}");
    assert!(
        !dir.join(MANIFEST_FILE).exists(),
        "nothing written on refusal"
    );
}

#[test]
fn signing_needs_a_name_and_version_directory() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = t.path().join(".hidden/1");
    std::fs::create_dir_all(&dir).unwrap();
    let e = sign_version(&dir, &key).unwrap_err();
    assert!(matches!(e, SignError::Location { .. }), "{e}");
}

#[test]
fn re_signing_replaces_the_manifest_and_signature() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    std::fs::write(dir.join("fraud.onnx"), "retrained").unwrap();
    sign_version(&dir, &key).unwrap();
    let v = verify_version(&dir, &key.verifying_key()).unwrap();
    assert_eq!(v.model_sha256(), Sha256Digest::of(b"retrained"));
}

#[test]
fn signature_state_without_a_key_reports_presence_only() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = version(t.path(), "1");
    assert_eq!(signature_state(&dir, None), SignatureState::Unsigned);
    sign_version(&dir, &key).unwrap();
    assert_eq!(
        signature_state(&dir, None),
        SignatureState::Signed {
            key_id: key.id().to_string()
        }
    );
    assert!(matches!(
        signature_state(&dir, Some(&key.verifying_key())),
        SignatureState::Verified { .. }
    ));
    std::fs::write(dir.join("fraud.onnx"), "x").unwrap();
    assert!(matches!(
        signature_state(&dir, Some(&key.verifying_key())),
        SignatureState::Failed { .. }
    ));
}

#[test]
fn reading_through_the_verified_version_catches_a_swap_after_verification() {
    let t = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let dir = signed(t.path(), &key);
    let v = verify_version(&dir, &key.verifying_key()).unwrap();
    assert_eq!(v.read_model().unwrap(), b"onnx bytes of 1");
    assert_eq!(v.read_baseline().unwrap(), b"{\"features\": []}");
    std::fs::write(dir.join("fraud.onnx"), "onnx bytes of 1 and more").unwrap();
    let e = v.read_model().unwrap_err();
    assert!(e.to_string().contains("changed file fraud.onnx"), "{e}");
}

/// A version signed by this build's format, committed: a change to the format, the signed bytes or the
/// serialization shows here. See `tests/data/golden/`.
#[test]
fn the_golden_version_still_verifies_and_serializes_identically() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let key = VerifyingKey::load(&data.join("golden.key.pub")).unwrap();
    let v = verify_version(&data.join("fraud/1"), &key).unwrap();
    assert_eq!(
        v.model_sha256().to_string(),
        "940d65474accea0f5971f13c196370fb8d73284ed818d8cfdfd00abf462bbc71"
    );
    assert_eq!(v.key_id().to_string(), "eac154be7b4cbcc8");
    let stored = std::fs::read(data.join("fraud/1").join(MANIFEST_FILE)).unwrap();
    let parsed: Manifest = serde_json::from_slice(&stored).unwrap();
    let mut again = serde_json::to_vec_pretty(&parsed).unwrap();
    again.push(b'\n');
    assert_eq!(again, stored, "sign_version would write these exact bytes");
}
