#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn write_new_never_replaces_and_leaves_nothing_on_failure() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("out");
    write_new(&f, |w| w.write_all(b"one")).unwrap().unwrap();
    let e = write_new(&f, |w| w.write_all(b"two")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    let failed: Result<(), &str> = write_new(&d.path().join("x"), |_| Err("nope")).unwrap();
    assert_eq!(failed, Err("nope"));
    let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no partial or temporary file left");
    assert_eq!(std::fs::read(&f).unwrap(), b"one");
}

#[test]
fn replace_swaps_the_whole_file() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("active.json");
    replace_bytes(&f, b"old, and longer").unwrap();
    replace_bytes(&f, b"new").unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"new");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
