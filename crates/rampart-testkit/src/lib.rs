//! # rampart-testkit
//!
//! Test support, not shipped: a [`TestGateway`] that starts the real gateway on loopback ports (port 0, so
//! tests run in parallel) over a temporary directory holding the demo model, its baseline and a keys file
//! with one key per test identity, plus an HTTP client and the paths of the fixture models.
//!
//! It never fakes the server: requests go over TCP through hyper to the same `Gateway` `rampart serve`
//! runs.
#![forbid(unsafe_code)]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rampart_server::auth::KeysFile;
use rampart_server::config::RawConfig;
use rampart_server::{AuthOverride, Gateway, Running};

/// The demo model and baseline, as the binary embeds them.
pub const DEMO_MODEL: &[u8] = include_bytes!("../../../examples/demo/demo.onnx");
pub const DEMO_BASELINE: &[u8] = include_bytes!("../../../examples/demo/demo.baseline.json");
pub const DEMO_CONFIG: &str = include_str!("../../../examples/demo/rampart.toml");

/// The demo model's `[[models]]` entry, with the demo's settings.
pub const DEMO_MODEL_ENTRY: &str = r#"
[[models]]
name = "demo"
path = "demo.onnx"
baseline = "demo.baseline.json"
labels = ["setosa", "versicolor", "virginica"]
anomaly = { mode = "enforce", zscore = 3.0, mahalanobis = "baseline:max" }
confidence = { min = 0.7 }
"#;

/// A confident setosa row.
pub const CONFIDENT: [f32; 4] = [5.1, 3.5, 1.4, 0.2];
/// A row between versicolor and virginica (≈0.52 / 0.47).
pub const UNCERTAIN: [f32; 4] = [6.0, 2.7, 5.0, 1.6];

/// Where the repository's fixture models are.
pub fn fixture_models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rampart-model/tests/models")
}

/// A running gateway over a temporary directory.
pub struct TestGateway {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin: String,
    /// The key of identity `tester`.
    pub key: String,
    /// The key of identity `other`.
    pub other_key: String,
    /// Keys of the identities [`Setup::keys`] asked for, by id.
    pub keys: std::collections::HashMap<String, String>,
    /// The temporary directory (config, models, keys, `data/`).
    pub dir: tempfile::TempDir,
    /// HTTP client.
    pub http: reqwest::Client,
    running: Option<Running>,
}

impl TestGateway {
    /// Starts a gateway whose config is `body` (the `[[models]]` entries and any other section but
    /// `[server]` and `[auth]`, which the kit writes: loopback port 0, data under `data/`, a keys file).
    pub async fn start(body: &str) -> Self {
        Self::try_start(body).await.expect("gateway starts")
    }

    /// As [`TestGateway::start`], returning the start-up error.
    pub async fn try_start(body: &str) -> Result<Self, String> {
        Self::start_with(Setup {
            body,
            ..Setup::default()
        })
        .await
    }

