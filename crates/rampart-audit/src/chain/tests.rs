#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn genesis_is_sixty_four_zeros() {
    assert_eq!(ChainHash::GENESIS.to_hex(), "0".repeat(64));
}

#[test]
fn line_hash_matches_known_sha256_vector() {
    // FIPS 180-4 example "abc".
    assert_eq!(
        ChainHash::of_line(b"abc").to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn hex_round_trips() {
    let h = ChainHash::of_line(b"{\"v\":1}");
    assert_eq!(ChainHash::from_hex(&h.to_hex()).unwrap(), h);
    assert_eq!(h.to_string(), h.to_hex());
}

#[test]
fn hex_with_upper_case_or_wrong_length_is_refused() {
    let h = ChainHash::of_line(b"x").to_hex();
    assert_eq!(ChainHash::from_hex(&h.to_uppercase()), Err(BadHash));
    assert_eq!(ChainHash::from_hex(&h[..63]), Err(BadHash));
    assert_eq!(ChainHash::from_hex(&format!("{h}0")), Err(BadHash));
    assert_eq!(ChainHash::from_hex(&"g".repeat(64)), Err(BadHash));
}
