//! `[state]`: rate-limit state shared by every replica through Redis, so an identity limited on one replica is
//! limited on all. Each decision is one `EVAL` of `GCRA_SCRIPT`, which reads and updates the identity's
//! theoretical arrival time atomically with Redis' own clock (`TIME`), so replicas need no clock agreement.
//! The algorithm and its numbers are `governor`'s, the in-memory limiter's: emission interval `t` =
//! 60 s / `per_minute`, tolerance `tau` = `t` × (`burst` − 1), a request at `now` is refused until
//! `tat − tau` when `now` is earlier, and otherwise moves `tat` to `max(tat, now) + t` (GCRA, ITU-T I.371).
//!
//! When Redis cannot be reached within `timeout_ms`, `on_unavailable` decides: `fail_closed` (default) refuses
//! with 503 `overloaded`; `local` falls back to the replica's in-memory limiter (each replica then admits up to
//! the full quota on its own). Either way an alert is raised once per outage, Redis is not retried for
//! `retry_ms` (so an outage costs no connect timeouts per request), and the first success afterwards ends the
//! outage with a second alert. Only the rate limit is shared; blocked identities and extraction statistics are
//! still per replica.
//!
//! One connection per gateway, used by one request at a time: simple and correct, at the cost of a Redis round
//! trip (tens of microseconds on a local network) serialized per replica.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use rampart_core::{Finding, GuardId, Identity, Reason, Rejection, Severity, Verdict};
use rampart_pipeline::rate_limit::{Quotas, RateLimit};
use rampart_pipeline::{Pipeline, RequestCx};

use crate::alerts::{Alert, AlertSink};
use crate::config::ConfigError;
use crate::resp::{Connection, Reply, Target};

/// `[state] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Each replica keeps its own state (default).
    #[default]
    Memory,
    /// Rate limits are shared through Redis.
    Redis,
}

/// `[state] on_unavailable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Refuse with 503 `overloaded` while Redis is unreachable (default): no replica admits more than the
    /// shared quota, at the price of availability.
    #[default]
    FailClosed,
    /// Use the replica's in-memory limiter while Redis is unreachable, and alert.
    Local,
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `memory` (default) or `redis`.
    #[serde(default)]
    pub backend: Backend,
    /// `redis`: a file holding `redis://[:password@]host:port[/db]`, or `env:NAME`. A secret (it may carry the
    /// password): never inline, never logged.
    #[serde(default)]
    pub url_file: Option<String>,
    /// `fail_closed` (default) or `local`.
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// Time Redis has to connect or answer before it counts as unavailable. Default 100 ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// After a failure, Redis is not tried again for this long. Default 1000 ms.
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
}

fn default_timeout_ms() -> u64 {
    100
}

fn default_retry_ms() -> u64 {
    1000
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            url_file: None,
            on_unavailable: OnUnavailable::FailClosed,
            timeout_ms: default_timeout_ms(),
            retry_ms: default_retry_ms(),
        }
    }
}

impl StateConfig {
    /// Appends this section's problems to `errors`.
    pub(crate) fn validate(&self, errors: &mut Vec<ConfigError>) {
        let mut err = |field: &str, message: &str| {
            errors.push(ConfigError {
                path: format!("state.{field}"),
                message: message.to_owned(),
            });
        };
        match (self.backend, &self.url_file) {
            (Backend::Redis, None) => err("url_file", "backend = \"redis\" needs url_file"),
            (Backend::Memory, Some(_)) => err("url_file", "only used with backend = \"redis\""),
            (_, Some(u)) if u.contains("://") || crate::secret::looks_inline(u) => err(
                "url_file",
                "must name a file or env:NAME holding the URL, never the URL itself (it is a secret)",
            ),
            _ => {}
        }
        if self.timeout_ms == 0 {
            err("timeout_ms", "must be > 0");
        }
        if self.retry_ms == 0 {
            err("retry_ms", "must be > 0");
        }
    }
}

/// The GCRA decision. KEYS[1]: the bucket; ARGV[1]: `t` and ARGV[2]: `tau`, in microseconds. Returns
/// `{1, until_full_us, remaining}` when admitted and `{0, wait_us, 0}` when refused. The key expires when the
/// bucket is full again, since its state is then the same as no state (Redis' memory stays bounded).
/// Timestamps are microseconds since the epoch, exact in Lua's doubles (< 2^53); `%.0f` writes them whole.
pub(crate) const GCRA_SCRIPT: &str = r"
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local earliest = tat - tau
if now < earliest then
  return {0, earliest - now, 0}
end
local new_tat = math.max(tat, now) + t
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
local remaining = math.floor((tau + t - (new_tat - now)) / t)
return {1, new_tat - now, remaining}
";

