//! The webhook against a loopback hook (`crate::listen::serve`, plain or TLS) that records what it receives
//! and answers from a script.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use axum::Router;

use crate::tls::ClientTlsError;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{backoff, Webhook, WebhookCounters, WebhookError, WebhookSettings, MAX_BACKOFF};
use crate::listen::{self, ServeOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The token every test URL carries: it must never show up in an error, a log line or `Debug`.
const TOKEN: &str = "s3cr3t-t0ken-do-not-print";

/// What the hook answers to one request.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// 429 with `Retry-After: n`.
    RetryAfter(u64),
    /// 307 to `/elsewhere`.
    Redirect,
    /// Answers 200 only after this long.
    Stall(Duration),
}

#[derive(Default)]
struct Hook {
    /// Every request to `/hook`: content type, body, when.
    received: Mutex<Vec<(Option<String>, Bytes, Instant)>>,
    /// Requests to `/elsewhere` (the redirect's target).
    elsewhere: Mutex<usize>,
    /// Answers, in order; 200 once it is empty.
    script: Mutex<VecDeque<Reply>>,
}

impl Hook {
    fn hits(&self) -> usize {
        self.received.lock().len()
    }
    fn bodies(&self) -> Vec<Bytes> {
        self.received.lock().iter().map(|r| r.1.clone()).collect()
    }
}

async fn hook(
    State(h): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    h.received.lock().push((ct, body, Instant::now()));
    let reply = h.script.lock().pop_front().unwrap_or(Reply::Status(200));
    let mut out = HeaderMap::new();
    let status = match reply {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Reply::RetryAfter(s) => {
            out.insert("retry-after", HeaderValue::from(s));
            StatusCode::TOO_MANY_REQUESTS
        }
        Reply::Redirect => {
            out.insert("location", HeaderValue::from_static("/elsewhere"));
            StatusCode::TEMPORARY_REDIRECT
        }
        Reply::Stall(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    };
    (status, out)
}

async fn elsewhere(State(h): State<Arc<Hook>>) -> StatusCode {
    *h.elsewhere.lock() += 1;
    StatusCode::OK
}

/// A running hook; stops when dropped.
struct Server {
    hook: Arc<Hook>,
    port: u16,
    _stop: watch::Sender<bool>,
}

async fn serve(
    script: &[Reply],
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<Server> {
    let state = Arc::new(Hook::default());
    state.script.lock().extend(script.iter().copied());
    let router = Router::new()
        .route("/hook", post(hook))
        .route("/elsewhere", post(elsewhere))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, rx) = watch::channel(false);
    let opts = ServeOptions {
        header_timeout: Duration::from_secs(5),
        grace: Duration::from_millis(100),
        tls,
        max_connections: 16,
    };
    tokio::spawn(listen::serve(listener, router, opts, rx));
    Ok(Server {
        hook: state,
        port,
        _stop: stop,
    })
}

/// Writes `content` to `dir/name` with the given mode; returns the path.
fn write_file(dir: &Path, name: &str, content: &str, mode: u32) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, content)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    Ok(path)
}

/// Settings as the config file would give them (`url_file` plus `extra` TOML lines).
fn settings(url_file: &Path, extra: &str) -> Result<WebhookSettings, toml::de::Error> {
    toml::from_str(&format!(
        "url_file = {:?}\n{extra}",
        url_file.display().to_string()
    ))
}

/// A webhook to `url` (written to a private secret file), with a short backoff so tests run fast.
fn webhook(dir: &Path, url: &str, extra: &str) -> Result<Webhook, Box<dyn std::error::Error>> {
    let file = write_file(dir, "hook-url", &format!("{url}\n"), 0o600)?;
    let mut w = settings(&file, extra)?.resolve(Path::to_path_buf)?;
    w.backoff_base = Duration::from_millis(10);
    Ok(w)
}

fn hook_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/hook?token={TOKEN}")
}

