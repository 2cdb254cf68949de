#![allow(clippy::unwrap_used, clippy::expect_used)]
use rampart_crypto::sign::SigningKey;

use super::*;
use crate::manifest::sign_version;

struct Fixture {
    _tmp: tempfile::TempDir,
    reg: Registry,
    key: SigningKey,
    fraud: ModelName,
}

fn v(s: &str) -> Version {
    Version::new(s).unwrap()
}

/// A registry with `fraud` versions 1, 2, 3, 10 (all signed) and `u` (unsigned).
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    for version in ["1", "2", "3", "10", "u"] {
        let dir = tmp.path().join("fraud").join(version);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.onnx"), format!("model {version}")).unwrap();
        std::fs::write(dir.join("m.baseline.json"), "{}").unwrap();
        if version != "u" {
            sign_version(&dir, &key).unwrap();
        }
    }
    Fixture {
        reg: Registry::open(tmp.path()).unwrap(),
        _tmp: tmp,
        key,
        fraud: ModelName::new("fraud").unwrap(),
    }
}

fn note(why: &str) -> Note {
    Note::now("tester", why)
}

impl Fixture {
    fn activate(&self, version: &str) -> Result<HistoryEntry, RegistryError> {
        let key = self.key.verifying_key();
        self.reg
            .activate(&self.fraud, &v(version), Trust::Verify(&key), &note("test"))
    }

    fn rollback(&self) -> Result<HistoryEntry, RegistryError> {
        let key = self.key.verifying_key();
        self.reg
            .rollback(&self.fraud, Trust::Verify(&key), &note("bad model"))
    }

    fn active(&self) -> Option<String> {
        self.reg.active(&self.fraud).unwrap().map(String::from)
    }
}

#[test]
fn activation_is_recorded_with_key_and_digest() {
    let f = fixture();
    assert_eq!(f.active(), None);
    let e = f.activate("1").unwrap();
    assert_eq!(e.action, Action::Activate);
    assert_eq!(e.from, None);
    assert_eq!(e.to.as_str(), "1");
    assert_eq!(e.who, "tester");
    assert_eq!(e.key_id, Some(f.key.id().to_string()));
    assert_eq!(e.model_sha256, Some(crate::Sha256Digest::of(b"model 1")));
    assert_eq!(f.active().as_deref(), Some("1"));
    let e = f.activate("2").unwrap();
    assert_eq!(e.from, Some(v("1")));
    assert_eq!(f.reg.history(&f.fraud).unwrap().len(), 2);
    let verified = f
        .reg
        .active_verified(&f.fraud, &f.key.verifying_key())
        .unwrap();
    assert_eq!(verified.version().as_str(), "2");
    assert!(verified.model_path().ends_with("fraud/2/m.onnx"));
}

#[test]
fn rollback_walks_back_one_step_at_a_time_and_never_forward() {
    let f = fixture();
    for version in ["1", "2", "3"] {
        f.activate(version).unwrap();
    }
    let e = f.rollback().unwrap();
    assert_eq!(
        (e.action, e.from.clone(), e.to.as_str()),
        (Action::Rollback, Some(v("3")), "2")
    );
    assert_eq!(e.why, "bad model");
    assert_eq!(f.active().as_deref(), Some("2"));
    f.rollback().unwrap();
    assert_eq!(f.active().as_deref(), Some("1"));
    let e = f.rollback().unwrap_err();
    assert!(matches!(e, RegistryError::NoPrevious { .. }), "{e}");
    assert!(e.to_string().contains("no previous version"), "{e}");
    assert_eq!(f.active().as_deref(), Some("1"));
    let history = f.reg.history(&f.fraud).unwrap();
    let actions: Vec<_> = history
        .iter()
        .map(|e| (e.action, e.to.to_string()))
        .collect();
    assert_eq!(
        actions,
        [
            (Action::Activate, "1".into()),
            (Action::Activate, "2".into()),
            (Action::Activate, "3".into()),
            (Action::Rollback, "2".into()),
            (Action::Rollback, "1".into()),
        ]
    );
}

#[test]
fn rollback_with_nothing_or_one_activation_is_a_clear_error() {
    let f = fixture();
    let e = f.rollback().unwrap_err();
    assert!(
        e.to_string().contains("no previous version") && e.to_string().contains("active: none"),
        "{e}"
    );
    f.activate("1").unwrap();
    let e = f.rollback().unwrap_err();
    assert!(e.to_string().contains("active: 1"), "{e}");
    assert_eq!(
        f.reg.history(&f.fraud).unwrap().len(),
        1,
        "a refused rollback records nothing"
    );
}

#[test]
fn activating_after_a_rollback_pushes_on_top() {
    let f = fixture();
    for version in ["1", "2"] {
        f.activate(version).unwrap();
    }
    f.rollback().unwrap();
    f.activate("3").unwrap();
    assert_eq!(f.rollback().unwrap().to.as_str(), "1");
}

#[test]
fn a_tampered_version_is_refused_and_nothing_changes() {
    let f = fixture();
    f.activate("1").unwrap();
    std::fs::write(f.reg.version_dir(&f.fraud, &v("2")).join("m.onnx"), "evil").unwrap();
    let e = f.activate("2").unwrap_err();
    assert!(e.is_finding(), "{e}");
    assert!(e.to_string().contains("changed file m.onnx"), "{e}");
    assert_eq!(f.active().as_deref(), Some("1"));
    assert_eq!(f.reg.history(&f.fraud).unwrap().len(), 1);
}

