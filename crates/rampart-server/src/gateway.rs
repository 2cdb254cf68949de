//! The gateway: everything built from the config once at start-up, and the request path that runs through it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use rampart_audit::{AuditRecord, AuditWriter};
use rampart_core::{Finding, GuardId, Identity, Reason, Rejection, Severity};
use rampart_detect::Baseline;
use rampart_model::{Backend, ModelInfo, ModelKind, TractModel};
use rampart_pipeline::rate_limit::Quotas;
use rampart_pipeline::{Decision, Outcome, Pipeline, Protocol, RequestCx};

use crate::access::{spawn_keys_reloader, Blocklist};
use crate::alerts::{Alert, AlertCounters, AlertSink, AlertSinks};
use crate::auth::{Authenticator, KeyStore, KeysFile, Peer};
use crate::config::{OnFailure, RawConfig};
use crate::harden::{BlockingPool, EnsembleBackend};
use crate::jwt::JwtVerifier;
use crate::metrics::{Metrics, ModelMetrics, UpstreamMetrics, UNKNOWN_MODEL};
use crate::rbac::{AdminArea, Grants, Roles};
use crate::render;
use crate::respond;
use crate::review::{ReviewItem, ReviewQueue};
use crate::runner::Runner;
use crate::swap::{ModelSlot, Source};
use crate::upstream::Upstream;
use rampart_registry::{ModelName, Registry};

/// Why the gateway cannot start. Each message names the file and the field it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The config is invalid.
    #[error("invalid config:\n{0}")]
    Config(String),
    /// A model failed to load.
    #[error("models[{index}] ({name}): {message}")]
    Model {
        /// Index in `[[models]]`.
        index: usize,
        /// Its name.
        name: String,
        /// What failed (names the file, node and reason).
        message: String,
    },
    /// A file (keys, baseline, data directory) could not be used.
    #[error("{0}")]
    File(String),
}

/// One served model.
pub(crate) struct ServedModel {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) info: ModelInfo,
    pub(crate) pipeline: Pipeline,
    /// How the request path calls the model (see [`crate::runner`]).
    pub(crate) runner: Runner,
    pub(crate) metrics: ModelMetrics,
}

/// How the gateway treats audit failures.
struct Audit {
    writer: AuditWriter,
    on_failure: OnFailure,
}

pub(crate) struct Shared {
    auth: Authenticator,
    /// `[roles]`, swapped whole by a config reload (see `reload.rs`).
    pub(crate) roles: arc_swap::ArcSwap<Roles>,
    /// The config in force, for a reload to compare against.
    pub(crate) config: parking_lot::Mutex<RawConfig>,
    pub(crate) blocked: Blocklist,
    /// TLS for both listeners; `None` only with `insecure_plaintext = true`.
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    /// `/metrics` needs no credential when the admin listener is on loopback (scrapers run beside it).
    admin_loopback: bool,
    pub(crate) audit_dir: Option<PathBuf>,
    /// The public half of the audit's checkpoint key, when checkpoints are signed.
    pub(crate) audit_public_key: Option<Arc<rampart_crypto::sign::VerifyingKey>>,
    /// Each model's slot: the version serving now, swappable (see [`crate::swap`]).
    models: HashMap<String, Arc<ModelSlot>>,
    audit: Option<Audit>,
    pub(crate) alerts: AlertSink,
    pub(crate) review: ReviewQueue,
    /// `[review] max_age_secs`.
    pub(crate) review_max_age: Option<Duration>,
    /// Incident rules and the actions in force.
    pub(crate) incidents: crate::incidents::Incidents,
    pub(crate) metrics: Metrics,
    pub(crate) monitor: crate::monitor::Monitor,
    unknown: ModelMetrics,
    max_body: usize,
    body_timeout: Duration,
    /// `[state] backend = "redis"`: rate limits decided by Redis, blocks and extraction statistics shared
    /// through it (see `shared_state.rs`).
    pub(crate) shared_state: Option<crate::shared_state::SharedState>,
    /// Set when shutdown begins (see `drain.rs`): readiness turns false while requests are still served.
    pub(crate) draining: std::sync::atomic::AtomicBool,
}

/// A built gateway, ready to serve.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
}

/// What authenticates callers when the config does not come from a file (the demo's one-time key).
pub enum AuthOverride {
    /// Use the config's `[auth]`.
    FromConfig,
    /// One key for one identity, held in memory only.
    SingleKey {
        /// The identity.
        id: String,
        /// The key.
        key: String,
    },
}

