//! Prometheus metrics, served in text format on the admin listener only.
//!
//! Label values are model names from the config, guard names and reason codes — all fixed at start-up —
//! never anything a client controls (an unknown model name is counted as `_unknown`): label cardinality is
//! a denial-of-service vector.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use rampart_core::Reason;

/// The label used for requests to unknown models.
pub const UNKNOWN_MODEL: &str = "_unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    model: String,
    layer: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabels {
    model: String,
    layer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamFailureLabels {
    model: String,
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 µs … ~8 s in factor-2 steps: the layers live in microseconds, the audit fsync in milliseconds.
    Histogram::new(exponential_buckets(1e-6, 2.0, 24))
}

/// Per-model handles resolved once at start-up, so the hot path does no label hashing or allocation.
#[derive(Clone, Debug)]
pub struct ModelMetrics {
    requests: HashMap<&'static str, Counter>,
    total: Histogram,
    model: Histogram,
    layers: [Histogram; 5],
    rejections: Family<RejectionLabels, Counter>,
    name: String,
}

/// Layers with their own latency histogram, in pipeline order.
pub const LAYERS: [&str; 5] = ["rate_limit", "validate", "inspect", "shape", "audit"];

impl ModelMetrics {
    /// Counts a request by outcome (`ok`, `uncertain`, or a reason code).
    pub fn request(&self, outcome: &'static str) {
        if let Some(c) = self.requests.get(outcome) {
            c.inc();
        }
    }

    /// Counts a rejection by layer and reason.
    pub fn rejection(&self, layer: &'static str, reason: Reason) {
        self.rejections
            .get_or_create(&RejectionLabels {
                model: self.name.clone(),
                layer,
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Records the whole request's latency.
    pub fn total(&self, d: Duration) {
        self.total.observe(d.as_secs_f64());
    }

    /// Records the model call's latency.
    pub fn model(&self, d: Duration) {
        self.model.observe(d.as_secs_f64());
    }

    /// Records one layer's latency (index into [`LAYERS`]).
    pub fn layer(&self, i: usize, d: Duration) {
        if let Some(h) = self.layers.get(i) {
            h.observe(d.as_secs_f64());
        }
    }
}

/// What an upstream call can fail with, as the `kind` label of `rampart_upstream_failures_total`.
pub const UPSTREAM_FAILURES: [&str; 7] = [
    "connect",
    "timeout",
    "status",
    "malformed",
    "transport",
    "overloaded",
    "breaker_open",
];

/// Proxy mode's per-upstream handles (see `upstream.rs`), resolved once at start-up.
#[derive(Clone, Debug)]
pub struct UpstreamMetrics {
    duration: Histogram,
    failures: HashMap<&'static str, Counter>,
    retries: Counter,
    breaker: Gauge,
    opened: Counter,
}

impl UpstreamMetrics {
    /// Handles registered nowhere: for building an upstream outside a serving gateway (`check-config`).
    pub fn detached() -> Self {
        Self {
            duration: latency_histogram(),
            failures: UPSTREAM_FAILURES
                .iter()
                .map(|k| (*k, Counter::default()))
                .collect(),
            retries: Counter::default(),
            breaker: Gauge::default(),
            opened: Counter::default(),
        }
    }

    /// Records one call's latency, from sending to the parsed answer or the failure.
    pub fn call(&self, d: Duration) {
        self.duration.observe(d.as_secs_f64());
    }

    /// Counts a failed call by kind (one of [`UPSTREAM_FAILURES`]).
    pub fn failure(&self, kind: &'static str) {
        if let Some(c) = self.failures.get(kind) {
            c.inc();
        }
    }

    /// Counts a connection attempt made again after a connect error.
    pub fn retry(&self) {
        self.retries.inc();
    }

    /// Publishes the breaker's state: 0 closed, 1 open, 2 half-open. Counts openings.
    pub fn breaker(&self, state: i64) {
        if state == 1 && self.breaker.get() != 1 {
            self.opened.inc();
        }
        self.breaker.set(state);
    }
}

/// The registry and its families.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    total: HistogramFamily<ModelLabels>,
    model: HistogramFamily<ModelLabels>,
    layers: HistogramFamily<LayerLabels>,
    /// Alerts that could not be queued.
    pub alerts_dropped: Counter<u64, AtomicU64>,
    /// Alerts raised.
    pub alerts_raised: Counter<u64, AtomicU64>,
    /// Alerts suppressed as repeats within the deduplication window.
    pub alerts_suppressed: Counter<u64, AtomicU64>,
    /// The alert webhook's deliveries.
    pub webhook: crate::webhook::WebhookCounters,
    /// Audit records written.
    pub audit_records: Gauge,
    /// Audit fsync groups.
    pub audit_groups: Gauge,
    /// Audit failures.
    pub audit_failures: Counter<u64, AtomicU64>,
    /// Items waiting in the review queue since start.
    pub review_queued: Counter<u64, AtomicU64>,
    /// The monitors' families (`rampart_drift_*`, `rampart_observations_dropped_total`, …).
    pub monitor: crate::monitor::MonitorMetrics,
    upstream_duration: HistogramFamily<ModelLabels>,
    upstream_failures: Family<UpstreamFailureLabels, Counter>,
    upstream_retries: Family<ModelLabels, Counter>,
    upstream_breaker: Family<ModelLabels, Gauge>,
    upstream_opened: Family<ModelLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rampart");
        let requests = Family::<RequestLabels, Counter>::default();
        let rejections = Family::<RejectionLabels, Counter>::default();
        let total: HistogramFamily<ModelLabels> = Family::new_with_constructor(latency_histogram);
        let model: HistogramFamily<ModelLabels> = Family::new_with_constructor(latency_histogram);
        let layers: HistogramFamily<LayerLabels> = Family::new_with_constructor(latency_histogram);
        let alerts_dropped = Counter::default();
        let alerts_raised = Counter::default();
        let alerts_suppressed = Counter::default();
        let webhook = crate::webhook::WebhookCounters::default();
        registry.register(
            "alert_webhook_sent",
            "Alerts the webhook accepted (2xx)",
            webhook.sent.clone(),
        );
        registry.register(
            "alert_webhook_retried",
            "Webhook attempts made again after a connection error, timeout, 429 or 5xx",
            webhook.retried.clone(),
        );
        registry.register(
            "alert_webhook_failed",
            "Alerts the webhook refused or that still failed after the last retry",
            webhook.failed.clone(),
        );
        registry.register(
            "alert_webhook_dropped",
            "Alerts lost for want of room in the webhook queue or time at shutdown",
            webhook.dropped.clone(),
        );
        let audit_records = Gauge::default();
        let audit_groups = Gauge::default();
        let audit_failures = Counter::default();
        let review_queued = Counter::default();
        registry.register(
            "requests",
            "Requests by model and outcome (ok, uncertain, or the reason code)",
            requests.clone(),
        );
        registry.register(
            "rejections",
            "Rejections by model, layer and reason",
            rejections.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole-request latency, audit commit included",
            total.clone(),
        );
        registry.register(
            "model_duration_seconds",
            "Model inference latency",
            model.clone(),
        );
        registry.register(
            "layer_duration_seconds",
            "Latency of each pipeline layer",
            layers.clone(),
        );
        registry.register("alerts_raised", "Alerts raised", alerts_raised.clone());
        registry.register(
            "alerts_suppressed",
            "Alerts suppressed as repeats of the same kind, identity and model within the deduplication window",
            alerts_suppressed.clone(),
        );
        registry.register(
            "alerts_dropped",
            "Alerts dropped because the alert queue was full",
            alerts_dropped.clone(),
        );
        registry.register(
            "audit_records",
            "Audit records made durable since start",
            audit_records.clone(),
        );
        registry.register(
            "audit_commit_groups",
            "Audit group commits (one fsync each) since start",
            audit_groups.clone(),
        );
        registry.register(
            "audit_failures",
            "Audit commits that failed",
            audit_failures.clone(),
        );
        registry.register(
            "review_queued",
            "Predictions sent to the human review queue",
            review_queued.clone(),
        );
        let monitor = crate::monitor::MonitorMetrics::register(&mut registry);
        let upstream_duration: HistogramFamily<ModelLabels> =
            Family::new_with_constructor(latency_histogram);
        let upstream_failures = Family::<UpstreamFailureLabels, Counter>::default();
        let upstream_retries = Family::<ModelLabels, Counter>::default();
        let upstream_breaker = Family::<ModelLabels, Gauge>::default();
        let upstream_opened = Family::<ModelLabels, Counter>::default();
        registry.register(
            "upstream_duration_seconds",
            "Proxy mode: latency of each call to the upstream model server, failed calls included",
            upstream_duration.clone(),
        );
        registry.register(
            "upstream_failures",
            "Proxy mode: failed upstream calls by model and kind (connect, timeout, status, malformed, \
             transport, overloaded, breaker_open)",
            upstream_failures.clone(),
        );
        registry.register(
            "upstream_retries",
            "Proxy mode: connection attempts made again after a connect error (nothing had been sent)",
            upstream_retries.clone(),
        );
        registry.register(
            "upstream_breaker_state",
            "Proxy mode: the circuit breaker's state (0 closed, 1 open, 2 half-open)",
            upstream_breaker.clone(),
        );
        registry.register(
            "upstream_breaker_opened",
            "Proxy mode: times the circuit breaker opened",
            upstream_opened.clone(),
        );
        Self {
            registry,
            requests,
            rejections,
            total,
            model,
            layers,
            alerts_dropped,
            alerts_raised,
            alerts_suppressed,
            webhook,
            audit_records,
            audit_groups,
            audit_failures,
            review_queued,
            monitor,
            upstream_duration,
            upstream_failures,
            upstream_retries,
            upstream_breaker,
            upstream_opened,
        }
    }

    /// Resolves the proxy-mode handles of one upstream-backed model.
    pub fn for_upstream(&self, name: &str) -> UpstreamMetrics {
        let m = ModelLabels {
            model: name.to_owned(),
        };
        UpstreamMetrics {
            duration: self.upstream_duration.get_or_create(&m).clone(),
            failures: UPSTREAM_FAILURES
                .iter()
                .map(|kind| {
                    let labels = UpstreamFailureLabels {
                        model: name.to_owned(),
                        kind,
                    };
                    (*kind, self.upstream_failures.get_or_create(&labels).clone())
                })
                .collect(),
            retries: self.upstream_retries.get_or_create(&m).clone(),
            breaker: self.upstream_breaker.get_or_create(&m).clone(),
            opened: self.upstream_opened.get_or_create(&m).clone(),
        }
    }

    /// Resolves the handles for one model (or [`UNKNOWN_MODEL`]).
    pub fn for_model(&self, name: &str) -> ModelMetrics {
        let mut requests = HashMap::new();
        let outcomes = ["ok", "uncertain"]
            .into_iter()
            .chain(Reason::ALL.iter().map(|r| r.as_str()));
        for outcome in outcomes {
            let c = self
                .requests
                .get_or_create(&RequestLabels {
                    model: name.to_owned(),
                    reason: outcome,
                })
                .clone();
            requests.insert(outcome, c);
        }
        let m = ModelLabels {
            model: name.to_owned(),
        };
        let layer = |layer| {
            self.layers
                .get_or_create(&LayerLabels {
                    model: name.to_owned(),
                    layer,
                })
                .clone()
        };
        ModelMetrics {
            requests,
            total: self.total.get_or_create(&m).clone(),
            model: self.model.get_or_create(&m).clone(),
            layers: LAYERS.map(layer),
            rejections: self.rejections.clone(),
            name: name.to_owned(),
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
