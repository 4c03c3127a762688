//! TLS on the PostgreSQL wire to CrateDB, with libpq's `sslmode` meanings: `disable` (plain),
//! `prefer` (TLS when the server offers it, else plain — the reference operator's client default)
//! and `require` (TLS or fail). Without a CA file the server certificate is not checked, as with
//! libpq's `prefer`/`require` (CrateDB's PG certificate rarely names the discovery Service); with
//! one, the chain and the host name are verified.

use std::{path::Path, sync::Arc};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
}

impl SslMode {
    pub fn postgres(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// Encryption without authentication: the handshake's signatures are checked, the certificate's
/// identity is not (libpq `sslmode=prefer|require`).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgTlsError {
    #[error("cannot read the CrateDB CA file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The client configuration: verifying against `ca_file` when given, encrypt-only otherwise.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, PgTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let config = match ca_file {
        Some(path) => {
            let err = |detail: String| PgTlsError::CaFile {
                path: path.display().to_string(),
                detail,
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| err(e.to_string()))?)
                    .map_err(|e| err(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_build_and_bad_ca_files_are_reported() {
        assert!(client_config(None).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            crate::webhook::tls::self_signed(&["crate".into()])
                .unwrap()
                .cert_pem,
        )
        .unwrap();
        assert!(client_config(Some(&ca)).is_ok());
        let missing = client_config(Some(&dir.path().join("nope.pem"))).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot read the CrateDB CA file"),
            "{missing}"
        );
        assert_eq!(SslMode::default(), SslMode::Prefer);
    }
}
