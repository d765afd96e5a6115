//! Listeners and connections: plain and TLS, explicit limits, graceful
//! shutdown. Connections are admitted under caps ([`admission`]), handed to
//! worker threads ([`workers`]), served there one by one ([`connection`]:
//! HTTP/1.1 and HTTP/2, the tower stack every request goes through) and
//! closed when they ask for nothing ([`activity`]); accept keeps working at
//! the descriptor limit ([`descriptors`]). The modules import each other
//! one way only: this file starts the workers, the workers serve
//! connections.

mod activity;
mod admin_listener;
pub mod admission;
mod connection;
pub mod descriptors;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use egress_ledger::Ledger;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::authz::Authorizer;
use crate::authz::limits::{LimitState, UsageHistory};
use crate::config::{ServeConfig, UpstreamTarget};
use crate::embedded::{EmbeddedStore, first_start};
use crate::pipeline::ProxyState;
use crate::upstream::{Addressing, CredentialSource, Upstream, UpstreamSigner};
use admission::Admission;
use workers::Workers;

/// Runs the proxy until SIGINT or SIGTERM, then drains in-flight requests
/// (their `end` records included) and closes the ledger.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let open_files = descriptors::raise_open_file_limit();
    let (ledger, recovery) = Ledger::open(&config.ledger_config())?;
    // The origin is the key's, fixed when the key was made.
    let origin = egress_ledger::checkpoint::CheckpointVerifier::parse(ledger.verifier_key())
        .map_err(|why| anyhow::anyhow!("the ledger's verifier key: {why}"))?
        .origin;
    if config.origin_given && origin != config.origin {
        let _ = ledger.close().await;
        anyhow::bail!(
            "--origin {:?}: this ledger's checkpoint key signs for origin {origin:?} (an origin is fixed when the key is \
             made); leave --origin out or give {origin:?}",
            config.origin
        );
    }
    if recovery.cut_bytes > 0 || !recovery.interrupted.is_empty() {
        tracing::warn!(
            cut_bytes = recovery.cut_bytes,
            interrupted = recovery.interrupted.len(),
            "ledger recovered after an unclean stop"
        );
    }
    let result = run(&config, ledger.clone(), &origin, open_files).await;
    ledger.close().await.context("closing the ledger")?;
    tracing::info!(head = ledger.head().records, "ledger closed");
    let shipper = result?;
    // What the close wrote (its checkpoint) leaves the host too, bounded:
    // an unreachable archive must not hold the shutdown.
    if let Some(mut shipper) = shipper {
        match tokio::time::timeout(config.limits.shutdown_grace, shipper.last_round()).await {
            Ok(Ok(())) => tracing::info!("archive shipped up to the close"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the archive's last round failed; the next start resumes it"),
            Err(_) => tracing::warn!("the archive's last round outlasted the grace period; the next start resumes it"),
        }
    }
    Ok(())
}

/// Serves until a shutdown signal; gives back the archive shipper, if
/// any, for its last round once the ledger is closed.
async fn run(
    config: &ServeConfig,
    ledger: Ledger,
    origin: &str,
    open_files: u64,
) -> anyhow::Result<Option<egress_archive::shipper::Shipper<egress_archive::store::S3Store>>> {
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
    // The key id also lets reconciliation tell the proxy's own credentials
    // used elsewhere in CloudTrail (`userIdentity.accessKeyId`).
    let upstream_key_ids: Vec<String> = match credentials.get().await {
        Ok(creds) => vec![creds.access_key_id().to_owned()],
        Err(e) => {
            tracing::warn!(error = %e, "no upstream credentials yet: every request will fail with InternalError until there are");
            Vec::new()
        }
    };
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
    let (archive_status, shipper) = match &config.archive {
        Some(archive) => {
            let (status, task) = start_shipper(config, archive, origin, ledger.clone(), stop.clone()).await?;
            (Some(status), Some(task))
        }
        None => (None, None),
    };
    let AdminApi { addr: admin_addr, token_file: admin_token_file, task: admin } = start_admin(
        config,
        ledger.clone(),
        &store,
        Arc::clone(&metrics),
        &authorizer,
        AdminServices { upstream_key_ids, archive: archive_status },
        stop.clone(),
    )
    .await?;

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
    // A round in progress ends first (bounded, as above).
    let shipper = match shipper {
        Some(task) => match tokio::time::timeout(config.limits.shutdown_grace, task).await {
            Ok(Ok(shipper)) => Some(shipper),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the archive shipper failed");
                None
            }
            Err(_) => {
                tracing::warn!("an archive round outlasted the grace period; the next start resumes it");
                None
            }
        },
        None => None,
    };
    match tokio::time::timeout(config.limits.shutdown_grace, admin).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "admin API ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "admin API task failed"),
        Err(_) => tracing::warn!("admin API still busy after the grace period"),
    }
    drained.map(|()| shipper)
}

