//! `egress-proxy config check` on the example configs of `examples/` (each
//! must pass) and on broken ones (each problem reported, exit 1).

use std::path::{Path, PathBuf};
use std::process::Command;

use egress_e2e::{Run, bin, run};

fn example(name: &str) -> PathBuf {
    egress_e2e::repo_root().join("examples").join(name)
}

/// `egress-proxy ARGS...` run in `cwd`, so relative paths of a config file
/// resolve there, with no `EGRESS_*` setting inherited from the test run.
fn run_at(cwd: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("EGRESS_") {
            command.env_remove(name);
        }
    }
    command.args(args).current_dir(cwd).env("EGRESS_LOG", "warn").output().expect("start egress-proxy").into()
}

fn check_example(cwd: &Path, name: &str, extra: &[&str]) -> Run {
    let config = example(name);
    let mut args = vec!["config", "check", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_at(cwd, &args)
}

#[test]
fn the_embedded_dev_example_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = check_example(tmp.path(), "embedded-dev.toml", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("no problems found"), "{out:?}");
}

#[test]
fn the_aws_example_passes_and_flags_win_over_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = check_example(tmp.path(), "aws.toml", &["--json", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["ok"], true, "{report}");
    let effective = &report["effective"];
    assert_eq!(effective["upstream"], "https://s3.eu-west-1.amazonaws.com/", "{report}");
    assert_eq!(effective["region"], "eu-west-1", "{report}");
    assert_eq!(effective["upstream_addressing"], "virtual", "{report}");
    assert_eq!(effective["data_dir"], data.to_str().unwrap(), "the flag wins over the file: {report}");
}

#[test]
fn the_tls_example_passes_with_certs_from_the_certs_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_at(tmp.path(), &["certs", "--out", "certs"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = check_example(tmp.path(), "tls.toml", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("tls_cert = certs/server.pem"), "{out:?}");

    // Without the certificates the same example is refused, and says why.
    let empty = tempfile::tempdir().unwrap();
    let out = check_example(empty.path(), "tls.toml", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("reading --tls-cert certs/server.pem"), "{out:?}");
}

#[test]
fn every_problem_is_reported_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("bad.toml");
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    std::fs::write(
        &config,
        format!(
            "upstream = \"htp:/s3.example\"\nlisen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:notaport\"\n\
             tls_listen = \"127.0.0.1:9443\"\ntls_cert = \"{0}\"\ntls_key = \"{0}\"\n\
             aws_endpoint = \"moto:5000\"\n",
            garbage.display()
        ),
    )
    .unwrap();
    let out = run_at(tmp.path(), &["config", "check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    for expected in [
        "unknown key `lisen`",
        "`admin_listen`: invalid socket address syntax",
        "upstream \"htp:/s3.example\"",
        "garbage.pem holds no certificate",
        "aws_endpoint \"moto:5000\" must be an http:// or https:// URL",
        "5 problem(s)",
    ] {
        assert!(out.stdout.contains(expected), "missing {expected:?} in {out:?}");
    }
}

#[test]
fn an_unreadable_cert_and_a_missing_file_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run_at(
        tmp.path(),
        &[
            "config",
            "check",
            "--upstream",
            "http://127.0.0.1:8333",
            "--data-dir",
            data.to_str().unwrap(),
            "--tls-listen",
            "127.0.0.1:9443",
            "--tls-cert",
            "/nonexistent/server.pem",
            "--tls-key",
            "/nonexistent/server.key",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("reading --tls-cert /nonexistent/server.pem"), "{out:?}");

    let out = run_at(tmp.path(), &["config", "check", "--config", "/nonexistent/egress-proxy.toml"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("reading config file /nonexistent/egress-proxy.toml"), "{out:?}");
}

#[test]
fn secrets_are_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out: Run = Command::new(bin())
        .args(["config", "check", "--json", "--upstream", "http://127.0.0.1:8333", "--data-dir"])
        .arg(&data)
        .current_dir(tmp.path())
        .env("EGRESS_ADMIN_TOKEN", "admin-token-that-must-not-show")
        .env("AWS_ACCESS_KEY_ID", "AKIDTHATMUSTNOTSHOW")
        .env("AWS_SECRET_ACCESS_KEY", "aws-secret-that-must-not-show")
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("must-not-show") && !out.stdout.contains("MUSTNOTSHOW"), "{out:?}");
    let report = out.json();
    assert_eq!(report["effective"]["admin_token"], "*** (from EGRESS_ADMIN_TOKEN)", "{report}");
    assert!(report["effective"]["upstream_credentials"].as_str().unwrap().contains("AWS_SECRET_ACCESS_KEY=***"));
}

#[test]
fn a_data_dir_that_cannot_be_written_is_a_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let inside = file.join("data");
    let out = run(&["config", "check", "--upstream", "http://127.0.0.1:8333", "--data-dir", inside.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("is not a directory"), "{out:?}");
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let out = run(&["config", "check", "--listen", "not-an-address"]);
    assert_eq!(out.code, 64, "{out:?}");
    assert!(out.stderr.contains("--listen"), "{out:?}");
}
