//! `egress-proxy serve`: flags, environment and config file into one
//! [`ServeConfig`], then the server.
//!
//! Precedence, per setting: a flag, then its `EGRESS_*` variable (clap reads
//! both), then the TOML file, then the default
//! ([`ServeSettings::layered`]).

use clap::ArgMatches;

use crate::cli::ServeArgs;
use crate::config::ServeConfig;
use crate::config::settings::ServeSettings;

/// Builds the typed configuration. `matches` are the `serve` subcommand's,
/// to tell a value given on the command line from a default.
pub fn config(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<ServeConfig> {
    let file = match args.config_file() {
        Some(path) => ServeSettings::load(&path)?,
        None => ServeSettings::default(),
    };
    ServeConfig::from_settings(ServeSettings::layered(args.settings, matches, file))
}

/// Runs the server on a multi-threaded runtime until a shutdown signal.
pub fn serve(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let config = config(args, matches)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::server::serve(config))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, FromArgMatches as _};

    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> anyhow::Result<ServeConfig> {
        let matches =
            Cli::command().try_get_matches_from(std::iter::once("egress-proxy").chain(args.iter().copied()))?;
        let Command::Serve(serve) = Cli::from_arg_matches(&matches)?.command else { panic!("not serve") };
        config(*serve, matches.subcommand_matches("serve").expect("serve"))
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "upstream = \"http://127.0.0.1:8333\"\nlisten = \"127.0.0.1:9100\"\nregion = \"eu-west-1\"\n\
             virtual_host_domains = [\"S3.Example\"]\nbody_idle_timeout_secs = 5\n",
        )
        .unwrap();
        let from_file = parse(&["serve", "--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(from_file.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(from_file.upstream.to_string(), "http://127.0.0.1:8333/");
        assert_eq!((from_file.region.as_str(), from_file.upstream_region.as_str()), ("eu-west-1", "eu-west-1"));
        assert_eq!(from_file.virtual_host_domains, vec!["s3.example".to_owned()]);
        assert_eq!(from_file.limits.body_idle_timeout, Duration::from_secs(5));
        assert_eq!(from_file.data_dir, PathBuf::from("./data"), "default when neither says");

        let flagged = parse(&["serve", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:9200"]).unwrap();
        assert_eq!(flagged.listen.to_string(), "127.0.0.1:9200");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "upstream = \"http://127.0.0.1:8333\"\nlisen = \"127.0.0.1:9100\"\n").unwrap();
        let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("unknown field `lisen`"), "{err}");

        std::fs::write(&file, "upstream = \"http://127.0.0.1:8333\"\ntls_listen = \"127.0.0.1:9443\"\n").unwrap();
        let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("tls_listen, tls_cert and tls_key"), "{err}");

        // A secret put in the file by mistake is not echoed back.
        for text in ["aws_secret_access_key = \"wJalrXUtnFEMIK7MDENG\"\n", "admin_token = wJalrXUtnFEMIK7MDENG\n"] {
            std::fs::write(&file, format!("upstream = \"http://127.0.0.1:8333\"\n{text}")).unwrap();
            let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
            assert!(err.contains("line 2: ") && !err.contains("wJalrXUtnFEMIK7MDENG"), "{err}");
        }

        let err = format!("{:#}", parse(&["serve", "--config", "/nonexistent.toml"]).unwrap_err());
        assert!(err.contains("reading config file /nonexistent.toml"), "{err}");

        let err = format!("{:#}", parse(&["serve", "--upstream", "ftp://x"]).unwrap_err());
        assert!(err.contains("http:// or https://"), "{err}");
    }

    #[test]
    fn worker_threads_default_to_unset_and_zero_is_refused() {
        assert_eq!(parse(&["serve"]).unwrap().worker_threads, None);
        assert_eq!(parse(&["serve", "--worker-threads", "3"]).unwrap().worker_threads, Some(3));
        let err = format!("{:#}", parse(&["serve", "--worker-threads", "0"]).unwrap_err());
        assert!(err.contains("--worker-threads"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "worker_threads = 0\n").unwrap();
        let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("worker_threads must be at least 1"), "{err}");
        std::fs::write(&file, "worker_threads = 4\n").unwrap();
        assert_eq!(parse(&["serve", "--config", file.to_str().unwrap()]).unwrap().worker_threads, Some(4));
    }

    #[test]
    fn upload_and_denial_settings_come_from_flags_or_the_file() {
        let defaults = parse(&["serve"]).unwrap().limits;
        assert_eq!(defaults.signed_chunk_buffer_bytes, 256 * 1024 * 1024);
        assert_eq!(defaults.denied_records_per_ip_per_minute, 120);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "signed_chunk_buffer_mib = 64\ndenied_records_per_ip = 0\n").unwrap();
        let path = file.to_str().unwrap();
        let limits = parse(&["serve", "--config", path]).unwrap().limits;
        assert_eq!(limits.signed_chunk_buffer_bytes, 64 * 1024 * 1024);
        assert_eq!(limits.denied_records_per_ip_per_minute, 0);
        let flagged = parse(&["serve", "--config", path, "--denied-records-per-ip", "9"]).unwrap().limits;
        assert_eq!(flagged.denied_records_per_ip_per_minute, 9);

        let err = format!("{:#}", parse(&["serve", "--signed-chunk-buffer-mib", "0"]).unwrap_err());
        assert!(err.contains("signed_chunk_buffer_mib must be at least 1"), "{err}");
    }

    #[test]
    fn connection_limits_come_from_flags_or_the_file() {
        let defaults = parse(&["serve"]).unwrap().limits;
        assert_eq!(
            (defaults.header_read_timeout, defaults.idle_timeout),
            (Duration::from_secs(10), Duration::from_secs(20))
        );
        assert_eq!((defaults.max_connections, defaults.max_connections_per_ip), (None, None), "derived at start");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "idle_timeout_secs = 5\nmax_connections = 1000\nmax_connections_per_ip = 50\n").unwrap();
        let path = file.to_str().unwrap();
        let limits = parse(&["serve", "--config", path]).unwrap().limits;
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        assert_eq!((limits.max_connections, limits.max_connections_per_ip), (Some(1000), Some(50)));
        let flagged = parse(&["serve", "--config", path, "--max-connections-per-ip", "7"]).unwrap().limits;
        assert_eq!((flagged.max_connections, flagged.max_connections_per_ip), (Some(1000), Some(7)));

        for (args, message) in [
            (&["serve", "--max-connections", "0"][..], "max_connections must be at least 1"),
            (&["serve", "--max-connections-per-ip", "0"][..], "max_connections_per_ip must be at least 1"),
        ] {
            let err = format!("{:#}", parse(args).unwrap_err());
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }

    #[test]
    fn head_stream_and_upstream_limits_come_from_flags_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "max_request_head_kib = 32\nupstream_pool_max_idle_per_host = 8\nupstream_read_buffer_kib = 64\n\
             admin_max_connections = 16\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = parse(&["serve", "--config", path, "--upstream-pool-max-idle-per-host", "4"]).unwrap();
        assert_eq!((config.limits.max_header_bytes, config.limits.http2_max_concurrent_streams), (32 * 1024, 256));
        assert_eq!(
            (config.upstream_limits.pool_max_idle_per_host, config.upstream_limits.read_buffer_bytes),
            (4, 65_536)
        );
        assert_eq!(config.admin.max_connections, 16);
        let config =
            parse(&["serve", "--upstream-tcp-keepalive-secs", "0", "--http2-max-concurrent-streams", "8"]).unwrap();
        assert_eq!((config.upstream_limits.tcp_keepalive, config.limits.http2_max_concurrent_streams), (None, 8));
        let err = format!("{:#}", parse(&["serve", "--max-request-head-kib", "4"]).unwrap_err());
        assert!(err.contains("max_request_head_kib must be at least 8"), "{err}");
    }

    #[test]
    fn no_upstream_means_the_embedded_dev_store() {
        let config = parse(&["serve", "--data-dir", "/tmp/egress-embedded-test"]).unwrap();
        assert!(matches!(config.upstream, crate::config::UpstreamTarget::Embedded), "{:?}", config.upstream);
        let config = parse(&["serve", "--upstream", "http://127.0.0.1:8333"]).unwrap();
        assert!(matches!(config.upstream, crate::config::UpstreamTarget::Endpoint(_)));
    }
}
