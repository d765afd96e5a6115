//! What a benchmark runs besides the client: certificates, the upstream
//! (SeaweedFS on a plain and an HTTPS port, from the e2e harness), the
//! proxies, nginx and the bare relay. Each process is stopped when its
//! handle drops (SIGTERM, then SIGKILL after a grace period), also when the
//! benchmark fails or is interrupted; all their files live in the
//! benchmark's temporary directory.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use egress_e2e::servers::{SeaweedFs, UPSTREAM_KEY, UPSTREAM_SECRET};
use egress_e2e::sigv4::Signer;

use crate::client::{self, Endpoint};
use crate::procfs::{self, Accounted};

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Waits until `port` accepts connections, failing early if `child` exits.
fn wait_listening(child: &mut Child, port: u16, what: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("{what} exited ({status}) before listening on {address}; {}:\n{}", log.display(), tail(log));
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} is not listening on {address} after 30 s:\n{}", tail(log));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM (a proxy drains and closes its ledger; nginx's master stops its
/// workers), SIGKILL if it is still there after `grace`.
fn terminate(child: &mut Child, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn_logged(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
    command.spawn().with_context(|| format!("starting {}", command.get_program().display()))
}

/// Runs `bin args...` to its end; its stdout, or an error with its stderr.
fn run(bin: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .env("EGRESS_LOG", "warn")
        .output()
        .with_context(|| format!("starting {} (give the egress-proxy binary to measure)", bin.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} {} failed ({}): {}",
        bin.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A dev CA and a server certificate for `localhost` and `127.0.0.1`
/// signed by it (`egress-proxy certs`), in `dir/certs`.
pub fn make_certs(proxy_bin: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let certs = dir.join("certs");
    let out = certs.to_str().context("the temporary directory's path is not UTF-8")?;
    run(proxy_bin, &["certs", "--out", out])?;
    Ok(certs)
}

/// SeaweedFS, serving the objects on a plain port and an HTTPS port beside
/// it: one store, so every shape reads the same bytes from the same server.
#[derive(Debug)]
pub struct Upstream {
    _seaweed: SeaweedFs,
    /// The `weed` process (one process: master, volume, filer, S3 gateway).
    pub accounted: Accounted,
    pub http: Endpoint,
    pub https: Endpoint,
    pub signer: Arc<Signer>,
    pub port: u16,
    pub https_port: u16,
}

impl Upstream {
    /// `certs`: the directory of [`make_certs`], for the HTTPS port. Always
    /// given, so that what the harness does by default (which changes with
    /// the e2e tests' needs) does not decide what is measured.
    pub async fn start(certs: PathBuf) -> anyhow::Result<Upstream> {
        let ca = certs.join("ca.pem");
        // The harness blocks (and panics on failure): off the async threads.
        let seaweed = tokio::task::spawn_blocking(move || SeaweedFs::start_with_tls(&certs))
            .await
            .map_err(|e| anyhow::anyhow!("SeaweedFS did not start (is `weed` on PATH? `. scripts/venv.sh`): {e}"))?;
        let weeds: Vec<u32> = procfs::children(std::process::id())
            .into_iter()
            .filter(|(_, name)| name == "weed")
            .map(|(pid, _)| pid)
            .collect();
        let [pid] = weeds[..] else { anyhow::bail!("expected one weed process of ours, found {weeds:?}") };
        let https_port = seaweed.https_port.context("SeaweedFS serves no HTTPS port")?;
        Ok(Upstream {
            accounted: Accounted::process(pid),
            http: Endpoint::new(&seaweed.endpoint(), None)?,
            https: Endpoint::new(&format!("https://localhost:{https_port}"), Some(&ca))?,
            signer: Arc::new(Signer::new(UPSTREAM_KEY, UPSTREAM_SECRET)),
            port: seaweed.port,
            https_port,
            _seaweed: seaweed,
        })
    }

    /// Creates `bucket` (if it is not there yet).
    pub async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        client::create_bucket(&self.http, &self.signer, bucket).await
    }

    /// Uploads generated objects of the given sizes into `bucket`.
    pub async fn upload(&self, bucket: &str, objects: &[(&str, u64)]) -> anyhow::Result<()> {
        for &(key, size) in objects {
            let seconds = client::put_object(&self.http, &self.signer, bucket, key, size).await?;
            eprintln!("# uploaded {bucket}/{key}: {} MiB in {seconds:.1} s", size >> 20);
        }
        Ok(())
    }
}

/// Which policies the proxy's principal gets.
#[derive(Debug, Clone)]
pub enum Policies {
    /// The built-in `full`.
    Full,
    /// Every `*.json` in this directory, stored and attached.
    Dir(PathBuf),
}

/// How to start one proxy.
#[derive(Debug)]
pub struct ProxySpec<'a> {
    pub bin: &'a Path,
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    pub upstream: String,
    /// The CA that signed an HTTPS upstream (`--upstream-ca-file`).
    pub upstream_ca: Option<PathBuf>,
    /// Also listen with TLS (`--tls-listen`), with `server.pem`/`server.key` from here.
    pub tls_certs: Option<PathBuf>,
    pub policies: Policies,
    /// `--worker-threads`, else the proxy's default.
    pub worker_threads: Option<usize>,
    /// More arguments for `serve`.
    pub extra_args: &'a [String],
}

/// An `egress-proxy serve` process with a principal of its own.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    pub pid: u32,
    pub http_url: String,
    pub https_url: Option<String>,
    /// Its admin API, `http://127.0.0.1:PORT`.
    pub admin_url: String,
    /// Its `--data-dir`.
    pub data_dir: PathBuf,
    pub signer: Arc<Signer>,
}

