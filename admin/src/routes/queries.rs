//! Ledger queries: egress events and their totals (from the sled block
//! indexes, see [`search`]), verification, checkpoints, the verifier key,
//! the raw export, and `/metrics`.
//!
//! Everything that reads the segments or sled runs on the blocking pool.

pub mod search;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use egress_ledger::Outcome;
use egress_ledger::verify::{Problem, ProblemKind, VerifyOptions, VerifyReport};
use egress_metrics::QuotaGauge;
use http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::{AdminState, ApiError};

/// Events per page when `limit` is not given.
const DEFAULT_LIMIT: u32 = 100;
/// Most events per page.
const MAX_LIMIT: u32 = 1000;
/// Bytes of export output handed to the connection at a time.
const EXPORT_CHUNK: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_egress))
        .routes(routes!(egress_summary))
        .routes(routes!(verify_ledger))
        .routes(routes!(latest_checkpoint))
        .routes(routes!(pubkey))
        .routes(routes!(export))
        .routes(routes!(metrics))
}

/// Runs blocking work (segments, sled) off the async workers.
/// A query string that does not deserialize: 400 naming the parameter.
fn bad_query(rejection: &QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let why = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
    ApiError::new(http::StatusCode::BAD_REQUEST, "bad_request", why)
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<u64>, ApiError> {
    value
        .map(|v| {
            egress_ledger::record::parse_ts_micros(v)
                .ok_or_else(|| ApiError::bad_field(field, "not an RFC 3339 time, e.g. 2026-11-27T12:00:00Z"))
        })
        .transpose()
}

fn text(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// How an event ended, as a query parameter.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeParam {
    Complete,
    ClientAbort,
    UpstreamError,
    Timeout,
    Denied,
    Interrupted,
}

impl From<OutcomeParam> for Outcome {
    fn from(o: OutcomeParam) -> Outcome {
        match o {
            OutcomeParam::Complete => Outcome::Complete,
            OutcomeParam::ClientAbort => Outcome::ClientAbort,
            OutcomeParam::UpstreamError => Outcome::UpstreamError,
            OutcomeParam::Timeout => Outcome::Timeout,
            OutcomeParam::Denied => Outcome::Denied,
            OutcomeParam::Interrupted => Outcome::Interrupted,
        }
    }
}

/// Which events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EgressQuery {
    /// Only events of this principal.
    principal: Option<String>,
    /// Only events on this bucket.
    bucket: Option<String>,
    /// Only events whose object key starts with this.
    key_prefix: Option<String>,
    /// RFC 3339: events that started at or after this time.
    since: Option<String>,
    /// RFC 3339: events that started before this time.
    until: Option<String>,
    /// Only events that ended so (events still running have no outcome).
    outcome: Option<OutcomeParam>,
    /// Events per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page: events that started below this seq.
    cursor: Option<u64>,
}

/// One egress event: a `start` line joined with its `end` (the end's
/// fields are null while the request runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EgressEvent {
    pub req: String,
    pub start_seq: u64,
    /// When the request arrived (the start line's `ts`).
    pub ts: String,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub operation: String,
    pub method: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub range: Option<String>,
    pub status: Option<u16>,
    pub bytes_sent: Option<u64>,
    pub object_size: Option<u64>,
    pub outcome: Option<String>,
    pub error_code: Option<String>,
    pub duration_ms: Option<u64>,
    pub end_seq: Option<u64>,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EgressPage {
    pub events: Vec<EgressEvent>,
    /// Pass as `cursor` for the next page; null when there is none. A page
    /// may hold fewer events than `limit` (even none) when the search
    /// stopped after reading its share of the ledger: go on while this is
    /// not null.
    pub next_cursor: Option<u64>,
}

/// Egress events, newest first, from the ledger's indexes.
#[utoipa::path(
    get,
    path = "/v1/egress",
    tag = "ledger",
    params(EgressQuery),
    responses(
        (status = 200, description = "A page of events", body = EgressPage),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorBody),
        (status = 410, description = "The page reaches history pruned from this host (code `pruned`): it is in the archive", body = ErrorBody),
    )
)]
async fn list_egress(
    State(state): State<AdminState>,
    query: Result<Query<EgressQuery>, QueryRejection>,
) -> Result<Json<EgressPage>, ApiError> {
    let Query(q) = query.map_err(|e| bad_query(&e))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field("limit", &format!("must be 1 to {MAX_LIMIT}")));
    }
    let filter = search::Filter {
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        principal: q.principal,
        bucket: q.bucket,
        key_prefix: q.key_prefix,
        outcome: q.outcome.map(Outcome::from),
    };
    let ledger = state.ledger.clone();
    let (events, next_cursor) = super::blocking("query", move || {
        search::search(&ledger, &filter, q.cursor, limit as usize, search::BLOCKS_PER_PAGE)
    })
    .await?;
    Ok(Json(EgressPage { events, next_cursor }))
}

/// How to group the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Principal,
    Bucket,
    /// The UTC day the request arrived, `YYYY-MM-DD`.
    Day,
}

