use super::*;

#[test]
fn matches_rfc6962_for_small_trees() {
    let l = |b: &[u8]| {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(b);
        <[u8; 32]>::from(h.finalize())
    };
    let node = |a: [u8; 32], b: [u8; 32]| {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(a);
        h.update(b);
        <[u8; 32]>::from(h.finalize())
    };
    assert_eq!(root::<&[u8]>(&[]), <[u8; 32]>::from(Sha256::digest([])));
    assert_eq!(root(&[b"a"]), l(b"a"));
    // Three leaves split 2 | 1.
    assert_eq!(
        root(&[b"a", b"b", b"c"]),
        node(node(l(b"a"), l(b"b")), l(b"c"))
    );
}

#[test]
fn order_and_content_change_the_root() {
    assert_ne!(root(&[b"a", b"b"]), root(&[b"b", b"a"]));
    assert_ne!(root(&[b"a", b"b"]), root(&[b"a", b"c"]));
    assert_ne!(root(&[b"a", b"b"]), root(&[b"a"]));
}
