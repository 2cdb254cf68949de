#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::keyfile::generate;

const CHUNK: usize = 1 << CHUNK_LOG2;
const SEALED: usize = CHUNK + TAG_LEN;

fn key() -> AeadKey {
    AeadKey::from_key_file(&generate(KeyKind::Aes256).unwrap())
}

fn seal(key: &AeadKey, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt(key, plain, &mut out).unwrap();
    out
}

fn unseal(key: &AeadKey, sealed: &[u8]) -> Result<Vec<u8>, ContainerError> {
    let mut out = Vec::new();
    open(key, sealed, |c| {
        out.extend_from_slice(c);
        Ok(())
    })?;
    Ok(out)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn round_trips_empty_small_exact_and_multi_chunk() {
    let k = key();
    for len in [
        0,
        1,
        100,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK,
        3 * CHUNK + 7,
    ] {
        let plain = data(len);
        let sealed = seal(&k, &plain);
        let chunks = len.div_ceil(CHUNK).max(1);
        assert_eq!(
            sealed.len(),
            HEADER_LEN + len + chunks * TAG_LEN,
            "len {len}"
        );
        assert_eq!(unseal(&k, &sealed).unwrap(), plain, "len {len}");
        assert_eq!(*decrypt_to_vec(&k, &sealed[..], 0).unwrap(), plain);
    }
}

#[test]
fn the_header_is_as_specified() {
    let k = key();
    let sealed = seal(&k, b"x");
    assert_eq!(&sealed[..8], b"RAMPENC\0");
    assert_eq!(sealed[8], 1);
    assert_eq!(sealed[9], 16);
    assert_eq!(&sealed[10..18], &k.id().0);
}

#[test]
fn same_plaintext_seals_differently() {
    let k = key();
    assert_ne!(seal(&k, b"same"), seal(&k, b"same"));
}

#[test]
fn wrong_key_is_named_before_decrypting() {
    let sealed = seal(&key(), b"secret");
    let err = unseal(&key(), &sealed).unwrap_err();
    assert!(matches!(err, ContainerError::WrongKey { .. }), "{err}");
}

#[test]
fn every_flipped_byte_is_refused() {
    let k = key();
    let sealed = seal(&k, &data(CHUNK + 10));
    for i in (0..sealed.len())
        .step_by(997)
        .chain([9, 20, sealed.len() - 1])
    {
        let mut bad = sealed.clone();
        bad[i] ^= 0x40;
        assert!(unseal(&k, &bad).is_err(), "flip at {i} accepted");
    }
}

#[test]
fn truncation_is_named() {
    let k = key();
    let sealed = seal(&k, &data(2 * CHUNK + 5));
    // At a chunk boundary: the last remaining chunk is not flagged final.
    let err = unseal(&k, &sealed[..HEADER_LEN + 2 * SEALED]).unwrap_err();
    assert!(
        matches!(err, ContainerError::Truncated { chunks: 2 }),
        "{err}"
    );
    // Inside a chunk, and to the header alone.
    assert!(unseal(&k, &sealed[..sealed.len() - 3]).is_err());
    let err = unseal(&k, &sealed[..HEADER_LEN]).unwrap_err();
    assert!(
        matches!(err, ContainerError::Truncated { chunks: 0 }),
        "{err}"
    );
    let err = unseal(&k, &sealed[..12]).unwrap_err();
    assert!(
        matches!(err, ContainerError::Truncated { chunks: 0 }),
        "{err}"
    );
}

#[test]
fn reordered_or_deleted_chunks_are_refused() {
    let k = key();
    let sealed = seal(&k, &data(3 * CHUNK + 5));
    let chunk = |i: usize| {
        &sealed[HEADER_LEN + i * SEALED..(HEADER_LEN + (i + 1) * SEALED).min(sealed.len())]
    };
    let mut swapped = sealed[..HEADER_LEN].to_vec();
    for i in [1, 0, 2, 3] {
        swapped.extend_from_slice(chunk(i));
    }
    let err = unseal(&k, &swapped).unwrap_err();
    assert!(
        matches!(err, ContainerError::ChunkAuth { index: 0 }),
        "{err}"
    );
    let mut deleted = sealed[..HEADER_LEN].to_vec();
    for i in [0, 2, 3] {
        deleted.extend_from_slice(chunk(i));
    }
    let err = unseal(&k, &deleted).unwrap_err();
    assert!(
        matches!(err, ContainerError::ChunkAuth { index: 1 }),
        "{err}"
    );
}

#[test]
fn appended_data_is_refused() {
    let k = key();
    let mut sealed = seal(&k, &data(CHUNK));
    sealed.extend_from_slice(&seal(&k, b"more")[HEADER_LEN..]);
    assert!(unseal(&k, &sealed).is_err());
    let mut sealed = seal(&k, &data(10));
    let copy = sealed[HEADER_LEN..].to_vec();
    sealed.extend_from_slice(&copy);
    assert!(unseal(&k, &sealed).is_err());
}

#[test]
fn header_fields_are_checked() {
    let k = key();
    let sealed = seal(&k, b"abc");
    let mut bad = sealed.clone();
    bad[0] = b'X';
    assert!(matches!(
        unseal(&k, &bad),
        Err(ContainerError::NotAContainer)
    ));
    let mut bad = sealed.clone();
    bad[8] = 2;
    assert!(matches!(
        unseal(&k, &bad),
        Err(ContainerError::UnsupportedVersion(2))
    ));
    let mut bad = sealed.clone();
    bad[9] = 40;
    assert!(matches!(
        unseal(&k, &bad),
        Err(ContainerError::BadChunkSize(40))
    ));
    let mut bad = sealed;
    bad[20] ^= 1;
    assert!(matches!(
        unseal(&k, &bad),
        Err(ContainerError::ChunkAuth { index: 0 })
    ));
}

#[test]
fn reencrypt_rotates_the_key() {
    let (old, new) = (key(), key());
    let plain = data(2 * CHUNK + 3);
    let sealed = seal(&old, &plain);
    let mut rotated = Vec::new();
    reencrypt(&old, &new, &sealed[..], &mut rotated).unwrap();
    assert_eq!(&rotated[10..18], &new.id().0);
    assert_eq!(unseal(&new, &rotated).unwrap(), plain);
    assert!(matches!(
        unseal(&old, &rotated),
        Err(ContainerError::WrongKey { .. })
    ));
}

#[test]
fn decrypt_to_vec_grows_when_the_hint_is_small() {
    let k = key();
    let plain = data(3 * CHUNK);
    assert_eq!(
        *decrypt_to_vec(&k, &seal(&k, &plain)[..], 10).unwrap(),
        plain
    );
}
