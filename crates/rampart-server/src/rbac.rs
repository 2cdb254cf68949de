//! Role-based access control. A role maps to permissions; an identity's grants are the union over its roles.
//! Checked per request before the pipeline runs, and before routing, so a caller not allowed a model cannot
//! learn whether it exists (403 `forbidden` either way).
//!
//! Permissions: `predict:<model>`, `predict:*`, `output:full` (full class probabilities instead of the
//! model's configured sanitization), `output:certificate` (randomized smoothing's certified radius, for a
//! model in CERTIFY mode), `admin:models`, `admin:deploy` (activate and roll back model versions),
//! `admin:review`, `admin:identities`, `admin:incidents`, `admin:audit`, `admin:metrics` and `admin:*`.

use std::collections::{BTreeMap, HashMap, HashSet};

use rampart_core::Identity;

/// An admin area of the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdminArea {
    /// The model list.
    Models,
    /// The human review queue (list, resolve).
    Review,
    /// Identity block and unblock.
    Identities,
    /// Audit verification.
    Audit,
    /// Changing the served model version (activate, rollback): more than reading the model list.
    Deploy,
    /// Incident actions (list, lift).
    Incidents,
    /// `/metrics`, when the admin listener is not on loopback.
    Metrics,
}

/// One permission.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permission {
    /// `predict:<model>`, or `predict:*` (`None`).
    Predict(Option<String>),
    /// `output:full`.
    OutputFull,
    /// `output:certificate`.
    OutputCertificate,
    /// `admin:<area>`, or `admin:*` (`None`).
    Admin(Option<AdminArea>),
}

impl Permission {
    /// Parses `predict:fraud`, `admin:*`, …; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, what) = text.split_once(':')?;
        match (kind, what) {
            ("predict", "*") => Some(Self::Predict(None)),
            ("predict", m) if !m.is_empty() => Some(Self::Predict(Some(m.to_owned()))),
            ("output", "full") => Some(Self::OutputFull),
            ("output", "certificate") => Some(Self::OutputCertificate),
            ("admin", "*") => Some(Self::Admin(None)),
            ("admin", "models") => Some(Self::Admin(Some(AdminArea::Models))),
            ("admin", "review") => Some(Self::Admin(Some(AdminArea::Review))),
            ("admin", "identities") => Some(Self::Admin(Some(AdminArea::Identities))),
            ("admin", "audit") => Some(Self::Admin(Some(AdminArea::Audit))),
            ("admin", "deploy") => Some(Self::Admin(Some(AdminArea::Deploy))),
            ("admin", "incidents") => Some(Self::Admin(Some(AdminArea::Incidents))),
            ("admin", "metrics") => Some(Self::Admin(Some(AdminArea::Metrics))),
            _ => None,
        }
    }
}

/// The role table.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    by_name: HashMap<String, Vec<Permission>>,
}

/// What one identity may do: the union of its roles' permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    predict_all: bool,
    predict: HashSet<String>,
    output_full: bool,
    output_certificate: bool,
    admin_all: bool,
    admin: HashSet<AdminArea>,
}

impl Grants {
    /// May the identity call this model?
    pub fn may_predict(&self, model: &str) -> bool {
        self.predict_all || self.predict.contains(model)
    }

    /// Does it see full probabilities?
    pub fn output_full(&self) -> bool {
        self.output_full
    }

    /// Does it see certified radii?
    pub fn output_certificate(&self) -> bool {
        self.output_certificate
    }

    /// May it use this admin area?
    pub fn may_admin(&self, area: AdminArea) -> bool {
        self.admin_all || self.admin.contains(&area)
    }
}

impl Roles {
    /// The roles used when the config has no `[roles]`: `predictor` and `anonymous` may predict with every
    /// model (so keys made before roles existed keep working, and `anonymous = true` still serves), `admin`
    /// may use every admin area. No built-in role grants `output:full`: full probabilities are opt-in.
    pub fn builtin() -> Self {
        let mut by_name = HashMap::new();
        by_name.insert("predictor".to_owned(), vec![Permission::Predict(None)]);
        by_name.insert("anonymous".to_owned(), vec![Permission::Predict(None)]);
        by_name.insert("admin".to_owned(), vec![Permission::Admin(None)]);
        Self { by_name }
    }

    /// The `[roles]` table, or the built-in one when absent. Unknown permissions are skipped here; config
    /// validation has refused them already.
    pub fn from_config(table: Option<&BTreeMap<String, Vec<String>>>) -> Self {
        let Some(table) = table else {
            return Self::builtin();
        };
        let by_name = table
            .iter()
            .map(|(role, perms)| {
                let perms = perms.iter().filter_map(|p| Permission::parse(p)).collect();
                (role.clone(), perms)
            })
            .collect();
        Self { by_name }
    }

    /// The grants of an identity; a role not in the table grants nothing.
    pub fn grants(&self, identity: &Identity) -> Grants {
        let mut g = Grants::default();
        for perm in identity
            .roles()
            .iter()
            .filter_map(|r| self.by_name.get(r))
            .flatten()
        {
            match perm {
                Permission::Predict(None) => g.predict_all = true,
                Permission::Predict(Some(m)) => {
                    g.predict.insert(m.clone());
                }
                Permission::OutputFull => g.output_full = true,
                Permission::OutputCertificate => g.output_certificate = true,
                Permission::Admin(None) => g.admin_all = true,
                Permission::Admin(Some(a)) => {
                    g.admin.insert(*a);
                }
            }
        }
        g
    }
}

#[cfg(test)]
mod tests;