impl Gateway {
    /// Validates the config, loads keys, models and baselines, opens the audit log, the alerts file and the
    /// review queue.
    ///
    /// # Errors
    /// [`StartError`] naming what failed.
    pub async fn build(cfg: &RawConfig, auth: AuthOverride) -> Result<Self, StartError> {
        let errors = cfg.validate();
        let auth_is_override = matches!(auth, AuthOverride::SingleKey { .. });
        let errors: Vec<_> = errors
            .into_iter()
            .filter(|e| !(auth_is_override && e.path == "auth"))
            .collect();
        if !errors.is_empty() {
            let text = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            return Err(StartError::Config(text));
        }
        let data_dir = cfg.resolve(&cfg.server.data_dir);
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            StartError::File(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;

        let auth = match auth {
            AuthOverride::SingleKey { id, key } => Authenticator::keys(KeyStore::single(&id, &key)),
            AuthOverride::FromConfig => build_authenticator(cfg)?,
        };
        let tls = match &cfg.server.tls {
            Some(t) => Some(
                crate::tls::acceptor(t, |p| cfg.resolve(p))
                    .map_err(|e| StartError::File(format!("server.tls: {e}")))?,
            ),
            None => {
                tracing::warn!(
                    "TLS is off ([server] insecure_plaintext = true): credentials and predictions cross the network in clear text"
                );
                None
            }
        };
        let blocked_path = data_dir.join("blocked.json");
        let blocked = Blocklist::open(blocked_path.clone()).map_err(|e| {
            StartError::File(format!(
                "blocked identities {}: {e}",
                blocked_path.display()
            ))
        })?;

        let metrics = Metrics::new();
        // One pool for every model's hardened calls: they share the CPUs.
        let pool = Arc::new(BlockingPool::new(
            cfg.hardening_workers(),
            cfg.server.hardening_queue,
        ));
        let mut models = HashMap::new();
        // Proxy mode: each upstream's breaker raises alerts once the alert bus exists.
        let mut upstreams = Vec::new();
        for (index, m) in cfg.models.iter().enumerate() {
            let loaded = if m.upstream.is_some() {
                load_upstream(cfg, index, metrics.for_upstream(&m.name), &pool).await?
            } else {
                load_model(cfg, index, &pool)?
            };
            if let Some(u) = &loaded.upstream {
                upstreams.push(Arc::clone(u));
            }
            let served = ServedModel {
                name: m.name.clone(),
                version: loaded.version,
                info: loaded.info,
                runner: loaded.runner,
                pipeline: loaded.pipeline,
                metrics: metrics.for_model(&m.name),
            };
            models.insert(
                m.name.clone(),
                Arc::new(ModelSlot::new(
                    served,
                    loaded.source,
                    m.clone(),
                    Arc::clone(&pool),
                )),
            );
        }
        let follows_registry = cfg.models.iter().any(|m| m.registry.is_some());

        let audit_dir = cfg.audit.enabled.then(|| match &cfg.audit.dir {
            Some(d) => cfg.resolve(d),
            None => data_dir.join("audit"),
        });
        let mut audit_public_key = None;
        let audit = if let Some(dir) = &audit_dir {
            let (config, public) = crate::audit_log::writer_config(cfg)?;
            audit_public_key = public.map(Arc::new);
            let writer = AuditWriter::open_with(dir, config)
                .map_err(|e| StartError::File(format!("audit log {}: {e}", dir.display())))?;
            Some(Audit {
                writer,
                on_failure: cfg.audit.on_failure,
            })
        } else {
            tracing::warn!(
                "the audit log is off ([audit] enabled = false): decisions are not recorded"
            );
            None
        };

        let alerts_path: PathBuf = match &cfg.alerts.file {
            Some(p) => cfg.resolve(p),
            None => data_dir.join("alerts").join("alerts.jsonl"),
        };
        let webhook = match &cfg.alerts.webhook {
            Some(settings) => {
                let hook = settings
                    .resolve(|p| cfg.resolve(p))
                    .map_err(|e| StartError::File(format!("alerts.webhook: {e}")))?;
                tracing::info!(
                    endpoint = hook.endpoint(),
                    "alerts are also sent to a webhook"
                );
                Some(hook.start(metrics.webhook.clone()))
            }
            None => None,
        };
        let alerts = AlertSink::open(
            AlertSinks {
                file: alerts_path.clone(),
                audit: audit.as_ref().map(|a| a.writer.clone()),
                webhook,
            },
            cfg.alerts.rate_limit_storm,
            Duration::from_secs(cfg.alerts.dedupe_secs),
            AlertCounters {
                raised: metrics.alerts_raised.clone(),
                dropped: metrics.alerts_dropped.clone(),
                suppressed: metrics.alerts_suppressed.clone(),
            },
        )
        .await
        .map_err(|e| StartError::File(format!("alerts file {}: {e}", alerts_path.display())))?;
        // Upstreams raise `upstream_down` / `upstream_recovered` from their breakers.
        for u in &upstreams {
            u.set_alerts(alerts.clone());
        }
        let shared_state = crate::shared_state::SharedState::from_config(
            &cfg.state,
            |p| cfg.resolve(p),
            alerts.clone(),
        )
        .map_err(|e| StartError::File(format!("state.url_file: {e}")))?;
        let blocked = match &shared_state {
            Some(state) => blocked.with_shared(state.blocks.clone()),
            None => blocked,
        };
        // The monitor's distances on their way to the other replicas (see `shared_state.rs`).
        let (distances_tx, distances_rx) = match &shared_state {
            Some(state) => {
                let (tx, rx) = tokio::sync::mpsc::channel(crate::shared_state::DISTANCE_QUEUE);
                (Some((tx, state.keys.clone())), Some(rx))
            }
            None => (None, None),
        };
        let review_dir = data_dir.join("review");
        let review = ReviewQueue::open(&review_dir)
            .map_err(|e| StartError::File(format!("review queue {}: {e}", review_dir.display())))?;

        let monitor = crate::monitor::Monitor::build(
            cfg,
            &models,
            alerts.clone(),
            audit.as_ref().map(|a| a.writer.clone()),
            metrics.monitor.clone(),
            distances_tx,
        )?;
        let unknown = metrics.for_model(UNKNOWN_MODEL);
        let shared = Arc::new(Shared {
            auth,
            roles: arc_swap::ArcSwap::from_pointee(Roles::from_config(cfg.roles.as_ref())),
            config: parking_lot::Mutex::new(cfg.clone()),
            blocked,
            tls,
            admin_loopback: cfg.server.admin_listen.ip().is_loopback(),
            audit_dir,
            audit_public_key,
            models,
            audit,
            alerts,
            review,
            incidents: crate::incidents::Incidents::new(&cfg.incidents),
            review_max_age: cfg.review.max_age_secs.map(Duration::from_secs),
            metrics,
            monitor,
            unknown,
            max_body: cfg.server.max_body_bytes,
            body_timeout: Duration::from_millis(cfg.server.body_read_timeout_ms),
            shared_state,
            draining: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some(rx) = distances_rx {
            crate::shared_state::start_sync(&shared, rx).await;
        }
        spawn_sweeper(Arc::downgrade(&shared));
        if shared.review_max_age.is_some() {
            spawn_review_expiry(Arc::downgrade(&shared));
        }
        if shared.incidents.has_rules() {
            let (tx, rx) = tokio::sync::mpsc::channel(crate::incidents::QUEUE);
            shared.alerts.set_responder(tx);
            crate::incidents::spawn(Arc::downgrade(&shared), rx);
        }
        if follows_registry {
            crate::swap::spawn_registry_watcher(Arc::downgrade(&shared), REGISTRY_POLL);
        }
        Ok(Self { shared })
    }

    /// Flushes the audit log; call before exit.
    pub async fn shutdown(&self) {
        if let Some(a) = &self.shared.audit {
            if let Err(e) = a.writer.shutdown().await {
                tracing::error!("audit shutdown: {e}");
            }
        }
    }
}

/// The authenticator of `[auth]`; starts the keys-file reloader when there is a keys file.
fn build_authenticator(cfg: &RawConfig) -> Result<Authenticator, StartError> {
    if cfg.auth.anonymous {
        tracing::warn!(
            "authentication is off ([auth] anonymous = true): every caller is 'anonymous'"
        );
        return Ok(Authenticator::anonymous());
    }
    let keys = match &cfg.auth.api_keys_file {
        Some(path) => {
            let path = cfg.resolve(path);
            let file = KeysFile::load(&path, false).map_err(|e| StartError::File(e.to_string()))?;
            let store = Arc::new(arc_swap::ArcSwap::from_pointee(KeyStore::from_file(&file)));
            spawn_keys_reloader(
                path,
                Arc::downgrade(&store),
                Duration::from_millis(cfg.auth.keys_reload_ms),
            );
            Some(store)
        }
        None => None,
    };
    let jwt = match &cfg.auth.jwt {
        Some(j) => Some(
            JwtVerifier::load(j, &cfg.resolve(&j.jwks_file))
                .map_err(|e| StartError::File(format!("auth.jwt: {e}")))?,
        ),
        None => None,
    };
    Ok(Authenticator::new(
        keys,
        jwt,
        cfg.auth.client_cert_roles.clone(),
    ))
}

/// How often registry-backed models look for an `active.json` changed by the CLI while serving.
const REGISTRY_POLL: Duration = Duration::from_secs(1);

/// A model loaded at start-up.
pub(crate) struct Loaded {
    pub(crate) info: ModelInfo,
    pub(crate) pipeline: Pipeline,
    /// How requests call it: inline, or hardened on the blocking pool.
    pub(crate) runner: Runner,
    /// The configured version, or the registry's active one.
    pub(crate) version: String,
    pub(crate) source: Source,
    /// Proxy mode: the upstream, also the pipeline's backend.
    pub(crate) upstream: Option<Arc<Upstream>>,
}

/// `models[index]`, or the config error that it does not exist.
fn model_entry(cfg: &RawConfig, index: usize) -> Result<&crate::config::ModelConfig, StartError> {
    cfg.models
        .get(index)
        .ok_or_else(|| StartError::Config(format!("models[{index}] does not exist")))
}

/// A failure of `models[index]`, named by index and name.
fn model_error(index: usize, m: &crate::config::ModelConfig, message: String) -> StartError {
    StartError::Model {
        index,
        name: m.name.clone(),
        message,
    }
}

/// Loads `models[index]`: its ONNX file, its baseline, and its pipeline — from the registry's active version,
/// verified, for a registry entry.
pub(crate) fn load_model(
    cfg: &RawConfig,
    index: usize,
    pool: &Arc<BlockingPool>,
) -> Result<Loaded, StartError> {
    let m = model_entry(cfg, index)?;
    let fail = |message: String| model_error(index, m, message);
    if let Some(td) = &m.training_data {
        check_training_data(cfg, td).map_err(fail)?;
    }
    if let Some(root) = &m.registry {
        return load_from_registry(cfg, m, &cfg.resolve(root), pool).map_err(fail);
    }
    if m.upstream.is_some() {
        // `check-config` builds outside any runtime: the metadata request gets one of its own, on a thread
        // of its own so that a caller inside a runtime is not blocked by a runtime within it.
        return std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| fail(format!("cannot start a runtime: {e}")))?;
                rt.block_on(load_upstream(cfg, index, UpstreamMetrics::detached(), pool))
            })
            .join()
            .unwrap_or_else(|_| Err(fail("loading the upstream failed".to_owned())))
        });
    }
    let (backend, ensemble, file): (Arc<dyn Backend>, _, _) = match (&m.path, &m.ensemble) {
        (Some(path), None) => {
            let path = cfg.resolve(path);
            let backend = match &m.key_file {
                Some(key_file) => {
                    load_encrypted_model(&path, &cfg.resolve(key_file)).map_err(fail)?
                }
                None => TractModel::load(&path).map_err(|e| fail(e.to_string()))?,
            };
            (Arc::new(backend), None, path.display().to_string())
        }
        (None, Some(e)) => {
            let ensemble = Arc::new(load_ensemble(cfg, m, e).map_err(fail)?);
            let files = e
                .members
                .iter()
                .map(|p| cfg.resolve(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            (ensemble.clone(), Some(ensemble), files)
        }
        _ => return Err(fail("give path, ensemble or registry".to_owned())),
    };
    let baseline = match &m.baseline {
        Some(p) => Some(Arc::new(load_baseline(&cfg.resolve(p)).map_err(fail)?)),
        None => None,
    };
    let info = backend.info().clone();
    let pipeline = Pipeline::build(&m.pipeline(), backend, baseline, &m.labels)
        .map_err(|e| fail(e.to_string()))?;
    let runner = Runner::for_model(m, pipeline.backend(), ensemble, pool)
        .map_err(|e| fail(e.to_string()))?;
    tracing::info!(
        model = %m.name,
        version = %m.version(),
        file = %file,
        width = info.width,
        "model loaded"
    );
    Ok(Loaded {
        info,
        pipeline,
        runner,
        version: m.version().to_owned(),
        source: Source::File,
        upstream: None,
    })
}

/// Loads an `upstream` entry: reads the upstream's metadata, checks it against the baseline's width and the
/// labels, and builds the pipeline around it.
pub(crate) async fn load_upstream(
    cfg: &RawConfig,
    index: usize,
    metrics: UpstreamMetrics,
    pool: &Arc<BlockingPool>,
) -> Result<Loaded, StartError> {
    let m = model_entry(cfg, index)?;
    let fail = |message: String| model_error(index, m, message);
    let Some(u) = &m.upstream else {
        return Err(fail("not an upstream entry".to_owned()));
    };
    let baseline = match &m.baseline {
        Some(p) => Some((p, Arc::new(load_baseline(&cfg.resolve(p)).map_err(fail)?))),
        None => None,
    };
    let upstream = Upstream::connect(&m.name, u, &m.labels, |p| cfg.resolve(p), metrics)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let info = upstream.info().clone();
    if let Some((path, b)) = &baseline {
        if b.width() != info.width {
            return Err(fail(format!(
                "upstream {}: the model takes {} features but the baseline {} has {}",
                info.name,
                info.width,
                path.display(),
                b.width()
            )));
        }
    }
    let upstream = Arc::new(upstream);
    let backend: Arc<dyn Backend> = upstream.clone();
    let pipeline = Pipeline::build(&m.pipeline(), backend, baseline.map(|(_, b)| b), &m.labels)
        .map_err(|e| fail(e.to_string()))?;
    let runner = Runner::for_upstream(m, &upstream, pool).map_err(fail)?;
    tracing::info!(
        model = %m.name,
        version = %m.version(),
        upstream = %info.name,
        width = info.width,
        "upstream model checked"
    );
    Ok(Loaded {
        info,
        pipeline,
        runner,
        version: m.version().to_owned(),
        source: Source::Upstream,
        upstream: Some(upstream),
    })
}

/// The registry's active version of `m`, verified against `[server] model_public_key_file`, then loaded from
/// the verified bytes. The error names the file that failed.
fn load_from_registry(
    cfg: &RawConfig,
    m: &crate::config::ModelConfig,
    root: &std::path::Path,
    pool: &Arc<BlockingPool>,
) -> Result<Loaded, String> {
    let Some(key_file) = &cfg.server.model_public_key_file else {
        return Err("[server] model_public_key_file is required for a registry entry".to_owned());
    };
    let key_path = cfg.resolve(key_file);
    let key = rampart_crypto::sign::VerifyingKey::load(&key_path)
        .map_err(|e| format!("model public key {}: {e}", key_path.display()))?;
    let registry = Registry::open(root).map_err(|e| e.to_string())?;
    let name = ModelName::new(&m.name).map_err(|e| e.to_string())?;
    let verified = registry
        .active_verified(&name, &key)
        .map_err(|e| e.to_string())?;
    let (info, pipeline) = crate::swap::load_verified(m, &verified)?;
    let runner = Runner::for_model(m, pipeline.backend(), None, pool).map_err(|e| e.to_string())?;
    tracing::info!(
        model = %m.name,
        version = %verified.version(),
        dir = %verified.dir().display(),
        key_id = %verified.key_id(),
        width = info.width,
        "model loaded from the registry, signature verified"
    );
    Ok(Loaded {
        info,
        pipeline,
        runner,
        version: verified.version().as_str().to_owned(),
        source: Source::Registry {
            registry,
            name,
            key: Arc::new(key),
        },
        upstream: None,
    })
}

/// Loads an ensemble's members and checks they fit together (same width, same classes).
fn load_ensemble(
    cfg: &RawConfig,
    m: &crate::config::ModelConfig,
    e: &crate::harden::EnsembleConfig,
) -> Result<EnsembleBackend, String> {
    let mut members: Vec<(String, Arc<dyn Backend>)> = Vec::with_capacity(e.members.len());
    for (i, p) in e.members.iter().enumerate() {
        let path = cfg.resolve(p);
        let model = TractModel::load(&path)
            .map_err(|err| format!("ensemble.members[{i}] ({}): {err}", path.display()))?;
        members.push((path.display().to_string(), Arc::new(model)));
    }
    EnsembleBackend::new(&m.name, members, e.aggregation).map_err(|err| err.to_string())
}

/// Decrypts an encrypted model in memory (never to disk) and loads it. The plaintext is held in a
/// `Zeroizing` buffer sized from the file once, so it is never reallocated and is zeroized when dropped,
/// right after tract has built its plan.
fn load_encrypted_model(
    path: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<TractModel, String> {
    use rampart_crypto::container::{decrypt_to_vec, AeadKey};
    let key = AeadKey::load(key_file).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let plain = decrypt_to_vec(
        &key,
        std::io::BufReader::new(file),
        usize::try_from(len).unwrap_or(0),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    TractModel::load_bytes(&name, &plain).map_err(|e| e.to_string())
}

/// Verifies the model's training data against its manifest (and the manifest's signature when a key is
/// named): a model whose data was tampered with since the manifest was made is not served.
fn check_training_data(cfg: &RawConfig, td: &crate::config::TrainingData) -> Result<(), String> {
    let manifest_path = cfg.resolve(&td.manifest);
    let manifest =
        rampart_data::manifest::Manifest::load(&manifest_path).map_err(|e| e.to_string())?;
    let dir = match &td.dir {
        Some(d) => cfg.resolve(d),
        None => manifest_path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let key = match &td.public_key_file {
        Some(k) => Some(
            rampart_crypto::sign::VerifyingKey::load(&cfg.resolve(k)).map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let skip = rampart_data::manifest::relative_inside(&dir, &manifest_path);
    let v = manifest
        .verify(&dir, skip.as_deref(), key.as_ref(), &())
        .map_err(|e| e.to_string())?;
    if v.is_clean() {
        return Ok(());
    }
    let first = v
        .added
        .first()
        .or(v.removed.first())
        .or(v.modified.first().map(|m| &m.path))
        .map_or(String::new(), |p| format!(" (first: {p})"));
    Err(format!(
        "training data {} does not verify against {}: {} added, {} removed, {} modified{first}, \
         root {}, signature {:?}",
        dir.display(),
        manifest_path.display(),
        v.added.len(),
        v.removed.len(),
        v.modified.len(),
        if v.root_matches { "ok" } else { "edited" },
        v.signature
    ))
}

pub(crate) fn load_baseline(path: &std::path::Path) -> Result<Baseline, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("baseline {}: {e}", path.display()))?;
    let b: Baseline =
        serde_json::from_str(&text).map_err(|e| format!("baseline {}: {e}", path.display()))?;
    b.validate()
        .map_err(|e| format!("baseline {}: {e}", path.display()))?;
    Ok(b)
}

/// Periodically forgets idle identities' rate-limit state (bounded memory) and publishes audit counters.
fn spawn_sweeper(shared: std::sync::Weak<Shared>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let Some(s) = shared.upgrade() else { return };
            for slot in s.models.values() {
                if let Some(l) = slot.current().pipeline.limiter() {
                    l.sweep();
                }
            }
        }
    });
}

/// Expires old review items every minute (`[review] max_age_secs`).
fn spawn_review_expiry(shared: std::sync::Weak<Shared>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(s) = shared.upgrade() else { return };
            let Some(age) = s.review_max_age else { return };
            if let Err(e) = s.expire_review(age).await {
                s.raise_internal(format!("review expiry: {e}"));
            }
        }
    });
}

