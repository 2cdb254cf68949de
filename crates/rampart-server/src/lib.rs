//! # rampart-server
//!
//! The HTTP edge of Rampart: the listeners, authentication, the routes (Open Inference Protocol v2, `/v1`,
//! and the admin API on the admin listener), TLS 1.3 and mTLS ([`tls`]), API keys, JWTs and roles ([`auth`],
//! [`jwt`], [`rbac`]), secret sources ([`secret`]), the one mapping from a [`rampart_core::Rejection`] to a response, and
//! [`config::RawConfig`], the config file that composes every crate's section.
//!
//! It owns the I/O around the request path — the bounded body read, the audit commit that must complete before
//! a response is sent, the review queue, alerts and metrics — and nothing of the decisions themselves, which
//! live in `rampart-pipeline`. A request flows: request id → authenticate → route → admit (rate limit) → body
//! (media type, size, time) → `Pipeline::evaluate` → review queue → audit commit → response.
//!
//! Proxy mode ([`upstream`]): a model served by an upstream OIP v2 server, called over a pooled HTTP(S)
//! client with the pipeline in front of it. It lives here rather than in `rampart-model`, which does no I/O:
//! the client, TLS and secrets it needs are this crate's.
//!
//! Main types: [`Gateway`] (built once from the config), [`Running`] (a gateway serving on its listeners).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod admin;
pub mod alerts;
mod audit_log;
pub mod auth;
pub mod batch;
pub mod config;
mod drain;
mod gateway;
pub mod harden;
pub mod incidents;
pub mod jwt;
pub mod listen;
pub mod metrics;
pub mod monitor;
pub mod rbac;
mod reload;
mod render;
mod resp;
pub mod respond;
pub mod review;
mod routes;
mod runner;
pub mod secret;
pub mod shared_state;
mod swap;
pub mod tls;
pub mod upstream;
pub mod webhook;
mod wipe;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use gateway::{AuthOverride, Gateway, StartError};
pub use reload::Reloaded;

/// Loads every model, baseline and pipeline of a config without serving or writing anything (the "build"
/// stage of `rampart check-config`); returns every problem.
pub fn check_build(cfg: &config::RawConfig) -> Vec<String> {
    let pool = std::sync::Arc::new(harden::BlockingPool::new(1, 0));
    let mut problems: Vec<String> = (0..cfg.models.len())
        .filter_map(|i| gateway::load_model(cfg, i, &pool).err())
        .map(|e| e.to_string())
        .collect();
    // The files `serve` would refuse to start with: certificates, the TLS key, the JWKS.
    if let Some(t) = &cfg.server.tls {
        if let Err(e) = tls::acceptor(t, |p| cfg.resolve(p)) {
            problems.push(format!("server.tls: {e}"));
        }
    }
    if let Some(j) = &cfg.auth.jwt {
        if let Err(e) = jwt::JwtVerifier::load(j, &cfg.resolve(&j.jwks_file)) {
            problems.push(format!("auth.jwt: {e}"));
        }
    }
    problems
}

/// A gateway serving on its two listeners.
pub struct Running {
    /// The inference listener's address (the real port when the config asked for port 0).
    pub addr: SocketAddr,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    /// Whether both listeners speak TLS (`https://`).
    pub tls: bool,
    gateway: Gateway,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Binds both listeners and starts serving.
    ///
    /// # Errors
    /// When a listener cannot be bound.
    pub async fn start(gateway: Gateway, cfg: &config::ServerConfig) -> std::io::Result<Self> {
        let inference = listen::bind(cfg.listen).await?;
        let admin = listen::bind(cfg.admin_listen).await?;
        let addr = inference.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let (stop, rx) = watch::channel(false);
        let opts = listen::ServeOptions {
            header_timeout: Duration::from_millis(cfg.header_read_timeout_ms),
            grace: Duration::from_secs(10),
            tls: gateway.shared.tls.clone(),
            max_connections: cfg.max_connections,
        };
        let tasks = vec![
            tokio::spawn(listen::serve(
                inference,
                routes::inference(gateway.clone()),
                opts.clone(),
                rx.clone(),
            )),
            tokio::spawn(listen::serve(
                admin,
                admin::router(gateway.clone()),
                opts,
                rx,
            )),
        ];
        Ok(Self {
            addr,
            admin_addr,
            tls: gateway.shared.tls.is_some(),
            gateway,
            stop,
            tasks,
        })
    }

    /// Stops accepting, lets in-flight requests finish, flushes the audit log.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.gateway.shutdown().await;
    }
}
