//! Automatic incident response: `[[incidents.rules]]` turn alerts into actions that later requests feel.
//!
//! The alert bus hands every alert — with the real identity, before it is pseudonymized for display, and
//! before deduplication, so a repeat after an action expired is acted on again — to one responder task. For
//! each rule whose `on` is the alert's kind, the responder applies the rule's action to the alert's identity
//! or model:
//!
//! - `block_identity`: 403 `blocked` for `duration_secs` (the blocklist, persisted: a restart does not lift it;
//!   with `[state] backend = "redis"` every replica refuses the identity, see `shared_state.rs`);
//! - `label_only_identity` / `label_only_model`: answers keep their labels and lose their confidences and
//!   runners-up (what model extraction learns most from), applied where the answer is rendered;
//! - `tighten_rate_limit`: the identity's rate and burst are divided by `factor` (its own quota, on top of
//!   the model's);
//! - `quarantine_model`: the model rolls back to its previous registry version (a registry-backed model
//!   only); it lasts until an operator activates a version, so it has no duration and is not listed below.
//!
//! Every action is an `action` audit record and an `incident_action` alert; so are its lifting (admin API)
//! and its expiry. An action already in force for the same target is not applied twice. Expiry needs no
//! restart: blocks and label-only checks compare times on every request, and a sweeper lifts what expired
//! each second (tightened limits end there). Time-bound actions other than blocks live in memory only.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use rampart_core::Severity;

use crate::alerts::Alert;
use crate::gateway::Shared;

/// `[incidents]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[[incidents.rules]]`, applied in order. Default: none (alerts are raised, nothing is done).
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// One rule: `{ on = "anomalous_input", action = "block_identity", duration_secs = 600 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The alert kind that triggers it (one of [`ALERT_KINDS`]).
    pub on: String,
    /// What to do.
    pub action: ActionKind,
    /// How long the action lasts, in seconds (1 to 30 days). Required, except for `quarantine_model`, which
    /// lasts until a version is activated and refuses it.
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// `tighten_rate_limit` only, required: the identity's rate and burst are divided by it (at least 2).
    #[serde(default)]
    pub factor: Option<u32>,
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 403 `blocked` for the alert's identity.
    BlockIdentity,
    /// Labels only for the alert's identity.
    LabelOnlyIdentity,
    /// Labels only for every caller of the alert's model.
    LabelOnlyModel,
    /// A smaller rate limit for the alert's identity (on the alert's model, or every model).
    TightenRateLimit,
    /// Roll the alert's model back to its previous registry version.
    QuarantineModel,
}

impl ActionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::BlockIdentity => "block_identity",
            Self::LabelOnlyIdentity => "label_only_identity",
            Self::LabelOnlyModel => "label_only_model",
            Self::TightenRateLimit => "tighten_rate_limit",
            Self::QuarantineModel => "quarantine_model",
        }
    }

    fn needs_identity(self) -> bool {
        matches!(
            self,
            Self::BlockIdentity | Self::LabelOnlyIdentity | Self::TightenRateLimit
        )
    }
}

/// The alert kinds a rule may name: those the gateway raises, and those its monitors raise (see
/// [`crate::monitor`]). A kind outside this list is a config error, so that a typo cannot leave a response
/// switched off.
pub const ALERT_KINDS: &[&str] = &[
    "anomalous_input",
    "model_unavailable",
    "rate_limit_storm",
    "audit_unavailable",
    "review_queue_unavailable",
    "internal",
    "shared_state_unavailable",
    "model_extraction",
    "data_drift",
    "prediction_drift",
    "latency_change",
    "error_rate_change",
    "accuracy_drop",
];

/// Alerts the responder raises or causes itself: never acted on (an action must not trigger actions).
const OWN_KINDS: &[&str] = &[
    "incident_action",
    "model_version_changed",
    "model_version_refused",
];

/// The longest action: 30 days.
const MAX_DURATION_SECS: u64 = 30 * 86_400;

/// Alerts waiting for the responder before new ones are dropped (and counted).
pub(crate) const QUEUE: usize = 1024;

