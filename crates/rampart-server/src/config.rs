//! `GatewayConfig`: the one TOML file, parsed in three stages. [`RawConfig`] is what serde reads (unknown
//! fields refused everywhere: a typo must never switch a defense off); [`RawConfig::validate`] returns *every*
//! problem at once, each with its path; [`crate::Gateway::build`] then loads files, keys and models.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use rampart_pipeline::{anomaly, confidence, rate_limit, sanitize, validate, PipelineConfig};

/// A problem in the config, with the path of the field (`models[1].anomaly.zscore`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub path: String,
    /// What.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type or name.
    #[error("{path}: {message}")]
    Parse {
        /// The field.
        path: String,
        /// What serde said.
        message: String,
    },
    /// Semantic problems, all of them.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigError>),
}

/// The whole file as read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[audit]`.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[alerts]`.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `[roles]`: role name → permissions (`predict:<model>`, `predict:*`, `output:full`,
    /// `output:certificate`, `admin:models`,
    /// `admin:deploy`, `admin:review`, `admin:identities`, `admin:incidents`, `admin:audit`, `admin:metrics`,
    /// `admin:*`). When the section is
    /// absent the built-in roles apply (see [`crate::rbac::Roles::builtin`]): `predictor = ["predict:*"]`,
    /// `anonymous = ["predict:*"]`, `admin = ["admin:*"]`, so keys made with `--role predictor` keep working.
    /// When it is present it replaces them whole: a role not listed grants nothing.
    #[serde(default)]
    pub roles: Option<BTreeMap<String, Vec<String>>>,
    /// `[monitoring]`: the observation channel and what every model's monitors share.
    #[serde(default)]
    pub monitoring: crate::monitor::config::MonitoringConfig,
    /// `[[models]]`.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// `[incidents]`: `[[incidents.rules]]` from alert kinds to actions (see [`crate::incidents`]).
    #[serde(default)]
    pub incidents: crate::incidents::Config,
    /// `[review]`: the human review queue (see [`crate::review::Config`]).
    #[serde(default)]
    pub review: crate::review::Config,
    /// `[state]`: where rate limits, blocks and extraction statistics are shared (see [`crate::shared_state`]).
    #[serde(default)]
    pub state: crate::shared_state::StateConfig,
    /// Directory that relative paths are resolved against (the config file's); not read from the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Inference listener. Default `127.0.0.1:8080` (loopback: exposing the gateway is a decision).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Admin listener (`/metrics`); never the same as `listen`. Default `127.0.0.1:9090`.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// Where audit, alerts and the review queue live. Default `./rampart-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Largest request body; bigger ones get 413 before they are read. Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Time a client has to send its request headers (slowloris). Default 10 000 ms.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send its whole body. Default 30 000 ms.
    #[serde(default = "default_body_timeout")]
    pub body_read_timeout_ms: u64,
    /// `tls = { cert_file, key_file, client_ca_file }`: TLS 1.3 only, on both listeners. Required unless
    /// `insecure_plaintext = true`: serving without TLS must be a visible decision.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Serve plain HTTP (a warning is logged). Default false. For loopback demos and for a TLS-terminating
    /// sidecar on the same host; never for a listener other hosts can reach.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// Open connections allowed per listener; further clients wait in the kernel's accept backlog.
    /// Default 1024: bounded memory and file descriptors whatever the clients do.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Serve only signed model versions. Default true: every `[[models]]` entry must then be registry-backed
    /// (`registry = "models"`), and `serve` refuses to start when the active version is unsigned, signed by
    /// another key, or has a file that differs from its signed manifest (the error names the file). Only the
    /// embedded demo sets it to false, to serve its plain `path` model; a plain `path` entry with this on is a
    /// config error that names the fix.
    #[serde(default = "default_true")]
    pub require_signatures: bool,
    /// The ed25519 public key (`rampart keygen --kind ed25519` writes `FILE.pub`) that registry versions must
    /// be signed with (`rampart model sign`). Required when any model is registry-backed: a registry version is
    /// always verified, whatever `require_signatures` says.
    #[serde(default)]
    pub model_public_key_file: Option<PathBuf>,
    /// Hardened model calls (smoothing, ensembles, feature squeezing) running at once, each on a blocking
    /// thread. Default: the number of CPUs — they are CPU-bound, more would only share the cores.
    #[serde(default)]
    pub hardening_workers: Option<usize>,
    /// Hardened model calls waiting for a worker; beyond it a request gets 503 `overloaded` at once, so a
    /// flood of smoothed requests cannot pile up. Default 64.
    #[serde(default = "default_hardening_queue")]
    pub hardening_queue: usize,
}

