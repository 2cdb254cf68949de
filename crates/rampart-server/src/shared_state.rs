//! `[state]`: what every replica shares through Redis, so that a caller spreading its requests over replicas
//! meets the same limits as on one. Three things are shared; each stays bounded in Redis' memory, and an
//! identity is never written in clear: it is the first 128 bits of its HMAC-SHA-256 under
//! `identity_key_file` (every replica holds the same key), or of its plain SHA-256 without one
//! (`IdentityKeys`).
//!
//! **Rate limits**, decided in Redis. Each decision is one `EVAL` of `GCRA_SCRIPT`, which reads and updates
//! the identity's theoretical arrival time atomically with Redis' own clock (`TIME`), so replicas need no
//! clock agreement. The algorithm and its numbers are `governor`'s, the in-memory limiter's: emission
//! interval `t` = 60 s / `per_minute`, tolerance `tau` = `t` × (`burst` − 1), a request at `now` is refused
//! until `tat − tau` when `now` is earlier, and otherwise moves `tat` to `max(tat, now) + t` (GCRA,
//! ITU-T I.371). A request costs one Redis round trip.
//!
//! **Blocked identities**, cached. A block or unblock (admin API, incident responder) is written to the
//! replica's own file first and queued for Redis (`BlockOp`, the hash `rampart:blocks`: key → end in Unix
//! ms, 0 for good, with a version counter `rampart:blocks:version`). A background task (`start_sync`),
//! every `block_sync_ms` (and at once after a local change), sends the queue, reads the version, and only when
//! it moved reads the hash into the replica's cache: the request path checks an in-memory snapshot and never
//! waits on Redis. A block set on one replica is therefore refused on the others within about
//! `block_sync_ms` (plus one Redis round trip); so is an unblock, which also removes the blocked identity
//! from the other replicas' own files when they held it (an incident rule firing on several replicas). A
//! replica shares the blocks of its file that Redis lacks when it starts and when Redis has lost its data,
//! so a block outlives a Redis restart; a block lifted elsewhere while a replica was down comes back with
//! that replica and must be lifted again. Expired blocks are removed from Redis by the reader.
//!
//! **Extraction statistics** (PRADA, [`crate::monitor`]), merged. Each replica keeps its own growing sets
//! (the queries themselves never leave it: they may be personal data) and appends every minimum distance it
//! measures to the model's stream `rampart:prada:{model}` (entries: replica, identity key, distance; at most
//! `extraction_max_entries`, expiring `extraction_ttl_secs` after the last write). The same task reads the
//! other replicas' entries and feeds them to the local detector of that identity, so its distance list is
//! the merged stream and the normality test sees an extraction spread over replicas as one. Only an identity
//! the replica has served itself takes remote distances (the first replica to serve it sees all of them); the
//! delay is again about `block_sync_ms`. Distances measured while Redis is unreachable are not shared.
//!
//! When Redis cannot be reached within `timeout_ms`, `on_unavailable` decides: `fail_closed` (default) refuses
//! inference with 503 `overloaded` (a rate-limited model at once, every model while the block sync fails:
//! the replica cannot know whom another replica blocked); `local` falls back to the replica's in-memory
//! limiter and to its own blocks plus the last shared ones it read (each replica then admits up to the full
//! quota on its own). Either way an alert is raised once per outage, Redis is not retried for `retry_ms` (so
//! an outage costs no connect timeouts per request), queued block changes wait and are sent when Redis
//! answers again, and the first success afterwards ends the outage with a second alert. The admin API stays
//! available during an outage.
//!
//! Rate limits use one connection per gateway, used by one request at a time: simple and correct, at the cost
//! of a Redis round trip (tens of microseconds on a local network) serialized per replica. The sync task has
//! its own connection, so it never queues behind requests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

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
    /// Rate limits, blocks and extraction statistics are shared through Redis.
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
    /// Use the replica's in-memory limiter, its own blocks and the shared ones last read while Redis is
    /// unreachable, and alert.
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
    /// How often each replica sends its block changes and extraction distances to Redis and reads the
    /// others': the propagation delay of a block, an unblock or a distance. Default 250 ms.
    #[serde(default = "default_block_sync_ms")]
    pub block_sync_ms: u64,
    /// An `hmac` key file (`rampart keygen --kind hmac`), the same on every replica: identities in Redis are
    /// then keyed with HMAC-SHA-256 instead of a plain SHA-256 that a reader of Redis could confirm guesses
    /// against. Recommended; without it a warning is logged.
    #[serde(default)]
    pub identity_key_file: Option<PathBuf>,
    /// Each model's shared extraction stream expires this long after its last write. Default 3600 s.
    #[serde(default = "default_extraction_ttl_secs")]
    pub extraction_ttl_secs: u64,
    /// Distances kept per model's shared stream (about 100 bytes each in Redis). Default 100000.
    #[serde(default = "default_extraction_max_entries")]
    pub extraction_max_entries: u64,
}

