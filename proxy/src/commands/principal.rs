//! `egress-proxy principal create|list|revoke`.

use std::path::Path;

use egress_ledger::issuing::key_note;
use serde_json::json;

use super::open_ledger;

/// `principal create NAME`: prints `{"name","access_key_id","secret_access_key"}`.
pub fn create(data_dir: &Path, name: &str, description: Option<&str>) -> anyhow::Result<i32> {
    let ledger = open_ledger(data_dir)?;
    let result = ledger.create_principal_blocking(name, description);
    ledger.close_blocking()?;
    let issued = result?;
    println!(
        "{}",
        json!({
            "name": issued.principal,
            "access_key_id": issued.access_key_id,
            "secret_access_key": issued.secret_access_key.expose(),
        })
    );
    Ok(0)
}

/// `principal list`: every principal and its keys as JSON, no secrets.
pub fn list(data_dir: &Path) -> anyhow::Result<i32> {
    let ledger = open_ledger(data_dir)?;
    let listed = ledger.store().map(|s| s.principals.list()).transpose();
    ledger.close_blocking()?;
    println!("{}", serde_json::to_string_pretty(&listed?.unwrap_or_default())?);
    Ok(0)
}

/// `principal revoke ACCESS_KEY_ID`.
pub fn revoke(data_dir: &Path, access_key_id: &str) -> anyhow::Result<i32> {
    let ledger = open_ledger(data_dir)?;
    let result = (|| {
        let store = ledger.store().ok_or_else(|| anyhow::anyhow!("ledger opened without its state store"))?;
        let principal = store.principals.revoke_key(access_key_id)?;
        ledger.append_blocking(key_note("access_key_revoked", &principal, access_key_id))?;
        anyhow::Ok(principal)
    })();
    ledger.close_blocking()?;
    println!("{}", json!({ "principal": result?, "access_key_id": access_key_id, "revoked": true }));
    Ok(0)
}
