#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn lists_nested_files_sorted_with_slashes() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("b/c")).unwrap();
    std::fs::write(d.path().join("b/c/x.csv"), "1").unwrap();
    std::fs::write(d.path().join("a.txt"), "2").unwrap();
    std::fs::write(d.path().join("b/y"), "3").unwrap();
    let rels: Vec<_> = walk(d.path()).unwrap().into_iter().map(|f| f.rel).collect();
    assert_eq!(rels, ["a.txt", "b/c/x.csv", "b/y"]);
}

#[cfg(unix)]
#[test]
fn symlink_out_of_the_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("link")).unwrap();
    let err = walk(d.path()).unwrap_err();
    assert!(matches!(err, WalkError::SymlinkLeaves { .. }), "{err}");
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("../../../../etc/passwd", d.path().join("rel")).unwrap();
    assert!(matches!(
        walk(d.path()),
        Err(WalkError::SymlinkLeaves { .. })
    ));
}

#[cfg(unix)]
#[test]
fn symlink_inside_to_a_file_is_recorded() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("real"), "r").unwrap();
    std::os::unix::fs::symlink("real", d.path().join("alias")).unwrap();
    let rels: Vec<_> = walk(d.path()).unwrap().into_iter().map(|f| f.rel).collect();
    assert_eq!(rels, ["alias", "real"]);
}
