//! Run-time access state: the blocked identities (set by operators through the admin API, persisted under the
//! data directory so a restart does not unblock anyone) and the keys-file reloader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::auth::{KeyStore, KeysFile};
use crate::shared_state::{BlockOp, SharedBlocks};

/// Identities refused with 403 `blocked`, each until a time or for good. Read once per request from an
/// [`ArcSwap`] snapshot (no lock on the request path); changes are rare, serialized, and written to disk
/// before they take effect. An expired block stops applying at once (the check compares times); the
/// incident sweeper later removes it from the file.
///
/// The file is a JSON object, identity → `null` (until unblocked) or the Unix time in milliseconds the block
/// ends; the list of identities written before blocks could expire is still read.
///
/// With `[state] backend = "redis"` the list also has a shared half ([`SharedBlocks`]): each change is queued
/// for Redis, and an identity blocked through Redis by any replica is refused here too.
pub(crate) struct Blocklist {
    set: ArcSwap<BTreeMap<String, Option<i64>>>,
    path: PathBuf,
    write: Mutex<()>,
    shared: Option<Arc<SharedBlocks>>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum BlockFile {
    Until(BTreeMap<String, Option<i64>>),
    Forever(BTreeSet<String>),
}

/// Now, in Unix milliseconds: a block of one second must not last two.
pub(crate) fn now_unix_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

impl Blocklist {
    /// Opens `<dir>/blocked.json` (absent: nobody is blocked).
    pub(crate) fn open(path: PathBuf) -> std::io::Result<Self> {
        let set = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes).map_err(std::io::Error::other)? {
                BlockFile::Until(m) => m,
                BlockFile::Forever(s) => s.into_iter().map(|id| (id, None)).collect(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            set: ArcSwap::from_pointee(set),
            path,
            write: Mutex::new(()),
            shared: None,
        })
    }

    /// Shares this list's changes through Redis, and refuses what other replicas blocked there.
    pub(crate) fn with_shared(mut self, shared: Arc<SharedBlocks>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Blocked here, or by any replica through Redis.
    pub(crate) fn is_blocked(&self, id: &str) -> bool {
        let local = match self.set.load().get(id) {
            None => false,
            Some(None) => true,
            Some(Some(until)) => now_unix_ms() < *until,
        };
        local || self.shared.as_ref().is_some_and(|s| s.blocks(id))
    }

    /// `[state] on_unavailable = "fail_closed"` while the shared blocks cannot be read.
    pub(crate) fn refuses_all(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.refuses_all())
    }

    fn share(&self, op: impl FnOnce(&SharedBlocks) -> BlockOp) {
        if let Some(s) = &self.shared {
            s.push(op(s));
        }
    }

    /// This file's blocks in force, as the shared blocks hold them: (key, end in Unix ms or 0 for good).
    pub(crate) fn shared_entries(&self) -> Vec<(String, i64)> {
        let Some(shared) = &self.shared else {
            return Vec::new();
        };
        let now = now_unix_ms();
        self.set
            .load()
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .map(|(id, until)| (shared.key(id), until.unwrap_or(0)))
            .collect()
    }

    /// Removes the blocks whose identity key is in `keys` (they were lifted on another replica), without
    /// queuing anything for Redis.
    pub(crate) fn forget_keys(
        &self,
        keys: &std::collections::HashSet<String>,
    ) -> std::io::Result<bool> {
        let Some(shared) = self.shared.clone() else {
            return Ok(false);
        };
        if !self
            .set
            .load()
            .keys()
            .any(|id| keys.contains(&shared.key(id)))
        {
            return Ok(false);
        }
        self.update(|next| {
            let before = next.len();
            next.retain(|id, _| !keys.contains(&shared.key(id)));
            next.len() != before
        })
    }

