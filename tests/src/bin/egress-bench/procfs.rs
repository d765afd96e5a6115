//! What the kernel accounts to a process, read from `/proc`: CPU time
//! (`utime + stime` of `/proc/PID/stat`, in clock ticks, all threads, dead
//! ones included), resident memory (`VmRSS`, `VmHWM` of `/proc/PID/status`)
//! and the whole machine's busy time (`/proc/stat`), to tell how much of a
//! run's CPU went to processes that are not part of the benchmark.

use std::fs;
use std::process::Command;

use anyhow::Context as _;

/// `sysconf(_SC_CLK_TCK)`, by `getconf`: the unit of the CPU times in `/proc`.
pub fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let out = Command::new("getconf").arg("CLK_TCK").output().context("running getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().with_context(|| format!("getconf CLK_TCK printed {text:?}"))
}

/// The fields of `/proc/PID/stat` after the command name, so that index 0
/// is field 3 (state) of proc(5).
fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid} is gone"))?;
    // The command name may hold spaces and parentheses: it ends at the last ')'.
    let (_, rest) = text.rsplit_once(')').with_context(|| format!("/proc/{pid}/stat: {text:?}"))?;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// User plus system CPU time of `pid` so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let fields = stat_fields(pid)?;
    // utime and stime are fields 14 and 15.
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).with_context(|| format!("/proc/{pid}/stat field {}", i + 3))
    };
    Ok(tick(11)? + tick(12)?)
}

/// The processes whose parent is `pid`, by command name.
pub fn children(pid: u32) -> Vec<(u32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(text) = fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else { continue };
        let parent = text[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            out.push((child, text[open + 1..close].to_owned()));
        }
    }
    out.sort();
    out
}

/// A field of `/proc/PID/status` given in kB (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("process {pid} is gone"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .with_context(|| format!("/proc/{pid}/status has no {field}"))
}

/// Resets `pid`'s `VmHWM` to its current RSS (`clear_refs` 5, Linux ≥ 4.0),
/// so that the next reading is the peak of what follows. False where the
/// kernel or the permissions do not allow it.
pub fn reset_peak_rss(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Whether this process runs as root (nginx then needs `user root` for
/// its workers to reach the benchmark's files).
pub fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").ok().is_some_and(|text| {
        text.lines().any(|line| line.strip_prefix("Uid:").and_then(|ids| ids.split_whitespace().nth(1)) == Some("0"))
    })
}

/// Clock ticks all CPUs have been busy (user, nice, system, irq, softirq,
/// steal), from the first line of `/proc/stat`.
pub fn machine_busy_ticks() -> anyhow::Result<u64> {
    let text = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text.lines().next().context("/proc/stat is empty")?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    anyhow::ensure!(fields.len() >= 8, "/proc/stat: {line:?}");
    // user nice system idle iowait irq softirq steal (guest is inside user).
    Ok(fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7])
}

/// The processes whose CPU time is one target's cost: the proxy, or
/// nginx's master and its workers.
#[derive(Debug, Clone)]
pub struct Accounted {
    pids: Vec<u32>,
}

impl Accounted {
    pub fn process(pid: u32) -> Accounted {
        Accounted { pids: vec![pid] }
    }

    /// `pid` and its children as they are now (nginx's workers: they live as
    /// long as the master unless one crashes, which [`Accounted::cpu_ticks`]
    /// then reports).
    pub fn with_children(pid: u32) -> Accounted {
        let mut pids = vec![pid];
        pids.extend(children(pid).into_iter().map(|(child, _)| child));
        Accounted { pids }
    }

    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Their CPU time so far, in clock ticks; an error if one has exited
    /// (its time would vanish from the sum).
    pub fn cpu_ticks(&self) -> anyhow::Result<u64> {
        self.pids.iter().map(|&pid| cpu_ticks(pid)).sum()
    }
}
