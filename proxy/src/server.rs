//! Listeners and connections: plain and TLS, HTTP/1.1 and HTTP/2, the tower
//! stack every request goes through, explicit limits, graceful shutdown.
//! Connections are admitted under caps ([`admission`]), served on worker
//! threads ([`workers`]) and closed when they ask for nothing
//! ([`activity`]); accept keeps working at the descriptor limit
//! ([`descriptors`]).

mod activity;
mod admin_listener;
pub mod admission;
pub mod descriptors;
mod workers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use egress_ledger::Ledger;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::authz::Authorizer;
use crate::authz::limits::{LimitState, UsageHistory};
use crate::config::{Limits, ServeConfig, UpstreamTarget};
use crate::embedded::{EmbeddedStore, first_start};
use crate::pipeline::{self, ProxyState};
use crate::stall::{StallGuard, Stalled};
use crate::upstream::{Addressing, CredentialSource, Upstream, UpstreamSigner};
use activity::{Activity, InFlightBody, Watched};
use admission::Admission;
use workers::Workers;

/// An idle connection told to close (an HTTP/2 GOAWAY) has this long to go
/// before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Runs the proxy until SIGINT or SIGTERM, then drains in-flight requests
/// (their `end` records included) and closes the ledger.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let open_files = descriptors::raise_open_file_limit();
    let (ledger, recovery) = Ledger::open(&config.ledger_config())?;
    if recovery.cut_bytes > 0 || !recovery.interrupted.is_empty() {
        tracing::warn!(
            cut_bytes = recovery.cut_bytes,
            interrupted = recovery.interrupted.len(),
            "ledger recovered after an unclean stop"
        );
    }
    let result = run(&config, ledger.clone(), open_files).await;
    ledger.close().await.context("closing the ledger")?;
    tracing::info!(head = ledger.head().records, "ledger closed");
    result
}