impl ProxyProcess {
    /// Creates the principal `bench` in `dir/data`, then starts `serve`.
    pub fn start(spec: &ProxySpec<'_>, dir: &Path) -> anyhow::Result<ProxyProcess> {
        fs::create_dir_all(dir)?;
        let data = dir.join("data");
        let data_arg = data.to_str().context("the temporary directory's path is not UTF-8")?;
        let mut policies = Vec::new();
        match &spec.policies {
            Policies::Full => policies.push("full".to_owned()),
            Policies::Dir(from) => {
                let mut files: Vec<PathBuf> = fs::read_dir(from)
                    .with_context(|| format!("reading the policy directory {}", from.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect();
                files.sort();
                anyhow::ensure!(!files.is_empty(), "{} holds no *.json policy", from.display());
                for file in files {
                    let name = file.file_stem().and_then(|s| s.to_str()).context("policy file name")?.to_owned();
                    let path = file.to_str().context("policy path is not UTF-8")?;
                    run(spec.bin, &["policy", "put", &name, path, "--data-dir", data_arg])?;
                    policies.push(name);
                }
            }
        }
        let mut args = vec!["principal", "create", "bench", "--data-dir", data_arg];
        for policy in &policies {
            args.extend(["--policy", policy]);
        }
        let key: serde_json::Value = serde_json::from_str(&run(spec.bin, &args)?).context("principal create's JSON")?;
        let field = |name: &str| key[name].as_str().map(str::to_owned).context("principal create printed no key");
        let signer = Arc::new(Signer::new(&field("access_key_id")?, &field("secret_access_key")?));

        let (port, admin_port) = (free_port()?, free_port()?);
        let mut command = Command::new(spec.bin);
        command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        command.args(["--admin-listen", &format!("127.0.0.1:{admin_port}"), "--data-dir", data_arg]);
        command.args(["--upstream", &spec.upstream]);
        if let Some(ca) = &spec.upstream_ca {
            command.arg("--upstream-ca-file").arg(ca);
        }
        let tls_port = match &spec.tls_certs {
            Some(certs) => {
                let tls_port = free_port()?;
                command.args(["--tls-listen", &format!("127.0.0.1:{tls_port}")]);
                command.arg("--tls-cert").arg(certs.join("server.pem"));
                command.arg("--tls-key").arg(certs.join("server.key"));
                Some(tls_port)
            }
            None => None,
        };
        if let Some(threads) = spec.worker_threads {
            command.args(["--worker-threads", &threads.to_string()]);
        }
        command.args(spec.extra_args);
        // Only what is given here configures it: no EGRESS_* from the caller.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("EGRESS_")) {
                command.env_remove(name);
            }
        }
        command
            .env("AWS_ACCESS_KEY_ID", UPSTREAM_KEY)
            .env("AWS_SECRET_ACCESS_KEY", UPSTREAM_SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("EGRESS_LOG", "warn");
        let log = dir.join("proxy.log");
        let mut child = spawn_logged(&mut command, &log)?;
        let started = wait_listening(&mut child, port, "egress-proxy", &log)
            .and_then(|()| tls_port.map_or(Ok(()), |p| wait_listening(&mut child, p, "egress-proxy TLS", &log)));
        if let Err(error) = started {
            terminate(&mut child, Duration::from_secs(1));
            return Err(error);
        }
        Ok(ProxyProcess {
            pid: child.id(),
            child,
            http_url: format!("http://127.0.0.1:{port}"),
            https_url: tls_port.map(|p| format!("https://localhost:{p}")),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            data_dir: data,
            signer,
        })
    }

    /// `GET path` on its admin API, with the token it generated.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let file = self.data_dir.join("admin.token");
        let token = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        client::get_json(&format!("{}{path}", self.admin_url), token.trim()).await
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// How nginx reaches the upstream.
#[derive(Debug, Clone)]
pub enum NginxUpstream {
    Http { port: u16 },
    Https { port: u16, ca: PathBuf },
}

/// How to configure one nginx.
#[derive(Debug)]
pub struct NginxSpec<'a> {
    pub bin: &'a str,
    pub workers: usize,
    pub upstream: NginxUpstream,
    /// Listen with TLS, with `server.pem`/`server.key` from here.
    pub tls_certs: Option<PathBuf>,
}

/// nginx as a reverse proxy configured like the egress proxy works:
/// streaming both ways, keep-alive connections to the upstream, Host and
/// the URI passed through (so SeaweedFS checks the client's own signature),
/// an access log line per request.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// The master and its workers.
    pub accounted: Accounted,
    pub url: String,
    pub config: String,
}

