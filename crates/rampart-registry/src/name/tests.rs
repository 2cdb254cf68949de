#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn safe_names_are_accepted() {
    for ok in ["fraud", "churn_v2", "3", "1.4.0-rc1", "2026-11-25", "a.b"] {
        assert_eq!(ModelName::new(ok).unwrap().as_str(), ok);
        assert_eq!(Version::new(ok).unwrap().as_str(), ok);
    }
}

#[test]
fn path_escapes_and_hidden_names_are_refused() {
    for bad in [
        "", ".", "..", ".hidden", "a/b", "../x", "/abs", "a\\b", "-rf", "a b", "é", "a\0b",
    ] {
        let e = ModelName::new(bad).unwrap_err();
        assert_eq!(e.what, "model name");
        assert!(Version::new(bad).is_err(), "{bad:?}");
    }
    assert!(ModelName::new("x".repeat(129)).is_err());
    assert!(ModelName::new("x".repeat(128)).is_ok());
}

#[test]
fn versions_cannot_take_the_registry_file_names() {
    assert!(Version::new("active.json").is_err());
    assert!(Version::new("history.jsonl").is_err());
    assert!(ModelName::new("active.json").is_ok());
}

#[test]
fn invalid_names_are_refused_when_deserialized() {
    let v: Result<Version, _> = serde_json::from_str("\"../etc\"");
    assert!(v.is_err());
    let v: Version = serde_json::from_str("\"3\"").unwrap();
    assert_eq!(v.as_str(), "3");
}

#[test]
fn versions_sort_naturally() {
    let mut vs: Vec<Version> = ["10", "2", "1.10", "1.9", "01", "1", "b", "a"]
        .into_iter()
        .map(|v| Version::new(v).unwrap())
        .collect();
    vs.sort_by(Version::natural_cmp);
    let got: Vec<&str> = vs.iter().map(Version::as_str).collect();
    assert_eq!(got, ["01", "1", "1.9", "1.10", "2", "10", "a", "b"]);
}
