//! The indexer thread: applies the lines the writer thread publishes to the
//! sled indexes, coalesced into few batches and off the commit path, and
//! flushes the state store once the writer hangs up.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::index::EventIndex;
use crate::record::Entry;
use crate::store::Store;
use crate::writer::Appended;

/// The indexer takes what the writer published at most this often: woken
/// for every commit, its thread switches cost more than the indexing.
/// Queries read the lines above the index from the segments, so a late
/// index is never a wrong answer.
const INDEX_PAUSE: Duration = Duration::from_millis(20);

/// Lines the writer made durable, each with where it landed: what one
/// message to the indexer carries.
pub(super) type DurableLines = Vec<(Appended, Entry)>;

/// Starts the indexer on `store`'s index (or on none: it then only drains
/// the channel). Durable lines go into the returned sender; dropping it
/// stops the thread after a flush of the store.
pub(super) fn spawn(store: Option<Store>) -> std::io::Result<(mpsc::SyncSender<DurableLines>, thread::JoinHandle<()>)> {
    let (index_tx, index_rx) = mpsc::sync_channel::<DurableLines>(1024);
    let index = store.as_ref().map(|s| s.index.clone());
    let indexer = thread::Builder::new()
        .name("ledger-indexer".into())
        .spawn(move || run(&index_rx, index.as_deref(), store.as_ref()))?;
    Ok((index_tx, indexer))
}

fn run(rx: &mpsc::Receiver<DurableLines>, index: Option<&EventIndex>, store: Option<&Store>) {
    while let Ok(mut written) = rx.recv() {
        thread::sleep(INDEX_PAUSE);
        // Coalesce whatever else is waiting into one sled batch.
        while let Ok(more) = rx.try_recv() {
            written.extend(more);
            if written.len() > 65_536 {
                break;
            }
        }
        if let Some(index) = index
            && let Err(e) = index.apply(&written)
        {
            tracing::error!(error = %e, "indexing failed; `egress-proxy ledger reindex` rebuilds the index");
        }
    }
    if let Some(store) = store
        && let Err(e) = store.flush()
    {
        tracing::error!(error = %e, "flushing the state store failed");
    }
}
