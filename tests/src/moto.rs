//! A moto server (the AWS emulator: S3 and CloudTrail on one port) for
//! end-to-end tests, on a free loopback port, killed when its handle drops.
//!
//! moto enforces bucket policies on object calls, and wrongly: it evaluates
//! a policy with no request context (no `aws:SecureTransport`, no
//! `aws:SourceArn`), and a statement whose `Condition` does not hold counts
//! as an explicit Deny, even an `Allow` (moto 5.2,
//! `moto/iam/access_control.py`, `IAMPolicyStatement::is_action_permitted`).
//! So every `PutObject`, `GetObject` and `DeleteObject` on a bucket the
//! proxy provisioned is 403, over HTTP and HTTPS alike. A test that reads or
//! writes objects there deletes the bucket's policy first
//! (`DeleteBucketPolicy` is a bucket call, which moto does not check).
//!
//! [`Moto::start_with_tls`] serves HTTPS with certificates from
//! `egress-proxy certs`, as AWS's endpoints do; whoever talks to it trusts
//! their `ca.pem` (the proxy's AWS clients through `SSL_CERT_FILE`, boto3
//! with `verify=`).
//!
//! moto checks no signatures: any access key works. Its account is
//! [`ACCOUNT`].

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::venv_bin;

/// The account moto answers as.
pub const ACCOUNT: &str = "123456789012";

/// A running `moto_server`.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub port: u16,
    /// The CA that signed the HTTPS certificate, when serving HTTPS.
    ca_file: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Moto {
    /// Starts it over plain HTTP.
    ///
    /// # Panics
    /// If `moto_server` is missing or does not come up in three attempts.
    #[must_use]
    pub fn start() -> Moto {
        Moto::start_serving(None)
    }

    /// Starts it over HTTPS with `server.pem` and `server.key` from `certs`
    /// (made by `egress-proxy certs --hosts localhost,127.0.0.1`); clients
    /// trust `certs/ca.pem`.
    ///
    /// # Panics
    /// As [`Moto::start`].
    #[must_use]
    pub fn start_with_tls(certs: &Path) -> Moto {
        Moto::start_serving(Some(certs))
    }

    fn start_serving(certs: Option<&Path>) -> Moto {
        let tool = venv_bin("moto_server");
        let mut failures = Vec::new();
        // A free port may be taken before moto binds it: try again with another.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            let mut args = vec!["-H".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned(), port.to_string()];
            if let Some(certs) = certs {
                args.extend([
                    "-c".to_owned(),
                    certs.join("server.pem").display().to_string(),
                    "-k".to_owned(),
                    certs.join("server.key").display().to_string(),
                ]);
            }
            let log = fs::File::create(dir.path().join("moto.log")).expect("moto log");
            let child = Command::new(&tool)
                .args(&args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("start {} ({e}); install it: pip install -r tests/requirements.txt", tool.display())
                });
            let ca_file = certs.map(|certs| certs.join("ca.pem"));
            let mut moto = Moto { child, port, ca_file, dir };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200))
                    .is_ok()
                {
                    return moto;
                }
                if moto.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = moto.child.kill();
            let _ = moto.child.wait();
            failures.push(moto.log());
        }
        panic!("moto_server did not come up in three attempts; its logs:\n{}", failures.join("\n----\n"));
    }

    /// `http://127.0.0.1:PORT`, or `https://` when serving HTTPS.
    #[must_use]
    pub fn endpoint(&self) -> String {
        let scheme = if self.ca_file.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA to trust for the HTTPS endpoint.
    #[must_use]
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// moto's output so far (every request it served).
    #[must_use]
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
