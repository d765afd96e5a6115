//! `egress-proxy config check`: the configuration `serve` would run with the
//! same arguments, secrets masked, and every problem in it.
//!
//! `serve` stops at the first problem; this command goes on and reports them
//! all: unknown or ill-typed keys in the file, a TLS certificate or key that
//! does not load, a malformed upstream or AWS endpoint URL, a data dir that
//! cannot be written. The settings are layered and the effective
//! configuration built by the same functions `serve` uses
//! ([`ServeSettings::layered`], [`ServeConfig::from_settings`]), from the
//! file with its bad keys left out. Every setting is shown
//! ([`ServeSettings::values`]), as `serve` derives it where it does.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use http::Uri;
use serde_json::{Map, Value, json};

use crate::cli::ConfigCheckArgs;
use crate::config::settings::{self, ServeSettings};
use crate::config::{ServeConfig, UpstreamTarget, default_worker_threads};

/// What the check found.
#[derive(Debug)]
struct Report {
    config_file: Option<PathBuf>,
    /// The effective configuration (in the order of `--help`), or `None`
    /// when it cannot be built.
    effective: Option<Vec<(&'static str, Value)>>,
    problems: Vec<String>,
}

/// Runs the check; exit code 0 when nothing is wrong, else 1.
pub fn check(args: ConfigCheckArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let ConfigCheckArgs { serve: args, json } = args;
    let report = inspect(args, matches);
    if json {
        let out = json!({
            "config_file": report.config_file,
            "effective": report.effective.as_ref().map(|settings| {
                settings.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect::<Map<_, _>>()
            }),
            "problems": report.problems,
            "ok": report.problems.is_empty(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render_text(&report));
    }
    Ok(i32::from(!report.problems.is_empty()))
}

fn inspect(args: crate::cli::ServeArgs, matches: &ArgMatches) -> Report {
    let mut problems = Vec::new();
    let config_file = args.config_file();
    let file = match &config_file {
        Some(path) => read_file_leniently(path, &mut problems),
        None => ServeSettings::default(),
    };
    let settings = ServeSettings::layered(args.settings, matches, file);
    let effective = match ServeConfig::from_settings(settings.clone()) {
        Ok(config) => Some(describe(&settings, &config)),
        Err(e) => {
            problems.push(format!("{e:#}"));
            None
        }
    };
    // What serve would find only when it starts, checked on its own so that
    // it is found even when the whole config cannot be built.
    if let Some(data_dir) = &settings.data_dir {
        problems.extend(check_data_dir(data_dir));
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key)
        && let Err(e) = crate::tls::acceptor(cert, key)
    {
        problems.push(format!("TLS: {e:#}; make a dev pair with `egress-proxy certs --out DIR`"));
    }
    if let Some(path) = &settings.admin_token_file
        && let Err(e) = std::fs::read_to_string(path)
    {
        problems.push(format!("admin_token_file {}: cannot be read: {e}", path.display()));
    }
    if let Some(endpoint) = &settings.aws_endpoint
        && let Some(problem) = url_problem("aws_endpoint", endpoint)
    {
        problems.push(problem);
    }
    Report { config_file, effective, problems }
}

/// Reads the config file, recording each unknown key, ill-typed value or
/// syntax error, and returns the file without the keys at fault.
fn read_file_leniently(path: &Path, problems: &mut Vec<String>) -> ServeSettings {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("reading config file {shown}: {e}"));
            return ServeSettings::default();
        }
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(e) => {
            problems.push(format!("config file {shown} is not valid TOML: {}", settings::toml_error(&text, &e)));
            return ServeSettings::default();
        }
    };
    let known = ServeSettings::KEYS;
    let mut good = toml::Table::new();
    for (key, value) in table {
        if !known.contains(&key.as_str()) {
            problems.push(format!("config file {shown}: unknown key `{key}` (known keys: {})", known.join(", ")));
            continue;
        }
        let mut one = toml::Table::new();
        one.insert(key.clone(), value.clone());
        match one.try_into::<ServeSettings>() {
            Ok(_) => {
                good.insert(key, value);
            }
            Err(e) => problems.push(format!("config file {shown}: `{key}`: {}", e.message())),
        }
    }
    good.try_into().unwrap_or_else(|e| {
        problems.push(format!("config file {shown}: {e}"));
        ServeSettings::default()
    })
}

