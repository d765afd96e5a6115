//! Harness for the end-to-end tests: the real `egress-proxy` binary, run as
//! a user would run it.
//!
//! The binary is built by the harness itself, once per test process, with
//! `cargo build --workspace --bins` into a target directory of its own
//! (`<target>/e2e-bins`): `cargo test` builds only the tested package's own
//! binaries, and a build into the test's own target directory while tests
//! run would replace artifacts that `cargo test` still needs (its doc
//! tests), since the two builds unify features differently.
//! `$EGRESS_PROXY_BIN` names another binary instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Path of the `egress-proxy` binary under test, built first if it is
/// missing or stale.
///
/// # Panics
/// If it cannot be built: the message has cargo's.
#[must_use]
pub fn bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = std::env::var_os("EGRESS_PROXY_BIN") {
        return PathBuf::from(path);
    }
    BUILT.get_or_init(build_binaries).clone()
}

/// `cargo build --workspace --bins` in this test executable's profile, into
/// `<target>/e2e-bins`; a no-op once it is up to date.
fn build_binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let profile_name = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let profile = if profile_name == "debug" { "dev" } else { profile_name };
    let target_dir = profile_dir.parent().expect("target dir").join("e2e-bins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--workspace", "--bins", "--profile", profile, "--target-dir"])
        .arg(&target_dir)
        .current_dir(repo_root())
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "cargo build --workspace --bins failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let path = target_dir.join(profile_name).join("egress-proxy");
    assert!(path.exists(), "cargo built no {}", path.display());
    path
}

/// The repository's root, for files the tests read (examples, scripts).
///
/// Read from the environment `cargo test` runs the test in, not baked in at
/// compile time: two clones that share a target directory share compiled
/// tests, and a baked-in path would point into the other clone.
#[must_use]
pub fn repo_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().expect("the tests crate sits in the repository").to_path_buf()
}

/// The result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as JSON.
    ///
    /// # Panics
    /// If stdout is not JSON (the panic shows both streams).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `egress-proxy ARGS...` to completion.
///
/// # Panics
/// If the binary cannot be started.
#[must_use]
pub fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

/// Runs `egress-proxy ARGS...` with variables `env` set.
///
/// # Panics
/// If the binary cannot be started.
#[must_use]
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Command::new(bin())
        .args(args)
        .env("EGRESS_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("start egress-proxy")
        .into()
}

/// Runs `egress-proxy ARGS... --data-dir DIR`.
#[must_use]
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    let dir = dir.to_str().expect("utf-8 temp path");
    all.extend(["--data-dir", dir]);
    run(&all)
}

/// Copies a directory tree (a data dir) to `to`.
///
/// # Panics
/// On I/O errors.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

pub mod moto;
pub mod relay;
pub mod servers;
pub mod sigv4;

/// Deterministic, incompressible-looking bytes (xorshift64*).
#[must_use]
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Waits until `path` exists: the signal a client running in `thread` gives
/// once it reached the point the test waits for.
///
/// # Panics
/// If `within` passes or the thread ends first (`what` says what never came).
pub fn wait_for_signal<T>(path: &Path, thread: &std::thread::JoinHandle<T>, within: std::time::Duration, what: &str) {
    let deadline = std::time::Instant::now() + within;
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline && !thread.is_finished(), "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