/// What to sum up.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// `principal`, `bucket` or `day` (UTC).
    group_by: Option<GroupBy>,
    /// RFC 3339: events that started at or after this time.
    since: Option<String>,
    /// RFC 3339: events that started before this time.
    until: Option<String>,
}

/// Totals of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SummaryGroup {
    /// The principal, bucket or day; null for requests without one
    /// (unauthenticated, or naming no bucket).
    pub key: Option<String>,
    pub requests: u64,
    /// Response body bytes sent (0 for events without an end yet).
    pub bytes_sent: u64,
}

/// Totals per group, ordered by key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub groups: Vec<SummaryGroup>,
}

/// Requests and bytes sent per principal, bucket or day.
#[utoipa::path(
    get,
    path = "/v1/egress/summary",
    tag = "ledger",
    params(SummaryQuery),
    responses(
        (status = 200, description = "Totals per group", body = Summary),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorBody),
        (status = 410, description = "The range reaches history pruned from this host (code `pruned`): it is in the archive", body = ErrorBody),
    )
)]
async fn egress_summary(
    State(state): State<AdminState>,
    query: Result<Query<SummaryQuery>, QueryRejection>,
) -> Result<Json<Summary>, ApiError> {
    let Query(q) = query.map_err(|e| bad_query(&e))?;
    let group_by = q.group_by.ok_or_else(|| ApiError::bad_field("group_by", "required: principal, bucket or day"))?;
    let filter = search::Filter {
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        ..search::Filter::default()
    };
    let ledger = state.ledger.clone();
    let groups = super::blocking("query", move || search::summarize(&ledger, group_by, &filter)).await?;
    Ok(Json(Summary { groups }))
}

/// What verification found: the JSON of `egress-proxy ledger verify --json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReportBody {
    pub ok: bool,
    /// The exit code `ledger verify` would give: 0 intact, 1 changed, 2
    /// truncated or rolled back, 3 fork, 4 signature or key problem.
    pub exit_code: i32,
    pub records: u64,
    pub segments: usize,
    /// Bytes of the log verified (compressed segments as decompressed).
    pub bytes: u64,
    /// The first seq on this host: 0 unless the oldest segments were
    /// pruned once archived; the history before it is in the archive.
    pub from_seq: u64,
    pub head_seq: Option<u64>,
    pub head: Option<String>,
    pub checkpoints_in_log: u64,
    pub checkpoint_files: u64,
    /// Checkpoint files of pruned history, which only the archive can check.
    pub checkpoint_files_skipped: u64,
    /// A start from elsewhere was given and checked (never, here).
    pub start_checked: bool,
    pub partial_tail: bool,
    pub problem: Option<ProblemBody>,
}

/// The first problem found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    pub kind: ProblemKindBody,
    pub message: String,
    pub seq: Option<u64>,
    pub segment: Option<String>,
    /// 1-based line number in `segment`.
    pub line: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKindBody {
    Tampered,
    Truncated,
    Fork,
    Signature,
}

impl From<VerifyReport> for VerifyReportBody {
    fn from(report: VerifyReport) -> VerifyReportBody {
        // Destructured so that a field added to the report fails to compile here.
        let VerifyReport {
            ok,
            exit_code,
            records,
            segments,
            bytes,
            from_seq,
            head_seq,
            head,
            checkpoints_in_log,
            checkpoint_files,
            checkpoint_files_skipped,
            start_checked,
            partial_tail,
            problem,
        } = report;
        let problem = problem.map(|Problem { kind, message, seq, segment, line }| ProblemBody {
            kind: match kind {
                ProblemKind::Tampered => ProblemKindBody::Tampered,
                ProblemKind::Truncated => ProblemKindBody::Truncated,
                ProblemKind::Fork => ProblemKindBody::Fork,
                ProblemKind::Signature => ProblemKindBody::Signature,
            },
            message,
            seq,
            segment,
            line,
        });
        VerifyReportBody {
            ok,
            exit_code,
            records,
            segments,
            bytes,
            from_seq,
            head_seq,
            head,
            checkpoints_in_log,
            checkpoint_files,
            checkpoint_files_skipped,
            start_checked,
            partial_tail,
            problem,
        }
    }
}

/// Verifies the whole ledger (every hash and link, every checkpoint), as
/// `egress-proxy ledger verify --json` does. Reads every segment.
#[utoipa::path(
    post,
    path = "/v1/ledger/verify",
    tag = "ledger",
    responses(
        (status = 200, description = "The verification report; `ok` false names the first problem", body = VerifyReportBody),
        (status = 500, description = "The ledger could not be read", body = ErrorBody),
    )
)]
async fn verify_ledger(State(state): State<AdminState>) -> Result<Json<VerifyReportBody>, ApiError> {
    let root = state.ledger.data_dir().ok_or_else(|| ApiError::internal("the ledger has no data dir"))?.root.clone();
    let report = super::blocking("query", move || {
        egress_ledger::verify::verify(&root, &VerifyOptions::default(), |_| {})
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    Ok(Json(report.into()))
}

/// The latest detached checkpoint file (signed note text).
#[utoipa::path(
    get,
    path = "/v1/ledger/checkpoints/latest",
    tag = "ledger",
    responses(
        (status = 200, description = "The checkpoint file", body = String, content_type = "text/plain"),
        (status = 404, description = "No checkpoint written yet", body = ErrorBody),
    )
)]
async fn latest_checkpoint(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let dirs = state.ledger.data_dir().ok_or_else(|| ApiError::internal("the ledger has no data dir"))?;
    let path = dirs.checkpoints().join("latest.txt");
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(text("text/plain; charset=utf-8", bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::not_found("no checkpoint written yet: one follows the first appends within a minute"))
        }
        Err(e) => Err(ApiError::internal(format!("{}: {e}", path.display()))),
    }
}

