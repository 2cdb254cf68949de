//! Hot swap and rollback of a served model.
//!
//! Each `[[models]]` entry is a [`ModelSlot`]: the version serving now, held in an [`ArcSwap`]. A request loads
//! the `Arc` once when it is routed and finishes on that version whatever happens meanwhile, so a swap never
//! drops or splits a request, and the audit record names the version that answered (it is read from the
//! `ServedModel` the request holds).
//!
//! A change (admin API activate or rollback, an incident's quarantine, or the registry's `active.json` changed
//! by `rampart model activate|rollback` while serving) runs one at a time per model and in this order:
//! the target version is verified against the model public key and fully loaded — ONNX plan, baseline,
//! pipeline — on a blocking thread, off the request path; only then is the registry's history appended and
//! `active.json` replaced (through `rampart-registry`, which verifies again under its lock); only then is the
//! new version swapped in. A version that fails to verify or load never stops the old one serving.
//!
//! Only registry-backed models change: a plain `path` entry has no versions to move between.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_core::{GuardId, Reason, Rejection, Severity};
use rampart_crypto::sign::VerifyingKey;
use rampart_detect::Baseline;
use rampart_model::{Backend, ModelInfo, TractModel};
use rampart_pipeline::Pipeline;
use rampart_registry::{
    HistoryEntry, ModelName, Note, Registry, RegistryError, Trust, VerifiedVersion, Version,
};

use crate::config::ModelConfig;
use crate::gateway::ServedModel;
use crate::harden::BlockingPool;
use crate::runner::Runner;

/// Where a model's versions come from.
pub(crate) enum Source {
    /// A plain `path`: one version for the life of the process.
    File,
    /// An upstream model server (proxy mode): its versions are the upstream's business; the metadata is read
    /// once at start-up.
    Upstream,
    /// A signed registry.
    Registry {
        registry: Registry,
        name: ModelName,
        key: Arc<VerifyingKey>,
    },
}

/// One configured model and the version serving now.
pub(crate) struct ModelSlot {
    current: ArcSwap<ServedModel>,
    source: Source,
    /// The entry's guards and labels: every version is built with them.
    config: ModelConfig,
    /// One change at a time per model (an admin call, a responder and the registry watcher may race).
    changing: tokio::sync::Mutex<()>,
    /// The gateway's pool for hardened calls: a new version is hardened as its config says, like the first.
    pool: Arc<BlockingPool>,
}

/// What to change to.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Make this version active.
    Activate(Version),
    /// Return to the previous active version.
    Rollback,
    /// Serve what the registry's `active.json` names now (changed by the CLI while serving); writes nothing.
    Follow,
}

impl Change {
    /// The name recorded in the audit.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Activate(_) => "activate",
            Self::Rollback => "rollback",
            Self::Follow => "follow_registry",
        }
    }
}

/// A change that took effect.
#[derive(Debug)]
pub(crate) struct Changed {
    pub(crate) from: String,
    pub(crate) to: String,
    /// The registry's history line (none when following a change made outside).
    pub(crate) entry: Option<HistoryEntry>,
}

/// Why a change did not happen; the old version serves on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SwapError {
    /// The model is a plain `path` entry.
    #[error("the model is not served from a registry")]
    NotRegistry,
    /// Nothing to do, or not possible now (already active, no previous version, locked).
    #[error("{0}")]
    Conflict(String),
    /// No such version.
    #[error("{0}")]
    NoSuchVersion(String),
    /// It does not verify (the message names the file, the key or the signature).
    #[error("{0}")]
    Refused(String),
    /// It verified but could not be loaded, or the registry could not be read or written.
    #[error("{0}")]
    Failed(String),
}

impl SwapError {
    /// The refusal the admin API answers with. The caller is an operator: the detail names the file.
    pub(crate) fn rejection(&self) -> Rejection {
        let (reason, detail) = match self {
            Self::NotRegistry | Self::Conflict(_) => (Reason::Conflict, self.to_string()),
            Self::NoSuchVersion(_) => (Reason::NotFound, "no such version".to_owned()),
            Self::Refused(_) => (Reason::VersionRefused, self.to_string()),
            Self::Failed(_) => (Reason::Internal, String::new()),
        };
        let r = Rejection::new(reason, GuardId::ROUTE).with_severity(Severity::High);
        if detail.is_empty() {
            r
        } else {
            r.with_detail(detail)
        }
    }
}

