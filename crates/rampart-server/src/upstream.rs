//! Proxy mode: a model served by an Open Inference Protocol v2 server (Triton, KServe, MLServer, another
//! Rampart), with Rampart's whole pipeline in front of it.
//!
//! The request path is unchanged — identity, RBAC, rate limit, validation, anomaly detection, then the model
//! call, the confidence gate, sanitization, audit and monitoring — only the model call goes over the network:
//! the gateway's `Runner::Upstream` awaits `Upstream::infer`, so no async worker ever blocks on it.
//!
//! Why it is shaped this way:
//! - **The upstream's answer never reaches the client.** It is parsed into [`rampart_model::Output`] (one
//!   named output, shape and values checked, body size capped) and from there on it is an answer like any
//!   other: gated, sanitized, audited. A malformed, oversized or refused answer is 502 `upstream_error` with the
//!   one generic text; what was wrong goes to the log, never to the client.
//! - **Failures map to stable reasons.** Connection refused (after the connect retries) and an open breaker:
//!   503 `model_unavailable`; no answer within `timeout_ms`: 504 `upstream_timeout`; more than `max_in_flight`
//!   calls at once, or the upstream's own 429: 503 `overloaded`; anything else: 502 `upstream_error`.
//! - **Only idempotent failures are retried**: a connect error, where nothing was sent. A request that may have
//!   reached the model is never sent twice.
//! - **A circuit breaker** (`breaker.rs`) stops calling a dead upstream: `failures` consecutive failures open it
//!   (alert `upstream_down`), a probe after `cool_down_ms` closes it on success (alert `upstream_recovered`).
//!   Failures a client's input could provoke — the upstream's 4xx refusals other than 401/403/404 — are not
//!   counted: a caller must not be able to open the breaker for everyone.
//! - **Connections are pooled** (hyper-util's client; HTTP/2 when the upstream offers `h2` by ALPN, HTTP/1.1
//!   keep-alive otherwise), over the TLS client set-up shared with the alert webhook ([`crate::tls`]), with
//!   optional client certificates (mTLS) and a credential read from a secret file.
//! - **Start-up checks the model, and fails rather than guesses.** The metadata (`GET /v2/models/{model}`) is
//!   read once at start-up: its input width must equal the baseline's, its class count (and its labels, when
//!   it publishes them) the entry's `labels`. An upstream that cannot be reached then stops the gateway from
//!   starting with an error naming it: serving a model whose shape was never checked would let the first
//!   requests find out, and a supervisor's restart policy is a better-understood retry than one hidden here.
//!   Upstream entries have no hot reload (they are not registry-backed), so the metadata is not read again.
//! - **It is also a [`Backend`]**, so hardening wrappers (smoothing, ensembles, squeezing) that call
//!   `Backend::predict` on a blocking thread work against an upstream too.

mod breaker;
pub mod config;
mod oip;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use rampart_core::{GuardId, Reason, Rejection, Severity};
use rampart_model::{Backend, ModelInfo, Output, RunError};

use crate::alerts::{Alert, AlertSink};
use crate::metrics::UpstreamMetrics;
use crate::webhook::error_chain;
use breaker::{Admit, Breaker, Transition};
pub use config::{BreakerConfig, UpstreamConfig, UpstreamKind};
use oip::{Malformed, Spec};

/// How long idle pooled connections are kept: long enough to survive gaps in traffic, short enough that a
/// load balancer in between (typically 60–350 s) does not close them first.
const POOL_IDLE: Duration = Duration::from_secs(50);

/// Why an upstream cannot be set up at start-up. Messages name the upstream and what failed, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamSetupError {
    /// The TLS client could not be built (CA file, client certificate or key).
    #[error("upstream TLS: {0}")]
    Tls(String),
    /// `api_key_file` could not be read.
    #[error("upstream.api_key_file: {0}")]
    ApiKey(String),
    /// The metadata request failed: the upstream is unreachable, refused it, or did not answer in time.
    #[error("upstream {endpoint}: cannot read the model metadata ({cause})")]
    Unreachable {
        /// `GET` target, the URL of the metadata.
        endpoint: String,
        /// What happened.
        cause: String,
    },
    /// The metadata does not describe a model proxy mode can serve, or does not match the entry.
    #[error("upstream {endpoint}: {message}")]
    Mismatch {
        /// The metadata URL.
        endpoint: String,
        /// What does not fit.
        message: String,
    },
}

