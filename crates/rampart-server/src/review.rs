//! The human review queue: predictions the confidence gate withheld, persisted under
//! `<data-dir>/review/queue.jsonl` (mode 0600: the items hold raw inputs) before the client is told its
//! answer awaits review. A later issue adds the admin API to list and resolve them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use time::OffsetDateTime;

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