async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The archive shipper's task; it gives the shipper back when it stops.
type ShipperTask = tokio::task::JoinHandle<egress_archive::shipper::Shipper<egress_archive::store::S3Store>>;

/// Starts the archive shipper (`--archive`); it stops when `stop` fires,
/// and `serve` makes its last round after the ledger is closed.
async fn start_shipper(
    config: &ServeConfig,
    archive: &crate::config::ArchiveConfig,
    origin: &str,
    ledger: Ledger,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Arc<egress_archive::status::ArchiveStatus>, ShipperTask)> {
    use egress_archive::shipper::{Shipper, ShipperConfig};
    let store = egress_archive::store::S3Store::connect(
        config.admin.aws_endpoint.as_deref(),
        &archive.region,
        archive.url.bucket.clone(),
    )
    .await;
    let shipper_config = ShipperConfig {
        data_dir: config.data_dir.clone(),
        url: archive.url.clone(),
        origin: origin.parse().map_err(|e| anyhow::anyhow!("the ledger's {e}; it cannot name an archive folder"))?,
        retention: archive.retention,
        local_retention: archive.local_retention,
        interval: archive.interval,
        max_lag: archive.max_lag,
    };
    let shipper = Shipper::new(Arc::new(store), shipper_config, Some(ledger))?;
    tracing::info!(archive = %archive.url, origin, every = %humantime::format_duration(archive.interval), "shipping the ledger");
    let status = shipper.status();
    Ok((status, tokio::spawn(shipper.run(stopped(stop)))))
}

/// The running admin API: where it listens, where its token is kept (none
/// when it came from the environment), and its task.
struct AdminApi {
    addr: SocketAddr,
    token_file: Option<std::path::PathBuf>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// What the admin API reports on besides the ledger: the proxy's upstream
/// access key ids (reconciliation tells them apart in CloudTrail) and the
/// archive shipper's status.
struct AdminServices {
    upstream_key_ids: Vec<String>,
    archive: Option<Arc<egress_archive::status::ArchiveStatus>>,
}

/// Starts the admin API on its own listener; it stops with `stop`.
async fn start_admin(
    config: &ServeConfig,
    ledger: Ledger,
    store: &egress_ledger::store::Store,
    metrics: Arc<egress_metrics::Metrics>,
    authorizer: &Authorizer,
    services: AdminServices,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<AdminApi> {
    let AdminServices { upstream_key_ids, archive } = services;
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
    let provisioner = Arc::new(provisioner);
    let reconciler = Arc::new(egress_admin::reconciliation::Reconciler::new(
        ledger.clone(),
        Arc::clone(&provisioner),
        store.tree("reconciliations")?,
        admin.delivery,
        upstream_key_ids,
    ));
    if let Some(every) = admin.reconcile_every {
        tracing::info!(every = %humantime::format_duration(every), "reconciling on a schedule");
        tokio::spawn(Arc::clone(&reconciler).schedule(every, stopped(stop.clone())));
    }
    let router = egress_admin::router(egress_admin::AdminState {
        ledger,
        token: Arc::new(token),
        metrics,
        provisioner,
        reconciler,
        grants: Arc::clone(&authorizer.grants),
        usage: Arc::clone(&authorizer.limits) as Arc<dyn egress_admin::usage::UsageSource>,
        archive,
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