fn default_timeout_ms() -> u64 {
    100
}

fn default_retry_ms() -> u64 {
    1000
}

fn default_block_sync_ms() -> u64 {
    250
}

fn default_extraction_ttl_secs() -> u64 {
    3600
}

fn default_extraction_max_entries() -> u64 {
    100_000
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            url_file: None,
            on_unavailable: OnUnavailable::FailClosed,
            timeout_ms: default_timeout_ms(),
            retry_ms: default_retry_ms(),
            block_sync_ms: default_block_sync_ms(),
            identity_key_file: None,
            extraction_ttl_secs: default_extraction_ttl_secs(),
            extraction_max_entries: default_extraction_max_entries(),
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
        if self.identity_key_file.is_some() && self.backend != Backend::Redis {
            err("identity_key_file", "only used with backend = \"redis\"");
        }
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
        if self.block_sync_ms == 0 {
            err("block_sync_ms", "must be > 0");
        }
        if self.extraction_ttl_secs == 0 {
            err("extraction_ttl_secs", "must be > 0");
        }
        if self.extraction_max_entries < 1000 {
            err(
                "extraction_max_entries",
                "must be at least 1000 (a detector needs more than 100 distances per identity)",
            );
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

/// The shared blocks. KEYS[1]: the hash, KEYS[2]: its version counter.
const BLOCKS_KEY: &str = "rampart:blocks";
const BLOCKS_VERSION_KEY: &str = "rampart:blocks:version";

/// Blocks a key: ARGV[1] the key, ARGV[2] the end in Unix ms or 0 for good. As the local blocklist, a block
/// never shortens one in force (a block for good stays). Returns 1 when it changed something.
const BLOCK_SCRIPT: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == '0' then return 0 end
if ARGV[2] ~= '0' and cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
";

/// Unblocks a key: ARGV[1] the key, ARGV[2] the end it must still have ('' for any: an operator's unblock).
const UNBLOCK_SCRIPT: &str = r"
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if n > 0 then redis.call('INCR', KEYS[2]) end
return n
";

/// Reads the blocks when their version differs from ARGV[1]: `{version}` when unchanged, else
/// `{version, "key until\n…"}`; version -1 when Redis holds no blocks state at all (never written, or lost).
/// Expired blocks are removed on the way (Redis' clock; the readers compare with their own anyway).
const READ_BLOCKS_SCRIPT: &str = r"
local v = tonumber(redis.call('GET', KEYS[2]) or '-1')
if v == tonumber(ARGV[1]) then return {v} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
local purged = 0
for i = 1, #all, 2 do
  local until_ms = tonumber(all[i + 1]) or 0
  if until_ms > 0 and until_ms <= now then
    redis.call('HDEL', KEYS[1], all[i])
    purged = purged + 1
  else
    out[#out + 1] = all[i] .. ' ' .. all[i + 1]
  end
end
if purged > 0 then v = redis.call('INCR', KEYS[2]) end
return {v, table.concat(out, '\n')}
";

/// Appends distances to a model's stream: ARGV[1] the cap, ARGV[2] the TTL in ms, ARGV[3] this replica,
/// then key and distance pairs. The cap is approximate (`~`, whole macro nodes), as Redis trims cheaply.
const PUSH_DISTANCES_SCRIPT: &str = r"
for i = 4, #ARGV - 1, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'r', ARGV[3], 'k', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Reads a model's stream after ARGV[1] (an entry id; '' starts at the current end), at most ARGV[3] entries,
/// leaving out this replica's own (ARGV[2]). Returns `{last id, "key distance\n…", entries read}`.
const READ_DISTANCES_SCRIPT: &str = r"
if ARGV[1] == '' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last == 0 then return {'0-0', '', 0} end
  return {last[1][1], '', 0}
end
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[3]) + 1)
local out = {}
local last = ARGV[1]
local n = 0
for _, e in ipairs(entries) do
  if e[1] ~= ARGV[1] then
    last = e[1]
    n = n + 1
    local f = e[2]
    local r, k, d
    for i = 1, #f - 1, 2 do
      if f[i] == 'r' then r = f[i + 1] elseif f[i] == 'k' then k = f[i + 1] elseif f[i] == 'd' then d = f[i + 1] end
    end
    if r ~= ARGV[2] and k and d then out[#out + 1] = k .. ' ' .. d end
  end
end
return {last, table.concat(out, '\n'), n}
";

/// Stream entries read per `EVAL`, and reads per sync round: a replica far behind catches up over rounds.
const READ_BATCH: usize = 500;
const READS_PER_ROUND: usize = 20;
/// Distances sent per sync round (the channel holds more; past that they are dropped, see `monitor`).
const PUSH_PER_ROUND: usize = 4096;
/// Block changes waiting for Redis; past this the oldest is dropped (and said), so an outage cannot grow
/// memory without bound.
const MAX_OUTBOX: usize = 10_000;

/// The key an identity has in Redis, the same on every replica.
///
/// With `[state] identity_key_file`: the identity's audit-style pseudonym (HMAC-SHA-256 under the shared
/// key, 128 bits): whoever reads Redis can neither recover an identity nor confirm a guess without the key.
/// Without one: the first 128 bits of its SHA-256, which hides identities only as well as they are hard to
/// guess (an e-mail address is not).
#[derive(Clone, Default)]
pub(crate) struct IdentityKeys(Option<Arc<rampart_crypto::pseudonym::PseudonymKey>>);

impl IdentityKeys {
    /// Keys under `key` (an `hmac` key file's).
    pub(crate) fn keyed(key: rampart_crypto::pseudonym::PseudonymKey) -> Self {
        Self(Some(Arc::new(key)))
    }

    /// The key of `id`.
    pub(crate) fn key(&self, id: &str) -> String {
        match &self.0 {
            Some(k) => k.pseudonym(id),
            None => {
                let mut key = hex::encode(Sha256::digest(id.as_bytes()));
                key.truncate(32);
                key
            }
        }
    }
}

/// A change to the shared blocks, queued until Redis takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockOp {
    /// Block the key until a Unix time in ms, or for good with 0; never shortens a block.
    Block {
        /// [`IdentityKeys::key`].
        key: String,
        /// End in Unix ms, 0 for good.
        until_ms: i64,
    },
    /// Lift the key's block; with `only_until`, only when it still ends then (a responder's own block).
    Unblock {
        /// [`IdentityKeys::key`].
        key: String,
        /// The end the block must have, or `None` for any.
        only_until: Option<i64>,
    },
}

/// The blocklist's shared half: changes waiting for Redis, and the last blocks read from it. Held by the
/// [`crate::access::Blocklist`] (which queues its changes here and checks the snapshot) and by the sync task.
pub(crate) struct SharedBlocks {
    fail_closed: bool,
    /// How identities are named in Redis.
    keys: IdentityKeys,
    outbox: parking_lot::Mutex<VecDeque<BlockOp>>,
    /// Wakes the sync task after a local change, so it propagates without waiting for the next tick.
    wake: tokio::sync::Notify,
    /// key → end in Unix ms (0 for good); read once per request, no lock.
    remote: ArcSwap<HashMap<String, i64>>,
    /// Set while the sync fails: the snapshot may be stale.
    unavailable: AtomicBool,
}

impl SharedBlocks {
    pub(crate) fn new(on_unavailable: OnUnavailable, keys: IdentityKeys) -> Self {
        Self {
            fail_closed: on_unavailable == OnUnavailable::FailClosed,
            keys,
            outbox: parking_lot::Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            remote: ArcSwap::from_pointee(HashMap::new()),
            unavailable: AtomicBool::new(false),
        }
    }

    /// Queues a change for Redis.
    pub(crate) fn push(&self, op: BlockOp) {
        {
            let mut outbox = self.outbox.lock();
            if outbox.len() >= MAX_OUTBOX {
                outbox.pop_front();
                tracing::error!(
                    "more than {MAX_OUTBOX} block changes wait for Redis: the oldest is dropped (it still \
                     applies on this replica)"
                );
            }
            outbox.push_back(op);
        }
        self.wake.notify_one();
    }

    /// The changes waiting for Redis, oldest first.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> Vec<BlockOp> {
        self.outbox.lock().iter().cloned().collect()
    }

    /// The key `id` has in Redis.
    pub(crate) fn key(&self, id: &str) -> String {
        self.keys.key(id)
    }

    /// Whether another replica (or this one) blocked `id` through Redis, as last read.
    pub(crate) fn blocks(&self, id: &str) -> bool {
        let remote = self.remote.load();
        // The common case (nobody blocked) costs no hashing.
        if remote.is_empty() {
            return false;
        }
        match remote.get(&self.keys.key(id)) {
            None => false,
            Some(0) => true,
            Some(until) => crate::access::now_unix_ms() < *until,
        }
    }

    /// `fail_closed` while the blocks cannot be read: inference must be refused.
    pub(crate) fn refuses_all(&self) -> bool {
        self.fail_closed && self.unavailable.load(Ordering::Relaxed)
    }
}