async fn run(config: &ServeConfig, ledger: Ledger, open_files: u64) -> anyhow::Result<()> {
    let store = ledger.store().context("ledger opened without its state store")?.clone();
    let principals = store.principals.clone();
    let metrics = Arc::new(egress_metrics::Metrics::default());
    // With no upstream configured, the embedded store is started here and
    // from then on is an endpoint with fixed credentials like any other.
    let (endpoint, addressing, fixed_credentials, embedded) = match &config.upstream {
        UpstreamTarget::Endpoint(uri) => {
            (uri.clone(), config.upstream_addressing, config.upstream_credentials.clone(), None)
        }
        UpstreamTarget::Embedded => {
            let embedded = EmbeddedStore::start(&config.data_dir).await?;
            tracing::warn!(
                objects = %embedded.objects().display(),
                "no --upstream: the upstream is the EMBEDDED DEV STORE on local disk, not S3"
            );
            (embedded.endpoint().clone(), Addressing::Path, Some(embedded.credentials()), Some(embedded))
        }
    };
    let credentials = match &fixed_credentials {
        Some((id, secret)) => CredentialSource::fixed(id, secret.expose()),
        None => CredentialSource::from_environment(&config.upstream_region).await?,
    };
    // Say it at start rather than on the first request; credentials may
    // still appear later (a role attached, a profile written), so serve anyway.
    if let Err(e) = credentials.get().await {
        tracing::warn!(error = %e, "no upstream credentials yet: every request will fail with InternalError until there are");
    }
    let upstream = Upstream::new(
        &endpoint,
        addressing,
        UpstreamSigner::new(&config.upstream_region, credentials),
        config.upstream_ca_file.as_deref(),
        &config.upstream_limits,
    )?;
    let denials = Arc::new(crate::denials::DenialLimiter::new(config.limits.denied_records_per_ip_per_minute));
    let authorizer = Arc::new(Authorizer {
        grants: Arc::new(egress_admin::access::GrantsCache::new(store.access.clone())),
        limits: Arc::new(LimitState::new(Arc::new(LedgerHistory(ledger.clone())))),
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let state = ProxyState {
        ledger: ledger.clone(),
        principals,
        upstream,
        virtual_host_domains: config.virtual_host_domains.clone(),
        body_idle_timeout: config.limits.body_idle_timeout,
        upstream_header_timeout: config.limits.upstream_header_timeout,
        metrics: Arc::clone(&metrics),
        denials: Arc::clone(&denials),
        chunk_budget: crate::body::ChunkBudget::new(
            config.limits.signed_chunk_buffer_bytes,
            config.limits.body_idle_timeout,
        )
        .with_max_chunk_size(config.limits.max_aws_chunk_bytes),
        authorizer: Arc::clone(&authorizer),
    };

    // One shutdown signal for both listeners.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections; draining requests in flight");
        let _ = stop_tx.send(true);
    });
    let summaries = tokio::spawn(crate::denials::write_summaries(Arc::clone(&denials), ledger.clone(), stop.clone()));
    let AdminApi { addr: admin_addr, token_file: admin_token_file, task: admin } =
        start_admin(config, ledger.clone(), &store, Arc::clone(&metrics), &authorizer, stop.clone()).await?;

    let plain =
        TcpListener::bind(config.listen).await.with_context(|| format!("binding --listen {}", config.listen))?;
    tracing::info!(listen = %plain.local_addr()?, upstream = %endpoint, "serving S3");
    let tls = match &config.tls {
        Some(tls) => {
            let acceptor = crate::tls::acceptor(&tls.cert, &tls.key)?;
            let listener =
                TcpListener::bind(tls.listen).await.with_context(|| format!("binding --tls-listen {}", tls.listen))?;
            tracing::info!(listen = %listener.local_addr()?, "serving S3 over TLS");
            Some((listener, acceptor))
        }
        None => None,
    };

    if embedded.is_some() {
        let welcome = first_start::Welcome {
            s3: plain.local_addr()?,
            admin: admin_addr,
            region: config.region.clone(),
            admin_token_file,
            data_dir: config.data_dir.clone(),
        };
        first_start::welcome(&ledger, &welcome).await?;
    }

    // Connections are accepted here and served by worker threads, each
    // with a runtime of its own (`workers`).
    let requests = Arc::new(Semaphore::new(config.limits.max_concurrent_requests));
    let count = config.worker_count();
    let caps = config.connection_caps(open_files);
    tracing::info!(
        max_connections = caps.total,
        max_connections_per_ip = caps.per_address,
        open_files,
        "connection caps"
    );
    let admission = Admission::new(caps, Arc::clone(&metrics));
    let mut reserve = descriptors::Reserve::new().context("opening /dev/null as the reserve descriptor")?;
    let workers = Workers::start(count, state, &requests, &config.limits)?;
    let mut shutdown = std::pin::pin!(stopped(stop));
    loop {
        let (accepted, listener) = tokio::select! {
            () = &mut shutdown => break,
            accepted = plain.accept() => (accepted.map(|(s, a)| (s, a, None)), &plain),
            accepted = accept_tls(tls.as_ref()) => accepted,
        };
        match accepted {
            Ok((stream, remote, tls)) => match admission.admit(remote.ip()) {
                Ok(ticket) => {
                    let _ = stream.set_nodelay(true);
                    workers.dispatch(stream, remote, tls, ticket);
                }
                // Over a cap: closed now rather than left to wait in the
                // backlog (counted and logged by `admit`).
                Err(_) => drop(stream),
            },
            Err(e) if descriptors::out_of_descriptors(&e) => reserve.shed(listener).await,
            Err(e) => {
                // A connection reset before it was accepted and the like:
                // back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop((plain, tls));
    let drained = workers.join().await;
    tracing::info!("S3 connections closed");
    // The summaries of refusals not recorded one by one, the last minute's
    // too, go on the chain before it closes.
    let _ = summaries.await;
    crate::denials::write_all_summaries(&denials, &ledger).await;
    match tokio::time::timeout(config.limits.shutdown_grace, admin).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "admin API ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "admin API task failed"),
        Err(_) => tracing::warn!("admin API still busy after the grace period"),
    }
    drained
}

async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The running admin API: where it listens, where its token is kept (none
/// when it came from the environment), and its task.
struct AdminApi {
    addr: SocketAddr,
    token_file: Option<std::path::PathBuf>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the admin API on its own listener; it stops with `stop`.
async fn start_admin(
    config: &ServeConfig,
    ledger: Ledger,
    store: &egress_ledger::store::Store,
    metrics: Arc<egress_metrics::Metrics>,
    authorizer: &Authorizer,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<AdminApi> {
    let admin = &config.admin;
    let (token, source) = egress_admin::AdminToken::load(
        admin.token_file.as_deref(),
        admin.token_env.as_ref().map(egress_ledger::principals::SecretKey::expose),
        &config.data_dir,
    )?;
    let token_file = match source {
        egress_admin::token::TokenSource::Generated(path) => {
            tracing::info!(path = %path.display(), "generated the admin token (mode 0600)");
            Some(path)
        }
        egress_admin::token::TokenSource::File(path) => {
            tracing::info!(path = %path.display(), "admin token from file");
            Some(path)
        }
        egress_admin::token::TokenSource::Environment => {
            tracing::info!("admin token from EGRESS_ADMIN_TOKEN");
            None
        }
    };
    let provisioner = egress_admin::provisioning::Provisioner::new(
        admin.aws_endpoint.clone(),
        config.region.clone(),
        store.tree("provisioning")?,
    )
    .await;
    let router = egress_admin::router(egress_admin::AdminState {
        ledger,
        token: Arc::new(token),
        metrics,
        provisioner: Arc::new(provisioner),
        grants: Arc::clone(&authorizer.grants),
        usage: Arc::clone(&authorizer.limits) as Arc<dyn egress_admin::usage::UsageSource>,
    });
    let listener =
        TcpListener::bind(admin.listen).await.with_context(|| format!("binding --admin-listen {}", admin.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "serving the admin API");
    let task = tokio::spawn(admin_listener::serve(
        listener,
        router,
        config.limits.header_read_timeout,
        admin.max_connections,
        stop,
    ));
    Ok(AdminApi { addr, token_file, task })
}

/// The next connection on the TLS listener, if there is one, and the
/// listener (to shed connections on when out of descriptors).
async fn accept_tls(
    tls: Option<&(TcpListener, TlsAcceptor)>,
) -> (std::io::Result<(TcpStream, SocketAddr, Option<TlsAcceptor>)>, &TcpListener) {
    match tls {
        Some((listener, acceptor)) => (listener.accept().await.map(|(s, a)| (s, a, Some(acceptor.clone()))), listener),
        None => std::future::pending().await,
    }
}

struct Connection {
    state: Arc<ProxyState>,
    requests: Arc<Semaphore>,
    limits: Limits,
    remote: SocketAddr,
    /// Whether the client connection is TLS (`aws:SecureTransport`).
    secure: bool,
    activity: Arc<Activity>,
}

impl Connection {
    /// Serves the connection `io` until it ends, is closed for asking for
    /// nothing ([`activity`]), or `stop` says to finish.
    async fn serve<I>(self, io: I, acks: Arc<crate::acked::Acks>, mut stop: watch::Receiver<bool>)
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Quota usage already on the record: bytes the principal was sent since
/// a time, summed from the ledger's index (the admin API's summary).
#[derive(Debug)]
struct LedgerHistory(Ledger);

impl UsageHistory for LedgerHistory {
    fn sent_since(&self, principal: &str, bucket: Option<&str>, since: u64) -> Result<u64, String> {
        let filter = egress_admin::routes::queries::search::Filter {
            principal: Some(principal.to_owned()),
            bucket: bucket.map(str::to_owned),
            since: Some(since.saturating_mul(1_000_000)),
            ..Default::default()
        };
        let groups = egress_admin::routes::queries::search::summarize(
            &self.0,
            egress_admin::routes::queries::GroupBy::Principal,
            &filter,
        )
        .map_err(|e| e.message)?;
        Ok(groups.iter().map(|g| g.bytes_sent).sum())
    }
}
