//! `docker-compose.yml` checked without a Docker engine: valid against the
//! Compose Specification's JSON schema, every build context and Dockerfile
//! present, and the proxy's command, environment and ports in agreement with
//! the real binary (its `serve --help`, not a copied list).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use egress_e2e::run;
use egress_e2e::servers::python;
use serde_json::Value;

fn repo() -> PathBuf {
    egress_e2e::repo_root()
}

/// The compose file as JSON, after validating it against the schema.
fn validated_compose() -> Value {
    let schema = repo().join("..").join("shared").join("schemas").join("compose-spec.json");
    assert!(
        schema.is_file(),
        "the Compose Specification schema is missing at {}: check out the shared/ folder beside the repository",
        schema.display()
    );
    let compose = repo().join("docker-compose.yml");
    let result = python(
        r#"
import json, os, yaml, jsonschema
with open(os.environ["SCHEMA"]) as f:
    schema = json.load(f)
with open(os.environ["COMPOSE"]) as f:
    doc = yaml.safe_load(f)
validator = jsonschema.Draft7Validator(schema)
errors = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc)]
print(json.dumps({"errors": errors, "doc": doc}))
"#,
        &[("SCHEMA", schema.to_str().unwrap()), ("COMPOSE", compose.to_str().unwrap())],
    );
    let errors = result["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "docker-compose.yml does not follow the Compose Specification: {errors:#?}");
    result["doc"].clone()
}

/// What `egress-proxy serve --help` says: flag names, `[env: NAME=]`
/// variables, defaults per flag, and the whole text.
struct ServeHelp {
    flags: BTreeSet<String>,
    envs: BTreeSet<String>,
    text: String,
}

impl ServeHelp {
    fn read() -> ServeHelp {
        let out = run(&["serve", "--help"]);
        assert_eq!(out.code, 0, "{out:?}");
        let text = out.stdout;
        let mut flags = BTreeSet::new();
        for line in text.lines() {
            // "--listen <LISTEN>" or "-h, --help": the option lines.
            let line = line.trim_start();
            let long = if line.starts_with("--") {
                Some(line)
            } else if line.starts_with('-') {
                line.split_once(", ").map(|(_, rest)| rest)
            } else {
                None
            };
            if let Some(flag) = long.and_then(|l| l.strip_prefix("--")) {
                let name: String = flag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                flags.insert(format!("--{name}"));
            }
        }
        let envs = text.split("[env: ").skip(1).map(|rest| rest.split(['=', ']']).next().unwrap().to_owned()).collect();
        ServeHelp { flags, envs, text }
    }

    /// The `[default: ...]` printed on the line block of `flag`.
    fn default_of(&self, flag: &str) -> Option<String> {
        let start = self.text.find(&format!("{flag} <"))?;
        let block = &self.text[start..];
        let block = &block[..block[1..].find("\n  -").map_or(block.len(), |end| end + 1)];
        let value = block.split("[default: ").nth(1)?;
        Some(value.split(']').next()?.to_owned())
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// `environment:` as (name, value) pairs, map or list form.
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Object(map) => {
            map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
        }
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let (k, v) = item.as_str().unwrap().split_once('=').unwrap_or((item.as_str().unwrap(), ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let doc = validated_compose();
    let services = doc["services"].as_object().unwrap();
    for name in ["proxy", "moto", "setup"] {
        assert!(services.contains_key(name), "no `{name}` service in docker-compose.yml");
    }
}

#[test]
fn every_build_context_dockerfile_and_mounted_file_exists() {
    let doc = validated_compose();
    let mut builds = 0;
    for (name, service) in doc["services"].as_object().unwrap() {
        let (context, dockerfile) = match &service["build"] {
            Value::Null => (None, None),
            Value::String(context) => (Some(context.clone()), None),
            build => (build["context"].as_str().map(str::to_owned), build["dockerfile"].as_str().map(str::to_owned)),
        };
        if let Some(context) = context {
            builds += 1;
            let context = repo().join(context);
            assert!(context.is_dir(), "{name}: build context {} is missing", context.display());
            let dockerfile = context.join(dockerfile.as_deref().unwrap_or("Dockerfile"));
            assert!(dockerfile.is_file(), "{name}: {} is missing", dockerfile.display());
            let text = std::fs::read_to_string(&dockerfile).unwrap();
            for needed in ["HEALTHCHECK", "USER ", "VOLUME", "EXPOSE", "cargo build --release"] {
                assert!(text.contains(needed), "{}: no {needed}", dockerfile.display());
            }
        }
        for volume in strings(&service["volumes"]) {
            if volume.starts_with("./") {
                let source = repo().join(volume.split(':').next().unwrap());
                assert!(source.exists(), "{name}: mounted {} is missing", source.display());
            }
        }
    }
    assert!(builds > 0, "no service is built from the repository");
    assert!(repo().join(".dockerignore").is_file(), ".dockerignore is missing");
}

#[test]
fn the_proxy_service_uses_real_flags_variables_and_ports() {
    let doc = validated_compose();
    let help = ServeHelp::read();
    assert!(
        help.flags.contains("--listen") && help.envs.contains("EGRESS_LISTEN"),
        "help not understood: {}",
        help.text
    );
    let services = doc["services"].as_object().unwrap();
    let proxy = services.values().find(|s| !s["build"].is_null()).expect("a service built from the Dockerfile");

    // The command: `serve` and flags the binary has.
    let command = strings(&proxy["command"]);
    assert_eq!(command.first().map(String::as_str), Some("serve"), "the proxy must run `serve`: {command:?}");
    let mut flag_values = Vec::new();
    let mut args = command.iter().skip(1).peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = arg.split_once('=').map_or((arg.as_str(), None), |(f, v)| (f, Some(v.to_owned())));
        assert!(flag.starts_with("--"), "unexpected argument {arg:?} in the proxy's command");
        assert!(help.flags.contains(flag), "`serve` has no flag {flag} (it has {:?})", help.flags);
        let value = inline.or_else(|| args.next_if(|next| !next.starts_with("--")).cloned());
        flag_values.push((flag.to_owned(), value.unwrap_or_default()));
    }

    // The environment: variables the binary reads (its `[env: ]` names, and
    // the ones its help mentions such as EGRESS_ADMIN_TOKEN), plus the AWS
    // SDK's own.
    let env = environment(proxy);
    for (name, _) in &env {
        let known = help.envs.contains(name)
            || (name.starts_with("EGRESS_") && help.text.contains(name.as_str()))
            || name == "EGRESS_LOG"
            || name.starts_with("AWS_");
        assert!(known, "the proxy does not read the variable {name} (its variables: {:?})", help.envs);
    }

    // The ports: published on loopback only, each to a port a listener of
    // the proxy has inside the container, bound to all interfaces there.
    let setting = |flag: &str, var: &str| -> SocketAddr {
        let value = flag_values
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.clone())
            .or_else(|| env.iter().find(|(n, _)| n == var).map(|(_, v)| v.clone()))
            .or_else(|| help.default_of(flag))
            .unwrap_or_else(|| panic!("no value or default for {flag}"));
        value.parse().unwrap_or_else(|e| panic!("{flag} {value:?}: {e}"))
    };
    let listeners = [setting("--listen", "EGRESS_LISTEN"), setting("--admin-listen", "EGRESS_ADMIN_LISTEN")];
    for listener in listeners {
        assert!(listener.ip().is_unspecified(), "{listener} cannot be reached from outside the container");
    }
    let mut published = BTreeSet::new();
    for port in strings(&proxy["ports"]) {
        let parts: Vec<&str> = port.split(':').collect();
        assert_eq!(parts.len(), 3, "{port}: publish as 127.0.0.1:HOST:CONTAINER");
        assert_eq!(parts[0], "127.0.0.1", "{port}: ports are published on 127.0.0.1 only");
        let inside: u16 = parts[2].parse().unwrap();
        assert!(listeners.iter().any(|l| l.port() == inside), "{port}: no listener on {inside} ({listeners:?})");
        published.insert(inside);
    }
    for listener in listeners {
        assert!(published.contains(&listener.port()), "{listener} is not published");
    }
    for (name, service) in services {
        for port in strings(&service["ports"]) {
            assert!(port.starts_with("127.0.0.1:"), "{name}: {port} is not on 127.0.0.1");
        }
    }

    // The healthcheck reaches the admin listener's /healthz.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let admin = format!("127.0.0.1:{}/healthz", listeners[1].port());
    assert!(
        dockerfile.lines().skip_while(|l| !l.starts_with("HEALTHCHECK")).take(2).any(|l| l.contains(&admin)),
        "the Dockerfile's HEALTHCHECK does not ask {admin}"
    );
}
