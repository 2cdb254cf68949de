//! The circuit breaker in front of one upstream (the classic three states, as in Nygard's *Release It!*):
//!
//! - **closed**: calls go through; `failures` consecutive failed calls open it.
//! - **open**: every call is refused at once (503 `model_unavailable`, `Retry-After` the time left) until the
//!   cool-down has passed — a dead upstream costs nothing per request, and is not hammered while it restarts.
//! - **half-open**: after the cool-down, exactly one call goes through as a probe; the others are refused
//!   meanwhile. The probe's success closes the breaker, its failure opens it for another cool-down.
//!
//! Time is passed in by the caller (no clock here), so tests drive it by hand. The healthy case — closed, no
//! failure counted — is one atomic load per call; the lock is taken only while something is wrong.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The breaker's state, as the metrics gauge reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// 0 closed, 1 open, 2 half-open (`rampart_upstream_breaker_state`).
    pub(crate) fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// What a call may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go ahead (closed).
    Call,
    /// Go ahead as the one probe (half-open): report its outcome, or [`Breaker::abandon`] it.
    Probe,
    /// Refused; retry after this long.
    Refuse(Duration),
}

/// A change worth an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Closed → open: the upstream is down.
    Opened,
    /// Half-open → closed: the probe succeeded, the upstream is back.
    Closed,
}

/// One upstream's breaker. The lock is held for a few instructions, never across an await.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// Closed with no failure counted: calls need not take the lock. Cleared (under the lock) by every
    /// failure, set again (under the lock) by the success that closes or resets the breaker.
    healthy: AtomicBool,
    inner: Mutex<Inner>,
    threshold: u32,
    cool_down: Duration,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            healthy: AtomicBool::new(true),
            inner: Mutex::new(Inner::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cool_down,
        }
    }

    pub(crate) fn state(&self) -> State {
        if self.healthy.load(Ordering::Acquire) {
            return State::Closed;
        }
        match *self.inner.lock() {
            Inner::Closed { .. } => State::Closed,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Whether a call may go out now.
    pub(crate) fn admit(&self, now: Instant) -> Admit {
        if self.healthy.load(Ordering::Acquire) {
            return Admit::Call;
        }
        let mut inner = self.inner.lock();
        match *inner {
            Inner::Closed { .. } => Admit::Call,
            Inner::Open { until } if now < until => Admit::Refuse(until - now),
            Inner::Open { .. } | Inner::HalfOpen { probing: false } => {
                *inner = Inner::HalfOpen { probing: true };
                Admit::Probe
            }
            // The probe is out: its outcome decides within one timeout.
            Inner::HalfOpen { probing: true } => Admit::Refuse(Duration::from_secs(1)),
        }
    }

    /// A call (or the probe) succeeded.
    pub(crate) fn success(&self) -> Option<Transition> {
        // A failure racing with this load may leave its count standing: one failure more, never one less.
        if self.healthy.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.inner.lock();
        match *inner {
            Inner::Closed { .. } => {
                *inner = Inner::Closed { failures: 0 };
                self.healthy.store(true, Ordering::Release);
                None
            }
            Inner::HalfOpen { .. } => {
                *inner = Inner::Closed { failures: 0 };
                self.healthy.store(true, Ordering::Release);
                Some(Transition::Closed)
            }
            // A call admitted before the breaker opened answered late: one answer does not prove the
            // upstream is back; the probe after the cool-down will.
            Inner::Open { .. } => None,
        }
    }

    /// A call (or the probe) failed in a way that says the upstream is unwell.
    pub(crate) fn failure(&self, now: Instant) -> Option<Transition> {
        let mut inner = self.inner.lock();
        self.healthy.store(false, Ordering::Release);
        match *inner {
            Inner::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    *inner = Inner::Open {
                        until: now + self.cool_down,
                    };
                    Some(Transition::Opened)
                } else {
                    *inner = Inner::Closed { failures };
                    None
                }
            }
            // The probe failed: still down, already alerted.
            Inner::HalfOpen { .. } => {
                *inner = Inner::Open {
                    until: now + self.cool_down,
                };
                None
            }
            Inner::Open { .. } => None,
        }
    }

    /// The probe ended without a verdict on the upstream (its request was cancelled, or failed for its own
    /// input): the next call probes instead.
    pub(crate) fn abandon(&self) {
        let mut inner = self.inner.lock();
        if let Inner::HalfOpen { probing: true } = *inner {
            *inner = Inner::HalfOpen { probing: false };
        }
    }
}
