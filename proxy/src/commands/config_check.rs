//! `egress-proxy config check`: the configuration `serve` would run with the
//! same arguments, secrets masked, and every problem in it.
//!
//! `serve` stops at the first problem; this command goes on and reports them
//! all: unknown or ill-typed keys in the file, a TLS certificate or key that
//! does not load, a malformed upstream or AWS endpoint URL, a data dir that
//! cannot be written. The effective configuration is built by the same
//! function `serve` uses ([`serve::config_with_file`]), from the file with
//! its bad keys left out.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use http::Uri;
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use super::serve::{self, FileConfig};
use crate::cli::ConfigCheckArgs;
use crate::config::{ServeConfig, UpstreamTarget, default_worker_threads};

/// What the check found.
#[derive(Debug)]
struct Report {
    config_file: Option<PathBuf>,
    /// The effective configuration (in the order of the docs), or `None`
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
    let config_file = serve::config_file_path(&args);
    let file = match &config_file {
        Some(path) => read_file_leniently(path, &mut problems),
        None => FileConfig::default(),
    };

    // The settings checked here on their own, picked the way `serve` picks
    // them, so a problem is found even when the whole config cannot be built.
    let given = |id: &str| matches.value_source(id).is_some_and(|s| s != ValueSource::DefaultValue);
    let data_dir = pick(given("data_dir"), args.dir.data_dir.clone(), file.data_dir.clone());
    let tls_cert = pick(given("tls_cert"), args.tls_cert.clone(), file.tls_cert.clone().map(Some));
    let tls_key = pick(given("tls_key"), args.tls_key.clone(), file.tls_key.clone().map(Some));
    let aws_endpoint = pick(given("aws_endpoint"), args.aws_endpoint.clone(), file.aws_endpoint.clone().map(Some));
    let token_file =
        pick(given("admin_token_file"), args.admin_token_file.clone(), file.admin_token_file.clone().map(Some));

    let effective = match serve::config_with_file(args, matches, file) {
        Ok(config) => Some(describe(&config)),
        Err(e) => {
            problems.push(format!("{e:#}"));
            None
        }
    };
    problems.extend(check_data_dir(&data_dir));
    if let (Some(cert), Some(key)) = (&tls_cert, &tls_key)
        && let Err(e) = crate::tls::acceptor(cert, key)
    {
        problems.push(format!("TLS: {e:#}; make a dev pair with `egress-proxy certs --out DIR`"));
    }
    if let Some(path) = &token_file
        && let Err(e) = std::fs::read_to_string(path)
    {
        problems.push(format!("admin_token_file {}: cannot be read: {e}", path.display()));
    }
    if let Some(endpoint) = &aws_endpoint
        && let Some(problem) = url_problem("aws_endpoint", endpoint)
    {
        problems.push(problem);
    }
    Report { config_file, effective, problems }
}

/// The file's value unless the flag or its variable was given.
fn pick<T>(given: bool, cli: T, file: Option<T>) -> T {
    match file {
        Some(value) if !given => value,
        _ => cli,
    }
}

/// Reads the config file, recording each unknown key, ill-typed value or
/// syntax error, and returns the file without the keys at fault.
fn read_file_leniently(path: &Path, problems: &mut Vec<String>) -> FileConfig {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("reading config file {shown}: {e}"));
            return FileConfig::default();
        }
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(e) => {
            problems.push(format!("config file {shown} is not valid TOML: {}", serve::toml_error(&text, &e)));
            return FileConfig::default();
        }
    };
    let known = file_keys();
    let mut good = toml::Table::new();
    for (key, value) in table {
        if !known.contains(&key.as_str()) {
            problems.push(format!("config file {shown}: unknown key `{key}` (known keys: {})", known.join(", ")));
            continue;
        }
        let mut one = toml::Table::new();
        one.insert(key.clone(), value.clone());
        match one.try_into::<FileConfig>() {
            Ok(_) => {
                good.insert(key, value);
            }
            Err(e) => problems.push(format!("config file {shown}: `{key}`: {}", e.message())),
        }
    }
    good.try_into().unwrap_or_else(|e| {
        problems.push(format!("config file {shown}: {e}"));
        FileConfig::default()
    })
}

