//! The compactor thread: compresses sealed segments (`crate::compact`) off
//! the writer's path. The writer wakes it when it rotates to a new segment;
//! it also looks every [`COMPACT_EVERY`] (for a backlog left by a failure,
//! or segments sealed before a restart). It ends when the writer thread
//! drops its end of the channel, after the segment it is on.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::Duration;

use crate::compact::{SealBoundary, compact_sealed};

/// How often the compactor looks for sealed segments without being woken.
const COMPACT_EVERY: Duration = Duration::from_secs(30);

/// Starts the compactor on the ledger dir `dir`. A `()` sent wakes it;
/// dropping the sender stops it.
pub(super) fn spawn(
    dir: PathBuf,
    boundary: Arc<SealBoundary>,
) -> std::io::Result<(mpsc::SyncSender<()>, thread::JoinHandle<()>)> {
    // One pending wake-up is enough: a pass compacts everything sealed.
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let compactor = thread::Builder::new().name("ledger-compactor".into()).spawn(move || run(&dir, &boundary, &rx))?;
    Ok((tx, compactor))
}

fn run(dir: &std::path::Path, boundary: &SealBoundary, rx: &mpsc::Receiver<()>) {
    let mut stopped = false;
    while !stopped {
        let pass = compact_sealed(dir, boundary, || {
            stopped = matches!(rx.try_recv(), Err(TryRecvError::Disconnected));
            stopped
        });
        match pass {
            Ok(done) => {
                for (first_seq, result) in done {
                    match result {
                        Ok(Some(c)) => tracing::debug!(
                            segment = first_seq,
                            plain_bytes = c.plain_bytes,
                            compressed_bytes = c.compressed_bytes,
                            "sealed segment compressed"
                        ),
                        Ok(None) => {}
                        Err(e) => tracing::error!(
                            segment = first_seq,
                            error = %e,
                            "compressing a sealed segment failed; it stays plain and is tried again later"
                        ),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "listing the ledger dir for compaction failed"),
        }
        if stopped {
            break;
        }
        match rx.recv_timeout(COMPACT_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stopped = true,
        }
    }
}
