//! `egress-proxy principal create|list|revoke|attach|detach|limits`.

use std::path::Path;

use std::collections::BTreeMap;

use egress_admin::access;
use egress_ledger::access::{Actor, Limits, Quota, Window};
use egress_ledger::issuing::key_note;
use serde_json::json;

use super::{open_ledger, with_ledger};

/// Who the CLI is in the ledger's notes: `cli:<user>`.
#[must_use]
pub fn actor() -> Actor {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    Actor(if user.is_empty() { "cli".to_owned() } else { format!("cli:{user}") })
}

/// An admin-layer error as the CLI says it.
#[must_use]
#[allow(clippy::needless_pass_by_value, reason = "used as `map_err(api)`")]
pub fn api(e: egress_admin::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

/// `principal create NAME [--policy P]... [--tag K=V]...`: prints
/// `{"name","access_key_id","secret_access_key","policies"}`.
pub fn create(
    data_dir: &Path,
    name: &str,
    description: Option<&str>,
    policies: &[String],
    tags: &[String],
) -> anyhow::Result<i32> {
    let mut tag_map = BTreeMap::new();
    for tag in tags {
        let (key, value) = tag.split_once('=').ok_or_else(|| anyhow::anyhow!("--tag {tag:?}: write KEY=VALUE"))?;
        tag_map.insert(key.to_owned(), value.to_owned());
    }
    access::check_tags(&tag_map).map_err(api)?;
    let issued = with_ledger(data_dir, |ledger| {
        access::check_policy_names(ledger, policies).map_err(api)?;
        let issued = ledger.create_principal_blocking(name, description, &actor())?;
        if !policies.is_empty() || !tag_map.is_empty() {
            access::update_grants(ledger, name, &actor(), |grants| {
                grants.policies = policies.to_vec();
                grants.tags = tag_map;
                Ok(())
            })
            .map_err(api)?;
        }
        Ok(issued)
    })?;
    println!(
        "{}",
        json!({
            "name": issued.principal,
            "access_key_id": issued.access_key_id,
            "secret_access_key": issued.secret_access_key.expose(),
            "policies": policies,
        })
    );
    if policies.is_empty() {
        eprintln!(
            "note: {name} has no policy attached and can do nothing yet; attach one with \
             `egress-proxy principal attach {name} read-only` (or read-write, full, or your own)"
        );
    }
    Ok(0)
}

/// `principal list`: every principal with its keys (never secrets) and
/// grants, as JSON.
pub fn list(data_dir: &Path) -> anyhow::Result<i32> {
    let listed = with_ledger(data_dir, |ledger| {
        let store = ledger.store().ok_or_else(|| anyhow::anyhow!("ledger opened without its state store"))?;
        let mut out = Vec::new();
        for principal in store.principals.list()? {
            let grants = store.access.grants(&principal.name)?;
            let mut value = serde_json::to_value(&principal)?;
            if let Some(fields) = value.as_object_mut() {
                fields.insert("policies".into(), json!(grants.policies));
                fields.insert("tags".into(), json!(grants.tags));
                fields.insert("limits".into(), serde_json::to_value(&grants.limits)?);
            }
            out.push(value);
        }
        Ok(out)
    })?;
    println!("{}", serde_json::to_string_pretty(&listed)?);
    Ok(0)
}

/// `principal attach|detach NAME POLICY...`: prints the grants after.
pub fn attach(data_dir: &Path, name: &str, policies: Vec<String>, attach: bool) -> anyhow::Result<i32> {
    let grants = with_ledger(data_dir, |ledger| {
        if attach {
            access::check_policy_names(ledger, &policies).map_err(api)?;
        }
        access::update_grants(ledger, name, &actor(), |grants| {
            for policy in policies {
                let at = grants.policies.iter().position(|p| *p == policy);
                match (attach, at) {
                    (true, None) => grants.policies.push(policy),
                    (false, Some(i)) => {
                        grants.policies.remove(i);
                    }
                    (false, None) => {
                        return Err(egress_admin::ApiError::not_found(format!(
                            "{policy:?} is not attached to {name:?}"
                        )));
                    }
                    (true, Some(_)) => {}
                }
            }
            Ok(())
        })
        .map_err(api)
    })?;
    println!("{}", json!({ "principal": name, "policies": grants.policies }));
    Ok(0)
}

/// `principal limits NAME [--quota BYTES/WINDOW[@BUCKET]]... [--bandwidth
/// BYTES] [--requests-per-second N]`: replaces the limits, prints them.
pub fn limits(
    data_dir: &Path,
    name: &str,
    quotas: &[String],
    bandwidth: Option<&str>,
    requests_per_second: Option<u32>,
) -> anyhow::Result<i32> {
    let limits = Limits {
        quotas: quotas.iter().map(|q| parse_quota(q)).collect::<anyhow::Result<_>>()?,
        bandwidth_bytes_per_second: bandwidth
            .map(|b| parse_bytes(b.trim_end_matches("/s")).map_err(|e| anyhow::anyhow!("--bandwidth: {e}")))
            .transpose()?,
        requests_per_second,
    };
    access::check_limits(&limits).map_err(api)?;
    let grants = with_ledger(data_dir, |ledger| {
        access::update_grants(ledger, name, &actor(), |grants| {
            grants.limits = limits;
            Ok(())
        })
        .map_err(api)
    })?;
    println!("{}", json!({ "principal": name, "limits": grants.limits }));
    Ok(0)
}

/// `BYTES/WINDOW[@BUCKET]`, e.g. `2.5MiB/day@data`.
fn parse_quota(text: &str) -> anyhow::Result<Quota> {
    let bad = |why: &str| anyhow::anyhow!("--quota {text:?}: {why}; write BYTES/WINDOW[@BUCKET], e.g. 10GiB/day");
    let (amount, rest) = text.split_once('/').ok_or_else(|| bad("no window"))?;
    let (window, bucket) = match rest.split_once('@') {
        Some((window, bucket)) => (window, Some(bucket.to_owned())),
        None => (rest, None),
    };
    let per = match window {
        "hour" => Window::Hour,
        "day" => Window::Day,
        "month" => Window::Month,
        _ => return Err(bad("the window is hour, day or month")),
    };
    Ok(Quota { bytes: parse_bytes(amount).map_err(|e| bad(&e))?, per, bucket })
}

/// A byte count: a number with an optional unit (B, KB, MB, GB, TB, KiB,
/// MiB, GiB, TiB), e.g. `2.5MiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?} is not a byte count"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1_048_576.0,
        "GiB" => 1_073_741_824.0,
        "TiB" => 1_099_511_627_776.0,
        other => return Err(format!("unknown unit {other:?} (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")),
    };
    let bytes = (number * scale).round();
    if !(1.0..=1.8e19).contains(&bytes) {
        return Err(format!("{text:?} is out of range"));
    }
    #[allow(clippy::cast_sign_loss, reason = "checked positive and in range above")]
    Ok(bytes as u64)
}

/// `principal revoke ACCESS_KEY_ID`.
pub fn revoke(data_dir: &Path, access_key_id: &str) -> anyhow::Result<i32> {
    let ledger = open_ledger(data_dir)?;
    let result = (|| {
        let store = ledger.store().ok_or_else(|| anyhow::anyhow!("ledger opened without its state store"))?;
        let principal = store.principals.revoke_key(access_key_id)?;
        ledger.append_blocking(key_note("access_key_revoked", &principal, access_key_id, &actor()))?;
        anyhow::Ok(principal)
    })();
    ledger.close_blocking()?;
    println!("{}", json!({ "principal": result?, "access_key_id": access_key_id, "revoked": true }));
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;

    #[test]
    fn byte_counts_and_quotas() {
        assert_eq!(parse_bytes("2.5MiB").unwrap(), 2_621_440);
        assert_eq!(parse_bytes("10GB").unwrap(), 10_000_000_000);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
        let quota = parse_quota("2.5MiB/day@data").unwrap();
        assert_eq!((quota.bytes, quota.per, quota.bucket.as_deref()), (2_621_440, Window::Day, Some("data")));
        assert!(parse_quota("1GiB/week").is_err());
        assert!(parse_quota("1GiB").is_err());
    }
}