    /// Starts a gateway from a [`Setup`]: extra files (written mode 0600), extra keys, and the `[server]`
    /// and `[auth]` additions. Without `tls` in `setup.server` the kit serves plain HTTP
    /// (`insecure_plaintext = true`).
    pub async fn start_with(setup: Setup<'_>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        for (name, bytes) in setup.files {
            write_private(&dir.path().join(name), bytes)?;
        }
        std::fs::write(dir.path().join("demo.onnx"), DEMO_MODEL).map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("demo.baseline.json"), DEMO_BASELINE)
            .map_err(|e| e.to_string())?;
        let mut keys = KeysFile::default();
        let key = keys
            .add("tester", vec!["predictor".into()], None)
            .map_err(|e| e.to_string())?;
        let other_key = keys
            .add("other", vec!["predictor".into()], None)
            .map_err(|e| e.to_string())?;
        let mut extra_keys = std::collections::HashMap::new();
        for (id, roles) in setup.keys {
            let k = keys
                .add(id, roles.iter().map(|r| (*r).to_owned()).collect(), None)
                .map_err(|e| e.to_string())?;
            extra_keys.insert((*id).to_owned(), k);
        }
        keys.save(&dir.path().join("keys.toml"))
            .map_err(|e| e.to_string())?;
        let mut transport = if setup.server.contains("tls") {
            setup.server.to_owned()
        } else {
            format!("insecure_plaintext = true\n{}", setup.server)
        };
        // The kit serves the plain demo file unless a test asks for signatures (registry tests do).
        if !setup.server.contains("require_signatures") {
            transport.push_str("\nrequire_signatures = false\n");
        }
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             header_read_timeout_ms = 2000\nbody_read_timeout_ms = 2000\n{transport}\n\n\
             [auth]\napi_keys_file = \"keys.toml\"\nkeys_reload_ms = 100\n{}\n\n{}",
            setup.auth, setup.body
        );
        let path = dir.path().join("rampart.toml");
        std::fs::write(&path, &text).map_err(|e| e.to_string())?;
        let cfg = RawConfig::load(&path).map_err(|e| e.to_string())?;
        let gw = Gateway::build(&cfg, AuthOverride::FromConfig)
            .await
            .map_err(|e| e.to_string())?;
        let running = Running::start(gw, &cfg.server)
            .await
            .map_err(|e| e.to_string())?;
        let scheme = if running.tls { "https" } else { "http" };
        Ok(Self {
            base: format!("{scheme}://{}", running.addr),
            admin: format!("{scheme}://{}", running.admin_addr),
            key,
            other_key,
            keys: extra_keys,
            dir,
            http: reqwest::Client::new(),
            running: Some(running),
        })
    }

    /// The demo model with the demo's settings.
    pub async fn demo() -> Self {
        Self::start(DEMO_MODEL_ENTRY).await
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The audit directory.
    pub fn audit_dir(&self) -> PathBuf {
        self.data_dir().join("audit")
    }

    /// Every decision record so far, parsed (segment headers, checkpoints and events left out).
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        self.audit_lines()
            .into_iter()
            .filter(|r| r["kind"] == "decision")
            .collect()
    }

    /// Every line of the audit log so far, of every kind, parsed.
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        read_jsonl_dir(&self.audit_dir())
    }

    /// Every alert so far.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        read_jsonl(&self.data_dir().join("alerts/alerts.jsonl"))
    }

    /// Every review item so far.
    pub fn review_items(&self) -> Vec<serde_json::Value> {
        read_jsonl(&self.data_dir().join("review/queue.jsonl"))
    }

    /// POST JSON with the `tester` key.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.post_raw(path, serde_json::to_vec(body).unwrap(), Some(&self.key))
            .await
    }

    /// POST bytes, with an optional key.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send().await.expect("request sent")
    }

    /// GET with the `tester` key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request sent")
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Stops serving and flushes the audit log.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.dir
    }
}

/// What [`TestGateway::start_with`] builds.
#[derive(Default, Clone, Copy)]
pub struct Setup<'a> {
    /// Lines added to `[server]` (e.g. `tls = { ... }`).
    pub server: &'a str,
    /// Lines added to `[auth]` (after `api_keys_file = "keys.toml"`).
    pub auth: &'a str,
    /// The rest of the config: `[[models]]`, `[roles]`, …
    pub body: &'a str,
    /// Files written into the directory first (mode 0600): certificates, keys, a JWKS.
    pub files: &'a [(&'a str, &'a [u8])],
    /// Extra identities, with their roles, added to the keys file.
    pub keys: &'a [(&'a str, &'a [&'a str])],
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| e.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Lines of a JSON-lines file (empty when absent).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Lines of every `.jsonl` file in a directory, in file-name order.
pub fn read_jsonl_dir(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files.iter().flat_map(|f| read_jsonl(f)).collect()
}