fn default_hardening_queue() -> usize {
    64
}

/// `[server] tls`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1): a path to a file readable only by its owner, or `env:NAME`
    /// for a variable holding the PEM text. Never the key itself: an inline key is a config error.
    pub key_file: String,
    /// PEM CA certificates. When set, every client must present a certificate chaining to one of them (the
    /// handshake fails otherwise) and its subject — the first SAN URI, else the CN — is its identity.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

fn default_max_connections() -> usize {
    1024
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("rampart-data")
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_header_timeout() -> u64 {
    10_000
}
fn default_body_timeout() -> u64 {
    30_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            data_dir: default_data_dir(),
            max_body_bytes: default_max_body(),
            header_read_timeout_ms: default_header_timeout(),
            body_read_timeout_ms: default_body_timeout(),
            tls: None,
            insecure_plaintext: false,
            max_connections: default_max_connections(),
            require_signatures: true,
            model_public_key_file: None,
            hardening_workers: None,
            hardening_queue: default_hardening_queue(),
        }
    }
}

/// `[auth]`. At least one credential source (`api_keys_file`, `jwt`, or client certificates via
/// `[server] tls.client_ca_file`), or `anonymous = true` alone: a gateway without authentication must say so,
/// never get there by omission. A request carrying `Authorization: Bearer` is judged by that credential (an API
/// key when it starts with `rk_`, else a JWT); one without it by its client certificate, if any.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Hashed API keys, written by `rampart key new`.
    #[serde(default)]
    pub api_keys_file: Option<PathBuf>,
    /// Serve without authentication (every caller is `anonymous`, with role `anonymous`). Default false.
    #[serde(default)]
    pub anonymous: bool,
    /// `jwt = { jwks_file, issuer, audience, algorithms, leeway_s, roles_claim }`: bearer JWTs.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// Roles of an identity authenticated by its client certificate alone. Default `["predictor"]`.
    #[serde(default = "default_client_cert_roles")]
    pub client_cert_roles: Vec<String>,
    /// How often the keys file is checked for changes (it is also re-read on SIGHUP). Default 1000 ms.
    #[serde(default = "default_keys_reload")]
    pub keys_reload_ms: u64,
}

fn default_client_cert_roles() -> Vec<String> {
    vec!["predictor".to_owned()]
}
fn default_keys_reload() -> u64 {
    1000
}

/// `[auth] jwt`: tokens signed by an identity provider whose public keys are in a JWKS file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// JWKS (JSON Web Key Set) file with the provider's public keys; every key needs a `kid`.
    pub jwks_file: PathBuf,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (one of the token's audiences).
    pub audience: String,
    /// Accepted algorithms, of `RS256`, `ES256`, `EdDSA`. Default all three. HMAC (`HS*`) is refused: with a
    /// public JWKS it is the classic key-confusion attack, and `none` is never accepted.
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds. Default 30; at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// The claim holding the roles: an array of strings, or one space-separated string. Default `roles`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
}