/// The checkpoint verifier key, one line: `<origin>+<key id>+<base64 key>`.
#[utoipa::path(
    get,
    path = "/v1/ledger/pubkey",
    tag = "ledger",
    responses((status = 200, description = "The verifier key line", body = String, content_type = "text/plain"))
)]
async fn pubkey(State(state): State<AdminState>) -> Response {
    text("text/plain; charset=utf-8", format!("{}\n", state.ledger.verifier_key().trim_end()))
}

/// Which lines to export; both bounds inclusive.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// First seq (default 0).
    from_seq: Option<u64>,
    /// Last seq (default: the head as the export reaches it).
    to_seq: Option<u64>,
}

/// The raw ledger lines, byte for byte (an export of a whole ledger from
/// seq 0 verifies by itself), streamed.
#[utoipa::path(
    get,
    path = "/v1/ledger/export",
    tag = "ledger",
    params(ExportQuery),
    responses(
        (status = 200, description = "JSON Lines as written", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorBody),
        (status = 410, description = "`from_seq` is in history pruned from this host (code `pruned`): it is in the archive", body = ErrorBody),
    )
)]
async fn export(
    State(state): State<AdminState>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| bad_query(&e))?;
    let from = q.from_seq.unwrap_or(0);
    let to = q.to_seq.unwrap_or(u64::MAX);
    if to < from {
        return Err(ApiError::bad_field("to_seq", "must not be below from_seq"));
    }
    let ledger = state.ledger.clone();
    let mut cursor = super::blocking("query", move || {
        let store = ledger.store().ok_or_else(|| ApiError::internal("the ledger was opened without its index"))?;
        let dirs = ledger.data_dir().ok_or_else(|| ApiError::internal("the ledger has no data dir"))?;
        let reader = egress_ledger::cursor::open_reader(&dirs.ledger())?;
        Ok(egress_ledger::cursor::LineCursor::open_at(&reader, &store.index, from)?)
    })
    .await?;

    // A small channel: the reader stays at most a few chunks ahead of the
    // client, and stops when the client goes away.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut line = egress_ledger::cursor::CursorLine::default();
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK + 4096);
        loop {
            match cursor.next_line(&mut line) {
                Ok(true) if line.seq < from => {}
                Ok(true) if line.seq <= to => {
                    chunk.extend_from_slice(&line.bytes);
                    chunk.push(b'\n');
                    if chunk.len() >= EXPORT_CHUNK
                        && tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk)))).is_err()
                    {
                        return;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(text("application/x-ndjson", Body::from_stream(stream)))
}

/// Counters in the Prometheus text format: requests by operation and
/// status, bytes out by bucket, latencies, the ledger writer's counters.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"))
)]
async fn metrics(State(state): State<AdminState>) -> Response {
    let mut out = state.metrics.render();
    state.ledger.stats().render(&mut out);
    out.push_str(&state.reconciler.metrics.render());
    if let Some(archive) = &state.archive {
        out.push_str(&archive.snapshot(state.ledger.head().records.checked_sub(1)).render());
    }
    // Quota usage per principal that has quotas: principals are the ones
    // we issued, so the label set is bounded by what we issued.
    let (ledger, usage) = (state.ledger.clone(), std::sync::Arc::clone(&state.usage));
    let quotas = super::blocking("quota usage", move || {
        let Some(store) = ledger.store() else { return Ok(Vec::new()) };
        let mut found = Vec::new();
        for (principal, grants) in store.access.all_grants()? {
            if !grants.limits.quotas.is_empty() {
                found.push(usage.usage(&principal, &grants.limits));
            }
        }
        Ok(found)
    })
    .await;
    match quotas {
        Ok(usages) => {
            let quotas: Vec<QuotaGauge<'_>> = usages
                .iter()
                .flat_map(|usage| {
                    usage.quotas.iter().map(|quota| QuotaGauge {
                        principal: &usage.principal,
                        per: quota.per.as_str(),
                        bucket: quota.bucket.as_deref(),
                        limit: quota.bytes,
                        used: quota.used,
                        reserved: quota.reserved,
                    })
                })
                .collect();
            egress_metrics::render_quotas(&mut out, &quotas);
        }
        Err(e) => tracing::error!(error = %e.message, "could not read quota usage for /metrics"),
    }
    text("text/plain; version=0.0.4; charset=utf-8", out)
}