/// The Redis-backed admission of a gateway.
pub(crate) struct SharedState {
    target: Target,
    timeout: Duration,
    retry: Duration,
    on_unavailable: OnUnavailable,
    conn: tokio::sync::Mutex<Option<Connection>>,
    down_until: parking_lot::Mutex<Option<Instant>>,
    in_outage: AtomicBool,
    alerts: AlertSink,
}

/// Redis could not decide (the reason is logged once per outage).
struct Unavailable;

impl SharedState {
    /// `None` for the memory backend; reads the URL secret for Redis. Does not connect: a Redis that is down
    /// at start-up is an outage like any other, handled per `on_unavailable`.
    ///
    /// # Errors
    /// The URL cannot be read or parsed (the message never holds the URL).
    pub(crate) fn from_config(
        cfg: &StateConfig,
        resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
        alerts: AlertSink,
    ) -> Result<Option<Self>, String> {
        let (Backend::Redis, Some(url_file)) = (cfg.backend, &cfg.url_file) else {
            return Ok(None);
        };
        let secret = crate::secret::read(url_file, resolve).map_err(|e| e.to_string())?;
        let url = std::str::from_utf8(&secret).map_err(|_| "the URL is not UTF-8".to_owned())?;
        let target = Target::parse(url)?;
        tracing::info!(
            redis = %target.addr,
            on_unavailable = ?cfg.on_unavailable,
            "rate limits are shared through Redis"
        );
        Ok(Some(Self {
            target,
            timeout: Duration::from_millis(cfg.timeout_ms),
            retry: Duration::from_millis(cfg.retry_ms),
            on_unavailable: cfg.on_unavailable,
            conn: tokio::sync::Mutex::new(None),
            down_until: parking_lot::Mutex::new(None),
            in_outage: AtomicBool::new(false),
            alerts,
        }))
    }

    /// The admit phase with shared state: the same result as [`Pipeline::admit`], decided by Redis.
    pub(crate) async fn admit(
        &self,
        pipeline: &Pipeline,
        cx: &RequestCx<'_>,
        flags: &mut Vec<Finding>,
    ) -> Result<Option<Quotas>, (Rejection, Option<Quotas>)> {
        let Some(limiter) = pipeline.limiter() else {
            return Ok(None);
        };
        match self.gcra(cx.model, cx.identity, limiter).await {
            Ok(Ok(q)) => Ok(Some(q)),
            Ok(Err((r, q))) => match limiter.mode().apply(Verdict::Reject(r)) {
                Verdict::Reject(r) => Err((r, Some(q))),
                Verdict::Flag(f) => {
                    flags.push(f);
                    Ok(Some(q))
                }
                Verdict::Pass => Ok(Some(q)),
            },
            Err(Unavailable) => match self.on_unavailable {
                OnUnavailable::FailClosed => Err((
                    Rejection::new(Reason::Overloaded, GuardId::RATE_LIMIT)
                        .with_retry_after(self.retry.max(Duration::from_secs(1)))
                        .with_severity(Severity::Medium),
                    None,
                )),
                OnUnavailable::Local => pipeline.admit(cx, flags),
            },
        }
    }

