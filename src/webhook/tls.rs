//! TLS for the admission server: TLS 1.2 and 1.3 only (SPEC A17), a certificate that can be
//! replaced on disk without a restart, and a self-signed mode for local runs.
//!
//! Kubernetes updates a mounted Secret by swapping the `..data` symlink in the volume directory,
//! so a watch on the certificate file itself goes dead after the first rotation. We watch the
//! *directories* that hold the files and, as a fallback, re-read them on an interval; a reload
//! takes effect only when both files parse and the key matches the certificate.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use notify::{RecursiveMode, Watcher};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not valid PEM: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("the certificate file holds no certificate")]
    NoCertificate,
    #[error("the certificate and key do not form a usable pair: {0}")]
    Pair(rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The crypto provider every TLS object of the webhook uses (ring, as kube's client does).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and private key into a key rustls can serve.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "the certificate",
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        what: "the private key",
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(TlsError::Pair)
}

/// A certificate and key in PEM form, e.g. freshly generated.
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed certificate for local use, valid for the given DNS names and IP addresses.
pub fn self_signed(hosts: &[String]) -> Result<PemPair, TlsError> {
    let generated = rcgen::generate_simple_self_signed(hosts.to_vec())?;
    Ok(PemPair {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
    })
}

/// Serves whatever certificate is current; swapped atomically on reload.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
    files: Option<CertFiles>,
    /// The bytes behind `current`, to tell a real change from a touch.
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl CertStore {
    /// Loads the files once; failing here fails start-up (a bad certificate is a bad deploy).
    pub fn from_files(files: CertFiles) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let (cert, key) = (read(&files.cert)?, read(&files.key)?);
        let certified = certified_key(&cert, &key, &provider)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(certified)),
            provider,
            files: Some(files),
            loaded: Mutex::new((cert, key)),
        }))
    }

    pub fn from_pem(pair: &PemPair) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let certified =
            certified_key(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes(), &provider)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(certified)),
            provider,
            files: None,
            loaded: Mutex::new((
                pair.cert_pem.clone().into_bytes(),
                pair.key_pem.clone().into_bytes(),
            )),
        }))
    }

    /// Re-reads the files. `Ok(true)`: a new certificate is now served; `Ok(false)`: nothing
    /// changed. On error the previous certificate stays in service.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        let (cert, key) = (read(&files.cert)?, read(&files.key)?);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.0 == cert && loaded.1 == key {
            return Ok(false);
        }
        let certified = certified_key(&cert, &key, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
        *loaded = (cert, key);
        Ok(true)
    }

    /// The TLS server configuration: TLS 1.3 and 1.2, ALPN h2 and http/1.1, no client auth.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    pub fn files(&self) -> Option<&CertFiles> {
        self.files.as_ref()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Keeps the served certificate in step with the files until `shutdown` resolves. `on_reload`
/// is told about every change (for metrics).
pub async fn watch_files(
    store: Arc<CertStore>,
    poll_interval: Duration,
    on_reload: impl Fn(bool) + Send + 'static,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Some(files) = store.files().cloned() else {
        shutdown.await;
        return;
    };
    let (tx, mut rx) = mpsc::channel::<()>(1);
    // The watcher lives as long as this task; without it, only the poll keeps us current.
    let _watcher = {
        let mut dirs: Vec<PathBuf> = [&files.cert, &files.key]
            .iter()
            .map(|p| {
                p.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            })
            .collect();
        dirs.dedup();
        let tx = tx.clone();
        match notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        }) {
            Ok(mut watcher) => {
                for dir in &dirs {
                    if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(%error, dir = %dir.display(), "cannot watch certificate directory; relying on polling");
                    }
                }
                Some(watcher)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start a file watcher; relying on polling");
                None
            }
        }
    };
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = poll.tick() => {}
            Some(()) = rx.recv() => {
                // Let a rotation that writes several files settle before reading them.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
            }
        }
        match store.reload() {
            Ok(true) => {
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                on_reload(true);
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "TLS certificate files changed but cannot be used yet; still serving the previous certificate");
                on_reload(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pairs_load_and_mismatched_pairs_do_not() {
        let a = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let b = self_signed(&["localhost".into()]).unwrap();
        let provider = provider();
        assert!(certified_key(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), &provider).is_ok());
        assert!(matches!(
            certified_key(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), &provider),
            Err(TlsError::Pair(_))
        ));
        assert!(matches!(
            certified_key(b"", a.key_pem.as_bytes(), &provider),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            certified_key(a.cert_pem.as_bytes(), b"garbage", &provider),
            Err(TlsError::Pem { .. })
        ));
    }

    #[test]
    fn reload_swaps_only_on_a_real_valid_change() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let first = self_signed(&["first.example".into()]).unwrap();
        std::fs::write(&files.cert, &first.cert_pem).unwrap();
        std::fs::write(&files.key, &first.key_pem).unwrap();
        let store = CertStore::from_files(files.clone()).unwrap();
        let served = |s: &CertStore| s.current.read().unwrap().cert[0].clone();
        let before = served(&store);
        assert!(!store.reload().unwrap());

        let second = self_signed(&["second.example".into()]).unwrap();
        std::fs::write(&files.cert, &second.cert_pem).unwrap();
        // Certificate written, key not yet: keep serving the old pair.
        assert!(store.reload().is_err());
        assert_eq!(served(&store), before);
        std::fs::write(&files.key, &second.key_pem).unwrap();
        assert!(store.reload().unwrap());
        assert_ne!(served(&store), before);
    }
}
