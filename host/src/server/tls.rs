//! TLS for a listener (`[app.tls]`, `[app.admin_tls]`): rustls (ring) from
//! PEM files, ALPN `h2` then `http/1.1`. The handshake runs on the worker
//! thread that serves the connection, after the accept hand-off, bounded by
//! the header timeout.

use std::fmt;
use std::io;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{
    self, pki_types::CertificateDer, pki_types::PrivateKeyDer, pki_types::pem::PemObject,
};

use crate::config::TlsFiles;

/// A listener's TLS acceptor.
#[derive(Clone)]
pub struct Tls(pub(super) TlsAcceptor);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls(rustls)")
    }
}

impl Tls {
    /// Loads the certificate chain and key; the error names the file and
    /// what is wrong with it.
    pub fn load(files: &TlsFiles) -> io::Result<Tls> {
        let bad = |file: &std::path::Path, what: String| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {what}", file.display()))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| bad(&files.cert, format!("cannot read the certificate chain: {e}")))?;
        if certs.is_empty() {
            return Err(bad(&files.cert, "no CERTIFICATE in the file".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| bad(&files.key, format!("cannot read the private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&files.cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(&files.key, format!("the key does not fit the certificate: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls(TlsAcceptor::from(Arc::new(config))))
    }
}
