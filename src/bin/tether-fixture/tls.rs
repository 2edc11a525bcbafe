//! `--tls-cert-out`: a self-signed certificate for localhost and 127.0.0.1, made at start-up
//! (a test's https:// server needs no files of its own), written PEM for clients to trust.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// The server configuration, after writing the certificate to `cert_out`.
pub fn server_config(cert_out: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .context("making a certificate")?;
    std::fs::write(cert_out, made.cert.pem()).with_context(|| format!("writing {}", cert_out.display()))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .context("the certificate")?;
    Ok(Arc::new(config))
}
