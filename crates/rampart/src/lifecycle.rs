//! Signals of a running `rampart serve`:
//! - SIGTERM (the orchestrator's stop): readiness turns false first, the gateway keeps serving for
//!   `--drain-delay-ms` while load balancers take the replica out, then stops accepting, finishes in-flight
//!   requests and flushes the audit log (`serve.rs`).
//! - SIGINT (Ctrl-C, interactive): the same without the delay.
//! - SIGHUP: the keys file is re-read and swapped in whole by its own reloader (rampart-server's
//!   `access.rs`, which listens for SIGHUP too), so no request is refused or dropped meanwhile; here the config
//!   file is re-read and validated, and what it changed beyond the keys is reported as needing a restart
//!   (models, listeners and the audit log are not swapped under live traffic). Without this handler SIGHUP's
//!   default action would kill the process when no keys file is configured.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Why serving stops.
pub(crate) enum Stop {
    /// SIGTERM: drain with readiness false first.
    Terminate,
    /// SIGINT or Ctrl-C.
    Interrupt,
}

/// Waits for SIGTERM or SIGINT, handling every SIGHUP meanwhile.
pub(crate) async fn run_until_stopped(config_file: Option<&Path>) -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let started = config_file.and_then(digest_of);
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
                _ = hup.recv() => recheck_config(config_file, started.as_ref()),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = config_file;
        let _ = tokio::signal::ctrl_c().await;
        Stop::Interrupt
    }
}

/// SIGHUP's config half: a broken file on disk is reported now rather than at the next restart, and a changed
/// one is named as waiting for a restart.
fn recheck_config(config_file: Option<&Path>, started: Option<&[u8; 32]>) {
    let Some(path) = config_file else {
        tracing::info!("SIGHUP: the embedded demo has no config file or keys file to reload");
        return;
    };
    let cfg = match rampart_server::config::RawConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("SIGHUP: the config file no longer parses (still serving the one loaded at start): {e}");
            return;
        }
    };
    let errors = cfg.validate();
    if !errors.is_empty() {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        tracing::error!(
            "SIGHUP: the config file no longer validates (still serving the one loaded at start): {}",
            text.join("; ")
        );
        return;
    }
    if digest_of(path).as_ref() == started {
        tracing::info!("SIGHUP: keys file re-read; config file unchanged");
    } else {
        tracing::warn!(
            file = %path.display(),
            "SIGHUP: keys file re-read; the config file changed and validates, and its other changes take \
             effect at the next restart (a rolling restart in Kubernetes)"
        );
    }
}

fn digest_of(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(b).into())
}
