#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::Welford;

#[test]
fn empty_has_no_mean_or_variance() {
    let w = Welford::new();
    assert_eq!(w.count(), 0);
    assert_eq!(w.mean(), None);
    assert_eq!(w.variance_population(), None);
    assert_eq!(w.variance_sample(), None);
}

#[test]
fn single_value_has_zero_population_variance_and_no_sample_variance() {
    let w: Welford = [42.5].into_iter().collect();
    assert_eq!(w.mean(), Some(42.5));
    assert_eq!(w.variance_population(), Some(0.0));
    assert_eq!(w.variance_sample(), None);
    assert_eq!(w.std_sample(), None);
}

#[test]
fn textbook_example_matches_closed_form() {
    let w: Welford = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
        .into_iter()
        .collect();
    assert_eq!(w.mean(), Some(5.0));
    assert_eq!(w.variance_population(), Some(4.0));
    assert_eq!(w.std_population(), Some(2.0));
    assert!((w.variance_sample().unwrap() - 32.0 / 7.0).abs() < 1e-15);
}

#[test]
fn large_offset_keeps_its_digits() {
    // The one-pass formula returns garbage (often negative) here.
    let w: Welford = (0..1000).map(|i| 1e9 + f64::from(i % 3)).collect();
    let var = w.variance_population().unwrap();
    // 334 zeros, 333 ones, 333 twos: mean 0.999, E[x^2] 1.665, variance 1.665 - 0.999^2.
    assert!((var - 0.666_999).abs() < 1e-6, "var = {var}");
}

#[test]
fn constant_sequence_has_exactly_zero_variance() {
    let w: Welford = std::iter::repeat_n(1e12 + 0.5, 777).collect();
    assert_eq!(w.variance_population(), Some(0.0));
    assert_eq!(w.mean(), Some(1e12 + 0.5));
}

#[test]
fn merged_pieces_match_sequential() {
    let data: Vec<f64> = (0..10_000)
        .map(|i| 1e6 + (f64::from(i) * 0.37).sin())
        .collect();
    let whole: Welford = data.iter().copied().collect();
    let mut merged = Welford::new();
    for chunk in data.chunks(997) {
        merged.merge(&chunk.iter().copied().collect());
    }
    assert_eq!(merged.count(), whole.count());
    // Both are within ~sqrt(n) ulp(1e6) of the exact mean; they need not agree more closely.
    assert!((merged.mean().unwrap() - whole.mean().unwrap()).abs() < 1e-7);
    let (a, b) = (
        merged.variance_sample().unwrap(),
        whole.variance_sample().unwrap(),
    );
    assert!((a - b).abs() < 1e-9 * b, "{a} vs {b}");
}

#[test]
fn merging_empty_is_identity_both_ways() {
    let w: Welford = [1.0, 2.0, 3.0].into_iter().collect();
    let mut a = w;
    a.merge(&Welford::new());
    assert_eq!(a, w);
    let mut b = Welford::new();
    b.merge(&w);
    assert_eq!(b, w);
}