/// A request id: a UUIDv7 (time-ordered, so audit and logs sort by it).
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn unix_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0)
}

/// What the edge knows when it must write an audit record.
struct AuditFacts<'a> {
    request_id: &'a str,
    identity: &'a str,
    model: &'a str,
    version: &'a str,
    input_sha256: String,
    outcome: rampart_audit::Outcome,
    reason: Option<Reason>,
    guard: Option<GuardId>,
    status: u16,
    flags: &'a [Finding],
    output: serde_json::Value,
    /// The decoded input, for the audit to keep sealed when `store_input` is on.
    input: Option<serde_json::Value>,
    latency: Duration,
}

impl Shared {
    pub(crate) fn metrics_text(&self) -> String {
        if let Some(a) = &self.audit {
            let stats = a.writer.stats();
            self.metrics
                .audit_records
                .set(i64::try_from(stats.records_written).unwrap_or(i64::MAX));
            self.metrics
                .audit_groups
                .set(i64::try_from(stats.groups).unwrap_or(i64::MAX));
        }
        self.metrics.render()
    }

    /// The version of `name` serving now. A request calls this once and keeps the `Arc`, so it finishes on
    /// that version even if another is swapped in meanwhile.
    pub(crate) fn model(&self, name: &str) -> Option<Arc<ServedModel>> {
        self.models.get(name).map(|s| s.current())
    }