fn default_jwt_algorithms() -> Vec<String> {
    ["RS256", "ES256", "EdDSA"].map(str::to_owned).to_vec()
}
fn default_leeway() -> u64 {
    30
}
fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Write the audit log. Default true; turning it off is for benchmarks that measure its cost.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Directory; default `<data_dir>/audit`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `fsync` (default: a response is sent only once its record is on disk, one fsync per group of records)
    /// or `buffered` (written, not synced: a crash can lose the last records).
    #[serde(default)]
    pub durability: Durability,
    /// `reject` (default: 503 `audit_unavailable` when a record cannot be written) or `continue` (answer
    /// anyway, alert): failing closed is the safe default for a security log.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// ed25519 private key (`rampart keygen --kind ed25519`) that signs checkpoints. Without it the log is
    /// chained but unsigned (a warning is logged).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// A signed checkpoint after this many lines. Default 1000.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// A signed checkpoint when lines have waited this long for one, in seconds. Default 10.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: u64,
    /// A new segment file once the current one holds this many bytes. Default 64 MiB.
    #[serde(default = "default_segment_bytes")]
    pub segment_max_bytes: u64,
    /// A new segment file once the current one is this old, in seconds. Default 86400 (a day).
    #[serde(default = "default_segment_age")]
    pub segment_max_age_secs: u64,
    /// Write keyed pseudonyms (HMAC-SHA-256) instead of identities, in the audit log and in alerts.
    #[serde(default)]
    pub pseudonymize: bool,
    /// The HMAC key for pseudonyms (`rampart keygen --kind hmac`); required with `pseudonymize`.
    #[serde(default)]
    pub pseudonym_key_file: Option<PathBuf>,
    /// AES-256 key (`rampart keygen --kind aes256`): seal each record's output (and stored input).
    #[serde(default)]
    pub encryption_key_file: Option<PathBuf>,
    /// Keep each request's decoded input, sealed, so `rampart audit replay` can re-run it. Requires
    /// `encryption_key_file`: inputs are never stored in clear.
    #[serde(default)]
    pub store_input: bool,
}

fn default_checkpoint_every() -> u64 {
    1000
}
fn default_checkpoint_interval() -> u64 {
    10
}
fn default_segment_bytes() -> u64 {
    64 << 20
}
fn default_segment_age() -> u64 {
    86_400
}

fn default_true() -> bool {
    true
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            durability: Durability::Fsync,
            on_failure: OnFailure::Reject,
            signing_key_file: None,
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval_secs: default_checkpoint_interval(),
            segment_max_bytes: default_segment_bytes(),
            segment_max_age_secs: default_segment_age(),
            pseudonymize: false,
            pseudonym_key_file: None,
            encryption_key_file: None,
            store_input: false,
        }
    }
}

/// Audit durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Group commit with fsync.
    #[default]
    Fsync,
    /// Written to the OS, not synced.
    Buffered,
}

/// What to do when the audit cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// 503 `audit_unavailable`.
    #[default]
    Reject,
    /// Answer, log and alert.
    Continue,
}

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// JSON-lines file; default `<data_dir>/alerts/alerts.jsonl`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Rate-limit refusals of one identity within a minute that make a `rate_limit_storm` alert. Default 20.
    #[serde(default = "default_storm")]
    pub rate_limit_storm: u32,
    /// Seconds during which a repeat of an alert (same kind, identity and model) is suppressed and counted
    /// instead of raised again. Default 60; 0 raises every repeat.
    #[serde(default = "default_dedupe")]
    pub dedupe_secs: u64,
    /// `[alerts.webhook]`: POST each alert as JSON to a URL read from a secret file.
    #[serde(default)]
    pub webhook: Option<crate::webhook::WebhookSettings>,
}

fn default_dedupe() -> u64 {
    60
}

fn default_storm() -> u32 {
    20
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            file: None,
            rate_limit_storm: default_storm(),
            dedupe_secs: default_dedupe(),
            webhook: None,
        }
    }
}