impl Config {
    /// Every problem of `[incidents]`, as (path, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let mut err = |field: &str, message: String| {
                errors.push((format!("incidents.rules[{i}].{field}"), message));
            };
            if OWN_KINDS.contains(&r.on.as_str()) {
                err(
                    "on",
                    format!(
                        "{} is raised by incident actions themselves: a rule on it would loop",
                        r.on
                    ),
                );
            } else if !ALERT_KINDS.contains(&r.on.as_str()) {
                err(
                    "on",
                    format!("unknown alert kind; one of {}", ALERT_KINDS.join(", ")),
                );
            }
            match (r.action, r.duration_secs) {
                (ActionKind::QuarantineModel, Some(_)) => err(
                    "duration_secs",
                    "a quarantine lasts until a version is activated: remove duration_secs".into(),
                ),
                (ActionKind::QuarantineModel, None) => {}
                (_, None) => err(
                    "duration_secs",
                    "required: how long the action lasts".into(),
                ),
                (_, Some(d)) if d == 0 || d > MAX_DURATION_SECS => err(
                    "duration_secs",
                    format!("must be between 1 and {MAX_DURATION_SECS} (30 days)"),
                ),
                _ => {}
            }
            match (r.action, r.factor) {
                (ActionKind::TightenRateLimit, None) => err(
                    "factor",
                    "required: the divisor of the identity's rate (at least 2)".into(),
                ),
                (ActionKind::TightenRateLimit, Some(f)) if f < 2 => {
                    err("factor", "must be at least 2".into())
                }
                (ActionKind::TightenRateLimit, Some(_)) | (_, None) => {}
                (_, Some(_)) => err("factor", "only tighten_rate_limit takes a factor".into()),
            }
        }
        errors
    }
}

/// An action in force, as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ActiveAction {
    /// Lift it with `DELETE /admin/incidents/{id}`.
    pub(crate) id: String,
    pub(crate) action: ActionKind,
    /// The alert kind that caused it.
    pub(crate) on: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) until: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) factor: Option<u32>,
    /// The request whose alert caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
    #[serde(skip)]
    expires: Instant,
    /// The blocklist's end time (Unix ms), to lift exactly this block.
    #[serde(skip)]
    block_until_ms: i64,
}

/// The responder's state: the rules, the actions in force, and what the request path reads.
pub(crate) struct Incidents {
    rules: Vec<RuleConfig>,
    active: Mutex<Vec<ActiveAction>>,
    /// identity → end, for `label_only_identity`; read once per answer, no lock.
    label_only_identities: ArcSwap<HashMap<String, Instant>>,
    /// model → end, for `label_only_model`.
    label_only_models: ArcSwap<HashMap<String, Instant>>,
}

/// Why lifting failed.
#[derive(Debug)]
pub(crate) enum LiftError {
    /// No action in force has this id.
    Unknown,
    /// The blocklist could not be written.
    Io(std::io::Error),
}

impl Incidents {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            rules: config.rules.clone(),
            active: Mutex::new(Vec::new()),
            label_only_identities: ArcSwap::from_pointee(HashMap::new()),
            label_only_models: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Whether any rule is configured (otherwise no responder runs).
    pub(crate) fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Whether answers to `identity` from `model` must be labels only now.
    pub(crate) fn label_only(&self, identity: &str, model: &str) -> bool {
        // No rules, nothing to look up: the request path pays nothing for an unused feature.
        if self.rules.is_empty() {
            return false;
        }
        let now = Instant::now();
        let live = |m: &HashMap<String, Instant>, k: &str| m.get(k).is_some_and(|end| now < *end);
        live(&self.label_only_identities.load(), identity)
            || live(&self.label_only_models.load(), model)
    }

    /// The actions in force.
    pub(crate) fn list(&self) -> Vec<ActiveAction> {
        let now = Instant::now();
        self.active
            .lock()
            .iter()
            .filter(|a| now < a.expires)
            .cloned()
            .collect()
    }

    fn in_force(&self, action: ActionKind, identity: Option<&str>, model: Option<&str>) -> bool {
        let now = Instant::now();
        self.active.lock().iter().any(|a| {
            a.action == action
                && now < a.expires
                && a.identity.as_deref() == identity
                && a.model.as_deref() == model
        })
    }
}

fn set_entry(map: &ArcSwap<HashMap<String, Instant>>, key: &str, end: Option<Instant>) {
    map.rcu(|m| {
        let mut m = HashMap::clone(m);
        match end {
            Some(end) => {
                m.insert(key.to_owned(), end);
            }
            None => {
                m.remove(key);
            }
        }
        m
    });
}

