//! Who is asking.

use std::sync::Arc;

/// An authenticated caller. The id is a name chosen by the operator (an API key's `--id`), never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    id: Arc<str>,
    roles: Arc<[String]>,
}

impl Identity {
    /// An identity with roles.
    pub fn new(id: impl Into<Arc<str>>, roles: Vec<String>) -> Self {
        Self {
            id: id.into(),
            roles: roles.into(),
        }
    }

    /// The caller no credential identified (used for audit records of refused requests and for gateways that
    /// allow anonymous access explicitly).
    pub fn anonymous() -> Self {
        Self::new("anonymous", Vec::new())
    }

    /// The identity's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The shared name, cheap to clone into keys.
    pub fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// The roles granted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}
