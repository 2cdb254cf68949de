#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn signs_and_verifies_through_key_files() {
    let d = tempfile::tempdir().unwrap();
    let sk = SigningKey::generate();
    let (priv_path, pub_path) = (d.path().join("k"), d.path().join("k.pub"));
    sk.public_file().save(&pub_path).unwrap();
    sk.into_key_file().save(&priv_path).unwrap();
    let sk = SigningKey::load(&priv_path).unwrap();
    let vk = VerifyingKey::load(&pub_path).unwrap();
    assert_eq!(sk.id(), vk.id());
    let sig = sk.sign(b"hello");
    vk.verify(b"hello", &sig).unwrap();
    vk.verify_hex(b"hello", sk.id(), &hex::encode(sig)).unwrap();
}

#[test]
fn modified_message_or_signature_is_refused() {
    let sk = SigningKey::generate();
    let vk = sk.verifying_key();
    let mut sig = sk.sign(b"hello");
    assert!(matches!(
        vk.verify(b"hellO", &sig),
        Err(SignatureError::Invalid)
    ));
    sig[3] ^= 1;
    assert!(matches!(
        vk.verify(b"hello", &sig),
        Err(SignatureError::Invalid)
    ));
    assert!(matches!(
        vk.verify_hex(b"hello", sk.id(), "zz"),
        Err(SignatureError::Malformed)
    ));
}

#[test]
fn another_keys_signature_names_the_key() {
    let a = SigningKey::generate();
    let b = SigningKey::generate();
    let sig = hex::encode(b.sign(b"m"));
    let err = a
        .verifying_key()
        .verify_hex(b"m", b.id(), &sig)
        .unwrap_err();
    assert!(matches!(err, SignatureError::UnknownKey { .. }), "{err}");
}

#[test]
fn debug_hides_the_private_key() {
    let sk = SigningKey::generate();
    let shown = format!("{sk:?}");
    assert_eq!(shown, format!("SigningKey({})", sk.id()));
}