/// The keys [`FileConfig`] accepts, as serde knows them (not a copied list).
fn file_keys() -> &'static [&'static str] {
    /// A deserializer that only learns the field names of the struct asked for.
    struct FieldNames(&'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for &mut FieldNames {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("only field names"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(serde::de::Error::custom("only field names"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut names = FieldNames(&[]);
    let _ = FileConfig::deserialize(&mut names);
    names.0
}

/// The effective configuration as a map, secrets masked.
fn describe(config: &ServeConfig) -> Vec<(&'static str, Value)> {
    const MASK: &str = "***";
    let tls = config.tls.as_ref();
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
    let mut settings = Vec::new();
    let mut put = |key: &'static str, value: Value| settings.push((key, value));
    put("listen", json!(config.listen.to_string()));
    put("data_dir", json!(config.data_dir));
    put("upstream", json!(config.upstream.to_string()));
    put("upstream_region", json!(config.upstream_region));
    put("upstream_addressing", json!(config.upstream_addressing));
    put("upstream_ca_file", json!(config.upstream_ca_file.as_ref().map(|p| p.display().to_string())));
    put("upstream_credentials", upstream_credentials);
    put("region", json!(config.region));
    put("virtual_host_domains", json!(config.virtual_host_domains));
    put("trusted_proxies", json!(config.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>()));
    put("tls_listen", json!(tls.map(|t| t.listen.to_string())));
    put("tls_cert", json!(tls.map(|t| &t.cert)));
    put("tls_key", json!(tls.map(|t| &t.key)));
    put("admin_listen", json!(config.admin.listen.to_string()));
    put("admin_token", json!(admin_token));
    put("aws_endpoint", json!(config.admin.aws_endpoint.as_deref().unwrap_or("AWS")));
    let limits = &config.limits;
    put("max_concurrent_requests", json!(limits.max_concurrent_requests));
    let workers = config
        .worker_threads
        .map_or_else(|| format!("{} (one per CPU but one)", default_worker_threads()), |n| n.to_string());
    put("worker_threads", json!(workers));
    put("header_read_timeout_secs", json!(limits.header_read_timeout.as_secs()));
    put("idle_timeout_secs", json!(limits.idle_timeout.as_secs()));
    // What serve would derive: it raises its soft open-file limit to the hard one.
    let open_files = crate::server::descriptors::open_file_limits().hard;
    let caps = limits.connection_caps(open_files, config.worker_threads.unwrap_or_else(default_worker_threads));
    put(
        "max_connections",
        match limits.max_connections {
            Some(n) => json!(n),
            None => json!(format!("{} (derived from the open-file limit {open_files})", caps.total)),
        },
    );
    put(
        "max_connections_per_ip",
        match limits.max_connections_per_ip {
            Some(n) => json!(n.min(caps.total)),
            None => json!(format!("{} (half of max_connections)", caps.per_address)),
        },
    );
    put("body_idle_timeout_secs", json!(limits.body_idle_timeout.as_secs()));
    put("upstream_header_timeout_secs", json!(limits.upstream_header_timeout.as_secs()));
    put("shutdown_grace_secs", json!(limits.shutdown_grace.as_secs()));
    put("signed_chunk_buffer_mib", json!(limits.signed_chunk_buffer_bytes / (1024 * 1024)));
    put("denied_records_per_ip", json!(limits.denied_records_per_ip_per_minute));
    settings
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
    fn file_keys_are_the_struct_fields() {
        let keys = file_keys();
        assert!(keys.contains(&"listen") && keys.contains(&"tls_cert") && keys.contains(&"shutdown_grace_secs"));
    }

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
        let config = serve::config_with_file(*serve_args, serve_matches, FileConfig::default()).unwrap();
        describe(&config).into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
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