    /// The slot of `name`, for changes of its version.
    pub(crate) fn slot(&self, name: &str) -> Option<&Arc<ModelSlot>> {
        self.models.get(name)
    }

    /// Every model's slot.
    pub(crate) fn slots(&self) -> impl Iterator<Item = &Arc<ModelSlot>> {
        self.models.values()
    }

    /// Whether any model is served.
    pub(crate) fn has_models(&self) -> bool {
        !self.models.is_empty()
    }

    /// Expires pending review items older than `age`; each expiry is an `action` audit record.
    ///
    /// # Errors
    /// When the queue's files cannot be read or written.
    pub(crate) async fn expire_review(&self, age: Duration) -> Result<Vec<String>, String> {
        let cutoff = OffsetDateTime::now_utc() - age;
        let queue = self.review.clone();
        let ids = tokio::task::spawn_blocking(move || queue.expire(cutoff))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if !ids.is_empty() {
            self.audit_action(&serde_json::json!({
                "action": "review_expire",
                "review_ids": ids,
                "max_age_secs": age.as_secs(),
                "by": "expiry",
            }))
            .await?;
        }
        Ok(ids)
    }

    /// Records an operator's or a responder's action: an `action` audit record (fields as given, plus what
    /// the audit adds: time, sequence, chain), written before the caller reports success. Without an audit
    /// log it is only logged.
    ///
    /// # Errors
    /// When the record cannot be written (the caller decides whether that undoes the action).
    pub(crate) async fn audit_action(&self, fields: &serde_json::Value) -> Result<(), String> {
        tracing::warn!(action = %fields, "action");
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        match audit
            .writer
            .commit_event(rampart_audit::EventKind::Action, fields)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                self.metrics.audit_failures.inc();
                Err(format!("action not recorded in the audit log: {e}"))
            }
        }
    }

    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Identity, Rejection> {
        self.auth
            .authenticate(headers, peer)
            .map_err(|_| Rejection::new(Reason::Unauthenticated, GuardId::AUTH))
    }

    /// Authentication, then the blocklist: what every authenticated route starts with.
    pub(crate) fn admit_identity(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Identity, (Rejection, Option<Identity>)> {
        let identity = self.authenticate(headers, peer).map_err(|r| (r, None))?;
        if self.blocked.is_blocked(identity.id()) {
            return Err((
                Rejection::new(Reason::Blocked, GuardId::BLOCKLIST),
                Some(identity),
            ));
        }
        Ok(identity)
    }

    /// The inference gate: authentication, the blocklist, then RBAC — before routing, so a caller not
    /// allowed a model cannot learn whether it exists. A refusal is audited and rendered.
    pub(crate) async fn admit_model(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
        model: &str,
        request_id: &str,
        started: Instant,
    ) -> Result<(Identity, Grants), Response> {
        let identity = match self.admit_identity(headers, peer) {
            Ok(i) => i,
            Err((r, who)) => {
                let id = who.as_ref().map_or("anonymous", |i| i.id());
                return Err(self.refuse(r, request_id, id, None, started, &[]).await);
            }
        };
        if self.blocked.refuses_all() {
            // fail_closed: whether another replica blocked this caller cannot be known now.
            let r = Rejection::new(Reason::Overloaded, GuardId::BLOCKLIST)
                .with_retry_after(Duration::from_secs(1))
                .with_severity(Severity::Medium);
            return Err(self
                .refuse(r, request_id, identity.id(), None, started, &[])
                .await);
        }
        let grants = self.roles.load().grants(&identity);
        if !grants.may_predict(model) {
            let r = Rejection::new(Reason::Forbidden, GuardId::RBAC);
            return Err(self
                .refuse(r, request_id, identity.id(), None, started, &[])
                .await);
        }
        Ok((identity, grants))
    }

    /// The admin listener's gate: an authenticated, unblocked identity whose roles grant `area`.
    /// `/metrics` on a loopback admin listener needs nothing (see the README).
    pub(crate) async fn admit_admin(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
        area: AdminArea,
    ) -> Result<Identity, Response> {
        if area == AdminArea::Metrics && self.admin_loopback {
            return Ok(Identity::anonymous());
        }
        let started = Instant::now();
        let request_id = new_request_id();
        let identity = match self.admit_identity(headers, peer) {
            Ok(i) => i,
            Err((r, who)) => {
                let id = who.as_ref().map_or("anonymous", |i| i.id());
                return Err(self.refuse(r, &request_id, id, None, started, &[]).await);
            }
        };
        if !self.roles.load().grants(&identity).may_admin(area) {
            let r = Rejection::new(Reason::Forbidden, GuardId::RBAC);
            return Err(self
                .refuse(r, &request_id, identity.id(), None, started, &[])
                .await);
        }
        Ok(identity)
    }

    /// Writes the record; `Err` means the response must become 503 (fail closed).
    async fn audit(&self, facts: AuditFacts<'_>) -> Result<(), Rejection> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        let record = AuditRecord {
            time: None,
            request_id: facts.request_id.to_owned(),
            identity: facts.identity.to_owned(),
            model: facts.model.to_owned(),
            model_version: facts.version.to_owned(),
            input_sha256: facts.input_sha256,
            decision: rampart_audit::Decision {
                outcome: facts.outcome,
                reason: facts.reason.map(|r| r.as_str().to_owned()),
                guard: facts.guard.map(|g| g.as_str().to_owned()),
                status: facts.status,
            },
            flags: facts
                .flags
                .iter()
                .map(|f| rampart_audit::Flag {
                    guard: f.guard.as_str().to_owned(),
                    reason: f.reason.as_str().to_owned(),
                })
                .collect(),
            output: facts.output,
            input: facts.input,
            latency_us: u64::try_from(facts.latency.as_micros()).unwrap_or(u64::MAX),
        };
        match audit.writer.commit(record).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.metrics.audit_failures.inc();
                self.alerts.raise(Alert {
                    time: OffsetDateTime::now_utc(),
                    kind: "audit_unavailable",
                    severity: Severity::High,
                    model: Some(facts.model.to_owned()),
                    identity: None,
                    request_id: Some(facts.request_id.to_owned()),
                    detail: format!("audit record not written: {e}"),
                });
                match audit.on_failure {
                    OnFailure::Reject => {
                        Err(Rejection::new(Reason::AuditUnavailable, GuardId::AUDIT)
                            .with_severity(Severity::High))
                    }
                    OnFailure::Continue => Ok(()),
                }
            }
        }
    }

    /// The decoded rows as JSON, only when the audit keeps inputs (sealed); otherwise nothing is built.
    fn stored_input(&self, decision: &Decision) -> Option<serde_json::Value> {
        let keeps = self
            .audit
            .as_ref()
            .is_some_and(|a| a.writer.policy().store_input);
        let features = decision.features.as_ref().filter(|_| keeps)?;
        // Each f32 written in its shortest decimal form ("5.1", not 5.099999904632568), which reads back as
        // the same f32: the replayed input is bit-identical to the one the model saw.
        let number = |x: &f32| {
            x.to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        };
        Some(serde_json::Value::Array(
            features
                .iter_rows()
                .map(|row| serde_json::Value::Array(row.iter().map(number).collect()))
                .collect(),
        ))
    }

    /// Audits a refusal made at the edge (auth, routing, transport) and renders it.
    pub(crate) async fn refuse(
        &self,
        rejection: Rejection,
        request_id: &str,
        identity: &str,
        model: Option<&ServedModel>,
        started: Instant,
        input: &[u8],
    ) -> Response {
        let metrics = model.map_or(&self.unknown, |m| &m.metrics);
        metrics.request(rejection.reason.as_str());
        metrics.rejection(rejection.guard.as_str(), rejection.reason);
        let facts = AuditFacts {
            request_id,
            identity,
            model: model.map_or(UNKNOWN_MODEL, |m| m.name.as_str()),
            version: model.map_or("", |m| m.version.as_str()),
            input_sha256: hex::encode(Sha256::digest(input)),
            outcome: rampart_audit::Outcome::Reject,
            reason: Some(rejection.reason),
            guard: Some(rejection.guard),
            status: rejection.reason.status(),
            flags: &[],
            output: serde_json::Value::Null,
            input: None,
            latency: started.elapsed(),
        };
        let rejection = match self.audit(facts).await {
            Ok(()) => rejection,
            Err(r) => r,
        };
        metrics.total(started.elapsed());
        respond::rejection(&rejection, request_id)
    }

    /// The request path for `POST /v1/models/{name}/predict` and `POST /v2/models/{name}/infer`.
    pub(crate) async fn predict(
        &self,
        name: &str,
        version: Option<&str>,
        protocol: Protocol,
        peer: &Peer,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        // Predictions are per caller and may be sensitive: never stored by a cache on the way.
        let mut resp = self
            .predict_inner(name, version, protocol, peer, headers, body)
            .await;
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        resp
    }

    async fn predict_inner(
        &self,
        name: &str,
        version: Option<&str>,
        protocol: Protocol,
        peer: &Peer,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        let started = Instant::now();
        let request_id = new_request_id();
        // A refusal before the body is read closes the connection rather than leave the body on it to be
        // parsed as the next request.
        let has_body = respond::has_body(&headers);
        let early = |resp: Response| respond::close_if(resp, has_body);

        // Authentication, the blocklist, RBAC.
        let (identity, grants) = match self
            .admit_model(&headers, peer, name, &request_id, started)
            .await
        {
            Ok(g) => g,
            Err(resp) => return early(resp),
        };
        // Routing: the name is never echoed. The version is chosen here, once: a swap after this point does not
        // change which version answers this request.
        let model = match self.model(name) {
            Some(m) if version.is_none_or(|v| v == m.version) => m,
            _ => {
                let r = Rejection::new(Reason::ModelNotFound, GuardId::ROUTE);
                return early(
                    self.refuse(r, &request_id, identity.id(), None, started, &[])
                        .await,
                );
            }
        };
        // In flight from here to the answer: the batcher scores a request alone at once, and batches only
        // requests that overlap.
        let _in_flight = model.runner.track();
        let cx = RequestCx {
            request_id: &request_id,
            identity: &identity,
            model: &model.name,
            protocol,
            full_output: grants.output_full(),
            certificate: grants.output_certificate(),
        };

        // Admit: rate limit.
        let mut flags = Vec::new();
        let t_admit = Instant::now();
        let admitted = match &self.shared_state {
            Some(state) => state.admit(&model.pipeline, &cx, &mut flags).await,
            None => model.pipeline.admit(&cx, &mut flags),
        };
        model.metrics.layer(0, t_admit.elapsed());
        let quotas = match admitted {
            Ok(q) => q,
            Err((r, q)) => {
                if self.alerts.rate_limited(identity.id_arc(), unix_minute()) {
                    self.alerts.raise(Alert {
                        time: OffsetDateTime::now_utc(),
                        kind: "rate_limit_storm",
                        severity: Severity::Medium,
                        model: Some(model.name.clone()),
                        identity: Some(identity.id().to_owned()),
                        request_id: Some(request_id.clone()),
                        detail: "an identity keeps sending requests past its rate limit".into(),
                    });
                }
                let resp = self
                    .refuse(r, &request_id, identity.id(), Some(&model), started, &[])
                    .await;
                return early(with_quotas(resp, q));
            }
        };

        // Transport checks, then the bounded body read.
        let body = match self.read_body(&headers, body).await {
            Ok(b) => b,
            Err(r) => {
                let resp = self
                    .refuse(r, &request_id, identity.id(), Some(&model), started, &[])
                    .await;
                return with_quotas(respond::close_if(resp, true), quotas);
            }
        };

        // Parse → inspect → model → shape → sanitize.
        let decision = match model.pipeline.prepare(&cx, &body, flags) {
            Ok(prepared) => {
                let t_model = Instant::now();
                let output = model.runner.run(&prepared.features).await;
                model
                    .pipeline
                    .complete(&cx, prepared, output, t_model.elapsed())
            }
            Err(done) => *done,
        };
        let m = &model.metrics;
        m.layer(1, decision.timings.validate);
        m.layer(2, decision.timings.inspect);
        m.layer(3, decision.timings.shape);
        if decision.prediction.is_some() {
            m.model(decision.timings.model);
        }
        let resp = self
            .finish(
                &model,
                &identity,
                &request_id,
                protocol,
                &body,
                decision,
                started,
            )
            .await;
        with_quotas(resp, quotas)
    }

    pub(crate) async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<crate::wipe::WipedBody, Rejection> {
        if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
            let ok = ct
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
            if !ok {
                return Err(Rejection::new(
                    Reason::UnsupportedMediaType,
                    GuardId::TRANSPORT,
                ));
            }
        }
        let too_large = || {
            Rejection::new(Reason::PayloadTooLarge, GuardId::TRANSPORT)
                .with_detail(format!("the body may be at most {} bytes", self.max_body))
        };
        if let Some(len) = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok())
        {
            if len > self.max_body as u64 {
                return Err(too_large());
            }
        }
        let limited = http_body_util::Limited::new(body, self.max_body);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Err(_) => Err(Rejection::new(Reason::RequestTimeout, GuardId::TRANSPORT)),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) => Err(Rejection::new(Reason::InvalidJson, GuardId::TRANSPORT)
                .with_detail("the body could not be read")),
            Ok(Ok(collected)) => Ok(crate::wipe::WipedBody::new(collected.to_bytes())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        model: &ServedModel,
        identity: &Identity,
        request_id: &str,
        protocol: Protocol,
        body: &[u8],
        decision: Decision,
        started: Instant,
    ) -> Response {
        let m = &model.metrics;
        let input_sha256 = match &decision.features {
            Some(f) => hex::encode(Sha256::digest(f.canonical_bytes())),
            None => hex::encode(Sha256::digest(body)),
        };
        let (status, payload, outcome, reason, guard, output, alert) = match &decision.outcome {
            Outcome::Rejected(r) => {
                m.request(r.reason.as_str());
                m.rejection(r.guard.as_str(), r.reason);
                let alert = matches!(
                    r.reason,
                    Reason::AnomalousInput | Reason::AdversarialInput | Reason::ModelUnavailable
                );
                (
                    r.reason.status(),
                    respond::error_body(r, request_id),
                    rampart_audit::Outcome::Reject,
                    Some(r.reason),
                    Some(r.guard),
                    serde_json::Value::Null,
                    alert.then_some(r),
                )
            }
            Outcome::Answered(answer) => {
                // An incident action may have degraded this caller or model to labels only.
                let degraded;
                let answer = if self.incidents.label_only(identity.id(), &model.name) {
                    let mut a = answer.clone();
                    a.to_labels_only();
                    degraded = a;
                    &degraded
                } else {
                    answer
                };
                let value = render::answer(
                    answer,
                    protocol,
                    &model.name,
                    &model.version,
                    decision.echo_id.as_deref(),
                );
                let uncertain = answer
                    .rows
                    .iter()
                    .any(|r| matches!(r, rampart_pipeline::RowAnswer::Uncertain { .. }));
                if uncertain {
                    if let Err(r) = self
                        .queue_for_review(model, identity, request_id, &decision)
                        .await
                    {
                        return self
                            .refuse(r, request_id, identity.id(), Some(model), started, body)
                            .await;
                    }
                    m.request("uncertain");
                } else {
                    m.request("ok");
                }
                let outcome = if uncertain {
                    rampart_audit::Outcome::Uncertain
                } else {
                    rampart_audit::Outcome::Pass
                };
                let payload = serde_json::to_vec(&value).unwrap_or_default();
                (200, payload, outcome, None, None, value, None)
            }
        };
        if let Some(r) = alert {
            self.alerts.raise(Alert {
                time: OffsetDateTime::now_utc(),
                kind: r.reason.as_str(),
                severity: r.severity,
                model: Some(model.name.clone()),
                identity: Some(identity.id().to_owned()),
                request_id: Some(request_id.to_owned()),
                detail: r.detail.to_string(),
            });
        }
        // The monitors watch latency up to the decision; the audit commit has its own metrics and its fsync
        // jitter would drown a model's slowdown.
        let decided_in = started.elapsed();
        let t_audit = Instant::now();
        let audited = self
            .audit(AuditFacts {
                request_id,
                identity: identity.id(),
                model: &model.name,
                version: &model.version,
                input_sha256,
                outcome,
                reason,
                guard,
                status,
                flags: &decision.flags,
                output,
                input: self.stored_input(&decision),
                latency: started.elapsed(),
            })
            .await;
        m.layer(4, t_audit.elapsed());
        m.total(started.elapsed());
        // A decision the audit could not keep was refused (503): not one the monitors or feedback should see.
        if audited.is_ok() {
            self.monitor
                .observe(&model.name, identity, request_id, &decision, decided_in);
        }
        match audited {
            Ok(()) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut resp = respond::json(status, payload, request_id);
                if let Outcome::Rejected(r) = &decision.outcome {
                    if let Some(after) = r.retry_after {
                        resp.headers_mut().insert(
                            http::header::RETRY_AFTER,
                            HeaderValue::from(after.as_secs().max(1)),
                        );
                    }
                }
                resp
            }
            Err(r) => {
                m.request(r.reason.as_str());
                respond::rejection(&r, request_id)
            }
        }
    }

    async fn queue_for_review(
        &self,
        model: &ServedModel,
        identity: &Identity,
        request_id: &str,
        decision: &Decision,
    ) -> Result<(), Rejection> {
        let (Some(features), Some(prediction)) = (&decision.features, &decision.prediction) else {
            return Ok(());
        };
        let now = OffsetDateTime::now_utc();
        let items: Vec<ReviewItem> = prediction
            .rows
            .iter()
            .zip(features.iter_rows())
            .filter_map(|(row, x)| match row {
                rampart_pipeline::RowPrediction::Class {
                    probabilities,
                    review_id: Some(id),
                    ..
                } => Some(ReviewItem {
                    review_id: id.clone(),
                    request_id: request_id.to_owned(),
                    time: now,
                    model: model.name.clone(),
                    model_version: model.version.clone(),
                    identity: identity.id().to_owned(),
                    features: x.to_vec(),
                    probabilities: probabilities.clone(),
                    status: "pending",
                }),
                _ => None,
            })
            .collect();
        let n = items.len() as u64;
        match self.review.persist(items).await {
            Ok(()) => {
                self.metrics.review_queued.inc_by(n);
                Ok(())
            }
            Err(e) => {
                self.alerts.raise(Alert {
                    time: now,
                    kind: "review_queue_unavailable",
                    severity: Severity::High,
                    model: Some(model.name.clone()),
                    identity: None,
                    request_id: Some(request_id.to_owned()),
                    detail: format!("review item not persisted: {e}"),
                });
                Err(Rejection::new(Reason::Internal, GuardId::CONFIDENCE)
                    .with_severity(Severity::High))
            }
        }
    }

    pub(crate) fn raise_internal(&self, detail: String) {
        self.alerts.raise(Alert {
            time: OffsetDateTime::now_utc(),
            kind: "internal",
            severity: Severity::High,
            model: None,
            identity: None,
            request_id: None,
            detail,
        });
    }
}

fn with_quotas(mut resp: Response, quotas: Option<Quotas>) -> Response {
    if let Some(q) = quotas {
        for (name, value) in q.headers() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
    }
    resp
}

/// The model's kind, for metadata.
pub(crate) fn kind_name(kind: &ModelKind) -> &'static str {
    match kind {
        ModelKind::Classifier { .. } => "classifier",
        ModelKind::Regressor { .. } => "regressor",
    }
}
