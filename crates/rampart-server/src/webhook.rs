//! The alert webhook: every alert, as JSON, POSTed to one HTTP(S) endpoint (a chat hook, an incident tool, a
//! SIEM collector) by one background task.
//!
//! Why it is shaped this way:
//! - **It never blocks a request.** [`WebhookHandle::send`] is a `try_send` into a bounded queue
//!   ([`WebhookSettings::queue`]); when the queue is full the alert is counted as dropped and the caller moves
//!   on. A slow or dead endpoint costs memory bounded by the queue, never latency (DESIGN §3: every queue is
//!   bounded, what it drops is counted).
//! - **The URL is a secret.** Hook URLs usually carry their token in the path or query, so the URL is read
//!   like a key (a file private to its owner, or `env:NAME`, see [`crate::secret`]) and is never logged, echoed
//!   in an error or shown by `Debug`: logs name only `scheme://host:port` ([`Webhook::endpoint`]). Redirects
//!   are not followed (an alert must not be sent somewhere else) and no proxy from the environment is used (a
//!   proxy would see the URL of a plain-HTTP hook).
//! - **Delivery is at most a bounded effort.** Connection errors, timeouts, 429 and 5xx are retried with
//!   exponential backoff and jitter (`200 ms · 2^attempt`, capped at 30 s, `Retry-After` seconds honoured up to
//!   the same cap), at most [`WebhookSettings::max_retries`] times; any other answer is final. Alerts are
//!   delivered one at a time, in order. Counters: sent, retried, failed, dropped ([`WebhookCounters`]).
//! - **Shutdown drains.** When the last [`WebhookHandle`] is dropped (or [`WebhookHandle::close`]d), the task
//!   keeps delivering what is queued until [`WebhookSettings::drain_ms`] has passed; what is left then is
//!   counted as dropped.
//!
//! The HTTP exchange is hyper's HTTP/1.1 client on a fresh connection per attempt (alerts are rare; a pool
//! would only keep sockets open). Not reqwest: with its rustls backend turned on anywhere in the build, every
//! `reqwest::Client::new()` panics ("No provider set") unless a process-wide crypto provider was installed
//! first, and the gateway's test kit builds such clients.
//!
//! TLS is rustls with the aws-lc-rs provider, like the listeners ([`crate::tls`]), but offering TLS 1.3 *and*
//! 1.2: the listeners choose their clients, the webhook does not choose its server, and rustls' TLS 1.2 is
//! limited to forward-secret AEAD suites. Server certificates are checked against `ca_file` when given (a
//! private CA: only it is trusted) and otherwise against Mozilla's roots compiled in (`webpki-roots`), so the
//! gateway trusts the same roots on every host, including container images that ship no CA bundle.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use rand::Rng;
use rustls_pki_types::ServerName;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use rampart_core::Severity;

use crate::alerts::Alert;
use crate::config::ConfigError;
use crate::secret::{self, SecretError};
use crate::tls::ClientTlsError;

/// First retry delay; doubled at each further attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest wait between two attempts, whatever the backoff or `Retry-After` says: an alert hours late is
/// worth little, and the queue behind it is waiting.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `[alerts.webhook]`: where alerts are POSTed.
///
/// ```toml
/// [alerts]
/// webhook = { url_file = "/run/secrets/hook-url", min_severity = "high" }
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The hook's URL (`http://` or `https://`), as a secret source: the path of a file readable only by its
    /// owner, or `env:NAME`. Never the URL itself: hook URLs carry tokens, and an inline URL is a config error.
    /// Surrounding whitespace in the file is ignored.
    pub url_file: String,
    /// PEM CA certificates the hook's server certificate must chain to, for a hook behind a private CA. When
    /// set, *only* these are trusted. Default: Mozilla's roots (`webpki-roots`), the same on every host.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Time one attempt may take, connecting included. Default 5000 ms: a hook answers in well under a second,
    /// and an attempt that hangs holds up every alert queued behind it.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after the first attempt, on connection errors, timeouts, 429 and 5xx. Default 5 (about 6 s of
    /// backoff in all: rides out a restart of the hook, gives up before the queue fills behind it). At most 10.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Alerts waiting for delivery before new ones are dropped (and counted). Default 1024.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Only alerts at or above this severity (`low`, `medium`, `high`) are sent. Default: all. An alert whose
    /// severity cannot be read is sent: a filter must not lose an alert it does not understand.
    #[serde(default, deserialize_with = "deserialize_min_severity")]
    pub min_severity: Option<Severity>,
    /// Time the webhook gets at shutdown to deliver what is queued. Default 5000 ms, within the 10 s the
    /// listeners get to finish; at most 60 000.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_max_retries() -> u32 {
    5
}
fn default_queue() -> usize {
    1024
}
fn default_drain_ms() -> u64 {
    5000
}

