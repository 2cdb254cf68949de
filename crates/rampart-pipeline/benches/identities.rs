//! Rate-limit state under identity churn: one million distinct identities, each taking one request from its
//! quota, then a sweep. Prints the resident memory the state costs and the time per decision.
//! Aim (issue 8): ≤ 200 MB for 1M identities. Run: `cargo bench -p rampart-pipeline --bench identities`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use rampart_core::Identity;
use rampart_pipeline::rate_limit::{Config, RateLimit};

/// Resident set size in bytes, from /proc (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::var("IDENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let config = Config {
        per_minute: 600,
        ..Config::default()
    };
    let limiter = RateLimit::new(&config).unwrap();
    // Each identity lives only for its request, as a JWT subject does: what stays resident is what the
    // limiter keeps (its key, a clone of the identity's string, and the GCRA state).
    let identity = |i: usize| Identity::new(format!("client-{i:08}"), Vec::new());
    let before = rss();
    let started = Instant::now();
    let mut admitted = 0usize;
    for i in 0..n {
        if limiter.acquire(&identity(i)).is_ok() {
            admitted += 1;
        }
    }
    let took = started.elapsed();
    let after = rss();
    assert_eq!(admitted, n);
    assert_eq!(limiter.tracked(), n);
    let per = took.as_nanos() as f64 / n as f64;
    let mb = (after.saturating_sub(before)) as f64 / 1e6;
    println!("identities:        {n}");
    println!("tracked:           {}", limiter.tracked());
    println!(
        "state (RSS delta): {mb:.1} MB ({:.0} bytes per identity)",
        (after - before) as f64 / n as f64
    );
    println!(
        "decision:          {per:.0} ns per new identity ({:.2} M/s)",
        1e3 / per
    );
    let started = Instant::now();
    for i in 0..n {
        let _ = limiter.acquire(&identity(i));
    }
    let per = started.elapsed().as_nanos() as f64 / n as f64;
    println!("decision:          {per:.0} ns per known identity");
    let started = Instant::now();
    limiter.sweep();
    println!(
        "sweep:             {:.0} ms, {} identities still limited",
        started.elapsed().as_secs_f64() * 1e3,
        limiter.tracked()
    );
}