/// Why one call failed. The text is for the operator's log; the client sees only [`CallError::rejection`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CallError {
    /// `max_in_flight` calls are already out.
    #[error("{0} calls already in flight")]
    Overloaded(usize),
    /// The circuit breaker is open (or its probe is out).
    #[error("circuit breaker open")]
    Open(Duration),
    /// No connection could be made (after the retries).
    #[error("connect: {0}")]
    Connect(String),
    /// No complete answer within `timeout_ms`.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The upstream answered with another status than 200.
    #[error("the upstream answered status {0}")]
    Status(u16),
    /// The answer was larger than `max_response_bytes`.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The answer could not be read as the expected tensor.
    #[error("{0}")]
    Malformed(#[from] Malformed),
    /// The connection failed after the request was sent (reset, closed, protocol error).
    #[error("transport: {0}")]
    Transport(String),
    /// The request could not be built (rows that are not finite, or the wrong count).
    #[error("cannot build the request: {0}")]
    Request(&'static str),
}

impl CallError {
    /// The label of `rampart_upstream_failures_total`.
    fn kind(&self) -> &'static str {
        match self {
            Self::Overloaded(_) => "overloaded",
            Self::Open(_) => "breaker_open",
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "status",
            Self::TooLarge(_) | Self::Malformed(_) => "malformed",
            Self::Transport(_) | Self::Request(_) => "transport",
        }
    }

    /// Whether the failure says the upstream is unwell (counted by the breaker). Refusals a client's input
    /// can provoke are not, nor are local refusals.
    fn is_upstream_fault(&self) -> bool {
        match self {
            Self::Connect(_)
            | Self::Timeout(_)
            | Self::TooLarge(_)
            | Self::Malformed(_)
            | Self::Transport(_) => true,
            Self::Status(s) => *s >= 500 || matches!(*s, 401 | 403 | 404),
            Self::Overloaded(_) | Self::Open(_) | Self::Request(_) => false,
        }
    }

    /// The refusal the client gets: a stable reason, the generic text, nothing from the upstream.
    pub(crate) fn rejection(&self) -> Rejection {
        let r = match self {
            Self::Overloaded(_) | Self::Status(429) => {
                Rejection::new(Reason::Overloaded, GuardId::MODEL)
                    .with_retry_after(Duration::from_secs(1))
            }
            Self::Open(after) => rampart_pipeline::model_unavailable()
                .with_retry_after((*after).max(Duration::from_secs(1))),
            Self::Connect(_) => rampart_pipeline::model_unavailable(),
            Self::Timeout(_) => Rejection::new(Reason::UpstreamTimeout, GuardId::MODEL),
            Self::Status(_)
            | Self::TooLarge(_)
            | Self::Malformed(_)
            | Self::Transport(_)
            | Self::Request(_) => Rejection::new(Reason::UpstreamError, GuardId::MODEL),
        };
        r.with_severity(Severity::High)
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One upstream model: the pooled client, what its metadata said, its breaker and concurrency limit.
pub(crate) struct Upstream {
    /// The served model's name (this gateway's), for logs and alerts.
    name: String,
    /// `{url}/v2/models/{model}[/versions/{v}]/infer`.
    infer: Uri,
    client: HttpClient,
    /// The credential header, marked sensitive (hyper never logs it).
    auth: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
    retries: u32,
    max_response: usize,
    max_in_flight: usize,
    output: String,
    spec: Spec,
    info: ModelInfo,
    in_flight: Semaphore,
    breaker: Breaker,
    metrics: UpstreamMetrics,
    /// Set once the gateway's alert sink exists (it is built after the models).
    alerts: OnceLock<AlertSink>,
    /// The runtime [`Backend::predict`] blocks on.
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("infer", &self.infer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `url` without its trailing `/`, then `/v2/models/{model}[/versions/{version}]`.
fn model_url(cfg: &UpstreamConfig) -> String {
    let mut s = format!("{}/v2/models/{}", cfg.url.trim_end_matches('/'), cfg.model);
    if let Some(v) = &cfg.version {
        s.push_str("/versions/");
        s.push_str(v);
    }
    s
}

impl Upstream {
    /// Builds the client, reads the model's metadata and checks it against the entry (`labels`; the baseline
    /// width is checked by the caller against [`Backend::info`]). Must run inside a Tokio runtime, whose handle
    /// [`Backend::predict`] will use.
    ///
    /// # Errors
    /// [`UpstreamSetupError`] naming the upstream and what failed.
    pub(crate) async fn connect(
        name: &str,
        cfg: &UpstreamConfig,
        labels: &[String],
        resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
        metrics: UpstreamMetrics,
    ) -> Result<Self, UpstreamSetupError> {
        let identity = match (&cfg.client_cert_file, &cfg.client_key_file) {
            (Some(cert), Some(key)) => Some(
                crate::tls::load_identity(cert, key, &resolve)
                    .map_err(|e| UpstreamSetupError::Tls(format!("client certificate: {e}")))?,
            ),
            _ => None,
        };
        let ca = cfg.ca_file.as_deref().map(&resolve);
        let tls = crate::tls::client_config(ca.as_deref(), identity)
            .map_err(|e| UpstreamSetupError::Tls(e.to_string()))?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let mut http = HttpConnector::new();
        // The URL's scheme decides TLS (the wrapper below), not the plain connector.
        http.enforce_http(false);
        // Small request, small answer: Nagle's delay would be most of the latency.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(cfg.max_in_flight)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);

        let auth = match &cfg.api_key_file {
            Some(source) => {
                let raw = crate::secret::read(source, &resolve)
                    .map_err(|e| UpstreamSetupError::ApiKey(e.to_string()))?;
                let key = std::str::from_utf8(&raw)
                    .map_err(|_| UpstreamSetupError::ApiKey("the key is not UTF-8 text".into()))?
                    .trim();
                let (header, value) = match &cfg.api_key_header {
                    Some(h) => (
                        HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                            UpstreamSetupError::ApiKey("api_key_header is not a header name".into())
                        })?,
                        key.to_owned(),
                    ),
                    None => (AUTHORIZATION, format!("Bearer {key}")),
                };
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    UpstreamSetupError::ApiKey("the key holds characters a header cannot".into())
                })?;
                value.set_sensitive(true);
                Some((header, value))
            }
            None => None,
        };
        if auth.is_some() && !cfg.is_https() {
            tracing::warn!(
                model = %name,
                "upstream over plain HTTP with a credential: the key crosses the network in clear text"
            );
        }

        let meta_url = model_url(cfg);
        let unreachable = |cause: String| UpstreamSetupError::Unreachable {
            endpoint: meta_url.clone(),
            cause,
        };
        let mismatch = |message: String| UpstreamSetupError::Mismatch {
            endpoint: meta_url.clone(),
            message,
        };
        let meta_uri: Uri = meta_url
            .parse()
            .map_err(|_| unreachable("not a valid URL".into()))?;
        let infer: Uri = format!("{meta_url}/infer")
            .parse()
            .map_err(|_| unreachable("not a valid URL".into()))?;
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(meta_uri)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("rampart/", env!("CARGO_PKG_VERSION")));
        if let Some((h, v)) = &auth {
            req = req.header(h, v);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|_| unreachable("cannot build the request".into()))?;
        let body = tokio::time::timeout(timeout, async {
            let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
            let status = resp.status();
            if status != StatusCode::OK {
                let hint = match status.as_u16() {
                    401 | 403 => " (check api_key_file, and the identity's roles on the upstream)",
                    404 => " (check upstream.model and upstream.version)",
                    _ => "",
                };
                return Err(format!("status {}{hint}", status.as_u16()));
            }
            Limited::new(resp.into_body(), cfg.max_response_bytes)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|e| format!("reading the answer: {e}"))
        })
        .await
        .map_err(|_| unreachable(format!("no answer within {} ms", cfg.timeout_ms)))?
        .map_err(unreachable)?;

        let spec = oip::parse_metadata(&body, &cfg.output, cfg.kind, labels).map_err(&mismatch)?;
        if let rampart_model::ModelKind::Classifier { classes } = spec.kind {
            if !labels.is_empty() && labels.len() != classes {
                return Err(mismatch(format!(
                    "output '{}' has {classes} classes but labels names {}",
                    cfg.output,
                    labels.len()
                )));
            }
            if let Some(theirs) = &spec.labels {
                if !labels.is_empty() && theirs.as_slice() != labels {
                    return Err(mismatch(format!(
                        "the upstream's labels {theirs:?} differ from this entry's {labels:?}"
                    )));
                }
            }
        }
        let info = ModelInfo {
            name: meta_url.clone(),
            input_name: spec.input.clone(),
            width: spec.width,
            kind: spec.kind,
            outputs: vec![cfg.output.clone()],
            values_output: cfg.output.clone(),
            labels_output: None,
            opset: 0,
            ops: Vec::new(),
        };
        let breaker = Breaker::new(
            cfg.breaker.failures,
            Duration::from_millis(cfg.breaker.cool_down_ms),
        );
        metrics.breaker(breaker.state().gauge());
        Ok(Self {
            name: name.to_owned(),
            infer,
            client,
            auth,
            timeout,
            retries: cfg.retries,
            max_response: cfg.max_response_bytes,
            max_in_flight: cfg.max_in_flight,
            output: cfg.output.clone(),
            spec,
            info,
            in_flight: Semaphore::new(cfg.max_in_flight),
            breaker,
            metrics,
            alerts: OnceLock::new(),
            handle: tokio::runtime::Handle::current(),
        })
    }

    /// Where breaker alerts go from now on.
    pub(crate) fn set_alerts(&self, sink: AlertSink) {
        // Set once at start-up; a second call changes nothing.
        let _ = self.alerts.set(sink);
    }

    /// Scores `n_rows` rows on the upstream: the concurrency limit, the breaker, then the call (connect
    /// retries included) under `timeout_ms`.
    ///
    /// # Errors
    /// [`CallError`]; [`CallError::rejection`] is what the client gets.
    pub(crate) async fn infer(&self, rows: &[f32], n_rows: usize) -> Result<Output, CallError> {
        // Refused, not queued: see `UpstreamConfig::max_in_flight`.
        let Ok(_permit) = self.in_flight.try_acquire() else {
            let e = CallError::Overloaded(self.max_in_flight);
            self.metrics.failure(e.kind());
            return Err(e);
        };
        let admit = self.breaker.admit(Instant::now());
        if let Admit::Refuse(after) = admit {
            let e = CallError::Open(after);
            self.metrics.failure(e.kind());
            return Err(e);
        }
        let mut ticket = Ticket {
            upstream: self,
            probe: admit == Admit::Probe,
            settled: false,
        };
        if ticket.probe {
            self.metrics.breaker(self.breaker.state().gauge());
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.exchange(rows, n_rows)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(
                u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            )),
        };
        self.metrics.call(started.elapsed());
        match &result {
            Ok(_) => ticket.success(),
            Err(e) => {
                self.metrics.failure(e.kind());
                tracing::warn!(model = %self.name, "upstream call failed: {e}");
                if e.is_upstream_fault() {
                    ticket.failure();
                }
            }
        }
        result
    }

    fn request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, CallError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.infer.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("rampart/", env!("CARGO_PKG_VERSION")));
        if let Some((h, v)) = &self.auth {
            req = req.header(h, v);
        }
        req.body(Full::new(body))
            .map_err(|_| CallError::Request("invalid request"))
    }

    async fn exchange(&self, rows: &[f32], n_rows: usize) -> Result<Output, CallError> {
        if n_rows == 0 || rows.len() != n_rows.saturating_mul(self.spec.width) {
            return Err(CallError::Request("rows do not match the model's width"));
        }
        let body = Bytes::from(
            oip::encode_request(&self.spec, &self.output, rows, n_rows)
                .map_err(CallError::Request)?,
        );
        let mut attempt = 0;
        let resp = loop {
            match self.client.request(self.request(body.clone())?).await {
                Ok(r) => break r,
                // Nothing was sent: trying again cannot run the model twice.
                Err(e) if e.is_connect() && attempt < self.retries => {
                    attempt += 1;
                    self.metrics.retry();
                }
                Err(e) if e.is_connect() => return Err(CallError::Connect(error_chain(&e))),
                Err(e) => return Err(CallError::Transport(error_chain(&e))),
            }
        };
        let status = resp.status();
        if status != StatusCode::OK {
            // The body is dropped unread: nothing of it is used, and the connection is not reused.
            return Err(CallError::Status(status.as_u16()));
        }
        let too_large = CallError::TooLarge(self.max_response);
        let declared = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_response as u64) {
            return Err(too_large);
        }
        let bytes = match Limited::new(resp.into_body(), self.max_response)
            .collect()
            .await
        {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large),
            Err(e) => return Err(CallError::Transport(e.to_string())),
        };
        Ok(oip::decode_response(
            &bytes,
            &self.output,
            self.spec.kind,
            n_rows,
        )?)
    }

    fn transition(&self, t: Option<Transition>) {
        self.metrics.breaker(self.breaker.state().gauge());
        let (kind, severity, detail) = match t {
            None => return,
            Some(Transition::Opened) => (
                "upstream_down",
                Severity::High,
                "the upstream model server keeps failing: circuit breaker open, requests refused with 503",
            ),
            Some(Transition::Closed) => (
                "upstream_recovered",
                Severity::Medium,
                "the upstream model server answered the probe: circuit breaker closed",
            ),
        };
        tracing::warn!(model = %self.name, kind, "{detail}");
        if let Some(sink) = self.alerts.get() {
            sink.raise(Alert {
                time: OffsetDateTime::now_utc(),
                kind,
                severity,
                model: Some(self.name.clone()),
                identity: None,
                request_id: None,
                detail: detail.to_owned(),
            });
        }
    }
}

