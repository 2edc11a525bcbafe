//! TLS for servers over `https://`: rustls (ring), trusting the Mozilla roots built into the
//! program (the same on every platform, no system store to find) and a server's own CA when
//! its configuration names one (`ca_file`). Only TLS 1.2 and 1.3 with rustls's safe defaults.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The configuration with the built-in roots only, made once.
static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// A client configuration trusting the built-in roots and `extra` (DER certificates).
pub fn client_config(extra: &[Vec<u8>]) -> Result<Arc<ClientConfig>, String> {
    if extra.is_empty() {
        if let Some(c) = DEFAULT.get() {
            return Ok(c.clone());
        }
    }
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("a certificate of ca_file cannot be trusted: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    if extra.is_empty() {
        let _ = DEFAULT.set(config.clone());
    }
    Ok(config)
}