#[test]
fn rollback_refuses_a_previous_version_tampered_since() {
    let f = fixture();
    f.activate("1").unwrap();
    f.activate("2").unwrap();
    std::fs::write(f.reg.version_dir(&f.fraud, &v("1")).join("extra"), "x").unwrap();
    let e = f.rollback().unwrap_err();
    assert!(e.to_string().contains("extra file extra"), "{e}");
    assert_eq!(f.active().as_deref(), Some("2"));
}

#[test]
fn an_unsigned_version_needs_allow_unsigned_and_is_recorded_as_such() {
    let f = fixture();
    let e = f.activate("u").unwrap_err();
    assert!(
        e.is_finding() && e.to_string().contains("missing manifest"),
        "{e}"
    );
    let e = f
        .reg
        .activate(&f.fraud, &v("u"), Trust::AllowUnsigned, &note("hotfix"))
        .unwrap();
    assert_eq!((e.key_id, e.model_sha256), (None, None));
    assert_eq!(f.active().as_deref(), Some("u"));
}

#[test]
fn activating_the_active_version_records_nothing() {
    let f = fixture();
    f.activate("1").unwrap();
    let e = f.activate("1").unwrap_err();
    assert!(matches!(e, RegistryError::AlreadyActive { .. }), "{e}");
    assert_eq!(f.reg.history(&f.fraud).unwrap().len(), 1);
}

#[test]
fn unknown_models_and_versions_are_named() {
    let f = fixture();
    let e = f.activate("7").unwrap_err();
    assert!(
        matches!(e, RegistryError::NoSuchVersion { .. }) && !e.is_finding(),
        "{e}"
    );
    let churn = ModelName::new("churn").unwrap();
    let e = f.reg.history(&churn).unwrap_err();
    assert!(matches!(e, RegistryError::NoSuchModel { .. }), "{e}");
    let e = Registry::open(f.reg.root().join("nope")).unwrap_err();
    assert!(matches!(e, RegistryError::Io { .. }), "{e}");
}

#[test]
fn a_change_in_progress_holds_the_lock() {
    let f = fixture();
    let lock = f.reg.lock(&f.fraud).unwrap();
    let e = f.activate("1").unwrap_err();
    assert!(matches!(e, RegistryError::Locked { .. }), "{e}");
    drop(lock);
    f.activate("1").unwrap();
    assert!(!f.reg.model_dir(&f.fraud).join(LOCK_FILE).exists());
}

#[test]
fn list_shows_versions_in_order_with_active_and_signatures() {
    let f = fixture();
    f.activate("2").unwrap();
    let all = f.reg.list(None, None).unwrap();
    assert_eq!(all.len(), 1);
    let fraud = &all[0];
    assert_eq!(fraud.active, Some(v("2")));
    let names: Vec<&str> = fraud.versions.iter().map(|x| x.version.as_str()).collect();
    assert_eq!(names, ["1", "2", "3", "10", "u"]);
    assert!(fraud.versions[1].active && !fraud.versions[0].active);
    assert!(matches!(
        fraud.versions[0].signature,
        SignatureState::Signed { .. }
    ));
    assert_eq!(fraud.versions[4].signature, SignatureState::Unsigned);
    std::fs::write(f.reg.version_dir(&f.fraud, &v("3")).join("m.onnx"), "x").unwrap();
    let key = f.key.verifying_key();
    let checked = f.reg.list(Some(&f.fraud), Some(&key)).unwrap();
    assert!(matches!(
        checked[0].versions[0].signature,
        SignatureState::Verified { .. }
    ));
    assert!(matches!(
        checked[0].versions[2].signature,
        SignatureState::Failed { .. }
    ));
}

#[test]
fn an_edited_history_is_reported_by_line() {
    let f = fixture();
    f.activate("1").unwrap();
    f.activate("2").unwrap();
    let path = f.reg.model_dir(&f.fraud).join(HISTORY_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"from\":\"1\"", "\"from\":\"3\"", 1)).unwrap();
    let e = f.rollback().unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    std::fs::write(&path, format!("{text}{{not json\n")).unwrap();
    let e = f.reg.history(&f.fraud).unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
}

#[test]
fn a_change_cut_short_before_the_pointer_write_is_completed_by_the_next() {
    let f = fixture();
    f.activate("1").unwrap();
    f.activate("2").unwrap();
    // As if the process died after the history line for 2 but before active.json was replaced.
    let active = f.reg.model_dir(&f.fraud).join(ACTIVE_FILE);
    std::fs::write(
        &active,
        "{\"format\":\"rampart-model-active/v1\",\"version\":\"1\",\"since\":\"2026-11-25T12:00:00Z\"}",
    )
    .unwrap();
    let e = f.activate("3").unwrap();
    assert_eq!(e.from, Some(v("2")), "the history is the record of truth");
    assert_eq!(f.active().as_deref(), Some("3"));
}

#[test]
fn a_corrupt_active_pointer_is_named() {
    let f = fixture();
    std::fs::write(
        f.reg.model_dir(&f.fraud).join(ACTIVE_FILE),
        "{\"version\":\"../x\"}",
    )
    .unwrap();
    let e = f.reg.active(&f.fraud).unwrap_err();
    assert!(matches!(e, RegistryError::ActiveCorrupt { .. }), "{e}");
}
