//! Signals of a running `rampart serve`:
//! - SIGTERM (the orchestrator's stop): readiness turns false first, the gateway keeps serving for
//!   `--drain-delay-ms` while load balancers take the replica out, then stops accepting, finishes in-flight
//!   requests and flushes the audit log (`serve.rs`).
//! - SIGINT (Ctrl-C, interactive): the same without the delay.
//! - SIGHUP: the keys file is re-read and swapped in whole by its own reloader (rampart-server's
//!   `access.rs`, which listens for SIGHUP too); here the config file is re-read and validated, and what can
//!   change live is swapped in atomically ([`rampart_server::Gateway::reload`]: `[roles]`, each model's
//!   `rate_limit`, `[alerts] rate_limit_storm` and `dedupe_secs`), so no request is refused or dropped
//!   meanwhile. Every other change is logged as needing a restart (models, listeners, TLS, the audit log…) and
//!   otherwise ignored; a file that no longer parses or validates changes nothing. Without this handler
//!   SIGHUP's default action would kill the process when no keys file is configured.

use std::path::Path;

use rampart_server::Gateway;

/// Why serving stops.
pub(crate) enum Stop {
    /// SIGTERM: drain with readiness false first.
    Terminate,
    /// SIGINT or Ctrl-C.
    Interrupt,
}

/// Waits for SIGTERM or SIGINT, handling every SIGHUP meanwhile.
pub(crate) async fn run_until_stopped(config_file: Option<&Path>, gateway: &Gateway) -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!(
                "cannot install the SIGTERM/SIGHUP handlers: only Ctrl-C stops the server"
            );
            let _ = tokio::signal::ctrl_c().await;
            return Stop::Interrupt;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Stop::Interrupt,
                _ = term.recv() => return Stop::Terminate,
                _ = hup.recv() => reload_config(config_file, gateway),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (config_file, gateway);
        let _ = tokio::signal::ctrl_c().await;
        Stop::Interrupt
    }
}

/// SIGHUP's config half: a broken file on disk is reported now rather than at the next restart; a valid one
/// is applied as far as it can be live, and the rest is named as waiting for a restart.
fn reload_config(config_file: Option<&Path>, gateway: &Gateway) {
    let Some(path) = config_file else {
        tracing::info!("SIGHUP: the embedded demo has no config file or keys file to reload");
        return;
    };
    let cfg = match rampart_server::config::RawConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("SIGHUP: the config file no longer parses (still serving the one loaded before): {e}");
            return;
        }
    };
    let reloaded = match gateway.reload(&cfg) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(
                "SIGHUP: the config file no longer validates (still serving the one loaded before): {e}"
            );
            return;
        }
    };
    if reloaded.unchanged() {
        tracing::info!("SIGHUP: keys file re-read; config file unchanged");
        return;
    }
    if !reloaded.applied.is_empty() {
        tracing::info!(
            file = %path.display(),
            "SIGHUP: keys file re-read; config reloaded: {} now in force",
            reloaded.applied.join(", ")
        );
    }
    if !reloaded.needs_restart.is_empty() {
        tracing::warn!(
            file = %path.display(),
            "SIGHUP: these config changes need a restart (a rolling restart in Kubernetes) and are ignored \
             until then: {}",
            reloaded.needs_restart.join(", ")
        );
    }
}