    /// The identities blocked now.
    pub(crate) fn list(&self) -> Vec<String> {
        let now = now_unix_ms();
        self.set
            .load()
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Blocks (`true`, for good) or unblocks an identity; returns whether anything changed.
    /// Shared or not, the change is sent to Redis: an unblock there must lift another replica's block even
    /// when this file did not hold it.
    pub(crate) fn set_blocked(&self, id: &str, blocked: bool) -> std::io::Result<bool> {
        let changed = self.update(|next| {
            if blocked {
                next.insert(id.to_owned(), None) != Some(None)
            } else {
                next.remove(id).is_some()
            }
        })?;
        let remote = self.shared.as_ref().is_some_and(|s| s.blocks(id));
        self.share(|s| {
            let key = s.key(id);
            if blocked {
                BlockOp::Block { key, until_ms: 0 }
            } else {
                BlockOp::Unblock {
                    key,
                    only_until: None,
                }
            }
        });
        Ok(changed || (!blocked && remote))
    }

    /// Blocks an identity until `until` (Unix milliseconds). A block for good is left as it is.
    pub(crate) fn block_until(&self, id: &str, until: i64) -> std::io::Result<bool> {
        let changed = self.update(|next| match next.get(id) {
            Some(None) => false,
            Some(Some(u)) if *u >= until => false,
            _ => {
                next.insert(id.to_owned(), Some(until));
                true
            }
        })?;
        if changed {
            self.share(|s| BlockOp::Block {
                key: s.key(id),
                until_ms: until,
            });
        }
        Ok(changed)
    }

    /// Lifts a block that ends at `until` (one a responder set); a block set since by someone else stays.
    pub(crate) fn lift_until(&self, id: &str, until: i64) -> std::io::Result<bool> {
        let changed = self.update(|next| {
            if next.get(id) == Some(&Some(until)) {
                next.remove(id);
                true
            } else {
                false
            }
        })?;
        // Redis lifts it only where it still ends then: a longer block set meanwhile stays.
        self.share(|s| BlockOp::Unblock {
            key: s.key(id),
            only_until: Some(until),
        });
        Ok(changed)
    }

    /// Forgets expired blocks (they already do not apply).
    pub(crate) fn purge_expired(&self) -> std::io::Result<bool> {
        let now = now_unix_ms();
        if !self
            .set
            .load()
            .values()
            .any(|u| u.is_some_and(|u| u <= now))
        {
            return Ok(false);
        }
        self.update(|next| {
            let before = next.len();
            next.retain(|_, u| u.is_none_or(|u| now < u));
            next.len() != before
        })
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Option<i64>>) -> bool,
    ) -> std::io::Result<bool> {
        let _guard = self.write.lock();
        let mut next = BTreeMap::clone(&self.set.load());
        let changed = change(&mut next);
        if changed {
            let bytes = serde_json::to_vec_pretty(&next).map_err(std::io::Error::other)?;
            write_atomic(&self.path, &bytes)?;
            self.set.store(Arc::new(next));
        }
        Ok(changed)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Re-reads the keys file when its content changes (checked every `every`) or on SIGHUP, and swaps the new
/// set in. A file that fails to load keeps the old set: a half-written edit must not lock everyone out. The
/// task ends when the gateway holding `store` is dropped.
pub(crate) fn spawn_keys_reloader(path: PathBuf, store: Weak<ArcSwap<KeyStore>>, every: Duration) {
    let mut last = digest_of(&path);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let forced = match hup.as_mut() {
                Some(h) => tokio::select! {
                    _ = tick.tick() => false,
                    _ = h.recv() => true,
                },
                None => {
                    tick.tick().await;
                    false
                }
            };
            #[cfg(not(unix))]
            let forced = {
                tick.tick().await;
                false
            };
            let Some(store) = store.upgrade() else { return };
            let now = digest_of(&path);
            if !forced && now == last {
                continue;
            }
            last = now;
            match KeysFile::load(&path, false) {
                Ok(file) => {
                    store.store(Arc::new(KeyStore::from_file(&file)));
                    tracing::info!(
                        file = %path.display(),
                        keys = file.keys.len(),
                        "keys file reloaded"
                    );
                }
                // The error names the file and the field, never a digest or a key.
                Err(e) => tracing::error!("keys file not reloaded, keeping the previous keys: {e}"),
            }
        }
    });
}

fn digest_of(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(b).into())
}

#[cfg(test)]
mod tests;
