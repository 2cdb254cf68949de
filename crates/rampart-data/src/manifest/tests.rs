#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn dataset() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("train")).unwrap();
    for i in 0..20 {
        std::fs::write(
            d.path().join(format!("train/{i:02}.csv")),
            format!("row,{i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    std::fs::write(d.path().join("README"), "about").unwrap();
    d
}

#[test]
fn a_fresh_manifest_verifies_clean_and_signed() {
    let d = dataset();
    let key = SigningKey::generate();
    let mut m = Manifest::build(d.path(), None, &()).unwrap();
    assert_eq!(m.file_count, 21);
    assert_eq!(m.files[0].path, "README");
    m.sign(&key);
    let v = m
        .verify(d.path(), None, Some(&key.verifying_key()), &())
        .unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert!(matches!(v.signature, SignatureStatus::Valid(_)));
}

#[test]
fn every_kind_of_tampering_is_listed() {
    let d = dataset();
    let m = Manifest::build(d.path(), None, &()).unwrap();
    std::fs::write(d.path().join("train/03.csv"), "changed").unwrap();
    std::fs::remove_file(d.path().join("train/07.csv")).unwrap();
    std::fs::write(d.path().join("train/new.csv"), "x").unwrap();
    let v = m.verify(d.path(), None, None, &()).unwrap();
    assert!(!v.is_clean());
    assert_eq!(v.added, ["train/new.csv"]);
    assert_eq!(v.removed, ["train/07.csv"]);
    assert_eq!(v.modified.len(), 1);
    assert_eq!(v.modified[0].path, "train/03.csv");
}

#[test]
fn same_size_change_is_caught() {
    let d = dataset();
    let m = Manifest::build(d.path(), None, &()).unwrap();
    std::fs::write(d.path().join("README"), "abouT").unwrap();
    let v = m.verify(d.path(), None, None, &()).unwrap();
    assert_eq!(v.modified[0].expected_size, v.modified[0].actual_size);
}

#[test]
fn edited_manifest_fails_root_and_signature() {
    let d = dataset();
    let key = SigningKey::generate();
    let mut m = Manifest::build(d.path(), None, &()).unwrap();
    m.sign(&key);
    // Make the manifest agree with a tampered file: the root no longer matches, nor the signature.
    std::fs::write(d.path().join("README"), "evil!").unwrap();
    let tampered = Manifest::build(d.path(), None, &()).unwrap();
    m.files[0] = tampered.files[0].clone();
    let v = m
        .verify(d.path(), None, Some(&key.verifying_key()), &())
        .unwrap();
    assert!(!v.root_matches);
    assert!(matches!(v.signature, SignatureStatus::Invalid(_)), "{v:?}");
    assert!(v.modified.is_empty());
}

#[test]
fn unsigned_or_other_key_is_a_finding() {
    let d = dataset();
    let mut m = Manifest::build(d.path(), None, &()).unwrap();
    let key = SigningKey::generate();
    let v = m
        .verify(d.path(), None, Some(&key.verifying_key()), &())
        .unwrap();
    assert_eq!(v.signature, SignatureStatus::Missing);
    m.sign(&SigningKey::generate());
    let v = m
        .verify(d.path(), None, Some(&key.verifying_key()), &())
        .unwrap();
    assert!(matches!(v.signature, SignatureStatus::Invalid(_)));
    assert!(!v.is_clean());
}

#[test]
fn saves_and_loads() {
    let d = dataset();
    let m = Manifest::build(d.path(), None, &()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = out.path().join("m.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    assert_eq!(Manifest::load(&p).unwrap(), m);
    std::fs::write(&p, "{\"format\":\"x\"}").unwrap();
    assert!(matches!(
        Manifest::load(&p),
        Err(ManifestError::Format { .. })
    ));
}

#[test]
fn a_manifest_kept_in_its_directory_is_left_out() {
    let d = dataset();
    let out = d.path().join("train/manifest.json");
    let skip = relative_inside(d.path(), &out);
    assert_eq!(skip.as_deref(), Some("train/manifest.json"));
    let m = Manifest::build(d.path(), skip.as_deref(), &()).unwrap();
    std::fs::write(&out, serde_json::to_vec(&m).unwrap()).unwrap();
    assert!(m
        .verify(d.path(), skip.as_deref(), None, &())
        .unwrap()
        .is_clean());
    assert_eq!(
        relative_inside(d.path(), Path::new("/elsewhere/m.json")),
        None
    );
}