/// Waits (up to 10 s) for `cond`.
async fn eventually(cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test]
async fn alerts_arrive_as_the_exact_json() -> TestResult {
    let server = serve(&[], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "")?.start(counters.clone());
    let alerts = [
        json!({"kind": "anomalous_input", "severity": "medium", "model": "fraud", "detail": "z = 7.1",
               "nested": {"list": [1, 2.5, null, true], "unicode": "é ✓"}}),
        json!({"kind": "internal", "severity": "high", "detail": "caught panic"}),
    ];
    for a in &alerts {
        handle.send(a.clone());
    }
    handle.close().await;
    assert_eq!(counters.sent.get(), 2);
    let received = server.hook.received.lock().clone();
    assert_eq!(received.len(), 2);
    for ((ct, body, _), sent) in received.iter().zip(&alerts) {
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(body.as_ref(), serde_json::to_vec(sent)?.as_slice());
        assert_eq!(&serde_json::from_slice::<Value>(body)?, sent);
    }
    assert_eq!(
        counters.retried.get() + counters.failed.get() + counters.dropped.get(),
        0
    );
    Ok(())
}

#[tokio::test]
async fn two_503s_then_200_delivers_once_after_two_retries() -> TestResult {
    let server = serve(&[Reply::Status(503), Reply::Status(503)], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "")?.start(counters.clone());
    handle.send(json!({"kind": "x"}));
    handle.close().await;
    assert_eq!(server.hook.hits(), 3);
    assert_eq!(counters.sent.get(), 1);
    assert_eq!(counters.retried.get(), 2);
    assert_eq!(counters.failed.get(), 0);
    Ok(())
}

#[tokio::test]
async fn a_400_is_not_retried_and_counts_as_failed() -> TestResult {
    let server = serve(&[Reply::Status(400)], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "")?.start(counters.clone());
    handle.send(json!({"kind": "x"}));
    handle.close().await;
    assert_eq!(server.hook.hits(), 1);
    assert_eq!(counters.failed.get(), 1);
    assert_eq!(counters.retried.get(), 0);
    assert_eq!(counters.sent.get(), 0);
    Ok(())
}

#[tokio::test]
async fn a_redirect_is_not_followed() -> TestResult {
    let server = serve(&[Reply::Redirect], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "")?.start(counters.clone());
    handle.send(json!({"kind": "x"}));
    handle.close().await;
    assert_eq!(server.hook.hits(), 1);
    assert_eq!(*server.hook.elsewhere.lock(), 0);
    assert_eq!(counters.failed.get(), 1);
    assert_eq!(counters.retried.get(), 0);
    Ok(())
}

#[tokio::test]
async fn retry_after_seconds_are_honoured() -> TestResult {
    let server = serve(&[Reply::RetryAfter(1)], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "")?.start(counters.clone());
    handle.send(json!({"kind": "x"}));
    handle.close().await;
    let times: Vec<Instant> = server.hook.received.lock().iter().map(|r| r.2).collect();
    assert_eq!(times.len(), 2);
    let gap = times[1].duration_since(times[0]);
    // The 10 ms test backoff would have retried at once; the hook asked for a second.
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    assert_eq!((counters.sent.get(), counters.retried.get()), (1, 1));
    Ok(())
}

#[tokio::test]
async fn connection_errors_are_retried_then_counted_as_failed() -> TestResult {
    // A port with nothing listening: bind, note it, close.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(port), "max_retries = 2")?.start(counters.clone());
    handle.send(json!({"kind": "x"}));
    handle.close().await;
    assert_eq!(counters.retried.get(), 2);
    assert_eq!(counters.failed.get(), 1);
    assert_eq!(counters.sent.get(), 0);
    Ok(())
}

