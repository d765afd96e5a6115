//! `egress-proxy policy put|get|list|delete|simulate`: the same operations
//! as `/v1/policies` and `/v1/authorize/simulate`, on a data dir the proxy
//! is not running on. Each change is a ledger note by `cli:<user>`.

use std::io::Read as _;
use std::path::Path;

use egress_admin::access;
use serde_json::json;

use super::principal::{actor, api};
use super::with_ledger;

/// `policy put NAME FILE`: prints the hash and any warnings.
pub fn put(data_dir: &Path, name: &str, file: &Path) -> anyhow::Result<i32> {
    let mut document = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut document)?;
    } else {
        document = std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    }
    let stored = with_ledger(data_dir, |ledger| access::put_policy(ledger, name, &document, &actor()).map_err(api))?;
    for warning in &stored.warnings {
        eprintln!("warning: {}", warning.message);
    }
    println!("{}", serde_json::to_string(&stored)?);
    Ok(0)
}

/// `policy get NAME`.
pub fn get(data_dir: &Path, name: &str) -> anyhow::Result<i32> {
    let policy = with_ledger(data_dir, |ledger| access::get_policy(ledger, name).map_err(api))?;
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(0)
}

/// `policy list`.
pub fn list(data_dir: &Path) -> anyhow::Result<i32> {
    let policies = with_ledger(data_dir, |ledger| access::list_policies(ledger).map_err(api))?;
    println!("{}", serde_json::to_string_pretty(&json!({ "policies": policies }))?);
    Ok(0)
}

/// `policy delete NAME`.
pub fn delete(data_dir: &Path, name: &str) -> anyhow::Result<i32> {
    with_ledger(data_dir, |ledger| access::delete_policy(ledger, name, &actor()).map_err(api))?;
    println!("{}", json!({ "deleted": name }));
    Ok(0)
}

/// `policy simulate`: prints the decision; exit 0 if allowed, 1 if not.
pub fn simulate(
    data_dir: &Path,
    principal: &str,
    action: &str,
    resource: &str,
    context: &[String],
) -> anyhow::Result<i32> {
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    for item in context {
        let (key, value) =
            item.split_once('=').ok_or_else(|| anyhow::anyhow!("--context {item:?}: write KEY=VALUE"))?;
        match pairs.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, values)) => values.push(value.to_owned()),
            None => pairs.push((key.to_owned(), vec![value.to_owned()])),
        }
    }
    let answer = with_ledger(data_dir, |ledger| {
        let store = ledger.store().ok_or_else(|| anyhow::anyhow!("ledger opened without its state store"))?;
        let grants = access::GrantsCache::new(store.access.clone());
        access::simulate(ledger, &grants, principal, action, resource, &pairs).map_err(api)
    })?;
    println!("{}", serde_json::to_string(&answer)?);
    Ok(i32::from(answer.decision != "allow"))
}