/// The effective configuration, secrets masked: every setting as layered,
/// in the order of `--help`, and where `serve` derives a value from it (a
/// default that depends on other settings or on the machine, a normalised
/// form, a zero taken as one) that value instead.
fn describe(settings: &ServeSettings, config: &ServeConfig) -> Vec<(&'static str, Value)> {
    const MASK: &str = "***";
    let admin_token = if config.admin.token_env.is_some() {
        format!("{MASK} (from EGRESS_ADMIN_TOKEN)")
    } else if let Some(file) = &config.admin.token_file {
        format!("from file {}", file.display())
    } else {
        format!("generated into {} on first start", config.data_dir.join("admin.token").display())
    };
    let upstream_credentials = match &config.upstream_credentials {
        _ if config.upstream == UpstreamTarget::Embedded => {
            json!(format!("the embedded store's internal key ({MASK})"))
        }
        Some(_) => json!({ "access_key_id": MASK, "secret_access_key": MASK }),
        None if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() => {
            json!(format!("the AWS default chain: AWS_ACCESS_KEY_ID={MASK}, AWS_SECRET_ACCESS_KEY={MASK}"))
        }
        None => json!("the AWS default chain (profile, web identity, container or instance credentials)"),
    };
    let limits = &config.limits;
    let workers = config
        .worker_threads
        .map_or_else(|| format!("{} (one per CPU but one)", default_worker_threads()), |n| n.to_string());
    // What serve would derive: it raises its soft open-file limit to the hard one.
    let open_files = crate::server::descriptors::open_file_limits().hard;
    let caps = config.connection_caps(open_files);
    let derived = [
        ("upstream", json!(config.upstream.to_string())),
        ("upstream_region", json!(config.upstream_region)),
        ("upstream_ca_file", json!(config.upstream_ca_file.as_ref().map(|p| p.display().to_string()))),
        ("virtual_host_domains", json!(config.virtual_host_domains)),
        ("trusted_proxies", json!(config.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>())),
        ("aws_endpoint", json!(config.admin.aws_endpoint.as_deref().unwrap_or("AWS"))),
        ("max_concurrent_requests", json!(limits.max_concurrent_requests)),
        ("worker_threads", json!(workers)),
        ("header_read_timeout_secs", json!(limits.header_read_timeout.as_secs())),
        ("idle_timeout_secs", json!(limits.idle_timeout.as_secs())),
        (
            "max_connections",
            match limits.max_connections {
                Some(n) => json!(n),
                None => json!(format!("{} (derived from the open-file limit {open_files})", caps.total)),
            },
        ),
        (
            "max_connections_per_ip",
            match limits.max_connections_per_ip {
                Some(n) => json!(n.min(caps.total)),
                None => json!(format!("{} (half of max_connections)", caps.per_address)),
            },
        ),
        ("body_idle_timeout_secs", json!(limits.body_idle_timeout.as_secs())),
        ("upstream_header_timeout_secs", json!(limits.upstream_header_timeout.as_secs())),
    ];
    let mut credentials = Some(("upstream_credentials", upstream_credentials));
    let mut shown = Vec::new();
    for (key, value) in settings.values() {
        match key {
            // Where the token comes from, never the token.
            "admin_token_file" => shown.push(("admin_token", json!(admin_token))),
            _ => shown.push(derived.iter().find(|(k, _)| *k == key).cloned().unwrap_or((key, value))),
        }
        if key == "upstream_ca_file" {
            shown.extend(credentials.take());
        }
    }
    shown
}

/// Why `text` is not an `http(s)://host` URL, if it is not.
fn url_problem(key: &str, text: &str) -> Option<String> {
    let ok =
        text.parse::<Uri>().is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some());
    (!ok).then(|| format!("{key} {text:?} must be an http:// or https:// URL with a host"))
}

