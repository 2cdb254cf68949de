use super::*;

#[test]
fn debug_never_prints_the_secret() {
    let s = SecretBytes::new(vec![0xab; 4]);
    let shown = format!("{s:?}");
    assert_eq!(shown, "SecretBytes([REDACTED; 4 bytes])");
    assert!(!shown.to_lowercase().contains("ab, "));
}

#[test]
fn random_secrets_differ() {
    let a = SecretBytes::random(32);
    let b = SecretBytes::random(32);
    assert_eq!(a.len(), 32);
    assert_ne!(a.expose(), b.expose());
}

#[test]
fn zeroize_clears_the_bytes() {
    let mut s = SecretBytes::new(vec![7; 8]);
    s.zeroize();
    assert!(s.is_empty(), "Vec zeroize clears and truncates");
}