/// Starts the responder (alerts → actions) and the expiry sweeper; both end with the gateway.
pub(crate) fn spawn(shared: Weak<Shared>, mut rx: mpsc::Receiver<Alert>) {
    let sweeper = shared.clone();
    tokio::spawn(async move {
        while let Some(alert) = rx.recv().await {
            let Some(s) = shared.upgrade() else { return };
            if OWN_KINDS.contains(&alert.kind) {
                continue;
            }
            let rules: Vec<RuleConfig> = s
                .incidents
                .rules
                .iter()
                .filter(|r| r.on == alert.kind)
                .cloned()
                .collect();
            for rule in rules {
                apply(&s, &rule, &alert).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(s) = sweeper.upgrade() else { return };
            expire(&s).await;
        }
    });
}

/// Applies one rule to one alert.
async fn apply(s: &Arc<Shared>, rule: &RuleConfig, alert: &Alert) {
    let identity = alert.identity.as_deref();
    let model = alert.model.as_deref();
    if rule.action.needs_identity() && identity.is_none() {
        tracing::debug!(
            kind = alert.kind,
            "rule {} needs an identity; the alert has none",
            rule.action.as_str()
        );
        return;
    }
    if rule.action == ActionKind::QuarantineModel {
        if let Some(model) = model {
            quarantine(s, rule, alert, model).await;
        }
        return;
    }
    // The target: the identity, or for label_only_model the model; a tightened limit is per model too.
    let (target_identity, target_model) = match rule.action {
        ActionKind::LabelOnlyModel => match model {
            Some(m) => (None, Some(m)),
            None => return,
        },
        ActionKind::TightenRateLimit => (identity, model),
        _ => (identity, None),
    };
    if s.incidents
        .in_force(rule.action, target_identity, target_model)
    {
        return;
    }
    let duration = Duration::from_secs(rule.duration_secs.unwrap_or(0));
    let since = OffsetDateTime::now_utc();
    let expires = Instant::now() + duration;
    let until = since + duration;
    let block_until_ms = crate::access::now_unix_ms()
        .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
    match rule.action {
        ActionKind::BlockIdentity => {
            let Some(id) = target_identity else { return };
            if let Err(e) = s.blocked.block_until(id, block_until_ms) {
                s.raise_internal(format!("incident block not written: {e}"));
                return;
            }
        }
        ActionKind::LabelOnlyIdentity => {
            let Some(id) = target_identity else { return };
            set_entry(&s.incidents.label_only_identities, id, Some(expires));
        }
        ActionKind::LabelOnlyModel => {
            let Some(m) = target_model else { return };
            set_entry(&s.incidents.label_only_models, m, Some(expires));
        }
        ActionKind::TightenRateLimit => {
            let Some(id) = target_identity else { return };
            tighten(s, id, target_model, rule.factor.unwrap_or(2));
        }
        ActionKind::QuarantineModel => return,
    }
    let action = ActiveAction {
        id: uuid::Uuid::now_v7().to_string(),
        action: rule.action,
        on: alert.kind.to_owned(),
        identity: target_identity.map(str::to_owned),
        model: target_model.map(str::to_owned),
        since,
        until,
        factor: rule
            .factor
            .filter(|_| rule.action == ActionKind::TightenRateLimit),
        request_id: alert.request_id.clone(),
        expires,
        block_until_ms,
    };
    s.incidents.active.lock().push(action.clone());
    record(s, "apply", &action, "responder").await;
}

fn tighten(s: &Shared, identity: &str, model: Option<&str>, factor: u32) {
    let id: Arc<str> = Arc::from(identity);
    for slot in s.slots() {
        let served = slot.current();
        if model.is_some_and(|m| m != served.name) {
            continue;
        }
        if let Some(l) = served.pipeline.limiter() {
            l.tighten(id.clone(), factor);
        }
    }
}

fn relax(s: &Shared, identity: &str, model: Option<&str>) {
    for slot in s.slots() {
        let served = slot.current();
        if model.is_some_and(|m| m != served.name) {
            continue;
        }
        if let Some(l) = served.pipeline.limiter() {
            l.relax(identity);
        }
    }
}

async fn quarantine(s: &Arc<Shared>, rule: &RuleConfig, alert: &Alert, model: &str) {
    use crate::swap::{Change, SwapError};
    let Some(slot) = s.slot(model).cloned() else {
        return;
    };
    let note = rampart_registry::Note::now(
        "incident responder",
        format!("quarantine on {} alert: {}", alert.kind, alert.detail),
    );
    match slot.change(Change::Rollback, note).await {
        Ok(changed) => {
            let fields = serde_json::json!({
                "action": "apply",
                "type": rule.action,
                "on": alert.kind,
                "model": model,
                "from": changed.from,
                "to": changed.to,
                "request_id": alert.request_id,
                "by": "responder",
            });
            s.record_model_change(model, &Change::Rollback, &changed, "responder")
                .await;
            finish_record(s, &fields, model, None, "quarantine_model").await;
        }
        Err(SwapError::NotRegistry) => {
            tracing::warn!(
                model,
                "quarantine_model: the model is not registry-backed; nothing to roll back to"
            );
        }
        Err(e) => s.raise_model_alert(
            model,
            "model_version_refused",
            format!("quarantine of {model} failed: {e}"),
        ),
    }
}

/// Writes the action record and raises the `incident_action` alert.
async fn record(s: &Shared, what: &str, a: &ActiveAction, by: &str) {
    let fields = serde_json::json!({
        "action": what,
        "type": a.action,
        "incident_id": a.id,
        "on": a.on,
        "identity": a.identity,
        "model": a.model,
        "until": a.until.unix_timestamp(),
        "factor": a.factor,
        "request_id": a.request_id,
        "by": by,
    });
    let model = a.model.as_deref().unwrap_or("-");
    finish_record(s, &fields, model, a.identity.as_deref(), a.action.as_str()).await;
}

async fn finish_record(
    s: &Shared,
    fields: &serde_json::Value,
    model: &str,
    identity: Option<&str>,
    kind: &str,
) {
    if let Err(e) = s.audit_action(fields).await {
        s.raise_internal(e);
    }
    let what = fields["action"].as_str().unwrap_or("apply");
    s.alerts.raise(Alert {
        time: OffsetDateTime::now_utc(),
        kind: "incident_action",
        severity: Severity::High,
        model: (model != "-").then(|| model.to_owned()),
        identity: identity.map(str::to_owned),
        request_id: fields["request_id"].as_str().map(str::to_owned),
        detail: format!("{what} {kind}"),
    });
}

/// Lifts what expired: undoes it and records the expiry.
async fn expire(s: &Arc<Shared>) {
    let now = Instant::now();
    let expired: Vec<ActiveAction> = {
        let mut active = s.incidents.active.lock();
        let (gone, kept) = active.drain(..).partition(|a| a.expires <= now);
        *active = kept;
        gone
    };
    for a in &expired {
        undo(s, a);
        if let Err(e) = s
            .audit_action(&serde_json::json!({
                "action": "expire",
                "type": a.action,
                "incident_id": a.id,
                "identity": a.identity,
                "model": a.model,
                "by": "responder",
            }))
            .await
        {
            s.raise_internal(e);
        }
    }
    if let Err(e) = s.blocked.purge_expired() {
        tracing::error!("expired blocks not purged from the file: {e}");
    }
}

/// Undoes an action's effect (the block's own expiry has already stopped it applying).
fn undo(s: &Shared, a: &ActiveAction) {
    match a.action {
        ActionKind::BlockIdentity => {
            if let Some(id) = &a.identity {
                if let Err(e) = s.blocked.lift_until(id, a.block_until_ms) {
                    tracing::error!("block not lifted from the file: {e}");
                }
            }
        }
        ActionKind::LabelOnlyIdentity => {
            if let Some(id) = &a.identity {
                set_entry(&s.incidents.label_only_identities, id, None);
            }
        }
        ActionKind::LabelOnlyModel => {
            if let Some(m) = &a.model {
                set_entry(&s.incidents.label_only_models, m, None);
            }
        }
        ActionKind::TightenRateLimit => {
            if let Some(id) = &a.identity {
                relax(s, id, a.model.as_deref());
            }
        }
        ActionKind::QuarantineModel => {}
    }
}

/// `DELETE /admin/incidents/{id}`: lifts an action in force, recorded as done by `by`.
pub(crate) async fn lift(s: &Shared, id: &str, by: &str) -> Result<ActiveAction, LiftError> {
    let found = {
        let mut active = s.incidents.active.lock();
        let now = Instant::now();
        let at = active
            .iter()
            .position(|a| a.id == id && now < a.expires)
            .ok_or(LiftError::Unknown)?;
        active.remove(at)
    };
    if found.action == ActionKind::BlockIdentity {
        if let Some(identity) = &found.identity {
            s.blocked
                .lift_until(identity, found.block_until_ms)
                .map_err(LiftError::Io)?;
        }
    } else {
        undo(s, &found);
    }
    record(s, "lift", &found, by).await;
    Ok(found)
}

#[cfg(test)]
mod tests;
