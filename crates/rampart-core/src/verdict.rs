//! What a guard decides about a request.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;

use crate::Reason;

/// The name of a guard (a layer of the pipeline), used in the audit, the metrics and the logs.
///
/// A fixed set of `&'static str` keeps metric label cardinality bounded by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GuardId(&'static str);

impl GuardId {
    /// Authentication at the edge.
    pub const AUTH: GuardId = GuardId("auth");
    /// Role-based access control: the caller's roles must grant the request's permission.
    pub const RBAC: GuardId = GuardId("rbac");
    /// Identities blocked by an operator (admin API) or a responder.
    pub const BLOCKLIST: GuardId = GuardId("blocklist");
    /// Routing (unknown model or path).
    pub const ROUTE: GuardId = GuardId("route");
    /// Transport limits: body size, media type, timeouts.
    pub const TRANSPORT: GuardId = GuardId("transport");
    /// Per-identity rate limiting.
    pub const RATE_LIMIT: GuardId = GuardId("rate_limit");
    /// Input validation (decoding, shape, dtype, finiteness, ranges).
    pub const VALIDATE: GuardId = GuardId("validate");
    /// Per-feature z-score anomaly detection.
    pub const ZSCORE: GuardId = GuardId("anomaly_zscore");
    /// Mahalanobis-distance anomaly detection.
    pub const MAHALANOBIS: GuardId = GuardId("anomaly_mahalanobis");
    /// The model call itself.
    pub const MODEL: GuardId = GuardId("model");
    /// Feature squeezing (Xu et al. 2018): the prediction moved too much when the input was squeezed.
    pub const SQUEEZE: GuardId = GuardId("adversarial_squeeze");
    /// An ensemble whose members disagree too much on the input.
    pub const ENSEMBLE: GuardId = GuardId("ensemble");
    /// Randomized smoothing (a failure of the noisy model calls, or an abstention recorded as a finding).
    pub const SMOOTHING: GuardId = GuardId("smoothing");
    /// The confidence gate that routes uncertain answers to human review.
    pub const CONFIDENCE: GuardId = GuardId("confidence");
    /// Output sanitization.
    pub const SANITIZE: GuardId = GuardId("sanitize");
    /// The audit commit.
    pub const AUDIT: GuardId = GuardId("audit");

    /// The guard's name.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for GuardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// How serious a finding or rejection is, for alert routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine: malformed input, over-quota clients.
    Low,
    /// Worth a look: anomalous input, repeated abuse.
    Medium,
    /// Act now: the defense itself is impaired (audit down, internal error).
    High,
}

/// A refusal. `detail` is shown to the client and so must never hold internal state or echo input; causes go
/// to the audit and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The stable code (and so the status).
    pub reason: Reason,
    /// The guard that refused.
    pub guard: GuardId,
    /// Safe text for the client.
    pub detail: Cow<'static, str>,
    /// For 429 and 503: when the client may try again.
    pub retry_after: Option<Duration>,
    /// For alert routing.
    pub severity: Severity,
}

impl Rejection {
    /// A rejection with the reason's own description as its detail.
    pub fn new(reason: Reason, guard: GuardId) -> Self {
        Self {
            reason,
            guard,
            detail: Cow::Borrowed(reason.describe()),
            retry_after: None,
            severity: Severity::Low,
        }
    }

    /// Replaces the client-facing detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Sets when the client may retry.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Sets the severity.
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// Something a guard noticed that did not (or, in observe mode, was not allowed to) change the response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The guard that noticed.
    pub guard: GuardId,
    /// What it would have refused with.
    pub reason: Reason,
    /// Safe text, as for a rejection.
    pub detail: Cow<'static, str>,
}

impl From<Rejection> for Finding {
    fn from(r: Rejection) -> Self {
        Finding {
            guard: r.guard,
            reason: r.reason,
            detail: r.detail,
        }
    }
}

/// A guard's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing to say.
    Pass,
    /// Recorded (audit, metrics) but the response is unchanged.
    Flag(Finding),
    /// The request stops here.
    Reject(Rejection),
}