/// One `[[models]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name in URLs: 1–64 of `a-z 0-9 _ -`.
    pub name: String,
    /// Version reported by `/v2/models/{name}` and written to the audit, for a `path` entry. Default "1". A
    /// registry entry takes its version from the registry's `active.json`, so setting it there is an error.
    #[serde(default)]
    pub version: Option<String>,
    /// The ONNX file (an unsigned model: allowed only with `[server] require_signatures = false`). Give
    /// either `path` or `registry`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A model registry root (`rampart model sign|activate` write it): the model is served from
    /// `<registry>/<name>/<active version>/`, its ONNX file and baseline verified against
    /// `[server] model_public_key_file` before loading. Hot swap and rollback (admin API, or `rampart model
    /// activate|rollback` while serving) change the served version without a restart.
    #[serde(default)]
    pub registry: Option<PathBuf>,
    /// Proxy mode: the model is served by an Open Inference Protocol v2 server and every layer runs here, in
    /// front of it (see [`crate::upstream::UpstreamConfig`]). Give exactly one of `path`, `registry` or
    /// `upstream`.
    #[serde(default)]
    pub upstream: Option<crate::upstream::UpstreamConfig>,
    /// The `aes256` key file (`rampart keygen --kind aes256`) when `path` is encrypted with
    /// `rampart encrypt` (e.g. `m.onnx.enc`). Default: none, the file is plain ONNX. The model is
    /// decrypted in memory only, every chunk authenticated before it loads; the plaintext buffer is
    /// zeroized once the plan is built. Like every secret, the key is a file, never inline.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Baseline profile (`rampart profile`); needed by range validation and anomaly detection.
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    /// `training_data = { manifest = "train.manifest.json", dir = "train/", public_key_file = "k.pub" }`:
    /// refuse to serve the model unless its training data still matches its manifest (`rampart data
    /// manifest`) — and, with `public_key_file`, unless the manifest's signature verifies. `dir` defaults to
    /// the manifest's directory. Default: not checked.
    #[serde(default)]
    pub training_data: Option<TrainingData>,
    /// Class labels in model order (classifiers). Default: the class indices.
    #[serde(default)]
    pub labels: Vec<String>,
    /// `rate_limit = { per_minute = 60, burst = 60, mode = "enforce" }`.
    #[serde(default)]
    pub rate_limit: rate_limit::Config,
    /// `validate = { ranges = "baseline", margin = 0.1, max_rows = 64, mode = "enforce" }`.
    #[serde(default)]
    pub validate: validate::Config,
    /// `anomaly = { zscore = 3.0, mahalanobis = "baseline:p999", mode = "enforce" }`.
    #[serde(default)]
    pub anomaly: anomaly::Config,
    /// `confidence = { min = 0.5 }`.
    #[serde(default)]
    pub confidence: confidence::Config,
    /// `output = { decimals = 2, top_k = 1, label_only = false, reverse_sigmoid = { beta = 0.5, gamma = 1.0 } }`.
    #[serde(default)]
    pub output: sanitize::Config,
    /// `output_by_role = { analyst = { decimals = 4, top_k = 3 }, public = { label_only = true } }`: the output
    /// shaping of callers holding a role, in place of `output` (same keys). A caller with several roles gets
    /// the entry of the first of its roles that has one; `output:full` overrides both. Default: none.
    #[serde(default)]
    pub output_by_role: BTreeMap<String, sanitize::Config>,
    /// `smoothing = { sigma = 0.25, n0 = 100, n = 1000, alpha = 0.001, mode = "predict", seed = 7 }`:
    /// answer with randomized smoothing (see [`crate::harden::SmoothingConfig`]). Default: off.
    #[serde(default)]
    pub smoothing: Option<crate::harden::SmoothingConfig>,
    /// `ensemble = { members = ["a.onnx", "b.onnx"], aggregation = "mean", max_disagreement = 0.5,
    /// on_disagreement = "reject" }`: serve several classifiers as one, in place of `path` (see
    /// [`crate::harden::EnsembleConfig`]). Default: none.
    #[serde(default)]
    pub ensemble: Option<crate::harden::EnsembleConfig>,
    /// `adversarial = { mode = "enforce", method = "feature_squeezing", squeezers = ["bit_depth:4"],
    /// threshold = 0.3 }`: feature squeezing (see [`crate::harden::AdversarialConfig`]). Default: off.
    #[serde(default)]
    pub adversarial: Option<crate::harden::AdversarialConfig>,
    /// `monitor = { window = 500, alpha = 0.01, … }`: drift, PRADA, latency and accuracy monitors.
    #[serde(default)]
    pub monitor: crate::monitor::config::ModelMonitorConfig,
    /// Dynamic batching: `{ max_batch = 32, max_delay_us = 0, queue = 1024 }` (the default for an in-process
    /// model; `max_batch = 1` turns it off). See `crate::batch` for when it pays.
    #[serde(default)]
    pub batch: Option<crate::batch::BatchConfig>,
}

/// The training data a model must be served with (see `ModelConfig::training_data`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingData {
    /// The manifest written by `rampart data manifest`.
    pub manifest: PathBuf,
    /// The dataset directory; default: the manifest's directory.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The `ed25519` public key the manifest must be signed with.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