impl From<RegistryError> for SwapError {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::NoSuchVersion { .. } | RegistryError::NoSuchModel { .. } => {
                Self::NoSuchVersion(e.to_string())
            }
            RegistryError::Refused { .. } => Self::Refused(e.to_string()),
            RegistryError::AlreadyActive { .. }
            | RegistryError::NoPrevious { .. }
            | RegistryError::NotActive { .. }
            | RegistryError::Locked { .. } => Self::Conflict(e.to_string()),
            _ => Self::Failed(e.to_string()),
        }
    }
}

impl ModelSlot {
    pub(crate) fn new(
        served: ServedModel,
        source: Source,
        config: ModelConfig,
        pool: Arc<BlockingPool>,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(served),
            source,
            config,
            changing: tokio::sync::Mutex::new(()),
            pool,
        }
    }

    /// The version serving now; a request holds it until it is answered.
    pub(crate) fn current(&self) -> Arc<ServedModel> {
        self.current.load_full()
    }

    /// The entry's class labels (the same for every version).
    pub(crate) fn labels(&self) -> &[String] {
        &self.config.labels
    }

    /// The registry and model name, for registry-backed models.
    pub(crate) fn registry(&self) -> Option<(&Registry, &ModelName)> {
        match &self.source {
            Source::Registry { registry, name, .. } => Some((registry, name)),
            Source::File | Source::Upstream => None,
        }
    }

    /// Verifies and loads the target version off the request path, records the change in the registry,
    /// then swaps it in. `note` says who and why, for the registry's history.
    ///
    /// # Errors
    /// [`SwapError`]; the old version is still serving.
    pub(crate) async fn change(&self, change: Change, note: Note) -> Result<Changed, SwapError> {
        let Source::Registry {
            registry,
            name,
            key,
        } = &self.source
        else {
            return Err(SwapError::NotRegistry);
        };
        let _one_at_a_time = self.changing.lock().await;
        let old = self.current();
        let (registry, name, key) = (registry.clone(), name.clone(), key.clone());
        let config = self.config.clone();
        let from = old.version.clone();
        let old_for_work = old.clone();
        let pool = Arc::clone(&self.pool);
        let work = move || -> Result<(ServedModel, Option<HistoryEntry>), SwapError> {
            let target = match &change {
                Change::Activate(v) => v.clone(),
                Change::Rollback => registry.previous(&name)?.ok_or_else(|| {
                    SwapError::Conflict(format!("{name}: no previous version to roll back to"))
                })?,
                Change::Follow => registry
                    .active(&name)?
                    .ok_or_else(|| SwapError::Conflict(format!("{name}: no active version")))?,
            };
            if target.as_str() == old_for_work.version && !matches!(change, Change::Rollback) {
                return Err(SwapError::Conflict(format!(
                    "{name} {target} is already active"
                )));
            }
            let verified = registry.verify(&name, &target, &key)?;
            let (info, mut pipeline) =
                load_verified(&config, &verified).map_err(SwapError::Failed)?;
            pipeline.share_limiter_of(&old_for_work.pipeline);
            // Built before the registry is written: a version whose hardening cannot be built is not served.
            let runner = Runner::for_model(&config, pipeline.backend(), None, &pool)
                .map_err(|e| SwapError::Failed(e.to_string()))?;
            let entry = match change {
                Change::Activate(v) => {
                    Some(registry.activate(&name, &v, Trust::Verify(&key), &note)?)
                }
                Change::Rollback => {
                    let entry = registry.rollback(&name, Trust::Verify(&key), &note)?;
                    // Another process changed the history between `previous` and here: what was loaded is
                    // not what the registry now names; the watcher will follow it.
                    if entry.to != target {
                        return Err(SwapError::Conflict(format!(
                            "{name}: the registry changed during the rollback (now {}); retry",
                            entry.to
                        )));
                    }
                    Some(entry)
                }
                Change::Follow => None,
            };
            let served = ServedModel {
                name: old_for_work.name.clone(),
                version: target.as_str().to_owned(),
                info,
                runner,
                pipeline,
                metrics: old_for_work.metrics.clone(),
            };
            Ok((served, entry))
        };
        let (served, entry) = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| SwapError::Failed(format!("loading task failed: {e}")))??;
        let to = served.version.clone();
        self.current.store(Arc::new(served));
        tracing::warn!(model = %old.name, from = %from, to = %to, "model version swapped");
        Ok(Changed { from, to, entry })
    }
}