    async fn gcra(
        &self,
        model: &str,
        identity: &Identity,
        limiter: &RateLimit,
    ) -> Result<Result<Quotas, (Rejection, Quotas)>, Unavailable> {
        if self.down_until.lock().is_some_and(|t| Instant::now() < t) {
            return Err(Unavailable);
        }
        let t = limiter.period();
        let burst = limiter.burst();
        let t_us = t.as_micros().max(1);
        let tau_us = t_us * u128::from(burst.saturating_sub(1));
        // The identity is hashed: whoever can read Redis learns neither identities nor model traffic per name.
        let key = format!(
            "rampart:gcra:{model}:{}",
            &hex::encode(Sha256::digest(identity.id().as_bytes()))[..32]
        );
        let reply = {
            let mut conn = self.conn.lock().await;
            // Requests queued behind one that just found Redis down must not each pay a timeout in turn.
            if self.down_until.lock().is_some_and(|t| Instant::now() < t) {
                return Err(Unavailable);
            }
            let result = match conn.as_mut() {
                Some(c) => eval(c, &key, t_us, tau_us).await,
                None => match Connection::open(&self.target, self.timeout).await {
                    Ok(c) => {
                        let c = conn.insert(c);
                        eval(c, &key, t_us, tau_us).await
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            if result.is_err() {
                // A connection that failed mid-command may hold half a reply: never reuse it.
                *conn = None;
            }
            result
        };
        let (allowed, micros, remaining) = match reply {
            Ok(v) => v,
            Err(e) => {
                *self.down_until.lock() = Some(Instant::now() + self.retry);
                self.outage_started(&e);
                return Err(Unavailable);
            }
        };
        self.outage_ended();
        let window_secs = secs_ceil(t * burst);
        let wait = Duration::from_micros(u64::try_from(micros.max(0)).unwrap_or(u64::MAX));
        if allowed == 1 {
            let remaining = u32::try_from(remaining.max(0)).unwrap_or(0).min(burst);
            Ok(Ok(Quotas {
                limit: burst,
                window_secs,
                remaining,
                reset_secs: secs_ceil(t * burst.saturating_sub(remaining)),
            }))
        } else {
            let secs = secs_ceil(wait).max(1);
            let quotas = Quotas {
                limit: burst,
                window_secs,
                remaining: 0,
                reset_secs: secs,
            };
            let rejection = Rejection::new(Reason::RateLimited, GuardId::RATE_LIMIT)
                .with_retry_after(Duration::from_secs(secs))
                .with_severity(Severity::Low);
            Ok(Err((rejection, quotas)))
        }
    }

    fn outage_started(&self, error: &str) {
        if self.in_outage.swap(true, Ordering::Relaxed) {
            return;
        }
        let then = match self.on_unavailable {
            OnUnavailable::FailClosed => "refusing with 503 overloaded",
            OnUnavailable::Local => "falling back to each replica's own limiter",
        };
        tracing::error!(redis = %self.target.addr, "shared state unavailable ({error}): {then}");
        self.alerts.raise(Alert {
            time: OffsetDateTime::now_utc(),
            kind: "shared_state_unavailable",
            severity: Severity::High,
            model: None,
            identity: None,
            request_id: None,
            detail: format!("Redis at {} is unreachable: {then}", self.target.addr),
        });
    }

    fn outage_ended(&self) {
        if !self.in_outage.swap(false, Ordering::Relaxed) {
            return;
        }
        tracing::info!(redis = %self.target.addr, "shared state available again");
        self.alerts.raise(Alert {
            time: OffsetDateTime::now_utc(),
            kind: "shared_state_recovered",
            severity: Severity::Low,
            model: None,
            identity: None,
            request_id: None,
            detail: format!("Redis at {} answers again", self.target.addr),
        });
    }
}

/// One `EVAL` of the script; the reply as (allowed, microseconds, remaining).
async fn eval(
    conn: &mut Connection,
    key: &str,
    t_us: u128,
    tau_us: u128,
) -> Result<(i64, i64, i64), String> {
    let (t, tau) = (t_us.to_string(), tau_us.to_string());
    let reply = conn
        .command(&[
            b"EVAL",
            GCRA_SCRIPT.as_bytes(),
            b"1",
            key.as_bytes(),
            t.as_bytes(),
            tau.as_bytes(),
        ])
        .await
        .map_err(|e| e.to_string())?;
    match reply {
        Reply::Array(items) => match items.as_slice() {
            [Reply::Int(a), Reply::Int(b), Reply::Int(c)] => Ok((*a, *b, *c)),
            _ => Err("the script's reply is not three integers".into()),
        },
        _ => Err("the script's reply is not an array".into()),
    }
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use rampart_core::Identity;
    use rampart_pipeline::rate_limit::{Config, RateLimit};

    use super::eval;
    use crate::resp::{Connection, RespError, Target};

    /// The script and the in-memory limiter agree request by request on a burst: both admit exactly `burst`
    /// at once and then refuse, with the same remaining counts. Needs redis-server (skipped, saying so, without).
    #[tokio::test]
    async fn the_script_matches_the_in_memory_limiter() {
        let Ok(port) =
            std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().unwrap().port())
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("skipped: redis-server cannot be started here; .ci/run installs it");
            return;
        };
        let target = Target::parse(&format!("redis://127.0.0.1:{port}")).unwrap();
        let mut conn = None;
        for _ in 0..250 {
            if let Ok(c) = Connection::open(&target, Duration::from_secs(1)).await {
                conn = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut conn = conn.expect("redis-server listens");
        assert!(matches!(
            conn.command(&[b"NOSUCHCOMMAND"]).await,
            Err(RespError::Server(_))
        ));

        let config = Config {
            per_minute: 6,
            burst: Some(4),
            ..Config::default()
        };
        let local = RateLimit::new(&config).unwrap();
        let t_us = local.period().as_micros();
        let tau_us = t_us * u128::from(local.burst() - 1);
        let who = Identity::new("alice", Vec::new());
        for i in 0..6 {
            let (allowed, _, remaining) = eval(&mut conn, "k", t_us, tau_us).await.unwrap();
            let mem = local.acquire(&who);
            assert_eq!(allowed == 1, mem.is_ok(), "request {i}");
            if let Ok(q) = mem {
                assert_eq!(i64::from(q.remaining), remaining, "request {i}");
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