/// `Severity` is only `Serialize` in `rampart-core`; its wire names are read here.
fn parse_severity(s: &str) -> Option<Severity> {
    match s {
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        _ => None,
    }
}

fn deserialize_min_severity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Severity>, D::Error> {
    let s = String::deserialize(d)?;
    parse_severity(&s)
        .map(Some)
        .ok_or_else(|| serde::de::Error::unknown_variant(&s, &["low", "medium", "high"]))
}

/// A value that is a URL rather than a reference to one.
fn looks_like_url(value: &str) -> bool {
    value.contains("://")
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL pasted into `url_file` is the secret itself (validation refuses it, but a config is printed
        // before it is validated).
        let url_file = if looks_like_url(&self.url_file) {
            "<inline URL, redacted>"
        } else {
            self.url_file.as_str()
        };
        f.debug_struct("WebhookSettings")
            .field("url_file", &url_file)
            .field("ca_file", &self.ca_file)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("queue", &self.queue)
            .field("min_severity", &self.min_severity)
            .field("drain_ms", &self.drain_ms)
            .finish()
    }
}

/// Why the webhook cannot be set up. Messages name files and fields, never the URL or any part of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// `url_file` holds a URL (or other secret) instead of naming where it is.
    #[error(
        "url_file: an inline URL is refused: give a file path or env:NAME (hook URLs carry tokens)"
    )]
    InlineUrl,
    /// The secret could not be read (missing, too open, unset variable).
    #[error("url_file: {0}")]
    Secret(#[from] SecretError),
    /// The secret is not text.
    #[error("url_file: the URL is not UTF-8 text")]
    NotUtf8,
    /// The secret is not a URL. The parser's message says what is wrong without quoting the input.
    #[error("url_file: not a valid URL ({0})")]
    Url(String),
    /// The URL's scheme is neither `http` nor `https`.
    #[error("url_file: the URL must start with http:// or https://")]
    Scheme,
    /// The URL names no host.
    #[error("url_file: the URL names no host")]
    NoHost,
    /// The URL carries `user:password@`: put the hook's token where the hook expects it (path or query).
    #[error("url_file: credentials before the host (user:password@) are not supported")]
    UserInfo,
    /// `ca_file` is set but the URL is plain `http://`: the CA would never be used, so the URL is probably
    /// not the one intended.
    #[error("ca_file is set but the URL is not https://")]
    CaWithoutTls,
    /// The client TLS set-up failed (`ca_file` unreadable or holding no certificate, rustls refusing it).
    #[error(transparent)]
    Tls(#[from] ClientTlsError),
}

impl WebhookSettings {
    /// Every problem with these settings, each with its path under `path` (e.g. `alerts.webhook`), appended
    /// to `errors` (the convention of [`crate::config::RawConfig::validate`]). Reads no file.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        let mut err = |field: &str, message: &str| {
            errors.push(ConfigError {
                path: format!("{path}.{field}"),
                message: message.to_owned(),
            })
        };
        if secret::looks_inline(&self.url_file) || looks_like_url(&self.url_file) {
            err(
                "url_file",
                "an inline secret is refused: give a file path or env:NAME (hook URLs carry tokens)",
            );
        } else if self.url_file == "env:" {
            err("url_file", "env: needs a variable name");
        }
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            err("timeout_ms", "must be between 1 and 300000");
        }
        if self.max_retries > 10 {
            err("max_retries", "must be at most 10");
        }
        if self.queue == 0 || self.queue > 1_000_000 {
            err("queue", "must be between 1 and 1000000");
        }
        if self.drain_ms > 60_000 {
            err("drain_ms", "must be at most 60000");
        }
    }

    /// Reads the URL (relative paths resolved by `resolve`), checks it and builds the TLS client configuration.
    /// The file's bytes are zeroized once read; the parsed URL (its path and query) lives, unzeroized, as long
    /// as the webhook does, like any key a running process uses.
    ///
    /// # Errors
    /// [`WebhookError`]: an inline or unreadable URL, one that is not `http(s)://host…`, an unusable
    /// `ca_file`. No message quotes the URL.
    pub fn resolve(&self, resolve: impl Fn(&Path) -> PathBuf) -> Result<Webhook, WebhookError> {
        // Checked here too: `resolve` may run without `validate`, and a URL taken for a path would be
        // quoted by the "cannot read" error.
        if secret::looks_inline(&self.url_file) || looks_like_url(&self.url_file) {
            return Err(WebhookError::InlineUrl);
        }
        let raw = secret::read(&self.url_file, &resolve)?;
        let text = std::str::from_utf8(&raw).map_err(|_| WebhookError::NotUtf8)?;
        // `http::uri`'s error messages are fixed texts ("invalid authority"), never the input.
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|e: http::uri::InvalidUri| WebhookError::Url(e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(WebhookError::Scheme),
        };
        let authority = uri.authority().ok_or(WebhookError::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(WebhookError::UserInfo);
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(WebhookError::NoHost);
        }
        // `port_u16` is `None` both without a port and with one that is not a number below 65536.
        let after_host = authority
            .as_str()
            .rsplit_once(']')
            .map_or(authority.as_str(), |(_, rest)| rest);
        let port = match authority.port_u16() {
            Some(p) => p,
            None if after_host.contains(':') => {
                return Err(WebhookError::Url("invalid port".to_owned()))
            }
            None if https => 443,
            None => 80,
        };
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let endpoint = format!(
            "{}://{shown_host}:{port}",
            if https { "https" } else { "http" }
        );
        let server_name = ServerName::try_from(host)
            .map(|n| n.to_owned())
            .map_err(|_| WebhookError::Url("invalid host name".to_owned()))?;
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| WebhookError::Url("invalid authority".to_owned()))?;
        // Origin form (`/path?query`): what an HTTP/1.1 request line carries. The token lives here.
        let target = uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
        let tls = match (https, self.ca_file.as_deref().map(&resolve)) {
            (true, ca_file) => Some(TlsConnector::from(Arc::new(client_tls(
                ca_file.as_deref(),
            )?))),
            (false, Some(_)) => return Err(WebhookError::CaWithoutTls),
            (false, None) => None,
        };
        Ok(Webhook {
            host: host.to_owned(),
            port,
            server_name,
            host_header,
            target,
            tls,
            endpoint,
            timeout: Duration::from_millis(self.timeout_ms),
            max_retries: self.max_retries,
            queue: self.queue.max(1),
            min_severity: self.min_severity,
            drain: Duration::from_millis(self.drain_ms),
            backoff_base: BACKOFF_BASE,
        })
    }
}

