//! TLS for the S3 listener and toward the upstream (rustls), and the dev
//! certificates of `egress-proxy certs`: a CA and a server certificate
//! signed by it.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;

/// The TLS client configuration toward the upstream: the system's CA
/// certificates, and those of `ca_file` (PEM) for a private CA.
pub fn upstream_client_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "some of the system's CA certificates could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let pem = fs::read(path).with_context(|| format!("reading the upstream CA file {}", path.display()))?;
        let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
        anyhow::ensure!(!certs.is_empty(), "the upstream CA file {} holds no certificate", path.display());
        for cert in certs {
            roots.add(cert).with_context(|| format!("a certificate in {} is not a usable CA", path.display()))?;
        }
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "no CA certificate to check an HTTPS upstream with: the system has none; give --upstream-ca-file"
    );
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A TLS acceptor for a PEM certificate chain and key; offers h2 and http/1.1.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<_> = rustls_pemfile::certs(
        &mut fs::read(cert).with_context(|| format!("reading --tls-cert {}", cert.display()))?.as_slice(),
    )
    .collect::<Result<_, _>>()
    .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", cert.display());
    let key = rustls_pemfile::private_key(
        &mut fs::read(key).with_context(|| format!("reading --tls-key {}", key.display()))?.as_slice(),
    )
    .with_context(|| format!("{} is not a PEM private key", key.display()))?
    .with_context(|| format!("{} holds no private key", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Writes `ca.pem`, `ca.key`, `server.pem` (leaf then CA) and `server.key`
/// into `out`, the server certificate valid for `hosts` (names or IPs).
pub fn make_dev_certs(out: &Path, hosts: &[String]) -> anyhow::Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    anyhow::ensure!(!hosts.is_empty(), "--hosts needs at least one name or address");
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "egress-proxy dev CA");
    ca_params.distinguished_name = dn;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let mut leaf_params = CertificateParams::new(hosts.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, hosts[0].clone());
    leaf_params.distinguished_name = dn;
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

    write(out, "ca.pem", &ca_cert.pem(), 0o644)?;
    write(out, "ca.key", &issuer.key().serialize_pem(), 0o600)?;
    write(out, "server.pem", &format!("{}{}", leaf_cert.pem(), ca_cert.pem()), 0o644)?;
    write(out, "server.key", &leaf_key.serialize_pem(), 0o600)?;
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> anyhow::Result<()> {
    let path = dir.join(name);
    egress_ledger::storage::write_file_durably(&path, text.as_bytes(), mode, true)
        .with_context(|| format!("writing {}", path.display()))
}
