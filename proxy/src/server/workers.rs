//! The threads that serve S3 connections.
//!
//! Each worker is a thread with a single-threaded runtime of its own and an
//! upstream connection pool of its own ([`ProxyState::fork`]). The accept
//! loop hands every new connection to the worker with the fewest open ones,
//! and that worker serves it to its end. Everything a request does then
//! stays on one thread: the client connection, the upstream connection its
//! body streams from, their timers.
//!
//! Why not one runtime of several threads: hyper's upstream connection task
//! and the client connection's task then ran on different threads and
//! handed every body chunk across (a wake-up, an eventfd write, a context
//! switch) — a quarter of the proxy's CPU on a 1 GiB GET. Why not every
//! worker accepting on the shared socket: whichever thread woke first took
//! all 64 connections of a burst, and the other idled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::activity::Activity;
use super::admission::Ticket;
use super::connection::Connection;
use crate::acked::AckedStream;
use crate::config::Limits;
use crate::pipeline::ProxyState;

/// A connection on its way from the accept loop's runtime to a worker's.
struct Handoff {
    stream: std::net::TcpStream,
    remote: SocketAddr,
    /// Set for the TLS listener: the handshake is the worker's.
    tls: Option<TlsAcceptor>,
    /// Its place under the connection caps, given back when it ends.
    ticket: Ticket,
}

/// The running workers.
pub struct Workers {
    workers: Vec<Handle>,
}

struct Handle {
    connections: mpsc::UnboundedSender<Handoff>,
    open: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Workers {
    /// Starts `count` (at least one) workers: the last takes `state`, the
    /// others a fork of it.
    pub fn start(
        count: usize,
        state: ProxyState,
        requests: &Arc<Semaphore>,
        limits: &Limits,
    ) -> anyhow::Result<Workers> {
        let forks: Vec<ProxyState> = (1..count).map(|_| state.fork()).collect();
        let mut workers = Vec::with_capacity(count);
        for (index, state) in forks.into_iter().chain(std::iter::once(state)).enumerate() {
            let (connections, incoming) = mpsc::unbounded_channel();
            let open = Arc::new(AtomicUsize::new(0));
            let worker = Worker {
                state: Arc::new(state),
                requests: Arc::clone(requests),
                limits: limits.clone(),
                open: Arc::clone(&open),
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let thread = std::thread::Builder::new()
                .name(format!("s3-worker-{index}"))
                .spawn(move || runtime.block_on(worker.run(incoming)))
                .context("starting an S3 worker thread")?;
            workers.push(Handle { connections, open, thread });
        }
        Ok(Workers { workers })
    }

    /// Hands a connection just accepted (from the TLS listener if `tls`) to
    /// the worker with the fewest open connections.
    pub fn dispatch(
        &self,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        tls: Option<TlsAcceptor>,
        ticket: Ticket,
    ) {
        // The worker's runtime takes the socket over from this one.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(%remote, error = %e, "could not hand a connection to a worker");
                return;
            }
        };
        let alive = self.workers.iter().filter(|w| !w.connections.is_closed());
        let Some(worker) = alive.min_by_key(|w| w.open.load(Ordering::Relaxed)) else {
            tracing::error!(%remote, "every S3 worker thread has ended; connection closed");
            return;
        };
        worker.open.fetch_add(1, Ordering::Relaxed);
        if worker.connections.send(Handoff { stream, remote, tls, ticket }).is_err() {
            worker.open.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(%remote, "an S3 worker thread has ended; connection closed");
        }
    }

    /// Stops handing out connections and waits until every worker has
    /// drained its own (within the shutdown grace).
    pub async fn join(self) -> anyhow::Result<()> {
        let threads: Vec<_> = self.workers.into_iter().map(|w| w.thread).collect();
        let panicked = tokio::task::spawn_blocking(move || threads.into_iter().filter_map(|t| t.join().err()).count())
            .await
            .context("waiting for the S3 worker threads")?;
        anyhow::ensure!(panicked == 0, "{panicked} S3 worker thread(s) panicked");
        Ok(())
    }
}

struct Worker {
    state: Arc<ProxyState>,
    requests: Arc<Semaphore>,
    limits: Limits,
    open: Arc<AtomicUsize>,
}

impl Worker {
    /// Serves connections until the accept loop stops sending them, then
    /// drains its own.
    async fn run(self, mut incoming: mpsc::UnboundedReceiver<Handoff>) {
        // Tells the connections to finish; closed once every one has ended.
        let (stop_tx, stop) = watch::channel(false);
        while let Some(Handoff { stream, remote, tls: acceptor, ticket }) = incoming.recv().await {
            let open = OpenConnection(Arc::clone(&self.open));
            let activity = Activity::new(self.limits.header_read_timeout, self.limits.idle_timeout);
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "could not take over a connection");
                    continue;
                }
            };
            let connection = Connection {
                state: Arc::clone(&self.state),
                requests: Arc::clone(&self.requests),
                limits: self.limits.clone(),
                remote,
                secure: acceptor.is_some(),
                activity,
            };
            let stop = stop.clone();
            tokio::spawn(async move {
                let _counted = (open, ticket);
                // Counted below TLS: what the client's kernel acknowledged.
                let stream = AckedStream::new(stream);
                let acks = stream.acks();
                match acceptor {
                    None => connection.serve(stream, acks, stop).await,
                    Some(acceptor) => {
                        // The handshake counts against the time for the first head.
                        let deadline = connection.activity.first_head_deadline();
                        match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => connection.serve(tls_stream, acks, stop).await,
                            Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(stop);
        let _ = stop_tx.send(true);
        tokio::select! {
            () = stop_tx.closed() => {}
            () = tokio::time::sleep(self.limits.shutdown_grace) => {
                tracing::warn!(grace = ?self.limits.shutdown_grace, "connections still open after the grace period; closing anyway");
            }
        }
    }
}

/// Counts a worker's connection while it is open.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
