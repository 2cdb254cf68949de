//! SIGHUP's config half: what a changed config file may change in a running gateway, applied without
//! dropping or failing a request.
//!
//! Applied live, each with one atomic swap (a request reads the old or the new value, never half of one):
//! - `[roles]`: the whole table, swapped in an [`arc_swap::ArcSwap`]; the next request's grants use it;
//! - each model's `rate_limit`: a new limiter swapped into the serving pipeline (see
//!   `Pipeline::set_rate_limit`: the new quota starts full; tightened identities stay tightened);
//! - `[alerts] rate_limit_storm` and `dedupe_secs`.
//!
//! The keys file has its own reloader (`access.rs`), which SIGHUP wakes too. Everything else is reported as
//! needing a restart and otherwise ignored: listeners, TLS, `[auth]`, the audit log, the alert file and webhook,
//! monitoring, incident rules, the review queue, `[state]`, and a model entry's other fields or the set of
//! models (a model is swapped only through its registry, where its signature is verified). A config that
//! does not validate changes nothing.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use crate::config::RawConfig;
use crate::gateway::Gateway;
use crate::rbac::Roles;

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Settings now in force (config paths, such as `roles` or `models[demo].rate_limit`).
    pub applied: Vec<String>,
    /// Settings that changed in the file but take effect only at the next restart.
    pub needs_restart: Vec<String>,
}

impl Reloaded {
    /// Whether the file changed nothing.
    #[must_use]
    pub fn unchanged(&self) -> bool {
        self.applied.is_empty() && self.needs_restart.is_empty()
    }
}

/// Configs are compared through their `Debug` text: every section derives it (and validation has refused
/// NaN, the one value whose text equals while it differs). The text is never logged.
fn differs<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

impl Gateway {
    /// Applies what `next` changes that can change live, and names the rest.
    ///
    /// # Errors
    /// The validation errors of `next`, joined; nothing is applied then.
    pub fn reload(&self, next: &RawConfig) -> Result<Reloaded, String> {
        let errors = next.validate();
        if !errors.is_empty() {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(text.join("; "));
        }
        let shared = &self.shared;
        let mut current = shared.config.lock();
        let mut out = Reloaded::default();

        if differs(&current.roles, &next.roles) {
            shared
                .roles
                .store(Arc::new(Roles::from_config(next.roles.as_ref())));
            current.roles.clone_from(&next.roles);
            out.applied.push("roles".into());
        }

        let (a, b) = (&current.alerts, &next.alerts);
        if a.rate_limit_storm != b.rate_limit_storm || a.dedupe_secs != b.dedupe_secs {
            shared
                .alerts
                .set_limits(b.rate_limit_storm, Duration::from_secs(b.dedupe_secs));
            current.alerts.rate_limit_storm = b.rate_limit_storm;
            current.alerts.dedupe_secs = b.dedupe_secs;
            out.applied
                .push("alerts.rate_limit_storm, alerts.dedupe_secs".into());
        }
        if differs(&current.alerts.file, &next.alerts.file)
            || differs(&current.alerts.webhook, &next.alerts.webhook)
        {
            out.needs_restart.push("alerts.file, alerts.webhook".into());
        }

        let names = |c: &RawConfig| c.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        if names(&current) != names(next) {
            out.needs_restart
                .push("models (added, removed or reordered)".into());
        }
        for m in &next.models {
            let Some(old) = current.models.iter_mut().find(|o| o.name == m.name) else {
                continue;
            };
            let Some(slot) = shared.slot(&m.name) else {
                continue;
            };
            if differs(&old.rate_limit, &m.rate_limit) {
                // Validated above: a zero quota cannot reach here; were it to, the old limiter stays.
                match slot.current().pipeline.set_rate_limit(&m.rate_limit) {
                    Ok(()) => {
                        old.rate_limit = m.rate_limit.clone();
                        out.applied.push(format!("models[{}].rate_limit", m.name));
                    }
                    Err(e) => out
                        .needs_restart
                        .push(format!("models[{}].rate_limit ({e})", m.name)),
                }
            }
            let mut rest = m.clone();
            rest.rate_limit = old.rate_limit.clone();
            if differs(old, &rest) {
                out.needs_restart.push(format!("models[{}]", m.name));
            }
        }

        let sections: [(&str, bool); 8] = [
            ("server", differs(&current.server, &next.server)),
            ("auth", differs(&current.auth, &next.auth)),
            ("audit", differs(&current.audit, &next.audit)),
            ("monitoring", differs(&current.monitoring, &next.monitoring)),
            ("incidents", differs(&current.incidents, &next.incidents)),
            ("review", differs(&current.review, &next.review)),
            ("state", differs(&current.state, &next.state)),
            ("base_dir", current.base_dir != next.base_dir),
        ];
        out.needs_restart.extend(
            sections
                .iter()
                .filter(|(_, changed)| *changed)
                .map(|(name, _)| (*name).to_owned()),
        );
        Ok(out)
    }
}