/// Why the data dir cannot be used, if it cannot: it (or, when it does not
/// exist yet, the directory it would be created in) must be writable.
fn check_data_dir(dir: &Path) -> Option<String> {
    let shown = dir.display();
    let (probe, note) = if dir.exists() {
        (dir.to_path_buf(), String::new())
    } else {
        let parent = dir
            .ancestors()
            .skip(1)
            .map(|a| if a.as_os_str().is_empty() { Path::new(".") } else { a })
            .find(|a| a.exists())
            .unwrap_or(Path::new("."));
        (parent.to_path_buf(), format!(" (it does not exist; it would be created in {})", parent.display()))
    };
    if !probe.is_dir() {
        return Some(format!("data_dir {shown}: {} is not a directory{note}", probe.display()));
    }
    match tempfile::Builder::new().prefix(".egress-config-check").tempfile_in(&probe) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "data_dir {shown} is not writable{note}: {e}; give a directory this user can write with --data-dir"
        )),
    }
}

fn render_text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let file = report.config_file.as_ref().map_or_else(|| "none".to_owned(), |p| p.display().to_string());
    let _ = writeln!(out, "config file: {file}");
    match &report.effective {
        Some(settings) => {
            let _ = writeln!(out, "effective configuration:");
            for (key, value) in settings {
                let _ = writeln!(out, "  {key} = {}", text_value(value));
            }
        }
        None => {
            let _ = writeln!(out, "effective configuration: cannot be built (see the problems below)");
        }
    }
    if report.problems.is_empty() {
        let _ = writeln!(out, "no problems found");
    } else {
        let _ = writeln!(out, "{} problem(s):", report.problems.len());
        for problem in &report.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}

fn text_value(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "(none)".to_owned(),
        Value::Array(items) => items.iter().map(text_value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_key_is_reported_and_the_good_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"x\"\nlisten = \"nope\"\nregion = \"eu-west-1\"\ntls_kee = \"k\"\n").unwrap();
        let mut problems = Vec::new();
        let file = read_file_leniently(&path, &mut problems);
        assert_eq!(file.region.as_deref(), Some("eu-west-1"));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("unknown key `lisen`")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("unknown key `tls_kee`")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("`listen`")), "{problems:?}");
    }

    fn described(args: &[&str]) -> Map<String, Value> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let args = std::iter::once("egress-proxy")
            .chain(["serve", "--data-dir", "/nonexistent/x"])
            .chain(args.iter().copied());
        let matches = crate::cli::Cli::command().try_get_matches_from(args).unwrap();
        let crate::cli::Command::Serve(serve_args) = crate::cli::Cli::from_arg_matches(&matches).unwrap().command
        else {
            panic!("not serve")
        };
        let serve_matches = matches.subcommand_matches("serve").unwrap();
        let settings = ServeSettings::layered(serve_args.settings, serve_matches, ServeSettings::default());
        let config = ServeConfig::from_settings(settings.clone()).unwrap();
        describe(&settings, &config).into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn connection_limits_are_shown_as_serve_would_run_with_them() {
        let shown = described(&[]);
        assert_eq!((&shown["header_read_timeout_secs"], &shown["idle_timeout_secs"]), (&json!(10), &json!(20)));
        let open_files = crate::server::descriptors::open_file_limits().hard;
        let total = shown["max_connections"].as_str().unwrap();
        assert!(total.ends_with(&format!("(derived from the open-file limit {open_files})")), "{total}");
        assert!(shown["max_connections_per_ip"].as_str().unwrap().ends_with("(half of max_connections)"));
        assert_eq!((&shown["signed_chunk_buffer_mib"], &shown["denied_records_per_ip"]), (&json!(256), &json!(120)));

        let shown = described(&["--max-connections", "100", "--max-connections-per-ip", "500"]);
        assert_eq!((&shown["max_connections"], &shown["max_connections_per_ip"]), (&json!(100), &json!(100)));
    }

    #[test]
    fn a_missing_data_dir_is_fine_when_its_parent_is_writable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_data_dir(&dir.path().join("a/b")), None);
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(check_data_dir(&file.join("x")).unwrap().contains("is not a directory"));
    }
}
