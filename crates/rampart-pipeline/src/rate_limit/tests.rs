#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use governor::clock::FakeRelativeClock;
use rampart_core::{Identity, Reason};

use super::{Config, RateLimit};
use crate::Mode;

fn limiter(
    per_minute: u32,
    burst: Option<u32>,
) -> (RateLimit<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let config = Config {
        mode: Mode::Enforce,
        per_minute,
        burst,
    };
    (
        RateLimit::with_clock(&config, clock.clone()).unwrap(),
        clock,
    )
}

#[test]
fn denies_after_burst() {
    let (rl, _clock) = limiter(60, Some(3));
    let alice = Identity::new("alice", vec![]);
    for left in [2, 1, 0] {
        assert_eq!(rl.acquire(&alice).unwrap().remaining, left);
    }
    let (rej, q) = rl.acquire(&alice).unwrap_err();
    assert_eq!(rej.reason, Reason::RateLimited);
    assert_eq!(rej.retry_after, Some(Duration::from_secs(1)));
    assert_eq!((q.remaining, q.reset_secs), (0, 1));
}

#[test]
fn replenishes_with_time() {
    let (rl, clock) = limiter(60, Some(1));
    let alice = Identity::new("alice", vec![]);
    assert!(rl.acquire(&alice).is_ok());
    assert!(rl.acquire(&alice).is_err());
    clock.advance(Duration::from_secs(1));
    assert!(rl.acquire(&alice).is_ok());
}

#[test]
fn identities_isolated() {
    let (rl, _clock) = limiter(60, Some(1));
    assert!(rl.acquire(&Identity::new("alice", vec![])).is_ok());
    assert!(rl.acquire(&Identity::new("bob", vec![])).is_ok());
    assert!(rl.acquire(&Identity::new("alice", vec![])).is_err());
}

#[test]
fn retry_after_is_never_early() {
    let (rl, _clock) = limiter(2, Some(1));
    let alice = Identity::new("alice", vec![]);
    assert!(rl.acquire(&alice).is_ok());
    let (rej, _) = rl.acquire(&alice).unwrap_err();
    // Two per minute: the next slot is 30 s away.
    assert_eq!(rej.retry_after, Some(Duration::from_secs(30)));
}

#[test]
fn sweep_forgets_idle_identities() {
    let (rl, clock) = limiter(60, Some(5));
    rl.acquire(&Identity::new("alice", vec![])).unwrap();
    assert_eq!(rl.tracked(), 1);
    clock.advance(Duration::from_secs(10));
    rl.sweep();
    assert_eq!(rl.tracked(), 0);
}

#[test]
fn default_quota_is_sixty_per_minute() {
    let (rl, _clock) = limiter(60, None);
    let q = rl.acquire(&Identity::new("a", vec![])).unwrap();
    assert_eq!((q.limit, q.remaining, q.window_secs), (60, 59, 60));
    let headers = q.headers();
    assert_eq!(headers[0].1, "\"default\";q=60;w=60");
    assert_eq!(headers[1].1, "\"default\";r=59;t=1");
}

/// See: issue 6. A responder's tightening applies to one identity only, and ends when relaxed.
#[test]
fn tightened_identity_gets_a_smaller_quota_until_relaxed() {
    let (rl, _clock) = limiter(60, Some(10));
    let alice = Identity::new("alice", vec![]);
    let bob = Identity::new("bob", vec![]);
    rl.tighten(alice.id_arc().clone(), 5);
    assert!(rl.is_tightened("alice"));
    assert!(rl.acquire(&alice).is_ok());
    assert!(rl.acquire(&alice).is_ok());
    let (rej, _) = rl.acquire(&alice).unwrap_err();
    assert_eq!(rej.reason, Reason::RateLimited);
    for _ in 0..10 {
        assert!(rl.acquire(&bob).is_ok(), "others keep their quota");
    }
    rl.relax("alice");
    assert!(!rl.is_tightened("alice"));
    assert!(rl.acquire(&alice).is_ok());
}
