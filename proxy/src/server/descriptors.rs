//! File descriptors: the open-file limit the connection caps are derived
//! from, and accepting at that limit.
//!
//! At the limit, `accept(2)` fails with `EMFILE` and leaves the connection
//! in the listen backlog, where it stays (and the listener stays readable)
//! until a descriptor frees up: the accept loop would spin, and clients
//! would wait in the backlog for their own timeout. [`Reserve`] keeps one
//! descriptor in hand to accept such a connection and close it at once, so
//! that clients are told promptly and the backlog drains.

use std::fs::File;
use std::io;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;

/// The soft and hard limits on open files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimits {
    pub soft: u64,
    pub hard: u64,
}

/// The process's open-file limits (`u64::MAX` for unlimited).
#[must_use]
pub fn open_file_limits() -> OpenFileLimits {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    OpenFileLimits { soft: limit.current.unwrap_or(u64::MAX), hard: limit.maximum.unwrap_or(u64::MAX) }
}

/// Raises the soft limit on open files to the hard one and returns the
/// soft limit then in effect. Every download in flight takes two
/// descriptors (client and upstream), and idle upstream connections are
/// kept besides; a soft limit of 1,024, common for services, would refuse
/// connections at about 500 downloads in flight.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let OpenFileLimits { soft, hard } = open_file_limits();
    if soft >= hard {
        return soft;
    }
    let raised = Rlimit { current: Some(hard), maximum: Some(hard) };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "raised the open-file limit");
            hard
        }
        Err(e) => {
            tracing::warn!(error = %e, limit = soft, "could not raise the open-file limit");
            soft
        }
    }
}

/// Whether an accept failed for want of a descriptor (the process's or the
/// system's).
#[must_use]
pub fn out_of_descriptors(error: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(error), Some(Errno::MFILE | Errno::NFILE))
}

/// How long the accept loop pauses when it could not shed a connection at
/// the limit: long enough not to spin, short enough to serve again soon.
const SHED_PAUSE: Duration = Duration::from_millis(10);
/// Shedding is logged at most this often.
const LOG_EVERY: Duration = Duration::from_mins(1);

/// One descriptor held in reserve (an open `/dev/null`), given up to
/// accept and close a connection when the limit is reached.
#[derive(Debug)]
pub struct Reserve {
    file: Option<File>,
    /// Connections shed since the last log line.
    shed: u64,
    logged_at: Option<Instant>,
}

impl Reserve {
    /// Takes the reserve descriptor.
    pub fn new() -> io::Result<Reserve> {
        Ok(Reserve { file: Some(File::open("/dev/null")?), shed: 0, logged_at: None })
    }

    /// After `listener`'s accept failed with `EMFILE`/`ENFILE`: frees the
    /// reserve, accepts the waiting connection and closes it, takes the
    /// reserve again. Pauses briefly when there was nothing to shed (the
    /// freed descriptor was taken first, or the system is out), so that
    /// the loop does not spin. Logged once a minute at most, with the
    /// number shed.
    pub async fn shed(&mut self, listener: &TcpListener) {
        self.file = None;
        // The connection that failed to be accepted is still waiting, and
        // the listener still readable: this returns at once, unless it is gone.
        let shed = match tokio::time::timeout(SHED_PAUSE, listener.accept()).await {
            Ok(Ok((stream, _))) => {
                drop(stream);
                true
            }
            Ok(Err(_)) | Err(_) => false,
        };
        self.file = File::open("/dev/null").ok();
        self.shed += u64::from(shed);
        let now = Instant::now();
        if self.logged_at.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            tracing::warn!(
                shed = self.shed,
                reserve = self.file.is_some(),
                "out of file descriptors: new connections are accepted and closed at once \
                 (lower --max-connections or raise the open-file limit)"
            );
            self.logged_at = Some(now);
            self.shed = 0;
        }
        if !shed {
            tokio::time::sleep(SHED_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_told_from_other_accept_errors() {
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error())));
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(rustix::io::Errno::NFILE.raw_os_error())));
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(rustix::io::Errno::CONNABORTED.raw_os_error())));
        assert!(!out_of_descriptors(&io::Error::other("no errno")));
    }

    #[tokio::test]
    async fn a_waiting_connection_is_accepted_and_closed_with_the_reserve() {
        use tokio::io::AsyncReadExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut reserve = Reserve::new().unwrap();
        reserve.shed(&listener).await;
        assert!(reserve.file.is_some(), "the reserve is taken again");
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "the shed connection is closed: {read:?}");
    }
}