/// One admitted call's standing with the breaker. Dropped unsettled — the request was cancelled, or failed
/// for a reason that says nothing about the upstream — a probe is handed to the next call.
struct Ticket<'a> {
    upstream: &'a Upstream,
    probe: bool,
    settled: bool,
}

impl Ticket<'_> {
    fn success(&mut self) {
        self.settled = true;
        // The healthy case changes nothing: no gauge update, no lock.
        if let Some(t) = self.upstream.breaker.success() {
            self.upstream.transition(Some(t));
        } else if self.probe {
            self.upstream.transition(None);
        }
    }

    fn failure(&mut self) {
        self.settled = true;
        let t = self.upstream.breaker.failure(Instant::now());
        self.upstream.transition(t);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.upstream.breaker.abandon();
        }
    }
}

/// For hardening wrappers (smoothing, ensembles, squeezing) that call [`Backend::predict`]: the same call,
/// synchronously.
///
/// `predict` blocks the calling thread on the runtime captured by [`Upstream::connect`], so it must be called
/// on a blocking thread (`tokio::task::spawn_blocking`) or outside the runtime — **never on an async worker**,
/// where Tokio refuses to block (it panics) and would stall every task on that worker if it did not. The
/// request path's plain runner awaits [`Upstream::infer`] instead.
impl Backend for Upstream {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
        self.info.check_rows(rows, n_rows)?;
        self.handle
            .block_on(self.infer(rows, n_rows))
            .map_err(|e| RunError::Model {
                model: self.name.clone(),
                reason: e.to_string(),
            })
    }
}