/// The shared client set-up ([`crate::tls::client_config`]), speaking HTTP/1.1 only.
fn client_tls(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, WebhookError> {
    let mut config = crate::tls::client_config(ca_file, None)?;
    // The exchange speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// An error and its causes on one line (socket, rustls and hyper errors: none of them holds the URL).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The counters the webhook keeps, created by the caller so that the metrics registry can own them.
#[derive(Clone, Debug, Default)]
pub struct WebhookCounters {
    /// Alerts the hook accepted (a 2xx answer).
    pub sent: Counter<u64, AtomicU64>,
    /// Attempts made again after a connection error, a timeout, 429 or 5xx.
    pub retried: Counter<u64, AtomicU64>,
    /// Alerts given up on: refused (another status), or still failing after the last retry.
    pub failed: Counter<u64, AtomicU64>,
    /// Alerts lost for want of room or time: the queue was full, or shutdown's drain time ran out (the alert
    /// in flight then included).
    pub dropped: Counter<u64, AtomicU64>,
}

/// A webhook ready to start: the URL read and checked, the client built ([`WebhookSettings::resolve`]).
pub struct Webhook {
    /// Host (IPv6 without brackets) and port to connect to.
    host: String,
    port: u16,
    /// The name the server certificate must carry.
    server_name: ServerName<'static>,
    /// `Host:` (the URL's authority).
    host_header: HeaderValue,
    /// Path and query: secret (hook tokens live here).
    target: Uri,
    /// `None` for `http://`.
    tls: Option<TlsConnector>,
    endpoint: String,
    /// One attempt, connection and TLS handshake included.
    timeout: Duration,
    max_retries: u32,
    queue: usize,
    min_severity: Option<Severity>,
    drain: Duration,
    backoff_base: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `endpoint`, never `url`: the URL's path and query are where tokens live.
        f.debug_struct("Webhook")
            .field("endpoint", &self.endpoint)
            .field("max_retries", &self.max_retries)
            .field("queue", &self.queue)
            .field("min_severity", &self.min_severity)
            .field("drain", &self.drain)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// `scheme://host:port` of the hook: what logs may say about it.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Spawns the delivery task and returns the handle alerts are sent through.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the task is spawned on the current one).
    pub fn start(self, counters: WebhookCounters) -> WebhookHandle {
        if self.tls.is_none() {
            tracing::warn!(
                endpoint = %self.endpoint,
                "alert webhook over plain HTTP: alerts, and any token in its URL, travel unencrypted"
            );
        } else {
            tracing::info!(endpoint = %self.endpoint, "alert webhook");
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let (closing_tx, closing_rx) = oneshot::channel();
        let dropped = counters.dropped.clone();
        let min_severity = self.min_severity;
        let task = tokio::spawn(self.run(counters, rx, closing_rx));
        WebhookHandle {
            tx,
            dropped,
            min_severity,
            life: Arc::new(Lifeline {
                _closing: closing_tx,
                task,
            }),
        }
    }

    /// The delivery loop: one alert at a time, in order, until the handles are gone and the queue is drained
    /// (or the drain time is up).
    async fn run(
        self,
        counters: WebhookCounters,
        mut rx: mpsc::Receiver<Value>,
        mut closing: oneshot::Receiver<()>,
    ) {
        // Set once the last handle is gone: from then on everything must finish by this instant.
        let mut deadline: Option<Instant> = None;
        // Alerts lost because the drain time ran out (the one in flight, then the rest of the queue).
        let mut abandoned = 0u64;
        loop {
            let next = match deadline {
                None => tokio::select! {
                    // The oneshot resolves (with an error) when the last handle drops its sender.
                    _ = &mut closing => {
                        deadline = Some(Instant::now() + self.drain);
                        continue;
                    }
                    item = rx.recv() => item,
                },
                Some(d) if Instant::now() >= d => break,
                // No sender is left, so this only takes what is already queued.
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(item) => item,
                    Err(_) => break,
                },
            };
            let Some(payload) = next else { break };
            let body = match serde_json::to_vec(&payload) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    // A `Value` always serializes; counted rather than assumed.
                    counters.failed.inc();
                    tracing::warn!(endpoint = %self.endpoint, "alert webhook: cannot encode alert: {e}");
                    continue;
                }
            };
            let delivery = self.deliver(body, &counters);
            tokio::pin!(delivery);
            if deadline.is_none() {
                tokio::select! {
                    () = &mut delivery => continue,
                    _ = &mut closing => deadline = Some(Instant::now() + self.drain),
                }
            }
            if let Some(d) = deadline {
                if tokio::time::timeout_at(d, delivery).await.is_err() {
                    abandoned += 1;
                    break;
                }
            }
        }
        rx.close();
        while rx.try_recv().is_ok() {
            abandoned += 1;
        }
        if abandoned > 0 {
            counters.dropped.inc_by(abandoned);
            tracing::warn!(
                endpoint = %self.endpoint,
                abandoned,
                "alert webhook: drain time ran out at shutdown; undelivered alerts dropped"
            );
        }
    }

    /// One alert: attempts until delivered, refused, or out of retries. Counts the outcome; logs a failure
    /// once, with its status or cause.
    async fn deliver(&self, body: Bytes, counters: &WebhookCounters) {
        let mut attempt: u32 = 0;
        loop {
            match self.attempt(body.clone()).await {
                Attempt::Delivered => {
                    counters.sent.inc();
                    return;
                }
                Attempt::Unsendable(why) => {
                    counters.failed.inc();
                    tracing::warn!(endpoint = %self.endpoint, "alert webhook: {why}");
                    return;
                }
                Attempt::Refused(status) => {
                    counters.failed.inc();
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        status = status.as_u16(),
                        "alert webhook refused the alert (not retried)"
                    );
                    return;
                }
                Attempt::Transient { cause, retry_after } => {
                    if attempt >= self.max_retries {
                        counters.failed.inc();
                        tracing::warn!(
                            endpoint = %self.endpoint,
                            attempts = attempt + 1,
                            "alert webhook: giving up on an alert: {cause}"
                        );
                        return;
                    }
                    let delay = match retry_after {
                        Some(d) => d.min(MAX_BACKOFF),
                        None => backoff(self.backoff_base, attempt),
                    };
                    tracing::debug!(
                        endpoint = %self.endpoint,
                        attempt = attempt + 1,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "alert webhook: will retry: {cause}"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    counters.retried.inc();
                }
            }
        }
    }

    async fn attempt(&self, body: Bytes) -> Attempt {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.target.clone())
            .header(HOST, self.host_header.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("rampart/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body));
        let Ok(request) = request else {
            // Target and host were checked by `resolve`; were it to happen, retrying would not help.
            return Attempt::Unsendable("cannot build the request");
        };
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(Ok((status, retry_after))) => classify(status, retry_after),
            // Connection refused or reset, TLS failure: the hook may be back in a moment.
            Ok(Err(cause)) => Attempt::Transient {
                cause,
                retry_after: None,
            },
            Err(_) => Attempt::Transient {
                cause: format!("no answer within {} ms", self.timeout.as_millis()),
                retry_after: None,
            },
        }
    }

    /// Connects (with TLS for `https://`), sends `request`, returns the answer's status and `Retry-After`.
    /// Error texts come from the socket, rustls and hyper: none of them holds the path or query.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Option<Duration>), String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // One small write per alert: nothing to gain from Nagle's delay.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => exchange(TokioIo::new(tcp), request).await,
            Some(tls) => {
                let stream = tls
                    .connect(self.server_name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {}", error_chain(&e)))?;
                exchange(TokioIo::new(stream), request).await
            }
        }
    }
}

