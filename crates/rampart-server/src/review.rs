//! The human review queue: predictions the confidence gate withheld, persisted under
//! `<data-dir>/review/queue.jsonl` (mode 0600: the items hold raw inputs) before the client is told its
//! answer awaits review. The admin API lists them and resolves them; a resolution is appended to
//! `resolved.jsonl` beside the queue (the queue itself is append-only, like the audit log), and a listing
//! joins the two. With `[review] max_age_secs`, pending items older than that expire (checked every minute,
//! or on `POST /admin/review/expire`): they get a resolution with no label, marked `expired`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `[review]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pending items older than this many seconds expire: they are marked `expired` (a resolution with no
    /// label, by `expiry`) and leave the pending list. Default: absent, items wait until resolved.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
}

/// One item waiting for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    /// The id the client was given.
    pub review_id: String,
    /// The request it came from.
    pub request_id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Model and version.
    pub model: String,
    /// Version.
    pub model_version: String,
    /// Who asked.
    pub identity: String,
    /// The row's input.
    pub features: Vec<f32>,
    /// The model's class probabilities for it.
    pub probabilities: Vec<f32>,
    /// Always `pending` when written.
    pub status: &'static str,
}

/// The queue file.
#[derive(Clone)]
pub struct ReviewQueue {
    file: Arc<Mutex<File>>,
    dir: PathBuf,
}

/// Largest queue or resolutions file the admin API reads (it is listed whole).
const MAX_LIST_BYTES: u64 = 64 << 20;

/// A person's verdict on one item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolution {
    /// The item.
    pub review_id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who resolved it (the admin identity).
    pub by: String,
    /// The label the reviewer decided on, if any.
    #[serde(default)]
    pub label: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
    /// Expired unresolved (`[review] max_age_secs`) rather than decided by a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

/// What resolving did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Recorded now; the item as it was queued (model, version, probabilities: what the label is feedback on).
    Now(Box<serde_json::Value>),
    /// It had been resolved before; nothing written.
    Already,
    /// No such item.
    Unknown,
}

impl ReviewQueue {
    /// Opens (creates) the queue under `dir`.
    ///
    /// # Errors
    /// When the directory or file cannot be created.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(dir.join("queue.jsonl"))?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            dir: dir.to_path_buf(),
        })
    }

    /// Appends items durably (one write, one fsync) on a blocking thread.
    ///
    /// # Errors
    /// When the write or the sync fails.
    pub async fn persist(&self, items: Vec<ReviewItem>) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for item in &items {
            serde_json::to_writer(&mut buf, item).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock();
            f.write_all(&buf)?;
            f.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl ReviewQueue {
    /// Every item with its resolution (`status` becomes `resolved`), oldest first; `pending_only` drops the
    /// resolved ones.
    ///
    /// # Errors
    /// When a file cannot be read or holds a line that is not JSON.
    pub fn list(&self, pending_only: bool) -> std::io::Result<Vec<serde_json::Value>> {
        let resolutions = self.resolutions()?;
        let mut out = Vec::new();
        for mut item in read_lines(&self.dir.join("queue.jsonl"))? {
            let id = item["review_id"].as_str().unwrap_or_default().to_owned();
            match resolutions.get(&id) {
                Some(_) if pending_only => continue,
                Some(r) => {
                    item["status"] = if r.expired { "expired" } else { "resolved" }.into();
                    item["resolution"] = serde_json::to_value(r).map_err(std::io::Error::other)?;
                }
                None => {}
            }
            out.push(item);
        }
        Ok(out)
    }

    /// Records a resolution, once per item.
    ///
    /// # Errors
    /// When the files cannot be read or written.
    pub fn resolve(&self, resolution: Resolution) -> std::io::Result<Resolved> {
        // One writer at a time, under the queue's lock, so two admins cannot both resolve an item.
        let _queue = self.file.lock();
        let Some(item) = read_lines(&self.dir.join("queue.jsonl"))?
            .into_iter()
            .find(|i| i["review_id"] == resolution.review_id.as_str())
        else {
            return Ok(Resolved::Unknown);
        };
        if self.resolutions()?.contains_key(&resolution.review_id) {
            return Ok(Resolved::Already);
        }
        let mut line = serde_json::to_vec(&resolution).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.append_resolutions(&line)?;
        Ok(Resolved::Now(Box::new(item)))
    }

    /// Expires every pending item queued before `cutoff`: each gets a resolution with no label, marked
    /// `expired`. Returns the ids expired.
    ///
    /// # Errors
    /// When the files cannot be read or written.
    pub fn expire(&self, cutoff: OffsetDateTime) -> std::io::Result<Vec<String>> {
        let _queue = self.file.lock();
        let resolutions = self.resolutions()?;
        let now = OffsetDateTime::now_utc();
        let mut ids = Vec::new();
        let mut lines = Vec::new();
        for item in read_lines(&self.dir.join("queue.jsonl"))? {
            let Some(id) = item["review_id"].as_str() else {
                continue;
            };
            let queued = item["time"].as_str().and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
            if resolutions.contains_key(id) || queued.is_none_or(|t| t >= cutoff) {
                continue;
            }
            let r = Resolution {
                review_id: id.to_owned(),
                time: now,
                by: "expiry".to_owned(),
                label: None,
                note: Some("expired unresolved ([review] max_age_secs)".to_owned()),
                expired: true,
            };
            serde_json::to_writer(&mut lines, &r).map_err(std::io::Error::other)?;
            lines.push(b'\n');
            ids.push(id.to_owned());
        }
        if !lines.is_empty() {
            self.append_resolutions(&lines)?;
        }
        Ok(ids)
    }

    /// Appends lines to `resolved.jsonl`, durably. Called under the queue's lock.
    fn append_resolutions(&self, line: &[u8]) -> std::io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(self.dir.join("resolved.jsonl"))?;
        f.write_all(line)?;
        f.sync_data()
    }

    fn resolutions(&self) -> std::io::Result<HashMap<String, Resolution>> {
        read_lines(&self.dir.join("resolved.jsonl"))?
            .into_iter()
            .map(|v| {
                let r: Resolution = serde_json::from_value(v).map_err(std::io::Error::other)?;
                Ok((r.review_id.clone(), r))
            })
            .collect()
    }
}

fn read_lines(path: &Path) -> std::io::Result<Vec<serde_json::Value>> {
    use std::io::{BufRead, BufReader, Read};
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    BufReader::new(file.take(MAX_LIST_BYTES))
        .lines()
        .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|l| serde_json::from_str(&l?).map_err(std::io::Error::other))
        .collect()
}
