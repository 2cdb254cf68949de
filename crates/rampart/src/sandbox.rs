//! Self-sandboxing of `rampart serve`: it refuses to run as root (unless `--allow-root`), and on Linux it
//! restricts its own file-system access with Landlock where the kernel supports it: read-only beneath the
//! config file's directory and the directories of every file the config names (models, baselines, keys,
//! certificates — the keys-file reloader re-reads there), read-write beneath the data directory (audit log,
//! alerts, review queue, `blocked.json`) and nowhere else. A compromised request path can then neither read
//! secrets elsewhere on the host nor write outside the data directory.
//!
//! Landlock restricts the calling thread and the threads it creates later, never threads that already run. So
//! it is applied on the main thread *before* the async runtime starts its workers — which means the start-up
//! reads (models, keys, baselines) happen inside the sandbox too: a file the rules forgot fails the start, loudly,
//! instead of failing a reload in production. Listeners are TCP sockets, which these (file-system) rules do not
//! touch. Applying also sets `no_new_privs`, so no later `execve` could gain privileges.

use std::path::{Path, PathBuf};

use rampart_server::config::RawConfig;

/// Refuses uid 0 unless `allow_root`: a gateway exposed to the network must not hold root's rights, and the
/// container and Kubernetes manifests run it as uid 1000.
///
/// # Errors
/// When running as root without `allow_root`: the message says what to do.
pub(crate) fn refuse_root(allow_root: bool) -> anyhow::Result<()> {
    match effective_uid() {
        Some(0) if allow_root => {
            tracing::warn!(
                "running as root (--allow-root): the sandbox is all that limits a compromise"
            );
            Ok(())
        }
        Some(0) => anyhow::bail!(
            "refusing to run as root: run as an unprivileged user (the container uses uid 1000), \
             or pass --allow-root to accept the risk"
        ),
        _ => Ok(()),
    }
}

/// The effective uid, from `/proc/self/status` (no `unsafe` FFI needed); `None` where that file does not exist
/// (not Linux), in which case the check is skipped.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // "Uid: real effective saved fs"
    line.split_whitespace().nth(2)?.parse().ok()
}

/// What the sandbox allows.
#[derive(Debug, Default)]
pub(crate) struct Allowed {
    /// Read-only, recursively.
    pub(crate) read: Vec<PathBuf>,
    /// Read and write, recursively.
    pub(crate) write: Vec<PathBuf>,
}

/// System files the process still needs after start-up: name resolution for the alert webhook (glibc reads
/// these and may load its NSS modules from the library directories), random devices, and the `/proc` and `/sys`
/// entries the runtime reads to size itself. Paths that do not exist are skipped.
const SYSTEM_READ: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/ssl",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/dev/urandom",
    "/dev/random",
    "/dev/null",
    "/proc/self",
    "/sys/fs/cgroup",
    "/sys/devices/system/cpu",
];

