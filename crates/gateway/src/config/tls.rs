//! Certificates a configuration names (`ca_file`): read and checked when the configuration is,
//! so a missing or malformed file is a configuration error at its key, not a failure at the
//! first call.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The certificates of a PEM file (DER each); an error when there is none or one is malformed.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        out.push(cert.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err("no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(out)
}
