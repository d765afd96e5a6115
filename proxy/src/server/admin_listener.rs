//! The admin API's listener, with the bounds the S3 listener has: an
//! unauthenticated client must not hold its descriptors or memory.
//!
//! HTTP/1.1 only (the admin API is JSON for operators, scripts and a
//! dashboard): hyper's HTTP/1 header timer starts at a connection's first
//! read, before any byte has come, so a connection must deliver each
//! request head within `--header-read-timeout-secs` of accept or of the end
//! of its previous answer, and a silent or idle one is closed then. At most
//! `--admin-max-connections` are open at once; more are accepted and closed
//! at once, logged at most once a minute.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Serves `router` on `listener` until `stop` turns true, then lets the
/// requests in flight finish (the caller bounds that wait). At most
/// `max_connections` are open at once.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    max_connections: usize,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let mut stopped = std::pin::pin!(super::stopped(stop));
    let mut last_refusal_logged: Option<Instant> = None;
    loop {
        let (stream, remote): (_, SocketAddr) = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_mins(1)) {
                tracing::warn!(%remote, max = max_connections, "admin connection refused: too many open (logged once a minute)");
                last_refusal_logged = Some(Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%remote, error = %e, "admin connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
