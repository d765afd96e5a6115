//! The process allocator: mimalloc (the `#[global_allocator]` in `main.rs`),
//! told to give memory back to the OS at once.
//!
//! perf of the proxy on 4 KiB GETs put glibc's malloc and free at about an
//! eighth of its CPU; mimalloc's thread-local free lists cost a fraction of
//! that (`scripts/bench.sh`: small-GET req/s from 0.63 to 0.72 of direct,
//! added p99 from 4.5 to 2.0 ms). With its defaults it keeps freed memory for
//! a second and commits arena memory eagerly, which took the proxy's RSS from
//! 36 to 87–102 MiB; purging at once and committing on demand keeps it at
//! 29–34 MiB.
//!
//! mimalloc reads those options from the environment when the process
//! starts, before `main`; set later through its C API they no longer shape
//! the arena it already made (measured: RSS stayed at 77–88 MiB). So the
//! process sets them and execs itself once, same pid and arguments. An
//! operator's own `MIMALLOC_*` values win.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;

/// The options, as mimalloc's environment variables.
pub const OPTIONS: &[(&str, &str)] = &[("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0")];

/// Returns at once if every option is in the environment; otherwise execs
/// this program again with them added (and returns only if that fails,
/// running on with mimalloc's defaults).
pub fn settle() {
    let missing: Vec<_> = OPTIONS.iter().filter(|(name, _)| std::env::var_os(name).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let program_name = args.next().unwrap_or_else(|| OsString::from("egress-proxy"));
    let mut again = std::process::Command::new(exe);
    again.arg0(program_name).args(args);
    for (name, value) in missing {
        again.env(name, value);
    }
    let error = again.exec();
    eprintln!(
        "egress-proxy: could not restart itself with tuned allocator options ({error}); running with the defaults"
    );
}
