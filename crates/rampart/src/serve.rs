//! `rampart serve` and `rampart check-config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use rampart_server::config::RawConfig;
use rampart_server::{AuthOverride, Gateway, Running};

use crate::{demo, lifecycle, sandbox};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Config file (TOML). Without it, the embedded demo runs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Inference listener, overriding the config (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listener (/metrics), overriding the config.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Data directory (audit, alerts, review queue), overriding the config.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run even as root (uid 0). Refused by default: the gateway faces the network.
    #[arg(long)]
    allow_root: bool,
    /// On SIGTERM, how long to keep serving while reporting not-ready, so load balancers stop sending new
    /// requests before the listener closes (Kubernetes removes endpoints asynchronously). SIGINT skips it.
    #[arg(long, default_value_t = 5000)]
    drain_delay_ms: u64,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    // The embedded demo on loopback (its default) is the README's first command, which must work as is on a
    // fresh machine — often a container or CI runner where the user is root. It is let through with a warning
    // (and still sandboxed); anything with a config, or a demo listening beyond loopback, needs --allow-root.
    let loopback_demo = args.config.is_none()
        && args.listen.is_none_or(|l| l.ip().is_loopback())
        && args.admin_listen.is_none_or(|l| l.ip().is_loopback());
    sandbox::refuse_root(args.allow_root || loopback_demo)?;
    let prepared = prepare(&args)?;
    // Before the runtime starts its worker threads: Landlock binds only the calling thread and its future
    // children (see sandbox.rs).
    let allowed = sandbox::allowed_paths(&prepared.cfg)?;
    sandbox::apply(&allowed)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(prepared, &args))
}

/// The config `serve` runs: read from the file, or the embedded demo materialized in the data directory,
/// with the command line's overrides applied.
struct Prepared {
    cfg: RawConfig,
    auth: AuthOverride,
    demo_key: Option<String>,
    config_file: Option<PathBuf>,
}

fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let demo_mode = args.config.is_none();
    let config_file = args.config.as_deref().map(absolute).transpose()?;
    let (mut cfg, auth, demo_key) = match &config_file {
        Some(path) => (RawConfig::load(path)?, AuthOverride::FromConfig, None),
        None => {
            let data_dir = absolute(
                args.data_dir
                    .as_deref()
                    .unwrap_or(Path::new("rampart-data")),
            )?;
            let demo_dir = data_dir.join("demo");
            demo::materialize(&demo_dir)?;
            let mut cfg = RawConfig::parse(demo::CONFIG, &demo_dir)?;
            cfg.audit.signing_key_file = Some(demo::audit_signing_key(&data_dir)?);
            cfg.server.data_dir = data_dir;
            let key = rampart_server::auth::generate_key();
            let auth = AuthOverride::SingleKey {
                id: "demo-user".to_owned(),
                key: key.clone(),
            };
            (cfg, auth, Some(key))
        }
    };
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(l) = args.admin_listen {
        cfg.server.admin_listen = l;
    }
    if let (Some(d), false) = (&args.data_dir, demo_mode) {
        cfg.server.data_dir = absolute(d)?;
    }
    Ok(Prepared {
        cfg,
        auth,
        demo_key,
        config_file,
    })
}

async fn serve(prepared: Prepared, args: &Args) -> anyhow::Result<ExitCode> {
    let Prepared {
        cfg,
        auth,
        demo_key,
        config_file,
    } = prepared;
    let gateway = Gateway::build(&cfg, auth).await?;
    let handle = gateway.clone();
    let running = Running::start(gateway, &cfg.server).await?;
    let scheme = if running.tls { "https" } else { "http" };
    if !running.tls && !running.addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {} in plain HTTP: set [server] tls, or keep it on loopback",
            running.addr
        );
    }
    // The banner goes to whoever started the server; once they stop reading (a script that took the key and
    // closed the pipe), a failed write is ignored: `println!` would panic on EPIPE and take the server down.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "rampart {} listening", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "inference: {scheme}://{}", running.addr);
        let _ = writeln!(out, "admin:     {scheme}://{}/metrics", running.admin_addr);
        let _ = writeln!(
            out,
            "data:      {}",
            cfg.resolve(&cfg.server.data_dir).display()
        );
        if let Some(key) = demo_key {
            // The one line scripts capture: the key exists nowhere else (held in memory, hash only).
            let _ = writeln!(out, "api key: {key}");
            let _ = writeln!(
                out,
                "try:      curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
                 -d '{}' {scheme}://{}/v1/models/demo/predict",
                demo::REQUEST.trim(),
                running.addr
            );
        }
        let _ = out.flush();
    }
    let stop = lifecycle::run_until_stopped(config_file.as_deref(), &handle).await;
    handle.start_draining();
    if let lifecycle::Stop::Terminate = stop {
        let delay = Duration::from_millis(args.drain_delay_ms);
        tracing::info!(
            "SIGTERM: readiness is false; serving for {delay:?} more while load balancers take this replica out"
        );
        tokio::time::sleep(delay).await;
    }
    tracing::info!("shutting down: finishing in-flight requests and flushing the audit log");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(p))
}

pub(crate) fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let cfg = match RawConfig::load(file) {
        Ok(c) => {
            eprintln!("✓ parse     {}", file.display());
            c
        }
        Err(e) => {
            eprintln!("x parse     {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let errors = cfg.validate();
    if errors.is_empty() {
        eprintln!("✓ validate");
    } else {
        eprintln!("x validate  {} problem(s):", errors.len());
        for e in &errors {
            eprintln!("    {e}");
        }
        return Ok(ExitCode::from(1));
    }
    let problems = rampart_server::check_build(&cfg);
    if problems.is_empty() {
        eprintln!("✓ build     {} model(s) load", cfg.models.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("x build     {} problem(s):", problems.len());
        for p in &problems {
            eprintln!("    {p}");
        }
        Ok(ExitCode::from(1))
    }
}
