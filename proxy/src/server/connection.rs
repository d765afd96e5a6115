//! One client connection: HTTP/1.1 or HTTP/2 (hyper's auto builder) over
//! plain TCP or TLS, the tower stack every request goes through, closed
//! when it asks for nothing ([`super::activity`]) or when the server stops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use super::activity::{Activity, InFlightBody, Watched};
use crate::config::Limits;
use crate::pipeline::{self, ProxyState};
use crate::stall::{StallGuard, Stalled};

/// An idle connection told to close (an HTTP/2 GOAWAY) has this long to go
/// before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(super) struct Connection {
    pub(super) state: Arc<ProxyState>,
    pub(super) requests: Arc<Semaphore>,
    pub(super) limits: Limits,
    pub(super) remote: SocketAddr,
    /// Whether the client connection is TLS (`aws:SecureTransport`).
    pub(super) secure: bool,
    pub(super) activity: Arc<Activity>,
}

impl Connection {
    /// Serves the connection `io` until it ends, is closed for asking for
    /// nothing ([`activity`]), or `stop` says to finish.
    pub(super) async fn serve<I>(self, io: I, acks: Arc<crate::acked::Acks>, mut stop: watch::Receiver<bool>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection { state, requests, limits, remote, secure, activity } = self;
        // A client that stops reading is cut after the body idle timeout.
        let stalled = Stalled::default();
        let io = StallGuard::new(io, limits.body_idle_timeout, stalled.clone());
        let io = TokioIo::new(Watched::new(io, Arc::clone(&activity)));
        let stack = tower::ServiceBuilder::new()
            // Caps requests in flight across all connections; the rest wait
            // for a slot (their connection stays open, nothing is dropped).
            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(requests))
            .service_fn(move |request: hyper::Request<Incoming>| {
                let state = Arc::clone(&state);
                let stalled = stalled.clone();
                // One response at a time on an HTTP/1 connection: its
                // acknowledged bytes are its own. HTTP/2 interleaves them.
                let acks = (request.version() < http::Version::HTTP_2).then(|| Arc::clone(&acks));
                async move {
                    Ok::<_, Infallible>(
                        pipeline::handle(state, pipeline::Peer { addr: remote, secure }, stalled, acks, request).await,
                    )
                }
            });
        let in_flight = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            // In flight from here on, waiting for a slot included, until its
            // response body is done.
            let request_guard = in_flight.begin();
            let stack = stack.clone();
            async move {
                let Ok(response) = stack.oneshot(request).await;
                Ok::<_, Infallible>(response.map(|body| InFlightBody::new(body, request_guard)))
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // The head's time is kept by `activity` for both protocols:
            // hyper's HTTP/1 timer starts only once the protocol is known,
            // and runs from the end of every response, which would close
            // idle connections at the header timeout.
            .header_read_timeout(None)
            // hyper panics below 8 KiB, which the settings refuse.
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(limits.http2_max_concurrent_streams);
        let connection = builder.serve_connection(io, service);
        let expired = activity.expired();
        tokio::pin!(connection, expired);
        let mut stopping = false;
        let mut closing_by = None;
        let result = loop {
            tokio::select! {
                result = connection.as_mut() => break result,
                () = &mut expired, if closing_by.is_none() => {
                    tracing::debug!(%remote, "closing a connection that sent no request in time");
                    connection.as_mut().graceful_shutdown();
                    closing_by = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                }
                () = tokio::time::sleep_until(closing_by.unwrap_or_else(tokio::time::Instant::now)), if closing_by.is_some() => {
                    break Ok(());
                }
                _ = stop.wait_for(|stop| *stop), if !stopping => {
                    connection.as_mut().graceful_shutdown();
                    stopping = true;
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%remote, error = %crate::upstream::client::error_chain(e.as_ref()), "connection ended with an error");
        }
    }
}