/// The paths `cfg` needs: read beneath the config's directory and each named file's directory, write beneath
/// the data directory (and a separately configured audit directory or alerts file). Creates the writable
/// directories, since a rule needs an existing path (the gateway would create them moments later anyway).
///
/// # Errors
/// When a writable directory cannot be created.
pub(crate) fn allowed_paths(cfg: &RawConfig) -> anyhow::Result<Allowed> {
    let mut allowed = Allowed::default();
    let mut read = |p: &Path| {
        // A whole directory rather than the file: the keys reloader re-reads its file, and Kubernetes replaces
        // a Secret's files by swapping a symlink to a new directory beside them.
        // Absolute, because a rule for a path that cannot be opened (such as "" for a config in the current
        // directory) is skipped, not refused.
        let p = absolute(&cfg.resolve(p));
        let dir = if p.is_dir() {
            p
        } else {
            p.parent().map(Path::to_path_buf).unwrap_or(p)
        };
        allowed.read.push(dir);
    };
    read(&cfg.base_dir);
    if let Some(k) = &cfg.server.model_public_key_file {
        read(k);
    }
    for m in &cfg.models {
        if let Some(p) = &m.path {
            read(p);
        }
        if let Some(p) = &m.baseline {
            read(p);
        }
        if let Some(p) = &m.key_file {
            read(p);
        }
        // Proxy mode: the upstream's CA, client certificate and key, and credential are read at start-up.
        if let Some(u) = &m.upstream {
            if let Some(ca) = &u.ca_file {
                read(ca);
            }
            if let Some(c) = &u.client_cert_file {
                read(c);
            }
            for source in [&u.client_key_file, &u.api_key_file].into_iter().flatten() {
                if !source.starts_with("env:") {
                    read(Path::new(source));
                }
            }
        }
        if let Some(td) = &m.training_data {
            read(&td.manifest);
            if let Some(d) = &td.dir {
                read(d);
            }
            if let Some(k) = &td.public_key_file {
                read(k);
            }
        }
    }
    if let Some(t) = &cfg.server.tls {
        read(&t.cert_file);
        if !t.key_file.starts_with("env:") {
            read(Path::new(&t.key_file));
        }
        if let Some(ca) = &t.client_ca_file {
            read(ca);
        }
    }
    if let Some(k) = &cfg.auth.api_keys_file {
        read(k);
    }
    if let Some(j) = &cfg.auth.jwt {
        read(&j.jwks_file);
    }
    for k in [
        &cfg.audit.signing_key_file,
        &cfg.audit.pseudonym_key_file,
        &cfg.audit.encryption_key_file,
        &cfg.state.identity_key_file,
    ]
    .into_iter()
    .flatten()
    {
        read(k);
    }
    if let Some(w) = &cfg.alerts.webhook {
        if !w.url_file.starts_with("env:") {
            read(Path::new(&w.url_file));
        }
        if let Some(ca) = &w.ca_file {
            read(ca);
        }
    }
    if let Some(u) = &cfg.state.url_file {
        if !u.starts_with("env:") {
            read(Path::new(u));
        }
    }
    allowed
        .read
        .extend(SYSTEM_READ.iter().map(PathBuf::from).filter(|p| p.exists()));

    let mut write = vec![absolute(&cfg.resolve(&cfg.server.data_dir))];
    if let Some(d) = &cfg.audit.dir {
        write.push(absolute(&cfg.resolve(d)));
    }
    if let Some(f) = &cfg.alerts.file {
        if let Some(parent) = absolute(&cfg.resolve(f)).parent() {
            write.push(parent.to_path_buf());
        }
    }
    // A registry is written when a version is activated or rolled back through the admin API (its history and
    // active.json), and read when a new version is loaded: the whole root, read and write.
    for m in &cfg.models {
        if let Some(r) = &m.registry {
            write.push(absolute(&cfg.resolve(r)));
        }
    }
    for dir in &write {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    allowed.write = write;
    allowed.read.sort();
    allowed.read.dedup();
    Ok(allowed)
}

/// `p` made absolute against the current directory (unchanged if that cannot be read).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Restricts this thread and every thread it starts afterwards to `allowed`, and logs what was applied:
/// `landlock: applied (ABI vN)`, `landlock: partially applied …`, or `landlock: not supported by this kernel`.
///
/// # Errors
/// When the kernel supports Landlock but a rule cannot be built or enforced: serving unsandboxed then would
/// hide the failure.
#[cfg(target_os = "linux")]
pub(crate) fn apply(allowed: &Allowed) -> anyhow::Result<()> {
    use landlock::{
        path_beneath_rules, Access, AccessFs, LandlockStatus, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, ABI,
    };
    // The newest file-system ABI this code was reviewed against; the crate's best-effort mode drops what an
    // older kernel lacks and reports it as partial.
    let abi = ABI::V5;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(&allowed.read, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(&allowed.write, AccessFs::from_all(abi)))?
        .restrict_self()?;
    let kernel_abi = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => kernel_abi.unwrap_or(effective_abi as i32),
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => 0,
    };
    let read: Vec<String> = allowed
        .read
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let write: Vec<String> = allowed
        .write
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    match status.ruleset {
        RulesetStatus::FullyEnforced => tracing::info!(
            read_only = ?read,
            read_write = ?write,
            no_new_privs = status.no_new_privs,
            "landlock: applied (ABI v{kernel_abi})"
        ),
        RulesetStatus::PartiallyEnforced => tracing::warn!(
            read_only = ?read,
            read_write = ?write,
            no_new_privs = status.no_new_privs,
            "landlock: partially applied (ABI v{kernel_abi}: an older kernel enforces a subset of the rights)"
        ),
        RulesetStatus::NotEnforced => {
            tracing::warn!("landlock: not supported by this kernel (file access is not sandboxed)")
        }
    }
    Ok(())
}

/// Landlock is Linux's; elsewhere the process runs unsandboxed, and says so.
#[cfg(not(target_os = "linux"))]
pub(crate) fn apply(_allowed: &Allowed) -> anyhow::Result<()> {
    tracing::warn!("landlock: not supported on this platform (file access is not sandboxed)");
    Ok(())
}