/// One HTTP/1.1 request on a fresh connection. The answer's body is never read: its status and
/// `Retry-After` are all the webhook needs, so a hostile hook cannot make it read anything more.
async fn exchange<T>(
    io: T,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Option<Duration>), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {}", error_chain(&e)))?;
    // hyper's way: the connection is driven beside the request. The guard stops it when this attempt ends,
    // whether answered, failed, or cut off by the timeout.
    let _driver = AbortOnDrop(tokio::spawn(connection));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {}", error_chain(&e)))?;
    Ok((response.status(), retry_after(response.headers())))
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    Delivered,
    /// Final: the request could not be made at all.
    Unsendable(&'static str),
    /// Final: a status other than 2xx, 429 or 5xx (a redirect included: redirects are not followed).
    Refused(StatusCode),
    /// Worth another attempt.
    Transient {
        cause: String,
        retry_after: Option<Duration>,
    },
}

fn classify(status: StatusCode, retry_after: Option<Duration>) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Attempt::Transient {
            cause: format!("status {}", status.as_u16()),
            retry_after,
        }
    } else {
        Attempt::Refused(status)
    }
}

/// `Retry-After` in seconds. The HTTP-date form is not used (the backoff applies instead): it would make
/// the delay depend on the hook's clock.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `base · 2^attempt`, capped at [`MAX_BACKOFF`], with "equal jitter": a random point in its upper half, so
/// that gateways restarted together do not retry in step, yet never retry sooner than half the backoff.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    let full = base.saturating_mul(factor).min(MAX_BACKOFF);
    let half = full / 2;
    let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=half_ms))
}