/// The version of a `path` entry when none is given.
const DEFAULT_VERSION: &str = "1";

impl ModelConfig {
    /// The configured version (`path` and `upstream` entries), else an upstream's `version`, else "1".
    pub fn version(&self) -> &str {
        self.version
            .as_deref()
            .or_else(|| self.upstream.as_ref().and_then(|u| u.version.as_deref()))
            .unwrap_or(DEFAULT_VERSION)
    }

    /// The pipeline sections.
    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            rate_limit: self.rate_limit.clone(),
            validate: self.validate.clone(),
            anomaly: self.anomaly.clone(),
            confidence: self.confidence.clone(),
            output: self.output.clone(),
            output_by_role: self.output_by_role.clone(),
        }
    }
}

impl RawConfig {
    /// Parses TOML text; `base_dir` is where relative paths point.
    ///
    /// # Errors
    /// [`LoadError::Parse`] naming the field.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, LoadError> {
        let de = toml::Deserializer::new(text);
        let mut cfg: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            LoadError::Parse {
                path: if path == "." {
                    "config".to_owned()
                } else {
                    path
                },
                message: inner.message().trim().to_owned(),
            }
        })?;
        cfg.base_dir = base_dir.to_path_buf();
        Ok(cfg)
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &base)
    }

    /// `[server] hardening_workers`, or the number of CPUs.
    pub fn hardening_workers(&self) -> usize {
        self.server.hardening_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Resolves a path from the file against the config's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Every semantic problem, with its path.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |path: String, message: &str| {
            errors.push(ConfigError {
                path,
                message: message.to_owned(),
            })
        };
        if self.server.listen == self.server.admin_listen && self.server.listen.port() != 0 {
            err(
                "server.admin_listen".into(),
                "must differ from server.listen",
            );
        }
        if self.server.max_body_bytes < 64 {
            err("server.max_body_bytes".into(), "must be at least 64");
        }
        if self.server.header_read_timeout_ms == 0 {
            err("server.header_read_timeout_ms".into(), "must be > 0");
        }
        if self.server.body_read_timeout_ms == 0 {
            err("server.body_read_timeout_ms".into(), "must be > 0");
        }
        if self.server.hardening_workers == Some(0) {
            err("server.hardening_workers".into(), "must be > 0");
        }
        self.validate_transport(&mut err);
        self.validate_auth(&mut err);
        self.validate_audit(&mut err);
        if self.alerts.rate_limit_storm == 0 {
            err("alerts.rate_limit_storm".into(), "must be > 0");
        }
        for (path, message) in self.incidents.validate() {
            err(path, &message);
        }
        if self.review.max_age_secs == Some(0) {
            err(
                "review.max_age_secs".into(),
                "must be > 0 (or absent: items never expire)",
            );
        }
        if self.models.is_empty() {
            err("models".into(), "at least one [[models]] entry is required");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let at = |field: &str| format!("models[{i}].{field}");
            let valid_name = !m.name.is_empty()
                && m.name.len() <= 64
                && m.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_name {
                err(at("name"), "must be 1-64 characters of a-z, 0-9, _ and -");
            }
            if !seen.insert(m.name.as_str()) {
                err(at("name"), "duplicate model name");
            }
            // A key pasted in place of its path would otherwise be echoed by the load error.
            if let Some(k) = m.key_file.as_ref().and_then(|k| k.to_str()) {
                if crate::secret::looks_inline(k)
                    || (k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    err(
                        at("key_file"),
                        "must be the path of an aes256 key file (rampart keygen), not the key itself",
                    );
                }
            }
            let v = m.version();
            if v.is_empty() || v.len() > 64 || v.contains(['/', ' ']) {
                err(
                    at("version"),
                    "must be 1-64 characters without '/' or spaces",
                );
            }
            self.validate_source(i, m, &mut err);
            if m.rate_limit.per_minute == 0 {
                err(at("rate_limit.per_minute"), "must be > 0");
            }
            if m.rate_limit.burst == Some(0) {
                err(at("rate_limit.burst"), "must be > 0");
            }
            if !(m.validate.margin.is_finite() && m.validate.margin >= 0.0) {
                err(at("validate.margin"), "must be >= 0");
            }
            if m.validate.max_rows == 0 || m.validate.max_rows > 100_000 {
                err(at("validate.max_rows"), "must be between 1 and 100000");
            }
            if !(0.0..=1.0).contains(&m.confidence.min) {
                err(at("confidence.min"), "must be between 0 and 1");
            }
            validate_output(&at("output"), &m.output, &mut err);
            for (role, o) in &m.output_by_role {
                validate_output(&at(&format!("output_by_role.{role}")), o, &mut err);
                let known = self.roles.as_ref().map_or_else(
                    || ["predictor", "anonymous", "admin"].contains(&role.as_str()),
                    |r| r.contains_key(role),
                );
                if !known {
                    err(
                        at(&format!("output_by_role.{role}")),
                        "no such role in [roles] (a misspelt role would leave its callers on the default output)",
                    );
                }
            }
            validate_hardening(i, m, &mut err);
            let needs_baseline = m.anomaly.mode.is_on()
                || (m.validate.mode.is_on()
                    && m.validate.ranges == validate::RangeSource::Baseline);
            // A registry version always carries its signed baseline.
            if needs_baseline && m.baseline.is_none() && m.registry.is_none() {
                err(
                    at("baseline"),
                    "range validation and anomaly detection need a baseline (rampart profile); \
                     or set validate.ranges = \"none\" and anomaly.mode = \"off\"",
                );
            }
            if m.labels.iter().any(String::is_empty) {
                err(at("labels"), "labels must not be empty strings");
            }
            if let Some(b) = &m.batch {
                if m.upstream.is_some() {
                    err(
                        at("batch"),
                        "batching is for in-process models; an upstream batches on its own side",
                    );
                }
                if m.smoothing.is_some() || m.ensemble.is_some() || m.adversarial.is_some() {
                    err(
                        at("batch"),
                        "a hardened model (smoothing, ensemble, adversarial) already scores its rows in \
                         batches on the hardening pool: remove batch",
                    );
                }
                for (field, problem) in b.problems() {
                    err(at(&format!("batch.{field}")), problem);
                }
            }
        }
        if let Some(hook) = &self.alerts.webhook {
            hook.validate("alerts.webhook", &mut errors);
        }
        self.state.validate(&mut errors);
        errors.extend(crate::monitor::config::validate(self));
        errors
    }

    /// `path`, `registry`, `ensemble` or `upstream`, and whether signatures allow a plain file.
    ///
    /// `require_signatures` does not refuse an `upstream` entry: Rampart never holds an upstream's model bytes,
    /// so it has nothing to verify a signature over — the upstream serves (and should verify) its own models.
    /// What Rampart can check is *who answers*: with `require_signatures` on, an upstream must be `https://`,
    /// so the server certificate authenticates the model server, and a plain-HTTP upstream is refused (anyone
    /// on the path could answer for the model).
    fn validate_source(&self, i: usize, m: &ModelConfig, err: &mut impl FnMut(String, &str)) {
        let at = |field: &str| format!("models[{i}].{field}");
        if m.upstream.is_some() && m.ensemble.is_some() {
            err(
                at("ensemble"),
                "give exactly one of path, registry, ensemble or upstream",
            );
            return;
        }
        if let Some(u) = &m.upstream {
            let mut errors = Vec::new();
            u.validate(&at("upstream"), &mut errors);
            for e in errors {
                err(e.path, &e.message);
            }
            if m.path.is_some() || m.registry.is_some() {
                err(
                    at("upstream"),
                    "give exactly one of path, registry, ensemble or upstream",
                );
            }
            if m.key_file.is_some() {
                err(
                    at("key_file"),
                    "encrypted models are served from path, not from an upstream",
                );
            }
            if m.training_data.is_some() {
                err(
                    at("training_data"),
                    "training data is verified for a local model file; an upstream serves its own model",
                );
            }
            if self.server.require_signatures && !u.is_https() {
                err(
                    at("upstream.url"),
                    "[server] require_signatures is on (the default): an upstream must be https:// so that its \
                     certificate authenticates who answers; or set [server] require_signatures = false",
                );
            }
            return;
        }
        if m.ensemble.is_some() {
            if m.path.is_some() || m.registry.is_some() {
                err(
                    at("ensemble"),
                    "an ensemble entry is served from ensemble.members: remove path and registry",
                );
            }
            if m.key_file.is_some() {
                err(
                    at("key_file"),
                    "ensemble members are plain ONNX files: remove key_file",
                );
            }
            if self.server.require_signatures {
                err(
                    at("ensemble"),
                    "[server] require_signatures is on (the default), and ensemble members are unsigned files: \
                     set [server] require_signatures = false to serve them",
                );
            }
            return;
        }
        match (&m.path, &m.registry) {
            (Some(_), Some(_)) => err(at("registry"), "give either path or registry, not both"),
            (None, None) => err(
                at("path"),
                "give registry = \"DIR\" (a signed model registry), path = \"FILE.onnx\" or upstream = { url, model }",
            ),
            (Some(_), None) if self.server.require_signatures => err(
                at("path"),
                "[server] require_signatures is on (the default), and a plain path is not signed: serve a \
                 signed registry version instead (registry = \"DIR\"; rampart model sign, then rampart model \
                 activate), or set [server] require_signatures = false to serve unsigned files",
            ),
            (None, Some(_)) => {
                if m.version.is_some() {
                    err(
                        at("version"),
                        "a registry entry is served at the registry's active version: remove version",
                    );
                }
                if m.baseline.is_some() {
                    err(
                        at("baseline"),
                        "a registry version carries its own signed baseline: remove baseline",
                    );
                }
                if m.key_file.is_some() {
                    err(
                        at("key_file"),
                        "encrypted models are served from path, not from a registry",
                    );
                }
                if self.server.model_public_key_file.is_none() {
                    err(
                        "server.model_public_key_file".into(),
                        "registry versions are verified against a public key: set model_public_key_file \
                         (the .pub that rampart keygen --kind ed25519 writes beside the signing key)",
                    );
                }
            }
            _ => {}
        }
    }

    fn validate_transport(&self, err: &mut impl FnMut(String, &str)) {
        match (&self.server.tls, self.server.insecure_plaintext) {
            (Some(_), true) => err(
                "server.insecure_plaintext".into(),
                "give either tls or insecure_plaintext = true, not both",
            ),
            (None, false) => err(
                "server.tls".into(),
                "no TLS configured: set tls = { cert_file, key_file }, or insecure_plaintext = true to serve plain HTTP",
            ),
            _ => {}
        }
        if let Some(tls) = &self.server.tls {
            if crate::secret::looks_inline(&tls.key_file) {
                err(
                    "server.tls.key_file".into(),
                    "an inline secret is refused: give a file path or env:NAME",
                );
            }
        }
        if self.server.max_connections == 0 {
            err("server.max_connections".into(), "must be > 0");
        }
    }

    fn validate_audit(&self, err: &mut impl FnMut(String, &str)) {
        let a = &self.audit;
        if a.checkpoint_every == 0 {
            err("audit.checkpoint_every".into(), "must be > 0");
        }
        if a.checkpoint_interval_secs == 0 {
            err("audit.checkpoint_interval_secs".into(), "must be > 0");
        }
        if a.segment_max_bytes < 4096 {
            err("audit.segment_max_bytes".into(), "must be at least 4096");
        }
        if a.segment_max_age_secs == 0 {
            err("audit.segment_max_age_secs".into(), "must be > 0");
        }
        match (a.pseudonymize, &a.pseudonym_key_file) {
            (true, None) => err(
                "audit.pseudonym_key_file".into(),
                "pseudonymize = true needs a key: rampart keygen --kind hmac --out FILE",
            ),
            (false, Some(_)) => err(
                "audit.pseudonymize".into(),
                "pseudonym_key_file is set but pseudonymize is false: set pseudonymize = true or remove the key",
            ),
            _ => {}
        }
        if a.store_input && a.encryption_key_file.is_none() {
            err(
                "audit.store_input".into(),
                "raw inputs are stored only sealed: set encryption_key_file (rampart keygen --kind aes256)",
            );
        }
    }

    fn validate_auth(&self, err: &mut impl FnMut(String, &str)) {
        let mtls = self
            .server
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some());
        let sources = self.auth.api_keys_file.is_some() || self.auth.jwt.is_some() || mtls;
        match (sources, self.auth.anonymous) {
            (true, true) => err(
                "auth".into(),
                "give credentials (api_keys_file, jwt, client certificates) or anonymous = true, not both",
            ),
            (false, false) => err(
                "auth".into(),
                "no authentication configured: set api_keys_file, jwt or tls.client_ca_file, or anonymous = true to serve without it",
            ),
            _ => {}
        }
        if self.auth.keys_reload_ms == 0 {
            err("auth.keys_reload_ms".into(), "must be > 0");
        }
        if let Some(jwt) = &self.auth.jwt {
            if jwt.issuer.is_empty() {
                err("auth.jwt.issuer".into(), "must not be empty");
            }
            if jwt.audience.is_empty() {
                err("auth.jwt.audience".into(), "must not be empty");
            }
            if jwt.algorithms.is_empty() {
                err(
                    "auth.jwt.algorithms".into(),
                    "must name at least one algorithm",
                );
            }
            for a in &jwt.algorithms {
                if crate::jwt::parse_algorithm(a).is_none() {
                    err(
                        "auth.jwt.algorithms".into(),
                        "each must be RS256, ES256 or EdDSA (HMAC and none are refused)",
                    );
                }
            }
            if jwt.leeway_s > 300 {
                err("auth.jwt.leeway_s".into(), "must be at most 300");
            }
            if jwt.roles_claim.is_empty() {
                err("auth.jwt.roles_claim".into(), "must not be empty");
            }
        }
        if let Some(roles) = &self.roles {
            for (role, perms) in roles {
                for p in perms {
                    if crate::rbac::Permission::parse(p).is_none() {
                        err(
                            format!("roles.{role}"),
                            "unknown permission: use predict:<model>, predict:*, output:full, \
                             output:certificate, admin:models, admin:deploy, admin:review, admin:identities, admin:incidents, \
                             admin:audit, admin:metrics or admin:*",
                        );
                    }
                }
            }
        }
    }
}

