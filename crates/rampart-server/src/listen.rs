//! The accept loops. hyper's header-read timeout does nothing unless a timer is configured on the connection
//! builder, so it is configured here explicitly (slowloris); each connection is served by hyper's HTTP/1
//! builder, and shutdown stops accepting, then lets in-flight requests finish. TLS handshakes run in the
//! connection's own task under the same timeout, so a slow handshake never holds up the accept loop; a
//! semaphore bounds open connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::util::MapRequest;
use tower::ServiceExt;

use crate::auth::Peer;

/// Binds an address, with a message that names it on failure.
///
/// # Errors
/// The bind error, with the address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// hyper's read-buffer cap per connection, which bounds a request head (request line and headers): a head that
/// has not ended when the buffer is full is refused with 431. hyper may read one more chunk before checking, so
/// heads a little over this can pass; twice this never does.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How a listener serves its connections.
#[derive(Clone)]
pub struct ServeOptions {
    /// Time a client has to complete the TLS handshake and then each request's headers (slowloris).
    pub header_timeout: Duration,
    /// Time in-flight requests get to finish at shutdown.
    pub grace: Duration,
    /// TLS 1.3, or `None` for plain HTTP (`insecure_plaintext = true`).
    pub tls: Option<TlsAcceptor>,
    /// Open connections at most; the accept loop waits for a free slot (backpressure into the kernel's
    /// backlog) rather than refusing with a response nobody reads.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` turns true, then waits (up to `grace`) for open
/// connections to finish their requests. Every request carries a [`Peer`] extension: the identity its
/// connection's client certificate proved, if any.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: ServeOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        // Bounds the request head (hyper answers 431 past it); hyper's default (~400 KiB) is far more than any
        // client of an inference API needs. Bodies stream through the buffer and are capped separately.
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    loop {
        // A slot first: at the limit, stop accepting until a connection closes.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, _peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        let tls = opts.tls.clone();
        let handshake_timeout = opts.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            // Client resets, failed handshakes and timeouts end here; they are not the server's errors.
            match tls {
                None => {
                    let service = with_peer(router, Peer::default());
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let peer = Peer(
                        tls.get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(crate::tls::peer_identity),
                    );
                    let service = with_peer(router, peer);
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    // Close the socket before waiting out the grace period: a connection the kernel accepted into the backlog
    // now would never be served, so it should be refused (and retried elsewhere) instead.
    drop(listener);
    if tokio::time::timeout(opts.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {:?}; closing them",
            opts.grace
        );
    }
}

/// The router as a hyper service that tags each request with its connection's peer identity.
fn with_peer(
    router: Router,
    peer: Peer,
) -> TowerToHyperService<
    MapRequest<Router, impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone>,
> {
    TowerToHyperService::new(router.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req
    }))
}
