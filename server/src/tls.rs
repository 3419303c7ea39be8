//! TLS with rustls (through pgwire's tokio-rustls): the server's certificate and key from
//! PEM files, PostgreSQL's SSLRequest answered 'S', and the ALPN name PostgreSQL 17's
//! direct TLS connections ask for.

use std::sync::Arc;

use pgwire::tokio::tokio_rustls::rustls;
use pgwire::tokio::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, ConfigError, TlsMode};

/// What TLS needs at run time.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The certificate chain as PEM, for SCRAM's channel binding.
    pub certificate_pem: Vec<u8>,
    /// Plaintext connections are refused.
    pub required: bool,
}

/// Loads the certificate and key the configuration names; `None` when TLS is off.
pub fn load(config: &Config) -> Result<Option<Tls>, ConfigError> {
    if config.tls == TlsMode::Off {
        return Ok(None);
    }
    let fail = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        ConfigError::Tls(format!("{what} \"{}\": {e}", path.display()))
    };
    let certificate_pem = std::fs::read(&config.tls_cert)
        .map_err(|e| fail("cannot read the certificate", &config.tls_cert, &e))?;
    let certificates = CertificateDer::pem_slice_iter(&certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("cannot read the certificate", &config.tls_cert, &e))?;
    if certificates.is_empty() {
        return Err(fail("no certificate in", &config.tls_cert, &"empty"));
    }
    let key = PrivateKeyDer::from_pem_file(&config.tls_key)
        .map_err(|e| fail("cannot read the private key", &config.tls_key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|e| {
            fail(
                "the certificate and key do not make a server identity",
                &config.tls_cert,
                &e,
            )
        })?;
    server.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        certificate_pem,
        required: config.tls == TlsMode::Required,
    }))
}