impl Nginx {
    pub fn start(spec: &NginxSpec<'_>, dir: &Path) -> anyhow::Result<Nginx> {
        fs::create_dir_all(dir)?;
        let port = free_port()?;
        let config = nginx_config(spec, dir, port);
        let conf = dir.join("nginx.conf");
        fs::write(&conf, &config)?;
        let log = dir.join("nginx.out");
        let mut command = Command::new(spec.bin);
        command.arg("-p").arg(dir).arg("-c").arg(&conf).arg("-e").arg(dir.join("error.log"));
        let mut child = spawn_logged(&mut command, &log)
            .context("nginx is missing: apt-get install nginx (Debian's), or give --nginx-bin")?;
        if let Err(error) = wait_listening(&mut child, port, "nginx", &dir.join("error.log")) {
            terminate(&mut child, Duration::from_secs(2));
            return Err(error);
        }
        // The workers are forked after the master listens.
        let deadline = Instant::now() + Duration::from_secs(10);
        while procfs::children(child.id()).len() < spec.workers {
            if Instant::now() > deadline {
                terminate(&mut child, Duration::from_secs(2));
                anyhow::bail!("nginx did not start {} workers within 10 s", spec.workers);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let scheme = if spec.tls_certs.is_some() { "https://localhost" } else { "http://127.0.0.1" };
        Ok(Nginx { accounted: Accounted::with_children(child.id()), child, url: format!("{scheme}:{port}"), config })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let workers: Vec<u32> = self.accounted.pids()[1..].to_vec();
        terminate(&mut self.child, Duration::from_secs(10));
        // A master killed before it could stop its workers leaves them behind.
        for worker in workers {
            if procfs::cpu_ticks(worker).is_ok() {
                let _ = Command::new("kill").args(["-KILL", &worker.to_string()]).status();
            }
        }
    }
}

/// The configuration of one nginx (also printed in the JSON and described
/// in docs/BENCHMARKS.md).
fn nginx_config(spec: &NginxSpec<'_>, dir: &Path, port: u16) -> String {
    let dir = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "daemon off;");
    if procfs::running_as_root() {
        // Else the workers run as nobody and cannot reach the temporary directory.
        let _ = writeln!(c, "user root;");
    }
    let _ = writeln!(c, "worker_processes {};", spec.workers);
    let _ = writeln!(c, "pid {dir}/nginx.pid;");
    let _ = writeln!(c, "error_log {dir}/error.log warn;");
    let _ = writeln!(c, "events {{ worker_connections 4096; }}");
    let _ = writeln!(c, "http {{");
    let _ = writeln!(c, "  access_log {dir}/access.log combined;");
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = writeln!(c, "  {temp}_temp_path {dir}/{temp};");
    }
    // The proxy keeps a client's connection as long as the client does; nginx
    // would close it after 1,000 requests (and the upstream's, too).
    let _ = writeln!(c, "  keepalive_requests 1000000;");
    let _ = writeln!(c, "  keepalive_timeout 75s;");
    let (upstream_port, upstream_scheme) = match &spec.upstream {
        NginxUpstream::Http { port } => (port, "http"),
        NginxUpstream::Https { port, .. } => (port, "https"),
    };
    let _ = writeln!(c, "  upstream seaweedfs {{");
    let _ = writeln!(c, "    server 127.0.0.1:{upstream_port};");
    let _ = writeln!(c, "    keepalive 256;");
    let _ = writeln!(c, "    keepalive_requests 1000000;");
    let _ = writeln!(c, "    keepalive_timeout 60s;");
    let _ = writeln!(c, "  }}");
    let _ = writeln!(c, "  server {{");
    match &spec.tls_certs {
        Some(certs) => {
            let _ = writeln!(c, "    listen 127.0.0.1:{port} ssl;");
            let _ = writeln!(c, "    ssl_certificate {};", certs.join("server.pem").display());
            let _ = writeln!(c, "    ssl_certificate_key {};", certs.join("server.key").display());
            let _ = writeln!(c, "    ssl_protocols TLSv1.2 TLSv1.3;");
            let _ = writeln!(c, "    ssl_session_cache shared:SSL:10m;");
        }
        None => {
            let _ = writeln!(c, "    listen 127.0.0.1:{port};");
        }
    }
    let _ = writeln!(c, "    client_max_body_size 0;");
    let _ = writeln!(c, "    location / {{");
    let _ = writeln!(c, "      proxy_pass {upstream_scheme}://seaweedfs;");
    let _ = writeln!(c, "      proxy_http_version 1.1;");
    let _ = writeln!(c, "      proxy_set_header Connection \"\";");
    let _ = writeln!(c, "      proxy_set_header Host $http_host;");
    // Streaming both ways, 128 KiB reads as the proxy's: nothing is held
    // back or spilled to a temporary file.
    let _ = writeln!(c, "      proxy_request_buffering off;");
    let _ = writeln!(c, "      proxy_buffering off;");
    let _ = writeln!(c, "      proxy_buffer_size 128k;");
    let _ = writeln!(c, "      proxy_buffers 4 128k;");
    let _ = writeln!(c, "      proxy_busy_buffers_size 256k;");
    if let NginxUpstream::Https { ca, .. } = &spec.upstream {
        let _ = writeln!(c, "      proxy_ssl_trusted_certificate {};", ca.display());
        let _ = writeln!(c, "      proxy_ssl_verify on;");
        // nginx does not match an IP address SAN given as the name.
        let _ = writeln!(c, "      proxy_ssl_name localhost;");
        let _ = writeln!(c, "      proxy_ssl_server_name on;");
        let _ = writeln!(c, "      proxy_ssl_session_reuse on;");
        let _ = writeln!(c, "      proxy_ssl_protocols TLSv1.2 TLSv1.3;");
    }
    let _ = writeln!(c, "    }}");
    let _ = writeln!(c, "  }}");
    let _ = writeln!(c, "}}");
    c
}

/// `egress-relay` (threads copying bytes, the least any proxy does), from
/// beside this binary, in front of the upstream's plain port.
#[derive(Debug)]
pub struct Relay {
    child: Child,
    pub accounted: Accounted,
    pub url: String,
}

impl Relay {
    pub fn start(upstream_port: u16, dir: &Path) -> anyhow::Result<Relay> {
        fs::create_dir_all(dir)?;
        let bin = std::env::current_exe()?.with_file_name("egress-relay");
        let port = free_port()?;
        let log = dir.join("relay.out");
        let mut command = Command::new(&bin);
        command.args([format!("127.0.0.1:{port}"), format!("127.0.0.1:{upstream_port}")]);
        let mut child = spawn_logged(&mut command, &log)
            .with_context(|| format!("{} is missing: cargo build -p egress-e2e --bins", bin.display()))?;
        if let Err(error) = wait_listening(&mut child, port, "egress-relay", &log) {
            terminate(&mut child, Duration::from_secs(1));
            return Err(error);
        }
        Ok(Relay { accounted: Accounted::process(child.id()), child, url: format!("http://127.0.0.1:{port}") })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(2));
    }
}
