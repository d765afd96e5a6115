//! The ledger handle, the two threads behind it, and the data dir they live
//! in.
//!
//! Each module depends only on those listed before it:
//! - [`config`]: what opening a ledger takes, and why opening can fail;
//! - [`data_dir`]: where things live in the data dir, the lock that keeps a
//!   second process out, and the detached checkpoint files;
//! - [`indexer_thread`]: the thread that applies committed lines to sled;
//! - [`compactor_thread`]: the thread that compresses sealed segments;
//! - [`writer_thread`]: the thread that drives
//!   [`WriterCore`](crate::writer::WriterCore), and the channel handles reach
//!   it by;
//! - [`handle`]: [`Ledger`], the public API over all of the above.

mod compactor_thread;
mod config;
mod data_dir;
mod handle;
mod indexer_thread;
mod writer_thread;

pub use config::{LedgerConfig, LedgerOpenError};
pub use data_dir::{DataDir, checkpoint_file_name};
pub use handle::Ledger;
pub use writer_thread::Head;
