//! `rampart health`: the container's health check. The release image is distroless (no shell, no curl), so the
//! binary probes itself: one `GET` over plain HTTP with a deadline, exit 0 on a 2xx answer and 1 otherwise.
//! It speaks plain HTTP only — meant for a loopback listener; TLS deployments use the orchestrator's own
//! probes (Kubernetes' `httpGet` with `scheme: HTTPS`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The URL to probe (http:// only).
    #[arg(long, default_value = "http://127.0.0.1:8080/v2/health/ready")]
    url: String,
    /// Give up after this many milliseconds (connect, send and read together are bounded by it each).
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

/// The status line and headers are all that is read; a health answer is tiny, and a cap keeps a confused
/// server from streaming at the checker.
const MAX_RESPONSE: u64 = 16 * 1024;

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (host_port, path) = parse_url(&args.url)?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    match probe(&host_port, &path, timeout) {
        Ok(status) if (200..300).contains(&status) => {
            eprintln!("healthy: {} answered {status}", args.url);
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            eprintln!("unhealthy: {} answered {status}", args.url);
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("unhealthy: {}: {}", args.url, crate::render_error(&e));
            Ok(ExitCode::from(1))
        }
    }
}

/// Splits `http://host:port/path` into `host:port` and `/path`; anything else is a usage error.
fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url}: only http:// URLs are probed (use the orchestrator's HTTPS probe for TLS)");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("{url}: no host");
    }
    let host_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((host_port, path.to_owned()))
}

fn probe(host_port: &str, path: &str, timeout: Duration) -> anyhow::Result<u16> {
    let addr = host_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host_port}"))?
        .next()
        .with_context(|| format!("{host_port} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).context("connect")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: rampart-health\r\n\r\n"
    )
    .context("send")?;
    let mut head = Vec::new();
    // Bounded by `take` just above; the ban targets unbounded reads.
    #[allow(clippy::disallowed_methods)]
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut head)
        .context("read")?;
    let text = String::from_utf8_lossy(&head);
    let status = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| "no HTTP status line in the answer")?;
    Ok(status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls_split_into_authority_and_path() {
        let (a, p) = parse_url("http://127.0.0.1:8080/v2/health/ready").unwrap();
        assert_eq!(
            (a.as_str(), p.as_str()),
            ("127.0.0.1:8080", "/v2/health/ready")
        );
        let (a, p) = parse_url("http://localhost").unwrap();
        assert_eq!((a.as_str(), p.as_str()), ("localhost:80", "/"));
        assert!(parse_url("https://127.0.0.1:8443/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
