//! Operator comforts: `--version` names the ledger head, and `serve
//! --log-format json` logs one JSON object a line.

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs};

#[test]
fn version_names_the_ledger_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    assert_eq!(egress_e2e::run_in(&dir, &["principal", "create", "x"]).code, 0);
    let out =
        std::process::Command::new(egress_e2e::bin()).arg("--version").env("EGRESS_DATA_DIR", &dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("egress-proxy {}", env!("CARGO_PKG_VERSION"))), "{text}");
    let lines = egress_e2e::servers::ledger_lines(&dir);
    let last = lines.last().unwrap();
    assert!(text.contains(&format!("head seq {}", last["seq"])), "{text}");
}

#[test]
fn serve_logs_json_lines_for_machines() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["alice".into()],
            extra_args: vec!["--log-format".into(), "json".into()],
            ..ProxyOptions::default()
        },
    );
    let log = proxy.log();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "serving S3"), "{log}");
}