/// A distance the monitor measured, on its way to the model's shared stream.
#[derive(Debug, Clone)]
pub(crate) struct SharedDistance {
    pub(crate) model: Arc<str>,
    /// [`IdentityKeys::key`].
    pub(crate) key: String,
    pub(crate) dmin: f64,
}

/// Distances waiting for the sync task; past this the monitor drops them (local detection is unaffected).
pub(crate) const DISTANCE_QUEUE: usize = 8192;

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
    /// The blocks shared with the other replicas (also held by the blocklist).
    pub(crate) blocks: Arc<SharedBlocks>,
    /// How identities are named in Redis (the rate limits' keys, and the monitor's distances).
    pub(crate) keys: IdentityKeys,
    /// This process' name in the extraction streams, so it skips its own entries: random, not secret.
    replica: String,
    pub(crate) block_sync: Duration,
    extraction_ttl_ms: u64,
    extraction_max_entries: u64,
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
        let secret = crate::secret::read(url_file, &resolve).map_err(|e| e.to_string())?;
        let url = std::str::from_utf8(&secret).map_err(|_| "the URL is not UTF-8".to_owned())?;
        let target = Target::parse(url)?;
        let keys = match &cfg.identity_key_file {
            Some(path) => {
                let path = resolve(path);
                let key = rampart_crypto::pseudonym::PseudonymKey::load(&path)
                    .map_err(|e| format!("state.identity_key_file {}: {e}", path.display()))?;
                IdentityKeys::keyed(key)
            }
            None => {
                tracing::warn!(
                    "[state] has no identity_key_file: identities in Redis are plain SHA-256 hashes, which a \
                     reader of Redis can confirm guesses against"
                );
                IdentityKeys::default()
            }
        };
        tracing::info!(
            redis = %target.addr,
            on_unavailable = ?cfg.on_unavailable,
            "rate limits, blocks and extraction statistics are shared through Redis"
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
            blocks: Arc::new(SharedBlocks::new(cfg.on_unavailable, keys.clone())),
            keys,
            replica: format!("{:016x}", rand::random::<u64>()),
            block_sync: Duration::from_millis(cfg.block_sync_ms),
            extraction_ttl_ms: cfg.extraction_ttl_secs.saturating_mul(1000),
            extraction_max_entries: cfg.extraction_max_entries,
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
        match self.gcra(cx.model, cx.identity, &limiter).await {
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
        let key = format!("rampart:gcra:{model}:{}", self.keys.key(identity.id()));
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
            OnUnavailable::Local => {
                "falling back to each replica's own limiter and the blocks it last read"
            }
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

/// What the sync task remembers between rounds.
#[derive(Default)]
pub(crate) struct SyncCursor {
    conn: Option<Connection>,
    /// The blocks version last read; `None` before the first read.
    version: Option<i64>,
    /// The keys of the blocks last read: one missing from the next read was lifted elsewhere.
    keys: HashSet<String>,
    /// Per model, the last stream entry read ("" before the first read).
    streams: HashMap<Arc<str>, String>,
}

impl SharedState {
    /// One sync round: sends the queued block changes and the new distances, reads the others' distances
    /// and, when their version moved, the blocks.
    async fn sync_round(
        &self,
        cursor: &mut SyncCursor,
        blocked: &crate::access::Blocklist,
        monitor: &crate::monitor::Monitor,
        distances: &mut tokio::sync::mpsc::Receiver<SharedDistance>,
    ) -> Result<(), String> {
        let mut conn = match cursor.conn.take() {
            Some(c) => c,
            None => Connection::open(&self.target, self.timeout)
                .await
                .map_err(|e| e.to_string())?,
        };
        // A connection that failed mid-command may hold half a reply: it is dropped with the error.
        self.send_blocks(&mut conn).await?;
        self.send_distances(&mut conn, distances).await?;
        self.read_distances(&mut conn, cursor, monitor).await?;
        self.read_blocks(&mut conn, cursor, blocked).await?;
        cursor.conn = Some(conn);
        Ok(())
    }

    async fn send_blocks(&self, conn: &mut Connection) -> Result<(), String> {
        loop {
            let Some(op) = self.blocks.outbox.lock().front().cloned() else {
                return Ok(());
            };
            run_block_op(conn, &op).await?;
            let mut outbox = self.blocks.outbox.lock();
            // The queue may have dropped its oldest meanwhile (it was full): take only what was sent.
            if outbox.front() == Some(&op) {
                outbox.pop_front();
            }
        }
    }

    async fn send_distances(
        &self,
        conn: &mut Connection,
        distances: &mut tokio::sync::mpsc::Receiver<SharedDistance>,
    ) -> Result<(), String> {
        let mut by_model: HashMap<Arc<str>, Vec<String>> = HashMap::new();
        for _ in 0..PUSH_PER_ROUND {
            let Ok(d) = distances.try_recv() else { break };
            let args = by_model.entry(d.model).or_default();
            args.push(d.key);
            args.push(d.dmin.to_string());
        }
        let (cap, ttl) = (
            self.extraction_max_entries.to_string(),
            self.extraction_ttl_ms.to_string(),
        );
        for (model, pairs) in by_model {
            let key = format!("rampart:prada:{model}");
            let mut args: Vec<&[u8]> = vec![
                b"EVAL",
                PUSH_DISTANCES_SCRIPT.as_bytes(),
                b"1",
                key.as_bytes(),
                cap.as_bytes(),
                ttl.as_bytes(),
                self.replica.as_bytes(),
            ];
            args.extend(pairs.iter().map(String::as_bytes));
            conn.command(&args).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn read_distances(
        &self,
        conn: &mut Connection,
        cursor: &mut SyncCursor,
        monitor: &crate::monitor::Monitor,
    ) -> Result<(), String> {
        let batch = READ_BATCH.to_string();
        for model in monitor.prada_models() {
            let key = format!("rampart:prada:{model}");
            let last = cursor.streams.entry(model.clone()).or_default();
            for _ in 0..READS_PER_ROUND {
                let reply = conn
                    .command(&[
                        b"EVAL",
                        READ_DISTANCES_SCRIPT.as_bytes(),
                        b"1",
                        key.as_bytes(),
                        last.as_bytes(),
                        self.replica.as_bytes(),
                        batch.as_bytes(),
                    ])
                    .await
                    .map_err(|e| e.to_string())?;
                let Reply::Array(items) = reply else {
                    return Err("the distance reader's reply is not an array".into());
                };
                let [Reply::Bulk(Some(id)), Reply::Bulk(payload), Reply::Int(read)] =
                    items.as_slice()
                else {
                    return Err("the distance reader's reply is malformed".into());
                };
                *last = String::from_utf8_lossy(id).into_owned();
                let payload = payload.as_deref().unwrap_or_default();
                for line in String::from_utf8_lossy(payload).lines() {
                    // An entry another version wrote differently is skipped, not fatal.
                    let Some((k, d)) = line.split_once(' ') else {
                        continue;
                    };
                    if let Ok(dmin) = d.parse::<f64>() {
                        monitor.remote_distance(&model, k.to_owned(), dmin);
                    }
                }
                if usize::try_from(*read).unwrap_or(0) < READ_BATCH {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn read_blocks(
        &self,
        conn: &mut Connection,
        cursor: &mut SyncCursor,
        blocked: &crate::access::Blocklist,
    ) -> Result<(), String> {
        // -2 never matches, so the first round reads everything.
        let known = cursor.version.unwrap_or(-2).to_string();
        let reply = conn
            .command(&[
                b"EVAL",
                READ_BLOCKS_SCRIPT.as_bytes(),
                b"2",
                BLOCKS_KEY.as_bytes(),
                BLOCKS_VERSION_KEY.as_bytes(),
                known.as_bytes(),
            ])
            .await
            .map_err(|e| e.to_string())?;
        let Reply::Array(items) = reply else {
            return Err("the block reader's reply is not an array".into());
        };
        let (version, payload) = match items.as_slice() {
            [Reply::Int(v)] => (*v, None),
            [Reply::Int(v), Reply::Bulk(p)] => (*v, Some(p.clone().unwrap_or_default())),
            _ => return Err("the block reader's reply is malformed".into()),
        };
        let Some(payload) = payload else {
            return Ok(());
        };
        let mut remote = HashMap::new();
        for line in String::from_utf8_lossy(&payload).lines() {
            if let Some((k, u)) = line.split_once(' ') {
                if let Ok(until) = u.parse::<i64>() {
                    remote.insert(k.to_owned(), until);
                }
            }
        }
        let first = cursor.version.is_none();
        // Redis holds no blocks state although it did: it restarted without its data.
        let lost = version == -1 && cursor.version.is_some_and(|v| v >= 0);
        let mut next_version = version;
        if first || lost {
            // Share this replica's own blocks that Redis lacks, so a block survives a Redis restart.
            let mut pushed = 0;
            for (key, until_ms) in blocked.shared_entries() {
                if !remote.contains_key(&key) {
                    run_block_op(conn, &BlockOp::Block { key, until_ms }).await?;
                    pushed += 1;
                }
            }
            if pushed > 0 {
                tracing::info!(pushed, "blocks of this replica's file shared through Redis");
                // Read again next round, with what was just pushed.
                next_version = -2;
            }
        } else {
            // Lifted elsewhere: the replica's own file must not keep refusing the identity.
            let vanished: HashSet<String> = cursor
                .keys
                .iter()
                .filter(|k| !remote.contains_key(*k))
                .cloned()
                .collect();
            if !vanished.is_empty() {
                blocked
                    .forget_keys(&vanished)
                    .map_err(|e| format!("the blocklist file cannot be written: {e}"))?;
            }
        }
        cursor.keys = remote.keys().cloned().collect();
        cursor.version = Some(next_version);
        self.blocks.remote.store(Arc::new(remote));
        Ok(())
    }
}

async fn run_block_op(conn: &mut Connection, op: &BlockOp) -> Result<(), String> {
    let (script, key, arg) = match op {
        BlockOp::Block { key, until_ms } => (BLOCK_SCRIPT, key, until_ms.to_string()),
        BlockOp::Unblock { key, only_until } => (
            UNBLOCK_SCRIPT,
            key,
            only_until.map_or(String::new(), |u| u.to_string()),
        ),
    };
    conn.command(&[
        b"EVAL",
        script.as_bytes(),
        b"2",
        BLOCKS_KEY.as_bytes(),
        BLOCKS_VERSION_KEY.as_bytes(),
        key.as_bytes(),
        arg.as_bytes(),
    ])
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Runs the first sync round now (so a replica starts with the shared blocks), then one every
/// `block_sync_ms` or at once after a local block change, until the gateway is dropped. A failed round is an
/// outage (alert, `on_unavailable`), retried after `retry_ms`.
pub(crate) async fn start_sync(
    shared: &Arc<crate::gateway::Shared>,
    mut distances: tokio::sync::mpsc::Receiver<SharedDistance>,
) {
    let Some(state) = shared.shared_state.as_ref() else {
        return;
    };
    let mut cursor = SyncCursor::default();
    let ok = sync_once(shared, state, &mut cursor, &mut distances).await;
    let (every, retry, blocks) = (state.block_sync, state.retry, state.blocks.clone());
    let weak: Weak<crate::gateway::Shared> = Arc::downgrade(shared);
    tokio::spawn(async move {
        if !ok {
            tokio::time::sleep(retry).await;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = blocks.wake.notified() => {}
            }
            let Some(shared) = weak.upgrade() else { return };
            let Some(state) = shared.shared_state.as_ref() else {
                return;
            };
            let ok = sync_once(&shared, state, &mut cursor, &mut distances).await;
            drop(shared);
            if !ok {
                tokio::time::sleep(retry).await;
            }
        }
    });
}

async fn sync_once(
    shared: &crate::gateway::Shared,
    state: &SharedState,
    cursor: &mut SyncCursor,
    distances: &mut tokio::sync::mpsc::Receiver<SharedDistance>,
) -> bool {
    match state
        .sync_round(cursor, &shared.blocked, &shared.monitor, distances)
        .await
    {
        Ok(()) => {
            state.blocks.unavailable.store(false, Ordering::Relaxed);
            state.outage_ended();
            true
        }
        Err(e) => {
            state.blocks.unavailable.store(true, Ordering::Relaxed);
            state.outage_started(&e);
            false
        }
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

    use super::{eval, run_block_op, BlockOp, Reply, READ_BLOCKS_SCRIPT};
    use crate::resp::{Connection, RespError, Target};

    /// A redis-server on a free port and a connection to it; `None` (saying so) where it cannot start.
    async fn redis(dir: &std::path::Path) -> Option<(std::process::Child, Connection)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("skipped: redis-server cannot be started here; .ci/run installs it");
            return None;
        };
        let target = Target::parse(&format!("redis://127.0.0.1:{port}")).unwrap();
        for _ in 0..250 {
            if let Ok(c) = Connection::open(&target, Duration::from_secs(1)).await {
                return Some((child, c));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server does not listen");
    }

    async fn read_blocks(conn: &mut Connection, known: i64) -> (i64, Option<String>) {
        let known = known.to_string();
        let reply = conn
            .command(&[
                b"EVAL",
                READ_BLOCKS_SCRIPT.as_bytes(),
                b"2",
                b"rampart:blocks",
                b"rampart:blocks:version",
                known.as_bytes(),
            ])
            .await
            .unwrap();
        match reply {
            Reply::Array(items) => match items.as_slice() {
                [Reply::Int(v)] => (*v, None),
                [Reply::Int(v), Reply::Bulk(p)] => (
                    *v,
                    Some(String::from_utf8(p.clone().unwrap_or_default()).unwrap()),
                ),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    /// The shared blocks behave as the local blocklist: a block never shortens one in force, a responder's
    /// lift removes only its own block, an operator's unblock removes any, the version moves only on a
    /// change, and expired blocks are dropped by the reader.
    #[tokio::test]
    async fn the_block_scripts_keep_the_blocklist_rules() {
        let dir = tempfile::tempdir().unwrap();
        let Some((mut child, mut conn)) = redis(dir.path()).await else {
            return;
        };
        let block = |key: &str, until_ms: i64| BlockOp::Block {
            key: key.into(),
            until_ms,
        };
        let unblock = |key: &str, only_until: Option<i64>| BlockOp::Unblock {
            key: key.into(),
            only_until,
        };
        assert_eq!(read_blocks(&mut conn, -2).await, (-1, Some(String::new())));
        let far = crate::access::now_unix_ms() + 3_600_000;
        run_block_op(&mut conn, &block("a", far)).await.unwrap();
        run_block_op(&mut conn, &block("a", far - 1000))
            .await
            .unwrap();
        let (v, blocks) = read_blocks(&mut conn, -1).await;
        assert_eq!(blocks.as_deref(), Some(format!("a {far}").as_str()));
        // Unchanged: only the version comes back.
        assert_eq!(read_blocks(&mut conn, v).await, (v, None));
        // A lift of another end leaves it; the right end lifts it.
        run_block_op(&mut conn, &unblock("a", Some(far - 1000)))
            .await
            .unwrap();
        assert_eq!(read_blocks(&mut conn, v).await, (v, None));
        run_block_op(&mut conn, &unblock("a", Some(far)))
            .await
            .unwrap();
        let (v, blocks) = read_blocks(&mut conn, v).await;
        assert_eq!(blocks.as_deref(), Some(""));
        // For good beats any end, and only an operator's unblock lifts it.
        run_block_op(&mut conn, &block("b", 0)).await.unwrap();
        run_block_op(&mut conn, &block("b", far)).await.unwrap();
        run_block_op(&mut conn, &unblock("b", Some(far)))
            .await
            .unwrap();
        let (v, blocks) = read_blocks(&mut conn, v).await;
        assert_eq!(blocks.as_deref(), Some("b 0"));
        run_block_op(&mut conn, &unblock("b", None)).await.unwrap();
        // An expired block is not returned and is removed.
        run_block_op(&mut conn, &block("c", 1)).await.unwrap();
        let (v, blocks) = read_blocks(&mut conn, v).await;
        assert_eq!(blocks.as_deref(), Some(""));
        assert_eq!(read_blocks(&mut conn, v).await, (v, None));
        let _ = child.kill();
        let _ = child.wait();
    }

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
