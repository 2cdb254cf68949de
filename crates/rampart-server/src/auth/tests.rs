#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{HeaderMap, HeaderValue};
use time::{Duration, OffsetDateTime};

use super::{Authenticator, KeyStore, KeysFile, Peer, Unauthenticated, KEY_PREFIX};

fn bearer(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    h
}

#[test]
fn stores_only_the_digest() {
    let mut file = KeysFile::default();
    let key = file.add("alice", vec!["predictor".into()], None).unwrap();
    assert!(key.starts_with(KEY_PREFIX));
    assert_eq!(key.len(), KEY_PREFIX.len() + 64);
    let text = toml::to_string(&file).unwrap();
    assert!(!text.contains(&key[KEY_PREFIX.len()..]));
    assert!(text.contains("alice"));
}

#[test]
fn valid_key_authenticates_its_identity() {
    let mut file = KeysFile::default();
    let key = file.add("alice", vec!["predictor".into()], None).unwrap();
    let auth = Authenticator::keys(KeyStore::from_file(&file));
    let id = auth.authenticate(&bearer(&key), &Peer::default()).unwrap();
    assert_eq!(id.id(), "alice");
    assert_eq!(id.roles(), ["predictor".to_owned()]);
}

#[test]
fn every_failure_is_the_same() {
    let mut file = KeysFile::default();
    let key = file.add("alice", vec![], None).unwrap();
    let _ = file.add(
        "old",
        vec![],
        Some(OffsetDateTime::now_utc() - Duration::hours(1)),
    );
    let auth = Authenticator::keys(KeyStore::from_file(&file));
    assert_eq!(
        auth.authenticate(&HeaderMap::new(), &Peer::default()),
        Err(Unauthenticated)
    );
    assert_eq!(
        auth.authenticate(&bearer("rk_00"), &Peer::default()),
        Err(Unauthenticated)
    );
    assert_eq!(
        auth.authenticate(&bearer("nonsense"), &Peer::default()),
        Err(Unauthenticated)
    );
    let mut basic = HeaderMap::new();
    basic.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {key}")).unwrap(),
    );
    assert_eq!(
        auth.authenticate(&basic, &Peer::default()),
        Err(Unauthenticated)
    );
}

#[test]
fn expired_and_revoked_keys_fail() {
    let mut file = KeysFile::default();
    let old = file
        .add(
            "old",
            vec![],
            Some(OffsetDateTime::now_utc() - Duration::hours(1)),
        )
        .unwrap();
    let bob = file.add("bob", vec![], None).unwrap();
    file.revoke("bob").unwrap();
    let auth = Authenticator::keys(KeyStore::from_file(&file));
    assert_eq!(
        auth.authenticate(&bearer(&old), &Peer::default()),
        Err(Unauthenticated)
    );
    assert_eq!(
        auth.authenticate(&bearer(&bob), &Peer::default()),
        Err(Unauthenticated)
    );
    assert!(file.revoke("bob").is_err());
}

#[test]
fn duplicate_ids_are_refused() {
    let mut file = KeysFile::default();
    file.add("alice", vec![], None).unwrap();
    assert!(file.add("alice", vec![], None).is_err());
    assert!(file.add("", vec![], None).is_err());
}

#[test]
fn keys_file_round_trips_with_private_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let mut file = KeysFile::load(&path, true).unwrap();
    let key = file.add("alice", vec!["predictor".into()], None).unwrap();
    file.save(&path).unwrap();
    let back = KeysFile::load(&path, false).unwrap();
    assert_eq!(back, file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
    let auth = Authenticator::keys(KeyStore::from_file(&back));
    assert!(auth.authenticate(&bearer(&key), &Peer::default()).is_ok());
}
