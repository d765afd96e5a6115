//! The first start of a fresh data dir with the embedded store: a principal
//! to use at once, its key in a private file, and a banner that says where
//! everything is and how to make a first request.
//!
//! The secret goes to the key file only; neither the banner nor the log
//! carries it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use egress_ledger::Ledger;
use egress_ledger::access::Actor;
use serde_json::json;
use zeroize::Zeroizing;

/// The principal made on first start.
pub const DEFAULT_PRINCIPAL: &str = "default";

/// Its key file, under the data dir.
pub const DEFAULT_KEY_FILE: &str = "default-principal.json";

/// Where a user reaches the running proxy.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// The S3 listener as bound.
    pub s3: SocketAddr,
    pub admin: SocketAddr,
    /// The region clients sign for.
    pub region: String,
    /// The admin token's file, or `None` when it came from the environment.
    pub admin_token_file: Option<PathBuf>,
    pub data_dir: PathBuf,
}

/// Creates the `default` principal when the data dir has none, writes its
/// key to `<data-dir>/default-principal.json` and prints the banner to
/// stderr; on later starts, one log line.
pub async fn welcome(ledger: &Ledger, welcome: &Welcome) -> anyhow::Result<()> {
    let store = ledger.store().context("ledger opened without its state store")?;
    let key_file = absolute(&welcome.data_dir.join(DEFAULT_KEY_FILE));
    let s3 = format!("http://{}", reachable(welcome.s3));
    let admin = format!("http://{}", reachable(welcome.admin));
    if !store.principals.list()?.is_empty() {
        tracing::info!(s3 = %s3, admin = %admin, "embedded dev store ready");
        return Ok(());
    }
    let ledger = ledger.clone();
    // `read-write` so that the README's tour works; docs/POLICIES.md says
    // how to tighten it.
    let issued = tokio::task::spawn_blocking(move || {
        let by = Actor("first-start".to_owned());
        let issued = ledger.create_principal_blocking(
            DEFAULT_PRINCIPAL,
            Some("created on first start with the embedded dev store"),
            &by,
        )?;
        egress_admin::access::update_grants(&ledger, DEFAULT_PRINCIPAL, &by, |grants| {
            grants.policies = vec!["read-write".to_owned()];
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("attaching read-write to {DEFAULT_PRINCIPAL}: {}", e.message))?;
        anyhow::Ok(issued)
    })
    .await??;
    let body = Zeroizing::new(
        json!({
            "name": issued.principal,
            "access_key_id": issued.access_key_id,
            "secret_access_key": issued.secret_access_key.expose(),
        })
        .to_string()
            + "\n",
    );
    egress_ledger::storage::write_file_durably(&key_file, body.as_bytes(), 0o600, true).with_context(|| {
        format!(
            "writing the key of principal `default` to {}; make another key with \
             `egress-proxy principal create NAME`",
            key_file.display()
        )
    })?;
    let token = welcome.admin_token_file.as_deref().map(absolute);
    eprintln!("{}", banner(&s3, &admin, &welcome.region, &key_file, token.as_deref()));
    Ok(())
}

/// The text printed on first start. Every example reads the key from the
/// file at run time, so the banner itself holds no secret.
fn banner(s3: &str, admin: &str, region: &str, key_file: &Path, token_file: Option<&Path>) -> String {
    let key = shell_quote(&key_file.display().to_string());
    let token = match token_file {
        Some(path) => path.display().to_string(),
        None => "from EGRESS_ADMIN_TOKEN".to_owned(),
    };
    format!(
        "\n\
egress-proxy is running with the EMBEDDED DEV STORE as its upstream (objects on local disk, not S3).
  S3 endpoint:   {s3}  (region {region}, path-style)
  admin API:     {admin}
  principal `default`, key file (0600): {key_file}
  admin token (0600):                   {token}

AWS CLI:
  eval \"$(python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); print(\"export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\" % (k[\"access_key_id\"], k[\"secret_access_key\"]))' {key})\"
  aws --endpoint-url {s3} --region {region} s3 mb s3://demo
  echo hello | aws --endpoint-url {s3} --region {region} s3 cp - s3://demo/hello.txt

boto3:
  python3 - <<'EOF'
import boto3, json
k = json.load(open({key_py}))
s3 = boto3.client(\"s3\", endpoint_url=\"{s3}\", region_name=\"{region}\",
                  aws_access_key_id=k[\"access_key_id\"], aws_secret_access_key=k[\"secret_access_key\"])
s3.create_bucket(Bucket=\"demo2\")
s3.put_object(Bucket=\"demo2\", Key=\"hello.txt\", Body=b\"hello\")
print(s3.get_object(Bucket=\"demo2\", Key=\"hello.txt\")[\"Body\"].read())
EOF
",
        key_file = key_file.display(),
        key_py = json!(key_file.display().to_string()),
    )
}

/// The address a local client connects to: a wildcard listener is reached
/// on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], v4.port())),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port())),
        other => other,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    if text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_names_the_files_and_holds_no_secret() {
        let text = banner(
            "http://127.0.0.1:9000",
            "http://127.0.0.1:9001",
            "us-east-1",
            Path::new("/tmp/a b/default-principal.json"),
            Some(Path::new("/tmp/a b/admin.token")),
        );
        assert!(text.contains("'/tmp/a b/default-principal.json'"), "{text}");
        assert!(text.contains("/tmp/a b/admin.token"), "{text}");
        assert!(text.contains("EMBEDDED DEV STORE"), "{text}");
    }

    #[test]
    fn wildcard_listeners_are_shown_as_loopback() {
        assert_eq!(reachable("0.0.0.0:9000".parse().unwrap()).to_string(), "127.0.0.1:9000");
        assert_eq!(reachable("10.0.0.1:9000".parse().unwrap()).to_string(), "10.0.0.1:9000");
    }
}
