//! The `egress-proxy` binary: parse the command line, run, exit with a code
//! a script can act on. All the work is in the library.

use clap::{CommandFactory as _, FromArgMatches as _};
use egress_proxy::cli::{
    Cli, Command, ConfigCommand, EXIT_USAGE, LedgerCommand, LogFormat, PolicyCommand, PrincipalCommand,
};
use egress_proxy::commands::{archive_verify, config_check, ledger, policy, principal, reconcile, serve};

// mimalloc, tuned to give memory back at once (`egress_proxy::allocator`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Secrets and keys are written under the data dir: nothing we create is
    // for other users.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    egress_proxy::allocator::settle();
    let parsed = Cli::command()
        .long_version(egress_proxy::cli::long_version())
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(cli.log_format);
    let code = match run(cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("egress-proxy: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EGRESS_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").unwrap_or(matches);
            serve::serve(*args, serve_matches)
        }
        Command::Certs { out, hosts } => {
            egress_proxy::tls::make_dev_certs(&out, &hosts)?;
            println!("wrote {0}/ca.pem, {0}/ca.key, {0}/server.pem, {0}/server.key", out.display());
            Ok(0)
        }
        Command::Ledger(command) => match command {
            LedgerCommand::Verify {
                dir,
                checkpoint,
                pubkey,
                json,
                archive,
                origin,
                all_origins,
                aws_endpoint,
                region,
            } => {
                match archive {
                    Some(archive) => {
                        // The local ledger too only when a data dir was named.
                        let verify = matches.subcommand_matches("ledger").and_then(|m| m.subcommand_matches("verify"));
                        let named = verify.and_then(|m| m.value_source("data_dir")).is_some_and(|source| {
                            matches!(
                                source,
                                clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                            )
                        });
                        archive_verify::verify(archive_verify::ArchiveVerifyArgs {
                            archive,
                            origin,
                            all_origins,
                            aws_endpoint,
                            region,
                            pubkey,
                            data_dir: named.then_some(dir.data_dir),
                            checkpoints: checkpoint,
                            json,
                        })
                    }
                    None => ledger::verify(&dir.data_dir, checkpoint, pubkey, json),
                }
            }
            LedgerCommand::Export { dir, from_seq, to_seq, since, until, format } => {
                ledger::export(&dir.data_dir, (from_seq, to_seq, since.as_deref(), until.as_deref()), format)
            }
            LedgerCommand::Bench { data_dir, records, concurrency, keep, json } => {
                ledger::bench(data_dir.as_deref(), records, concurrency, keep, json)
            }
            LedgerCommand::Reindex { dir } => ledger::reindex(&dir.data_dir),
            LedgerCommand::Pubkey { dir } => ledger::pubkey(&dir.data_dir),
            LedgerCommand::Explain { req, dir } => ledger::explain(&dir.data_dir, &req),
        },
        Command::Principal(command) => match command {
            PrincipalCommand::Create { name, description, policies, tags, dir } => {
                principal::create(&dir.data_dir, &name, description.as_deref(), &policies, &tags)
            }
            PrincipalCommand::List { dir } => principal::list(&dir.data_dir),
            PrincipalCommand::Revoke { access_key_id, dir } => principal::revoke(&dir.data_dir, &access_key_id),
            PrincipalCommand::Attach { name, policies, dir } => principal::attach(&dir.data_dir, &name, policies, true),
            PrincipalCommand::Detach { name, policies, dir } => {
                principal::attach(&dir.data_dir, &name, policies, false)
            }
            PrincipalCommand::Limits { name, quotas, bandwidth, requests_per_second, dir } => {
                principal::limits(&dir.data_dir, &name, &quotas, bandwidth.as_deref(), requests_per_second)
            }
        },
        Command::Policy(command) => match command {
            PolicyCommand::Put { name, file, dir } => policy::put(&dir.data_dir, &name, &file),
            PolicyCommand::Get { name, dir } => policy::get(&dir.data_dir, &name),
            PolicyCommand::List { dir } => policy::list(&dir.data_dir),
            PolicyCommand::Delete { name, dir } => policy::delete(&dir.data_dir, &name),
            PolicyCommand::Simulate { principal, action, resource, context, dir } => {
                policy::simulate(&dir.data_dir, &principal, &action, &resource, &context)
            }
        },
        Command::Reconcile(args) => reconcile::reconcile(&args),
        Command::Config(ConfigCommand::Check(args)) => {
            let check_matches = matches.subcommand_matches("config").and_then(|m| m.subcommand_matches("check"));
            config_check::check(*args, check_matches.unwrap_or(matches))
        }
    }
}