/// Lives as long as any handle: dropping it (with the last handle) tells the task to drain and stop.
struct Lifeline {
    _closing: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Where alerts are sent to the webhook. Cheap to clone; the task drains and stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct WebhookHandle {
    tx: mpsc::Sender<Value>,
    dropped: Counter<u64, AtomicU64>,
    min_severity: Option<Severity>,
    life: Arc<Lifeline>,
}

impl std::fmt::Debug for WebhookHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookHandle")
            .field("min_severity", &self.min_severity)
            .finish_non_exhaustive()
    }
}

impl WebhookHandle {
    /// Queues one alert for delivery; never waits. A payload whose `"severity"` (`low`, `medium`, `high`) is
    /// below `min_severity` is skipped; one the full queue cannot take is counted as dropped.
    pub fn send(&self, payload: Value) {
        if let Some(min) = self.min_severity {
            let severity = payload
                .get("severity")
                .and_then(Value::as_str)
                .and_then(parse_severity);
            if severity.is_some_and(|s| s < min) {
                return;
            }
        }
        // Full, or the task is gone: either way this alert will not be delivered, and that is counted.
        if self.tx.try_send(payload).is_err() {
            self.dropped.inc();
        }
    }

    /// Queues an [`Alert`] as its JSON form (the same object as a line of the alerts file).
    pub fn send_alert(&self, alert: &Alert) {
        match serde_json::to_value(alert) {
            Ok(v) => self.send(v),
            Err(e) => {
                self.dropped.inc();
                tracing::warn!("alert webhook: cannot encode alert: {e}");
            }
        }
    }

    /// Drops this handle; if it was the last one, waits until the task has drained the queue (at most the
    /// drain time).
    pub async fn close(self) {
        let Self { tx, life, .. } = self;
        drop(tx);
        if let Ok(Lifeline {
            _closing: closing,
            task,
        }) = Arc::try_unwrap(life)
        {
            // Tells the task to drain and stop (the queue's sender is already gone with `tx`).
            drop(closing);
            // A panicked task has nothing left to drain.
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests;