/// `output` and each `output_by_role` entry.
fn validate_output(at: &str, o: &sanitize::Config, err: &mut impl FnMut(String, &str)) {
    if o.decimals > 9 {
        err(format!("{at}.decimals"), "must be at most 9");
    }
    if o.top_k == 0 {
        err(format!("{at}.top_k"), "must be at least 1");
    }
    if let Some(rs) = &o.reverse_sigmoid {
        if let Err(e) = rampart_pipeline::reverse_sigmoid::ReverseSigmoid::new(rs.beta, rs.gamma) {
            let field = match e {
                rampart_pipeline::reverse_sigmoid::ReverseSigmoidError::Gamma => "gamma",
                _ => "beta",
            };
            err(format!("{at}.reverse_sigmoid.{field}"), &e.to_string());
        }
    }
}

/// `smoothing`, `ensemble` and `adversarial`: what can be checked without loading the model.
fn validate_hardening(i: usize, m: &ModelConfig, err: &mut impl FnMut(String, &str)) {
    let at = |field: &str| format!("models[{i}].{field}");
    if let Some(s) = &m.smoothing {
        if let Err(e) = rampart_model::harden::smoothing::Smoother::new(s.clone()) {
            let field = match &e {
                rampart_model::harden::smoothing::SmoothingError::InvalidParam {
                    field, ..
                } => field,
                _ => "sigma",
            };
            err(at(&format!("smoothing.{field}")), &e.to_string());
        }
    }
    if let Some(e) = &m.ensemble {
        if e.members.len() < 2 {
            err(
                at("ensemble.members"),
                "an ensemble needs at least two members",
            );
        }
        if !(0.0..=2.0).contains(&e.max_disagreement) {
            err(
                at("ensemble.max_disagreement"),
                "must be in [0, 2] (an L1 distance between probability vectors)",
            );
        }
    }
    if let Some(a) = &m.adversarial {
        if a.squeezers.is_empty() {
            err(
                at("adversarial.squeezers"),
                "name at least one squeezer: bit_depth:B, round:D, median:S or median:S:HxW",
            );
        }
        if !(a.threshold.is_finite() && a.threshold >= 0.0) {
            err(
                at("adversarial.threshold"),
                "must be finite and >= 0 (rampart profile --squeezers computes it)",
            );
        }
    }
}

#[cfg(test)]
mod tests;