#[tokio::test]
async fn a_hook_slower_than_the_timeout_is_retried() -> TestResult {
    let stall = Reply::Stall(Duration::from_secs(3));
    let server = serve(&[stall, stall], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let extra = "timeout_ms = 150\nmax_retries = 1";
    let handle = webhook(dir.path(), &hook_url(server.port), extra)?.start(counters.clone());
    let started = Instant::now();
    handle.send(json!({"kind": "x"}));
    handle.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(counters.retried.get(), 1);
    assert_eq!(counters.failed.get(), 1);
    Ok(())
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() -> TestResult {
    let server = serve(&[], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "queue = 2")?.start(counters.clone());
    // A current-thread runtime: the delivery task cannot run before this loop yields, so exactly two fit.
    let started = std::time::Instant::now();
    for i in 0..10 {
        handle.send(json!({"n": i}));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(100), "send waited: {took:?}");
    assert_eq!(counters.dropped.get(), 8);
    handle.close().await;
    assert_eq!(counters.sent.get(), 2);
    let bodies = server.hook.bodies();
    assert_eq!(
        bodies,
        vec![Bytes::from(r#"{"n":0}"#), Bytes::from(r#"{"n":1}"#)]
    );
    Ok(())
}

#[tokio::test]
async fn dropping_the_last_handle_drains_the_queue() -> TestResult {
    let server = serve(&[], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &hook_url(server.port), "")?.start(counters.clone());
    let clone = handle.clone();
    for i in 0..5 {
        clone.send(json!({"n": i}));
    }
    drop(clone);
    drop(handle);
    let sent = counters.sent.clone();
    assert!(eventually(|| sent.get() == 5).await, "sent {}", sent.get());
    assert_eq!(server.hook.hits(), 5);
    Ok(())
}

#[tokio::test]
async fn shutdown_drain_is_bounded_and_counts_what_is_left() -> TestResult {
    let stall = Reply::Stall(Duration::from_secs(5));
    let server = serve(&[stall, stall, stall], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let extra = "drain_ms = 200\ntimeout_ms = 10000";
    let handle = webhook(dir.path(), &hook_url(server.port), extra)?.start(counters.clone());
    for i in 0..3 {
        handle.send(json!({"n": i}));
    }
    let started = Instant::now();
    handle.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The first was in flight when the drain time ran out; the other two never left the queue.
    assert_eq!(counters.dropped.get(), 3);
    assert_eq!(counters.sent.get(), 0);
    assert!(server.hook.hits() <= 1);
    Ok(())
}

#[tokio::test]
async fn min_severity_skips_lower_alerts_and_keeps_unreadable_ones() -> TestResult {
    let server = serve(&[], None).await?;
    let dir = tempfile::tempdir()?;
    let counters = WebhookCounters::default();
    let extra = "min_severity = \"high\"";
    let handle = webhook(dir.path(), &hook_url(server.port), extra)?.start(counters.clone());
    handle.send(json!({"severity": "low"}));
    handle.send(json!({"severity": "medium"}));
    handle.send(json!({"severity": "high"}));
    handle.send(json!({"kind": "no severity"}));
    handle.send_alert(&crate::alerts::Alert {
        time: time::OffsetDateTime::UNIX_EPOCH,
        kind: "internal",
        severity: rampart_core::Severity::High,
        model: None,
        identity: None,
        request_id: Some("r1".into()),
        detail: "typed".into(),
    });
    handle.close().await;
    let got: Vec<Value> = server
        .hook
        .bodies()
        .iter()
        .map(|b| serde_json::from_slice(b))
        .collect::<Result<_, _>>()?;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], json!({"severity": "high"}));
    assert_eq!(got[1], json!({"kind": "no severity"}));
    assert_eq!(got[2]["detail"], "typed");
    assert_eq!(got[2]["time"], "1970-01-01T00:00:00Z");
    assert_eq!(counters.sent.get(), 3);
    Ok(())
}

#[tokio::test]
async fn url_from_a_private_file_is_never_shown() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = write_file(
        dir.path(),
        "hook-url",
        &format!("  https://hooks.example:8443/services/{TOKEN}?k={TOKEN}\n"),
        0o600,
    )?;
    let resolved = settings(&file, "")?.resolve(Path::to_path_buf)?;
    assert_eq!(resolved.endpoint(), "https://hooks.example:8443");
    assert!(!format!("{resolved:?}").contains(TOKEN));
    assert_eq!(
        resolved.target.to_string(),
        format!("/services/{TOKEN}?k={TOKEN}")
    );
    // The default port is spelled out, so the log line names it either way.
    let file = write_file(dir.path(), "plain", "http://[::1]/x", 0o600)?;
    assert_eq!(
        settings(&file, "")?.resolve(Path::to_path_buf)?.endpoint(),
        "http://[::1]:80"
    );
    Ok(())
}

/// `resolve`'s error as text (it must not be `Ok`).
fn resolve_error(s: &WebhookSettings) -> Result<String, Box<dyn std::error::Error>> {
    match s.resolve(Path::to_path_buf) {
        Ok(w) => Err(format!("expected an error, got {w:?}").into()),
        Err(e) => Ok(e.to_string()),
    }
}

#[tokio::test]
async fn url_errors_name_the_source_never_the_url() -> TestResult {
    let dir = tempfile::tempdir()?;

    // Missing file: the path is named, nothing else.
    let missing = dir.path().join("no-such-hook-url");
    let msg = resolve_error(&settings(&missing, "")?)?;
    assert!(msg.contains("no-such-hook-url"), "{msg}");
    assert!(!msg.contains(TOKEN), "{msg}");

    // Readable by others: refused like any key.
    let open = write_file(dir.path(), "open", &hook_url(1), 0o644)?;
    let msg = resolve_error(&settings(&open, "")?)?;
    assert!(msg.contains("chmod 600"), "{msg}");
    assert!(!msg.contains(TOKEN), "{msg}");

    // The URL pasted in place of its file: refused by validate and resolve without being echoed.
    let inline = WebhookSettings {
        url_file: hook_url(1),
        ..settings(&missing, "")?
    };
    let mut errors = Vec::new();
    inline.validate("alerts.webhook", &mut errors);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "alerts.webhook.url_file");
    assert!(!errors[0].to_string().contains(TOKEN));
    let msg = resolve_error(&inline)?;
    assert!(!msg.contains(TOKEN), "{msg}");
    assert!(!format!("{inline:?}").contains(TOKEN));

    // Not http(s), not a URL at all, no host: the content is never quoted.
    for (name, content, expect) in [
        (
            "ftp",
            format!("ftp://user:{TOKEN}@files.example/"),
            "http:// or https://",
        ),
        (
            "garbage",
            format!("{TOKEN} is not a url"),
            "not a valid URL",
        ),
        ("nohost", format!("http://:8080/{TOKEN}"), "url_file: "),
        (
            "userinfo",
            format!("https://hook:{TOKEN}@h.example/"),
            "user:password@",
        ),
        ("noscheme", format!("h.example/{TOKEN}"), "url_file: "),
        (
            "port",
            format!("http://h.example:99999/{TOKEN}"),
            "not a valid URL",
        ),
    ] {
        let f = write_file(dir.path(), name, &content, 0o600)?;
        let msg = resolve_error(&settings(&f, "")?)?;
        assert!(msg.contains(expect), "{name}: {msg}");
        assert!(!msg.contains(TOKEN), "{name}: {msg}");
    }

    // From the environment: an unset variable is named, nothing more.
    let env = WebhookSettings {
        url_file: "env:RAMPART_TEST_WEBHOOK_URL_UNSET".into(),
        ..settings(&missing, "")?
    };
    let msg = resolve_error(&env)?;
    assert!(msg.contains("RAMPART_TEST_WEBHOOK_URL_UNSET"), "{msg}");
    Ok(())
}

#[test]
fn settings_defaults_and_validation() -> TestResult {
    let s = settings(Path::new("hook-url"), "")?;
    assert_eq!(
        (
            s.timeout_ms,
            s.max_retries,
            s.queue,
            s.drain_ms,
            s.min_severity,
            s.ca_file.clone()
        ),
        (5000, 5, 1024, 5000, None, None)
    );
    let mut errors = Vec::new();
    s.validate("alerts.webhook", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");

    let bad = settings(
        Path::new("hook-url"),
        "timeout_ms = 0\nmax_retries = 11\nqueue = 0\ndrain_ms = 60001",
    )?;
    bad.validate("alerts.webhook", &mut errors);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "alerts.webhook.timeout_ms",
            "alerts.webhook.max_retries",
            "alerts.webhook.queue",
            "alerts.webhook.drain_ms"
        ]
    );

    assert!(settings(Path::new("f"), "urll = \"x\"").is_err());
    let sev = settings(Path::new("f"), "min_severity = \"medium\"")?;
    assert_eq!(sev.min_severity, Some(rampart_core::Severity::Medium));
    let unknown = settings(Path::new("f"), "min_severity = \"urgent\"");
    assert!(unknown.is_err_and(|e| e.to_string().contains("urgent")));
    Ok(())
}

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    let base = Duration::from_millis(200);
    for attempt in 0..40 {
        let full = base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(MAX_BACKOFF);
        for _ in 0..20 {
            let d = backoff(base, attempt);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }
    assert!(backoff(base, 30) <= MAX_BACKOFF);
}