/// Builds a version's pipeline from its verified bytes (blocking: hashing and the tract plan). The bytes are
/// checked against the signed digests again as they are read, so a file swapped after verification is never
/// loaded.
///
/// # Errors
/// The message names the file and what failed.
pub(crate) fn load_verified(
    m: &ModelConfig,
    v: &VerifiedVersion,
) -> Result<(ModelInfo, Pipeline), String> {
    let model_path = v.model_path();
    let bytes = v.read_model().map_err(|e| e.to_string())?;
    let backend = TractModel::load_bytes(&model_path.display().to_string(), &bytes)
        .map_err(|e| e.to_string())?;
    let baseline_path = v.baseline_path();
    let text = v.read_baseline().map_err(|e| e.to_string())?;
    let baseline: Baseline = serde_json::from_slice(&text)
        .map_err(|e| format!("baseline {}: {e}", baseline_path.display()))?;
    baseline
        .validate()
        .map_err(|e| format!("baseline {}: {e}", baseline_path.display()))?;
    let info = backend.info().clone();
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let pipeline = Pipeline::build(&m.pipeline(), backend, Some(Arc::new(baseline)), &m.labels)
        .map_err(|e| e.to_string())?;
    Ok((info, pipeline))
}

/// Follows changes of `active.json` made outside the process (`rampart model activate|rollback` while the
/// gateway serves): every `every`, each registry-backed model whose active version differs from the one
/// serving is verified, loaded and swapped in. A version that does not verify is alerted and not served.
pub(crate) fn spawn_registry_watcher(
    shared: std::sync::Weak<crate::gateway::Shared>,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What the last failed attempt was about, so a bad version is alerted once, not every tick.
        let mut failed: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        loop {
            tick.tick().await;
            let Some(s) = shared.upgrade() else { return };
            for slot in s.slots() {
                let Some((registry, name)) = slot.registry() else {
                    continue;
                };
                let (registry, name) = (registry.clone(), name.clone());
                let active = tokio::task::spawn_blocking(move || registry.active(&name)).await;
                let Ok(Ok(Some(active))) = active else {
                    continue;
                };
                let serving = slot.current();
                if active.as_str() == serving.version
                    || failed.get(&serving.name) == Some(&active.as_str().to_owned())
                {
                    continue;
                }
                let note = Note::now("registry", "active.json changed outside the gateway");
                match slot.change(Change::Follow, note).await {
                    Ok(changed) => {
                        failed.remove(&serving.name);
                        s.record_model_change(&serving.name, &Change::Follow, &changed, "registry")
                            .await;
                    }
                    // Raced with an admin change that already served it.
                    Err(SwapError::Conflict(_)) => {}
                    Err(e) => {
                        failed.insert(serving.name.clone(), active.as_str().to_owned());
                        s.raise_model_alert(
                            &serving.name,
                            "model_version_refused",
                            format!(
                                "the registry names version {active}, which is not served: {e}"
                            ),
                        );
                    }
                }
            }
        }
    });
}

impl crate::gateway::Shared {
    /// Records a version change that took effect: an `action` audit record naming both versions, and an
    /// alert of kind `model_version_changed`.
    pub(crate) async fn record_model_change(
        &self,
        model: &str,
        change: &Change,
        changed: &Changed,
        by: &str,
    ) {
        let mut fields = serde_json::json!({
            "action": change.name(),
            "model": model,
            "from": changed.from,
            "to": changed.to,
            "by": by,
        });
        if let Some(entry) = &changed.entry {
            fields["why"] = entry.why.clone().into();
            fields["key_id"] = serde_json::json!(entry.key_id);
            fields["model_sha256"] = serde_json::json!(entry.model_sha256);
        }
        if let Err(e) = self.audit_action(&fields).await {
            // The swap has happened; the missing record is itself alerted.
            self.raise_internal(e);
        }
        self.raise_model_alert(
            model,
            "model_version_changed",
            format!(
                "{} of {model}: version {} → {} (by {by})",
                change.name(),
                changed.from,
                changed.to
            ),
        );
    }

    /// Raises an alert about a model (no identity, no request).
    pub(crate) fn raise_model_alert(&self, model: &str, kind: &'static str, detail: String) {
        self.alerts.raise(crate::alerts::Alert {
            time: time::OffsetDateTime::now_utc(),
            kind,
            severity: Severity::Medium,
            model: Some(model.to_owned()),
            identity: None,
            request_id: None,
            detail,
        });
    }
}
