//! The admission server over real HTTPS on 127.0.0.1, and a one-request TLS client for it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use cratedb_restore::webhook::{server::serve_tls, tls};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

/// `serve_tls` on an ephemeral loopback port, stopped by [`TlsServer::shutdown`].
pub struct TlsServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TlsServer {
    pub async fn start(store: Arc<tls::CertStore>, app: Router) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let config = Arc::new(store.server_config().unwrap());
        let task = tokio::spawn(serve_tls(
            listener,
            config,
            app,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(10),
        ));
        TlsServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Starts the graceful shutdown: no new connections, in-flight requests still answered.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).expect("the server is still running");
        }
    }

    /// Shuts down and waits for the server to finish; panics if it takes over 5 s or failed.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stops within 5 s")
            .expect("the server task ends cleanly");
    }
}

/// A TLS 1.2/1.3 client configuration trusting exactly the PEM certificates `roots`. Session
/// resumption is off: every connection does a full handshake, so the certificate it reports is
/// the one the server holds now, not the one of a remembered session.
pub fn client_config(roots: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        store
            .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

pub struct HttpsAnswer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The certificate the server presented.
    pub served: CertificateDer<'static>,
}

/// One `POST` on a fresh connection (`Connection: close`), read to the TLS close.
pub async fn https_post(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    body: &[u8],
) -> Result<HttpsAnswer, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut stream = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let served = stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let status = String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let body_start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?
        + 4;
    Ok(HttpsAnswer {
        status,
        body: raw[body_start..].to_vec(),
        served,
    })
}