/// A private CA and a certificate it signed for 127.0.0.1, as PEM: (ca, leaf, leaf key).
fn private_ca() -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&leaf_key, &ca)?;
    Ok((ca.pem(), leaf.pem(), leaf_key.serialize_pem()))
}

#[tokio::test]
async fn https_to_a_private_ca_via_ca_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (ca, leaf, key) = private_ca()?;
    let ca_file = write_file(dir.path(), "ca.pem", &ca, 0o644)?;
    let cert_file = write_file(dir.path(), "leaf.pem", &leaf, 0o644)?;
    let key_file = write_file(dir.path(), "leaf.key", &key, 0o600)?;
    let tls = crate::tls::acceptor(
        &crate::config::TlsConfig {
            cert_file,
            key_file: key_file.display().to_string(),
            client_ca_file: None,
        },
        Path::to_path_buf,
    )?;
    let server = serve(&[], Some(tls)).await?;
    let url = format!("https://127.0.0.1:{}/hook?token={TOKEN}", server.port);

    let counters = WebhookCounters::default();
    let extra = format!("ca_file = {:?}", ca_file.display().to_string());
    let handle = webhook(dir.path(), &url, &extra)?.start(counters.clone());
    handle.send(json!({"kind": "over_tls"}));
    handle.close().await;
    assert_eq!(counters.sent.get(), 1, "failed {}", counters.failed.get());
    assert_eq!(
        server.hook.bodies(),
        vec![Bytes::from(r#"{"kind":"over_tls"}"#)]
    );

    // Without ca_file the public roots apply, and they do not know this CA: the handshake fails.
    let counters = WebhookCounters::default();
    let handle = webhook(dir.path(), &url, "max_retries = 0")?.start(counters.clone());
    handle.send(json!({"kind": "untrusted"}));
    handle.close().await;
    assert_eq!((counters.sent.get(), counters.failed.get()), (0, 1));
    assert_eq!(server.hook.hits(), 1);
    Ok(())
}

#[test]
fn ca_file_errors_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let https = format!("https://127.0.0.1:1/hook?token={TOKEN}");
    let url = write_file(dir.path(), "hook-url", &https, 0o600)?;
    let not_pem = write_file(dir.path(), "not.pem", "hello", 0o644)?;
    let s = settings(
        &url,
        &format!("ca_file = {:?}", not_pem.display().to_string()),
    )?;
    assert!(matches!(
        s.resolve(Path::to_path_buf),
        Err(WebhookError::Tls(ClientTlsError::CaEmpty(_)))
    ));
    let s = settings(&url, "ca_file = \"/no/such/ca.pem\"")?;
    let msg = resolve_error(&s)?;
    assert!(
        msg.starts_with("ca_file: cannot read /no/such/ca.pem"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test]
async fn client_errors_are_logged_without_the_url() -> TestResult {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let w = webhook(dir.path(), &hook_url(port), "")?;
    match w.attempt(Bytes::from_static(b"{}")).await {
        super::Attempt::Transient { cause, .. } => {
            assert!(!cause.contains(TOKEN), "{cause}");
            assert!(!cause.contains("/hook"), "{cause}");
            // The cause still says what went wrong.
            assert!(cause.contains("connect"), "{cause}");
        }
        other => return Err(format!("expected a connection error, got {other:?}").into()),
    }
    Ok(())
}

#[test]
fn a_ca_file_with_a_plain_http_url_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = write_file(dir.path(), "hook-url", &hook_url(1), 0o600)?;
    let s = settings(&url, "ca_file = \"ca.pem\"")?;
    assert!(matches!(
        s.resolve(Path::to_path_buf),
        Err(WebhookError::CaWithoutTls)
    ));
    Ok(())
}
