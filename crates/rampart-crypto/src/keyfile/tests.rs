#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn every_kind_round_trips_with_its_id() {
    let d = dir();
    for kind in [KeyKind::Aes256, KeyKind::Hmac, KeyKind::Ed25519Private] {
        let key = generate(kind).unwrap();
        let path = d.path().join(kind.as_str());
        key.save(&path).unwrap();
        let back = KeyFile::load_kind(&path, kind).unwrap();
        assert_eq!(back.id, key.id);
        assert_eq!(back.material.expose(), key.material.expose());
    }
    assert!(generate(KeyKind::Ed25519Public).is_none());
}

#[cfg(unix)]
#[test]
fn files_are_written_0600() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    let path = d.path().join("k");
    generate(KeyKind::Aes256).unwrap().save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[cfg(unix)]
#[test]
fn refuses_a_private_key_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    let path = d.path().join("k");
    generate(KeyKind::Hmac).unwrap().save(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = KeyFile::load(&path).unwrap_err();
    assert!(
        matches!(err, KeyError::TooOpen { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn never_overwrites_a_key() {
    let d = dir();
    let path = d.path().join("k");
    generate(KeyKind::Aes256).unwrap().save(&path).unwrap();
    let err = generate(KeyKind::Aes256).unwrap().save(&path).unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
}

#[test]
fn wrong_kind_is_named() {
    let d = dir();
    let path = d.path().join("k");
    generate(KeyKind::Hmac).unwrap().save(&path).unwrap();
    let err = KeyFile::load_kind(&path, KeyKind::Aes256).unwrap_err();
    assert!(
        err.to_string()
            .contains("holds a hmac key, but a aes256 key"),
        "{err}"
    );
}

fn write_0600(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn edited_material_fails_the_id_check() {
    let d = dir();
    let path = d.path().join("k");
    let key = generate(KeyKind::Aes256).unwrap();
    key.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let hexed = hex::encode(key.material.expose());
    let mut flipped = hexed.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    std::fs::remove_file(&path).unwrap();
    write_0600(
        &path,
        &text.replace(&hexed, std::str::from_utf8(&flipped).unwrap()),
    );
    assert!(matches!(
        KeyFile::load(&path).unwrap_err(),
        KeyError::IdMismatch { .. }
    ));
}

#[test]
fn malformed_files_are_refused_without_echoing_material() {
    let d = dir();
    let path = d.path().join("k");
    for (text, needle) in [
        ("hello\n", "not a rampart key file"),
        ("rampart-key v2\n", "unsupported key file version"),
        (
            "rampart-key v1\nkind: rsa\nid: 00\nmaterial: 00\n",
            "unknown kind",
        ),
        (
            "rampart-key v1\nkind: aes256\nid: 0011223344556677\nmaterial: secretsecret\n",
            "hex digits",
        ),
        ("rampart-key v1\nkind: aes256\nkind: aes256\n", "twice"),
    ] {
        write_0600(&path, text);
        let err = KeyFile::load(&path).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(!err.contains("secretsecret"));
    }
}
