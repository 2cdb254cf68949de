//! Per-identity rate limiting with GCRA (`governor`), one limiter per model, keyed by the authenticated
//! identity. Keys are sharded (DashMap) so there is no global lock on the hot path; memory stays bounded
//! because keys are identities that authenticated (never client-chosen strings) and [`RateLimit::sweep`]
//! drops every key whose state is indistinguishable from a fresh one.
//!
//! Headers follow the IETF httpapi `ratelimit-headers` draft (`RateLimit-Policy`, `RateLimit`) plus the older
//! `RateLimit-Limit` / `-Remaining` / `-Reset` trio that many clients still read.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use serde::Deserialize;

use rampart_core::{GuardId, Identity, Reason, Rejection, Severity};

use crate::Mode;

/// `[models.rate_limit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `enforce` (default), `observe` (count would-be 429s without sending them) or `off`.
    #[serde(default)]
    pub mode: Mode,
    /// Sustained requests per minute per identity. Default 60.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Requests an idle identity may send at once. Default: `per_minute`, so a fresh client gets exactly its
    /// minute's quota before it is paced.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_per_minute() -> u32 {
    60
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            per_minute: default_per_minute(),
            burst: None,
        }
    }
}

/// What a client is told about its quota, on success and on refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Requests per window (the burst).
    pub limit: u32,
    /// Window in seconds (time for an empty bucket to refill).
    pub window_secs: u64,
    /// Requests left now.
    pub remaining: u32,
    /// Seconds until the bucket is full again (or, when refused, until the next request is allowed).
    pub reset_secs: u64,
}

impl Quotas {
    /// The draft's headers and the legacy trio, as (name, value) pairs.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        [
            (
                "ratelimit-policy",
                format!("\"default\";q={};w={}", self.limit, self.window_secs),
            ),
            (
                "ratelimit",
                format!("\"default\";r={};t={}", self.remaining, self.reset_secs),
            ),
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_secs.to_string()),
        ]
    }
}

type Keyed<C> = RateLimiter<Arc<str>, DashMapStateStore<Arc<str>>, C, StateInformationMiddleware>;
type Direct<C> = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    C,
    StateInformationMiddleware,
>;

/// The limiter for one model.
pub struct RateLimit<C: Clock + Clone = DefaultClock> {
    limiter: Keyed<C>,
    /// Identities a responder has tightened: each has its own, smaller quota, checked before the shared one.
    /// Read once per request from a snapshot (no lock); bounded by the responder, which lifts what expires.
    tightened: ArcSwap<HashMap<Arc<str>, Arc<Direct<C>>>>,
    clock: C,
    mode: Mode,
    burst: u32,
    per_minute: u32,
    period: Duration,
}

impl<C: Clock + Clone> std::fmt::Debug for RateLimit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("burst", &self.burst)
            .field("period", &self.period)
            .finish()
    }
}

/// A config that cannot make a quota.
#[derive(Debug, thiserror::Error)]
#[error("per_minute and burst must be at least 1")]
pub struct InvalidQuota;

impl RateLimit<DefaultClock> {
    /// Builds a limiter on the real clock.
    ///
    /// # Errors
    /// [`InvalidQuota`] for a zero rate or burst.
    pub fn new(config: &Config) -> Result<Self, InvalidQuota> {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimit<C> {
    /// Builds a limiter on the given clock (a fake one in tests).
    ///
    /// # Errors
    /// [`InvalidQuota`] for a zero rate or burst.
    pub fn with_clock(config: &Config, clock: C) -> Result<Self, InvalidQuota> {
        let per_minute = NonZeroU32::new(config.per_minute).ok_or(InvalidQuota)?;
        let burst =
            NonZeroU32::new(config.burst.unwrap_or(config.per_minute)).ok_or(InvalidQuota)?;
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let period = quota.replenish_interval();
        let limiter: Keyed<C> =
            RateLimiter::new(quota, DashMapStateStore::default(), clock.clone());
        Ok(Self {
            limiter,
            tightened: ArcSwap::from_pointee(HashMap::new()),
            clock,
            mode: config.mode,
            burst: burst.get(),
            per_minute: per_minute.get(),
            period,
        })
    }

    /// Divides `identity`'s rate and burst by `factor` (at least 1 request per minute) until
    /// [`RateLimit::relax`]: the quota it has used stays counted, and the smaller one applies on top.
    pub fn tighten(&self, identity: Arc<str>, factor: u32) {
        let factor = factor.max(1);
        let per_minute =
            NonZeroU32::new((self.per_minute / factor).max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((self.burst / factor).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let direct: Arc<Direct<C>> = Arc::new(
            RateLimiter::direct_with_clock(quota, self.clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
        );
        self.tightened.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(identity.clone(), direct.clone());
            m
        });
    }

    /// Takes over `other`'s tightened identities (a reloaded limiter replacing `other`): a responder's action
    /// outlives a quota change.
    pub fn adopt_tightened(&self, other: &RateLimit<C>) {
        self.tightened.store(other.tightened.load_full());
    }

    /// Ends a [`RateLimit::tighten`].
    pub fn relax(&self, identity: &str) {
        self.tightened.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.remove(identity);
            m
        });
    }

    /// Whether `identity` is tightened now.
    pub fn is_tightened(&self, identity: &str) -> bool {
        self.tightened.load().contains_key(identity)
    }

    /// The guard's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Requests an idle identity may send at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The emission interval: one request's worth of quota comes back every `period`.
    pub fn period(&self) -> Duration {
        self.period
    }

    fn secs_ceil(d: Duration) -> u64 {
        let s = d.as_secs();
        if d.subsec_nanos() > 0 {
            s + 1
        } else {
            s
        }
    }

    fn window_secs(&self) -> u64 {
        Self::secs_ceil(self.period * self.burst)
    }

    /// Takes one request from `identity`'s quota.
    ///
    /// # Errors
    /// A 429 [`Rejection`] with `retry_after`, and the quotas to send with it.
    pub fn acquire(&self, identity: &Identity) -> Result<Quotas, (Rejection, Quotas)> {
        // A tightened identity must pass its own, smaller quota as well.
        if let Some(t) = self.tightened.load().get(identity.id()) {
            if let Err(not_until) = t.check() {
                return Err(self.refusal(not_until.wait_time_from(self.clock.now())));
            }
        }
        match self.limiter.check_key(identity.id_arc()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.burst.saturating_sub(remaining);
                Ok(Quotas {
                    limit: self.burst,
                    window_secs: self.window_secs(),
                    remaining,
                    reset_secs: Self::secs_ceil(self.period * used),
                })
            }
            Err(not_until) => Err(self.refusal(not_until.wait_time_from(self.clock.now()))),
        }
    }

    /// The 429 for a request that may be retried after `wait`.
    fn refusal(&self, wait: Duration) -> (Rejection, Quotas) {
        // Retry-After is whole seconds, at least 1, never earlier than the quota allows.
        let secs = Self::secs_ceil(wait).max(1);
        let quotas = Quotas {
            limit: self.burst,
            window_secs: self.window_secs(),
            remaining: 0,
            reset_secs: secs,
        };
        let rejection = Rejection::new(Reason::RateLimited, GuardId::RATE_LIMIT)
            .with_retry_after(Duration::from_secs(secs))
            .with_severity(Severity::Low);
        (rejection, quotas)
    }

    /// Drops the state of identities whose bucket is full again; call it periodically.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Identities with live state.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests;
