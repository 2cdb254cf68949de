//! Draining: the first step of a graceful stop. Once [`Gateway::start_draining`] is called,
//! `/v2/health/ready` answers 503 `{"ready": false}` while every other route keeps serving, so an orchestrator
//! takes the replica out of its load balancer before [`crate::Running::shutdown`] closes the listener and waits
//! for in-flight requests.

use std::sync::atomic::Ordering;

use crate::Gateway;

impl Gateway {
    /// Reports not-ready from now on; requests are still served. Idempotent, and not undone.
    pub fn start_draining(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }

    /// Whether [`Gateway::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }
}
