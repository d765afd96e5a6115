//! The proxy as seen from outside: its process through /proc, its ledger
//! through the segment files in its data directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The proxy's process, read through /proc.
#[derive(Clone, Copy)]
pub struct Proxy(pub u32);

impl Proxy {
    fn status_field(self, field: &str) -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        Some(line[field.len()..].trim().to_owned())
    }

    /// Running (or sleeping): not gone, not a zombie.
    pub fn alive(self) -> bool {
        self.status_field("State:").is_some_and(|s| !s.starts_with('Z') && !s.starts_with('X'))
    }

    pub fn rss_kib(self) -> Option<u64> {
        self.status_field("VmRSS:")?.split_whitespace().next()?.parse().ok()
    }

    pub fn fds(self) -> Option<usize> {
        Some(std::fs::read_dir(format!("/proc/{}/fd", self.0)).ok()?.count())
    }

    /// Its soft limit on open files.
    pub fn fd_limit(self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.0)).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line["Max open files".len()..].split_whitespace().next()?.parse().ok()
    }
}

/// Samples the proxy's descriptors every 100 ms; keeps the peak.
pub struct FdSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FdSampler {
    pub fn start(proxy: Proxy) -> FdSampler {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let task = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(n) = proxy.fds() {
                        peak.fetch_max(n, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        FdSampler { stop, peak, task }
    }

    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// Waits (up to `within`) until the proxy holds no more than 16 descriptors
/// above `baseline`; returns its count then.
pub async fn settle_fds(proxy: Proxy, baseline: Option<usize>, within: Duration) -> Option<usize> {
    let until = Instant::now() + within;
    loop {
        let now = proxy.fds();
        if Instant::now() >= until || matches!((now, baseline), (Some(n), Some(b)) if n <= b + 16) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ledger's segment files: how many, their bytes and lines.
pub struct Segments {
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
}

impl Segments {
    pub fn read(data_dir: &Path) -> anyhow::Result<Segments> {
        let dir = data_dir.join("ledger");
        let mut segments = Segments { files: 0, bytes: 0, lines: 0 };
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Sealed segments are compressed: bytes on disk, lines inside.
            let compressed = name.ends_with(".jsonl.zst");
            if name.starts_with("segment-") && (compressed || name.ends_with(".jsonl")) {
                let data = std::fs::read(entry.path())?;
                segments.files += 1;
                segments.bytes += data.len() as u64;
                let data = if compressed { zstd::decode_all(data.as_slice())? } else { data };
                segments.lines += data.split(|b| *b == b'\n').count() as u64 - 1;
            }
        }
        Ok(segments)
    }

    /// Once the size has not changed for `quiet` (or after `within`).
    pub async fn settled(data_dir: &Path, quiet: Duration, within: Duration) -> anyhow::Result<Segments> {
        let until = Instant::now() + within;
        let mut last = Segments::read(data_dir)?;
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = Segments::read(data_dir)?;
            if now.bytes != last.bytes {
                since = Instant::now();
            }
            last = now;
            if since.elapsed() >= quiet || Instant::now() >= until {
                return Ok(last);
            }
        }
    }
}
