#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::{now_unix_ms, Blocklist};

#[test]
fn a_timed_block_expires_without_a_restart_and_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocked.json");
    let list = Blocklist::open(path.clone()).unwrap();
    assert!(list.block_until("mallory", now_unix_ms() + 100).unwrap());
    assert!(list.is_blocked("mallory"));
    assert_eq!(list.list(), ["mallory"]);
    // Persisted: a restart keeps it.
    assert!(Blocklist::open(path.clone()).unwrap().is_blocked("mallory"));
    std::thread::sleep(Duration::from_millis(150));
    assert!(!list.is_blocked("mallory"));
    assert!(list.list().is_empty());
    assert!(list.purge_expired().unwrap());
    assert!(!std::fs::read_to_string(&path).unwrap().contains("mallory"));
}

#[test]
fn a_block_for_good_outlasts_a_timed_one_and_a_lift_of_another_block() {
    let dir = tempfile::tempdir().unwrap();
    let list = Blocklist::open(dir.path().join("blocked.json")).unwrap();
    list.set_blocked("eve", true).unwrap();
    assert!(!list.block_until("eve", now_unix_ms() + 10).unwrap());
    let until = now_unix_ms() + 60_000;
    list.block_until("bob", until).unwrap();
    // An operator's later block for good is not lifted by the responder's lift of its timed block.
    list.set_blocked("bob", true).unwrap();
    assert!(!list.lift_until("bob", until).unwrap());
    assert!(list.is_blocked("bob") && list.is_blocked("eve"));
}

#[test]
fn the_older_list_format_is_read_as_blocks_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocked.json");
    std::fs::write(&path, br#"["alice", "bob"]"#).unwrap();
    let list = Blocklist::open(path).unwrap();
    assert!(list.is_blocked("alice") && list.is_blocked("bob"));
    assert!(!list.is_blocked("carol"));
}

/// With shared state every change is queued for Redis (an unblock even when this file did not hold the
/// block), and a block lifted on another replica leaves the file by its key.
#[test]
fn shared_changes_are_queued_and_lifted_keys_are_forgotten() {
    use crate::shared_state::{BlockOp, IdentityKeys, OnUnavailable, SharedBlocks};
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(SharedBlocks::new(
        OnUnavailable::Local,
        IdentityKeys::default(),
    ));
    let list = Blocklist::open(dir.path().join("blocked.json"))
        .unwrap()
        .with_shared(shared.clone());
    list.set_blocked("mallory", true).unwrap();
    list.block_until("eve", now_unix_ms() + 60_000).unwrap();
    list.set_blocked("nobody", false).unwrap();
    let queued = shared.queued();
    assert_eq!(queued.len(), 3);
    assert_eq!(
        queued[0],
        BlockOp::Block {
            key: IdentityKeys::default().key("mallory"),
            until_ms: 0
        }
    );
    assert!(matches!(
        &queued[2],
        BlockOp::Unblock {
            only_until: None,
            ..
        }
    ));
    assert!(
        !format!("{queued:?}").contains("mallory"),
        "keys, never names"
    );

    let gone = std::iter::once(IdentityKeys::default().key("mallory")).collect();
    assert!(list.forget_keys(&gone).unwrap());
    assert!(!list.is_blocked("mallory") && list.is_blocked("eve"));
    assert!(!list.refuses_all());
}

#[test]
fn identity_keys_are_keyed_when_a_key_is_given() {
    use crate::shared_state::IdentityKeys;
    let plain = IdentityKeys::default();
    assert_eq!(plain.key("alice").len(), 32);
    assert_eq!(plain.key("alice"), plain.key("alice"));
    assert_ne!(plain.key("alice"), plain.key("bob"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let file = rampart_crypto::keyfile::generate(rampart_crypto::keyfile::KeyKind::Hmac).unwrap();
    file.save(&path).unwrap();
    let keyed = IdentityKeys::keyed(rampart_crypto::pseudonym::PseudonymKey::load(&path).unwrap());
    // Not the plain hash (a reader of Redis cannot confirm a guess without the key), and stable.
    assert_ne!(keyed.key("alice"), plain.key("alice"));
    assert_eq!(keyed.key("alice"), keyed.key("alice"));
    assert_ne!(keyed.key("alice"), keyed.key("bob"));
}
